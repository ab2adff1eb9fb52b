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
figures in docs/performance.md): the bundled models ran at 0.73-0.75x of their plain time and
realesr-animevideov3 (64 channels) at 0.87x, while FSRCNN (56 and 12 channels, not whole blocks) ran
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
    initializer of shape (C, 1, 1) or (1, C, 1, 1) holding C values, C a multiple of :data:`BLOCK`, on an input the
    graph records as rank 4 (:func:`needs_shapes`), in a model with no Q/DQ node (an INT8 file's PReLUs sit between
    quantize/dequantize pairs whose fusions the rewrite would break) and no two nodes of one name.

    Args:
        model: ``onnx.ModelProto`` (weights loaded: the slopes are read).
    """
    from onnx import numpy_helper

    graph = model.graph
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        return []
    names = [n.name for n in graph.node if n.name]
    if len(names) != len(set(names)):  # ONNX Runtime refuses such a file; a rewrite would hide that
        return []
    inits = {t.name: t for t in graph.initializer}
    ranks = _ranks(graph)
    found = []
    for node in _prelus(graph):
        slope = inits.get(node.input[1])
        if slope is None or slope.data_type != _FLOAT or ranks.get(node.input[0]) != 4:
            continue
        dims = [int(d) for d in slope.dims]
        channels = int(np.prod(dims)) if dims else 1
        # (C, 1, 1) or (1, C, 1, 1): one slope per channel of an NCHW tensor (a (C,) slope broadcasts along W)
        if dims not in ([channels, 1, 1], [1, channels, 1, 1]) or channels % BLOCK:
            continue
        try:
            if numpy_helper.to_array(slope).size != channels:
                continue
        except ValueError:  # a damaged tensor: ONNX Runtime's own load says so
            continue
        found.append(node)
    return found


_FLOAT = 1  # onnx.TensorProto.FLOAT


def _prelus(graph) -> list:
    return [n for n in graph.node if n.op_type == "PRelu" and n.domain in ("", "ai.onnx") and len(n.input) == 2]


def needs_shapes(model) -> bool:
    """Whether a PReLU's input has no recorded rank: run ``onnx.shape_inference`` first to know it (pure)."""
    ranks = _ranks(model.graph)
    return any(n.input[0] not in ranks for n in _prelus(model.graph))


def _ranks(graph) -> dict[str, int]:
    """Tensor name -> rank, where the graph (its inputs, outputs and value_info) records it."""
    ranks = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            ranks[value.name] = len(value.type.tensor_type.shape.dim)
    return ranks


def _graphs(graph):
    """The graph and every subgraph of its nodes (If/Loop bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                yield from _graphs(sub)


def _names(graph) -> set[str]:
    """Every name in a graph and its subgraphs: nodes, their inputs and outputs, initializers, graph inputs/outputs."""
    out: set[str] = set()
    for g in _graphs(graph):
        out.update(t.name for t in g.initializer)
        out.update(v.name for v in (*g.input, *g.output, *g.value_info))
        for node in g.node:
            out.update((node.name, *node.input, *node.output))
    return out


def prelu_as_depthwise(model) -> int:
    """Rewrite, in place, every PReLU of :func:`eligible_prelus` as ``x + DWConv(1 - a)(ReLU(DWConv(-1)(x)))``.

    New tensors get names no other tensor, node or subgraph value has; a slope initializer nothing else reads
    (in the graph or its subgraphs) is removed, with its entry in the graph's inputs when an exporter listed
    initializers there too (``keep_initializers_as_inputs``).

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
    taken = _names(graph)

    def fresh(base: str) -> str:
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    nodes, slopes = [], set()
    for node in graph.node:
        if node.op_type != "PRelu" or node.output[0] not in targets:
            nodes.append(node)
            continue
        x, slope_name = node.input
        y = node.output[0]
        a = numpy_helper.to_array(inits[slope_name]).astype(np.float64).reshape(-1)
        c = a.size
        base = f"{node.name or y}__dw"
        minus_one, scale = fresh(f"{base}_minus_one"), fresh(f"{base}_one_minus_slope")
        neg, relu, scaled = fresh(f"{base}_neg"), fresh(f"{base}_relu"), fresh(f"{base}_scaled")
        graph.initializer.extend([numpy_helper.from_array(np.full((c, 1, 1, 1), -1, np.float32), minus_one),
                                  numpy_helper.from_array((1 - a).astype(np.float32).reshape(c, 1, 1, 1), scale)])
        nodes += [
            helper.make_node("Conv", [x, minus_one], [neg], name=fresh(neg), group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [neg], [relu], name=fresh(relu)),
            helper.make_node("Conv", [relu, scale], [scaled], name=fresh(scaled), group=c, kernel_shape=[1, 1]),
            helper.make_node("Add", [scaled, x], [y], name=fresh(f"{base}_add"))]  # Add fused into the conv above
        slopes.add(slope_name)
    del graph.node[:]
    graph.node.extend(nodes)
    used = _used(graph)
    gone = {name for name in slopes if name not in used}
    for field in (graph.initializer, graph.input):
        kept = [t for t in field if t.name not in gone]
        del field[:]
        field.extend(kept)
    return len(targets)


def _used(graph) -> set[str]:
    """Names read by the nodes of a graph and of its subgraphs (which may read outer values)."""
    return {name for g in _graphs(graph) for node in g.node for name in node.input}
