"""Exact graph rewrites: a stride-s ConvTranspose as Conv + DepthToSpace gives the same pixels."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sredge.export.onnx_export import export_onnx
from sredge.export.rewrites import deconv_to_subpixel, subpixel_weights
from sredge.models.loader import describe
from sredge.models.registry import get_arch


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_tail_rewritten_as_subpixel_conv_is_exact(tmp_path, scale):
    spec = get_arch("fsrcnn")
    torch.manual_seed(scale)
    hp = {"scale": scale, "num_channels": 1, "d": 16, "s": 8, "m": 1}
    module = spec.build(**hp).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = export_onnx(module, describe(spec, hp, 0), tmp_path / "m.onnx")
    original = onnx.load(str(path))
    rewritten = onnx.load(str(path))
    assert deconv_to_subpixel(rewritten) == 1
    assert [n.op_type for n in rewritten.graph.node].count("ConvTranspose") == 0
    assert "DepthToSpace" in [n.op_type for n in rewritten.graph.node]
    onnx.checker.check_model(rewritten)
    for h, w in [(17, 23), (32, 48)]:
        x = np.random.default_rng(h).random((2, 1, h, w), dtype=np.float32)
        a, b = _run(original, x), _run(rewritten, x)
        assert a.shape == b.shape == (2, 1, h * scale, w * scale)
        assert np.abs(a - b).max() < 1e-5


def test_subpixel_weights_match_torch_conv_transpose_for_odd_pads():
    torch.manual_seed(0)
    for k, s, pad, out_pad in [(9, 3, 4, 2), (4, 2, 1, 0), (6, 4, 1, 0), (5, 2, 2, 1)]:
        assert k - 2 * pad + out_pad == s
        w, b = torch.randn(3, 2, k, k), torch.randn(2)
        x = torch.randn(1, 3, 7, 9)
        ref = torch.nn.functional.conv_transpose2d(x, w, b, stride=s, padding=pad, output_padding=out_pad)
        cw, cb, pads = subpixel_weights(w.numpy(), b.numpy(), s, pad)
        xp = torch.nn.functional.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        got = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(xp, torch.from_numpy(cw),
                                                                           torch.from_numpy(cb)), s)
        assert got.shape == ref.shape
        assert (got - ref).abs().max() < 1e-4, (k, s, pad)


def test_ineligible_deconvolutions_are_left_alone():
    from onnx import TensorProto, helper, numpy_helper

    # stride 3, pad 4, kernel 9, no output_padding: the output is 3H - 2, not 3H, so no rewrite.
    w = numpy_helper.from_array(np.zeros((4, 1, 9, 9), np.float32), "w")
    node = helper.make_node("ConvTranspose", ["input", "w"], ["output"], strides=[3, 3], pads=[4, 4, 4, 4])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph)
    assert deconv_to_subpixel(model) == 0
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose"]
