"""A graph rewrite that ONNX Runtime's CPU provider runs faster: PReLU as two depthwise 1x1 convolutions.

ONNX Runtime runs convolutions in a blocked layout (NCHWc, blocks of 16 channels with AVX-512, 8 with
AVX2) and fuses ReLU and a following Add into them, but it has no blocked PReLU: each PReLU runs as a
separate broadcast kernel, with its tensor reordered out of the blocked layout before it and back
after it. On the bundled 16-channel SESR networks (a real 640x360 frame, 2 cores) PReLU and those
reorders took half the time.

:func:`prelu_as_depthwise` writes ``PReLU(x)`` (slopes ``a``, one per channel) as
``x + DWConv(1 - a)(ReLU(DWConv(-1)(x)))``: for x >= 0 that is x, for x < 0 it is
``x + (1 - a)(-x) = a x``. Each depthwise 1x1 convolution is a per-channel scale ONNX Runtime keeps in
the blocked layout, with the ReLU and the Add fused into them. The result equals PReLU up to float
rounding (144-154 dB against the plain graph on the bundled models and FSRCNN).

Measured on a real frame (Intel Xeon, avx512_vnni, 2 cores; ``python benchmarks/bench_ort_rewrites.py``,
figures in docs/performance.md): the bundled models ran at 0.73-0.74x of their plain time and
realesr-animevideov3 (64 channels) at 0.92x, while FSRCNN (56 and 12 channels, not whole blocks) ran
1.07-1.10x slower. So only a PReLU of a whole number of 16-channel blocks is rewritten. The file on disk
keeps the plain graph, which OpenVINO and TensorRT fuse natively; :class:`~sredge.runtime.backends.ort.OrtBackend`
applies this in memory, on the CPU only.
"""

from __future__ import annotations

import numpy as np

BLOCK = 16
"""A PReLU is rewritten only when its channels fill whole blocks of this many (ONNX Runtime's NCHWc block
with AVX-512; a multiple of AVX2's 8)."""


def eligible_prelus(model) -> list:
    """The PReLU nodes :func:`prelu_as_depthwise` rewrites (pure): float32 per-channel slopes stored as an
    initializer of shape (C, 1, 1) or (1, C, 1, 1), C a multiple of :data:`BLOCK`, on an input that is not recorded
    with a rank other than 4, in a model with no Q/DQ node (an INT8 file's PReLUs sit
    between quantize/dequantize pairs whose fusions the rewrite would break).

    Args:
        model: ``onnx.ModelProto`` (weights need not be loaded for the check, but are for the rewrite).
    """
    from onnx import TensorProto

    graph = model.graph
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        return []
    inits = {t.name: t for t in graph.initializer}
    ranks = _ranks(graph)
    found = []
    for node in graph.node:
        if node.op_type != "PRelu" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        slope = inits.get(node.input[1])
        if slope is None or slope.data_type != TensorProto.FLOAT:
            continue
        dims = [int(d) for d in slope.dims]
        channels = int(np.prod(dims)) if dims else 1
        # (C, 1, 1) or (1, C, 1, 1): one slope per channel of an NCHW tensor. A (C,) slope broadcasts along the
        # last axis (W), not the channels; a rank other than 4 is no image (the depthwise Conv needs NCHW).
        per_channel = dims in ([channels, 1, 1], [1, channels, 1, 1])
        if per_channel and channels % BLOCK == 0 and ranks.get(node.input[0], 4) == 4:
            found.append(node)
    return found


def _ranks(graph) -> dict[str, int]:
    """Tensor name -> rank, where the graph (its inputs, outputs and value_info) records it."""
    ranks = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            ranks[value.name] = len(value.type.tensor_type.shape.dim)
    return ranks


def prelu_as_depthwise(model) -> int:
    """Rewrite, in place, every PReLU of :func:`eligible_prelus` as ``x + DWConv(1 - a)(ReLU(DWConv(-1)(x)))``.

    Args:
        model: ``onnx.ModelProto`` with its weights loaded; PReLU inputs are (N, C, H, W) float32.

    Returns:
        How many PReLU nodes were rewritten.
    """
    from onnx import helper, numpy_helper

    targets = {n.output[0] for n in eligible_prelus(model)}  # by output name: protobuf wraps nodes anew each time
    if not targets:
        return 0
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, slopes = [], set()
    for k, node in enumerate(graph.node):
        if node.op_type != "PRelu" or node.output[0] not in targets:
            nodes.append(node)
            continue
        x, slope_name = node.input
        y, tag = node.output[0], f"{node.name or 'prelu'}__dw{k}"
        a = numpy_helper.to_array(inits[slope_name]).astype(np.float64).reshape(-1)
        c = a.size
        graph.initializer.extend([
            numpy_helper.from_array(np.full((c, 1, 1, 1), -1, np.float32), f"{tag}_minus_one"),
            numpy_helper.from_array((1 - a).astype(np.float32).reshape(c, 1, 1, 1), f"{tag}_one_minus_slope")])
        nodes += [
            helper.make_node("Conv", [x, f"{tag}_minus_one"], [f"{tag}_neg"], name=f"{tag}_neg", group=c,
                             kernel_shape=[1, 1]),
            helper.make_node("Relu", [f"{tag}_neg"], [f"{tag}_relu"], name=f"{tag}_relu"),
            helper.make_node("Conv", [f"{tag}_relu", f"{tag}_one_minus_slope"], [f"{tag}_scaled"],
                             name=f"{tag}_scaled", group=c, kernel_shape=[1, 1]),
            helper.make_node("Add", [f"{tag}_scaled", x], [y], name=f"{tag}_add")]  # fused into the conv above
        slopes.add(slope_name)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name not in slopes or t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return len(targets)
