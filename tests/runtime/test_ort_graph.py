"""CPU graph rewrites for ONNX Runtime: PReLU as Max (with sign flips), and the NCHWc layout choice.

The rewrites must give bit-identical outputs in real ONNX Runtime sessions; the layout choice changes
which convolution kernels run, so there the outputs differ in the last bits only.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sredge.imaging.io import read_image
from sredge.runtime.backends import BackendOptions, open_backend
from sredge.runtime.backends.ort_graph import fast_prelu, wants_nchwc
from tests.conftest import asset


def _run(model: onnx.ModelProto, x: np.ndarray, nchwc: bool = True) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not nchwc:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _photo(channels: int, hw=(72, 96)) -> np.ndarray:
    """A crop of a real photo, (1, C, H, W) float32 in [0, 1] (Y or RGB)."""
    rgb = read_image(asset("realworld/0030.jpg"))[: hw[0], : hw[1]].astype(np.float32) / 255
    planes = rgb.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(planes if channels == 3 else planes.mean(axis=1, keepdims=True))


@pytest.mark.assets
@pytest.mark.parametrize("name", ["fsrcnn_x3", "anime_x4"])
def test_real_networks_give_identical_outputs(exported, name):
    model = onnx.load(str(exported(name)))
    fast, report = fast_prelu(model)
    assert not [n for n in fast.graph.node if n.op_type == "PRelu"] and report.left == ()
    assert report.rewritten == sum(n.op_type == "PRelu" for n in model.graph.node) > 0
    assert report.flipped_channels > 0  # both networks have slopes > 1
    onnx.checker.check_model(fast)
    x = _photo(model.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
    assert np.array_equal(_run(model, x), _run(fast, x))
    # The original is untouched, and no initializer is left behind.
    assert sum(n.op_type == "PRelu" for n in model.graph.node) == report.rewritten
    used = {i for n in fast.graph.node for i in n.input}
    assert all(t.name in used for t in fast.graph.initializer)


def _conv_prelu_conv(slope: np.ndarray, prelu_is_output: bool = False, shared: bool = False) -> onnx.ModelProto:
    """x (1,1,H,W) -> Conv(4) -> PRelu(slope) -> Conv(1) [-> y]; optionally a second Conv sharing the last weights."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(4).astype(np.float32)
    w2 = rng.standard_normal((1, 4, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(slope.astype(np.float32), "a")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("PRelu", ["h", "a"], ["p"], name="prelu"),
             helper.make_node("Conv", ["p", "w2"], ["y"], pads=[1, 1, 1, 1], name="c2")]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if prelu_is_output:
        outs.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, None))
    if shared:  # another reader of w2 that must keep the original weights
        nodes += [helper.make_node("Conv", ["z", "w2"], ["y2"], pads=[1, 1, 1, 1], name="c3")]
        outs.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, None))
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None])]
    if shared:
        ins.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, None, None]))
    g = helper.make_graph(nodes, "g", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _all(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


X = {"x": np.random.default_rng(1).standard_normal((1, 1, 20, 24)).astype(np.float32)}


def test_slopes_up_to_one_need_no_flip():
    m = _conv_prelu_conv(np.array([-0.7, 0.0, 0.25, 1.0]).reshape(4, 1, 1))
    fast, report = fast_prelu(m)
    assert (report.rewritten, report.flipped_channels) == (1, 0)
    assert [n.op_type for n in fast.graph.node] == ["Conv", "Mul", "Max", "Conv"]
    assert np.array_equal(_all(m, X)[0], _all(fast, X)[0])


def test_slopes_above_one_flip_the_neighbouring_convolutions():
    m = _conv_prelu_conv(np.array([2.5, 0.5, 1.7, -3.0]).reshape(4, 1, 1))
    fast, report = fast_prelu(m)
    assert (report.rewritten, report.flipped_channels) == (1, 2)
    w1 = {t.name: numpy_helper.to_array(t) for t in fast.graph.initializer}[fast.graph.node[0].input[1]]
    orig = numpy_helper.to_array(m.graph.initializer[0])
    assert np.array_equal(w1[[0, 2]], -orig[[0, 2]]) and np.array_equal(w1[[1, 3]], orig[[1, 3]])
    assert np.array_equal(_all(m, X)[0], _all(fast, X)[0])


def test_a_flip_that_would_show_is_not_made():
    # The PReLU output is a graph output: negated channels would be visible, so it stays a PRelu.
    m = _conv_prelu_conv(np.array([2.5, 0.5, 1.7, -3.0]).reshape(4, 1, 1), prelu_is_output=True)
    fast, report = fast_prelu(m)
    assert report.left == ("prelu",) and report.rewritten == 0
    assert all(np.array_equal(a, b) for a, b in zip(_all(m, X), _all(fast, X)))


def test_shared_weights_stay_as_they_were_for_other_readers():
    m = _conv_prelu_conv(np.array([2.5, 0.5, 1.7, -3.0]).reshape(4, 1, 1), shared=True)
    feeds = {**X, "z": np.random.default_rng(2).standard_normal((1, 4, 20, 24)).astype(np.float32)}
    fast, report = fast_prelu(m)
    assert report.flipped_channels == 2
    assert all(np.array_equal(a, b) for a, b in zip(_all(m, feeds), _all(fast, feeds)))


@pytest.mark.assets
def test_layout_choice_and_the_backend_says_what_it_changed(exported):
    fsrcnn, espcn = exported("fsrcnn_x3"), exported("espcn_x3")
    assert not wants_nchwc(onnx.load(str(fsrcnn)))  # has a ConvTranspose
    assert wants_nchwc(onnx.load(str(espcn)))
    x = _photo(1)
    with open_backend("ort", fsrcnn, BackendOptions(device="cpu")) as be:
        assert "PReLU as Max" in be.describe() and "no NCHWc layout" in be.describe()
        y = be.run(x)
    # The PReLU rewrite is exact; the layout choice picks other convolution kernels (another summation order).
    assert np.array_equal(y, _run(onnx.load(str(fsrcnn)), x, nchwc=False))
    assert np.abs(y - _run(onnx.load(str(fsrcnn)), x)).max() < 1e-5
    with open_backend("ort", espcn, BackendOptions(device="cpu")) as be:
        assert "graph:" not in be.describe()
