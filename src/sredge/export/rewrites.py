"""Exact graph rewrites that make an exported network faster without changing its output.

A rewrite here is kept only when it is exact (parity with the original graph) and a benchmark on
real frames shows a gain (figures in docs/performance.md, "Exact graph rewrites"); the one that paid on
ONNX Runtime, PReLU as depthwise convolutions, is applied by the runtime (:mod:`sredge.runtime.ort_rewrites`).

* :func:`deconv_to_subpixel`: a ConvTranspose whose stride equals the upscaling factor (FSRCNN's
  tail) becomes one Conv producing ``C * s * s`` channels followed by DepthToSpace. Output phase
  (ry, rx) of the transposed convolution reads input pixel ``q + a - j`` through kernel tap
  ``j * s + b``, with ``a, b = divmod(r + pad, s)``; each phase is therefore an ordinary
  correlation of the input, and the s*s phases stack into the Conv's output channels in
  DepthToSpace's CRD order. ONNX Runtime's CPU ConvTranspose runs as a GEMM plus col2im, while
  the Conv takes its blocked direct-convolution kernels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _subpixel_taps(kernel: int, stride: int, pad: int) -> tuple[int, int, list[list[tuple[int, int]]]]:
    """For one axis: (lowest offset, highest offset, per phase r a list of (offset m, tap k)).

    Phase r of the output (t = q * stride + r) is ``sum over (m, k) of x[q + m] * w[k]`` (pure).
    """
    phases = []
    for r in range(stride):
        a, b = divmod(r + pad, stride)
        phases.append([(a - j, j * stride + b) for j in range(-(-(kernel - b) // stride))])
    offsets = [m for ph in phases for m, _ in ph]
    return min(offsets), max(offsets), phases


def subpixel_weights(weight: np.ndarray, bias: np.ndarray | None, stride: int, pad: int
                     ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int, int]]:
    """The Conv equivalent of a ConvTranspose (pure).

    Args:
        weight: ConvTranspose weight, (C_in, C_out, K, K) (ONNX layout, group 1).
        bias: (C_out,) or None.
        stride: The stride (= the upscaling factor) on both axes.
        pad: The padding on every side.

    Returns:
        (conv weight (C_out*s*s, C_in, k, k), conv bias (C_out*s*s,) or None, conv pads
        (top, left, bottom, right)); the Conv's output through DepthToSpace(s, CRD) equals the
        ConvTranspose's output when that output is exactly s times the input.
    """
    c_in, c_out, kh, kw = weight.shape
    if kh != kw:
        raise ValueError("square kernels only")
    lo, hi, phases = _subpixel_taps(kh, stride, pad)
    size = hi - lo + 1
    out = np.zeros((c_out, stride, stride, c_in, size, size), dtype=np.float64)
    w = weight.astype(np.float64)
    for ry, py in enumerate(phases):
        for rx, px in enumerate(phases):
            for my, ky in py:
                for mx, kx in px:
                    out[:, ry, rx, :, my - lo, mx - lo] += w[:, :, ky, kx].T
    conv_w = out.reshape(c_out * stride * stride, c_in, size, size).astype(weight.dtype)
    conv_b = None if bias is None else np.repeat(bias, stride * stride).astype(bias.dtype)
    return conv_w, conv_b, (-lo, -lo, hi, hi)


def deconv_to_subpixel(model: onnx.ModelProto) -> int:
    """Rewrite every eligible ConvTranspose of ``model`` in place; returns how many.

    Eligible: 2-D, group 1, no dilation, equal strides s >= 2 and symmetric equal pads, weights
    and bias as initializers, and an output exactly s times its input
    (``K - 2 * pad + output_padding == s``).
    """
    inits = {i.name: i for i in model.graph.initializer}
    count = 0
    for idx, node in enumerate(list(model.graph.node)):
        if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = numpy_helper.to_array(inits[node.input[1]])
        if weight.ndim != 4 or attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            continue
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        out_pad = list(attrs.get("output_padding", [0, 0]))
        s, k = strides[0], weight.shape[2]
        if (strides != [s, s] or s < 2 or len(set(pads)) != 1 or len(set(out_pad)) != 1
                or "output_shape" in attrs or weight.shape[2] != weight.shape[3]
                or k - 2 * pads[0] + out_pad[0] != s):
            continue
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if has_bias and node.input[2] not in inits:
            continue
        bias = numpy_helper.to_array(inits[node.input[2]]) if has_bias else None
        conv_w, conv_b, conv_pads = subpixel_weights(weight, bias, s, pads[0])
        base = node.name or f"deconv{idx}"
        w_name, b_name, mid = f"{base}_subpixel_w", f"{base}_subpixel_b", f"{base}_subpixel_out"
        model.graph.initializer.append(numpy_helper.from_array(conv_w, w_name))
        inputs = [node.input[0], w_name]
        if conv_b is not None:
            model.graph.initializer.append(numpy_helper.from_array(conv_b, b_name))
            inputs.append(b_name)
        conv = helper.make_node("Conv", inputs, [mid], name=f"{base}_subpixel_conv",
                                kernel_shape=list(conv_w.shape[2:]), pads=list(conv_pads))
        d2s = helper.make_node("DepthToSpace", [mid], list(node.output), name=f"{base}_subpixel_shuffle",
                               blocksize=s, mode="CRD")
        pos = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(pos, d2s)
        model.graph.node.insert(pos, conv)
        count += 1
    if count:
        used = {i for n in model.graph.node for i in n.input}
        for init in [i for i in model.graph.initializer if i.name not in used]:
            model.graph.initializer.remove(init)
    return count
