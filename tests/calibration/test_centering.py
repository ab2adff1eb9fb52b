"""The INT8 graph around the image: centring for symmetric int8, a float path to the output, what ONNX Runtime fuses."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from sredge.calibration.centering import center_input
from sredge.calibration.quantize import Int8Options, activation_scales, calibrate, flavour_of, quantize_int8
from sredge.runtime.bundled import default_model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _fused_ops(model: onnx.ModelProto, tmp_path) -> list[str]:
    """Op types of the graph ONNX Runtime actually runs (after its Q/DQ fusions)."""
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


@pytest.fixture(scope="module")
def x2():
    path = default_model(2)
    x = np.random.default_rng(0).random((8, 1, 32, 32), dtype=np.float32)
    return path, x


def test_centring_is_exact(x2):
    path, _ = x2
    model = onnx.load(str(path))
    centred, changed = center_input(model, 0.5)
    assert changed == 1
    onnx.checker.check_model(centred)
    x = np.random.default_rng(1).random((1, 1, 37, 50), dtype=np.float32)  # borders: the padding is exact too
    assert np.abs(_run(centred, x) - _run(model, x)).max() < 1e-5
    assert model.SerializeToString() == onnx.load(str(path)).SerializeToString()  # the input is a copy


def test_centring_leaves_a_model_without_a_first_convolution_alone():
    w = numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "half"], ["y"]), helper.make_node("Conv", ["y", "w"], ["z"], pads=[1] * 4)],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 1, 8, 8])], [w, half])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out, changed = center_input(model, 0.5)
    assert changed == 0 and out.SerializeToString() == model.SerializeToString()


def test_trt_flavour_reads_the_centred_image_in_steps_of_1_255(x2, tmp_path):
    """Symmetric int8 on an image in [0, 1] would waste its negative half (steps of 1/127); the first
    convolution reads ``x - 0.5`` instead, and the skip path still reads the image itself."""
    path, x = x2
    model = quantize_int8(path, calibrate(path, x, Int8Options(flavour="trt")))
    assert flavour_of(model) == "trt"
    produced_by = {o: n for n in model.graph.node for o in n.output}
    scales = activation_scales(model)
    first = next(t for t in scales if t in produced_by and produced_by[t].op_type == "Pad")
    assert scales[first] <= 0.5 / 127 * 1.001
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    assert resize.input[0] == model.graph.input[0].name
    fp32 = onnx.load(str(path))
    assert _psnr_db(_run(model, x), _run(fp32, x)) > 35  # noise input: a sanity bound, Set5 is measured by sr-bench
    # ONNX Runtime fuses no convolution of this flavour into INT8 (no quantized output): OpenVINO's format
    assert "QLinearConv" not in _fused_ops(model, tmp_path)


def test_cpu_flavour_keeps_the_path_to_the_output_float_and_every_conv_int8(x2, tmp_path):
    """The cpu flavour no longer rounds the image, its upsampled skip, the pixel shuffle's copy or the
    sum it returns; each convolution's output stays quantized, so ONNX Runtime still runs all of them
    as QLinearConv."""
    path, x = x2
    model = quantize_int8(path, calibrate(path, x, Int8Options(flavour="cpu")))
    assert flavour_of(model) == "cpu"
    produced_by = {o: n for n in model.graph.node for o in n.output}
    out = produced_by[model.graph.output[0].name]
    assert out.op_type == "Add"
    assert sorted(produced_by[i].op_type for i in out.input) == ["DepthToSpace", "Resize"]
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    assert resize.input[0] == model.graph.input[0].name
    convs = sum(n.op_type == "Conv" for n in model.graph.node)
    assert _fused_ops(model, tmp_path).count("QLinearConv") == convs == 11


def _psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    from sredge.imaging.metrics import psnr

    return psnr(a, b)
