"""FP16: conversion of the real checkpoints, Set5/Set14 within 0.02 dB, float16 range check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sredge.calibration.fp16 import Fp16Options, activation_ranges, convert_to_fp16
from sredge.calibration.sensitivity import Validator
from sredge.calibration.sets import model_inputs
from sredge.errors import CheckFailedError
from tests.conftest import asset


def _dataset(name, scale):
    from sredge.benchmarks.datasets import load_dataset

    return load_dataset(asset(f"benchmarks/{name}"), scale)


@pytest.mark.assets
@pytest.mark.parametrize(("name", "datasets"), [
    ("fsrcnn_x2", ("Set5", "Set14")), ("fsrcnn_x3", ("Set5", "Set14")), ("fsrcnn_x4", ("Set5", "Set14")),
    ("espcn_x3", ("Set5", "Set14")),
    ("vdsr_x2", ("Set5",)),  # Set14 takes about 8 minutes in half here: benchmarks/bench_fp16.py measures it
])
def test_fp16_within_0_02_db_computed_in_half(real_model, name, datasets):
    """PyTorch CPU runs float16 convolutions with float16 tensors between layers (what a GPU does);
    ONNX Runtime CPU on x86 casts float16 back to float32 around its kernels, so the file itself is
    checked for dtype and parity, and the 0.02 dB figure is taken from the half-precision PyTorch run."""
    pytest.importorskip("torch")
    import copy

    from sredge.benchmarks.quality import evaluate_y_psnr
    from sredge.calibration.fp16 import torch_half_runner, torch_runner

    path, loaded = real_model(name)
    desc = loaded.descriptor
    run32, run16 = torch_runner(loaded.module), torch_half_runner(copy.deepcopy(loaded.module))
    for ds in datasets:
        d = _dataset(ds, desc.scale)
        a = np.mean(list(evaluate_y_psnr(run32, desc, d).values()))
        b = np.mean(list(evaluate_y_psnr(run16, desc, d).values()))
        print(f"{name} {ds}: fp32 {a:.4f} dB, torch fp16 {b:.4f} dB, drop {a - b:.4f}")
        assert a != b  # float16 really rounds something
        assert abs(a - b) <= 0.02
    m16 = convert_to_fp16(onnx.load(str(path)))
    assert m16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert all(i.data_type != TensorProto.FLOAT for i in m16.graph.initializer)
    v = Validator(_dataset("Set5", desc.scale), desc)
    assert abs(v.mean_db(path) - v.mean_db(m16)) <= 0.02


@pytest.mark.assets
def test_fp16_io_and_metadata(real_model, t91_set):
    path, loaded = real_model("espcn_x3")
    m = convert_to_fp16(onnx.load(str(path)), Fp16Options(fp16_io=True))
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert {p.key: p.value for p in m.metadata_props}["sredge.precision"] == '"fp16"'
    import onnxruntime as ort

    x = model_inputs(t91_set, loaded.descriptor, limit=2)
    sess32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sess16 = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    y16 = sess16.run(None, {"input": x.astype(np.float16)})[0]
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float32), sess32.run(None, {"input": x})[0], atol=5e-3)
    ranges = activation_ranges(path, x)
    assert not ranges.overflows and 0.5 < ranges.peak[1] < 1000


def _overflowing_model(tmp_path):
    """input (1,1,H,W) -> Conv with weights 1e4 ("big") -> Relu -> Conv with weights 1e-4: output fine, middle not."""
    w1 = numpy_helper.from_array(np.full((4, 1, 3, 3), 1e4, np.float32), "w1")
    w2 = numpy_helper.from_array(np.full((1, 4, 1, 1), 1e-5, np.float32), "w2")
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w1"], ["big"], pads=[1, 1, 1, 1], name="conv_big"),
         helper.make_node("Relu", ["big"], ["act"], name="relu"),
         helper.make_node("Conv", ["act", "w2"], ["output"], name="conv_small")],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 1, None, None])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1, None, None])], [w1, w2])
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_range_check_names_the_overflowing_layers(tmp_path):
    from sredge.calibration.derive import make_fp16
    from sredge.models.descriptor import ModelDescriptor

    path = _overflowing_model(tmp_path)
    x = np.full((2, 1, 8, 8), 0.9, np.float32)
    report = activation_ranges(path, x)
    assert [t for t, _ in report.overflows] == ["big", "act"]
    assert report.max_abs["output"] < 65504
    desc = ModelDescriptor("srcnn", 1, 1, 1, "y", 1.0, False)
    with pytest.raises(CheckFailedError, match=r"conv_big \(Conv\) -> big: max \|x\| 8\.1e\+04"):
        make_fp16(path, desc, x, validator=None)
    assert not (tmp_path / "big.fp16.onnx").exists()


def test_an_architecture_not_known_to_be_fp16_safe_is_warned_about(tmp_path, caplog):
    """HAN and CSNLN are marked not float16-safe (attention sums over every pixel), and sr-run --backend torch --fp16
    warns; sr-export wrote their FP16 file after a range check on small crops without a word."""
    from dataclasses import replace

    from sredge.calibration.derive import make_fp16

    path, desc, validator = _bundled_x2(tmp_path)
    x = np.full((2, 1, 24, 32), 0.5, np.float32)
    with caplog.at_level("WARNING"):
        make_fp16(path, desc, x, validator, half_db=lambda: 30.0)
    assert not caplog.records
    with caplog.at_level("WARNING"):
        out = make_fp16(path, replace(desc, fp16_safe=False), x, validator, half_db=lambda: 30.0)
    assert out.path.is_file()
    assert any("not known to be float16-safe" in r.getMessage() and "on 32x24 inputs only" in r.getMessage()
               for r in caplog.records)


def _bundled_x2(tmp_path):
    """A copy of the bundled x2 model, its descriptor, and a validator on the bundled photo."""
    from sredge.calibration.derive import default_validation
    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.bundled import bundled_models

    path = tmp_path / "m.onnx"
    path.write_bytes(bundled_models()[2].read_bytes())
    desc = read_descriptor(path)
    return path, desc, Validator(default_validation(desc.scale), desc, threads=1)


def _refused(model: onnx.ModelProto) -> onnx.ModelProto:
    """The first initializer retyped float64 behind its node's back: ONNX Runtime refuses the graph."""
    init = model.graph.initializer[0]
    arr = numpy_helper.to_array(init).astype(np.float64)
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    return model


def _dimmed(model: onnx.ModelProto) -> onnx.ModelProto:
    """The network's output halved: a file that runs and gives a wrong image."""
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "half_gain"))
    model.graph.node.append(helper.make_node("Mul", [f"{out}_pre", "half_gain"], [out], name="dim"))
    return model


@pytest.mark.parametrize(("breaks", "message"), [
    (_refused, r"ONNX Runtime cannot run the FP16 file \("),
    (_dimmed, r"the FP16 file scores \d+\.\d+ dB in ONNX Runtime but the network computed in float16 by PyTorch"),
])
def test_the_fp16_file_is_run_by_onnx_runtime_before_it_is_written(tmp_path, monkeypatch, breaks, message):
    """sr-export scored FP16 by PyTorch's float16 computation and wrote the converted file without ever running
    it: a conversion that ONNX Runtime refuses, or that computes another image, reached the user."""
    import sredge.calibration.derive as derive

    path, desc, validator = _bundled_x2(tmp_path)
    x = np.full((2, 1, 24, 32), 0.5, np.float32)
    ok = derive.make_fp16(path, desc, x, validator, half_db=lambda: validator.mean_db(path))
    assert ok.path.is_file() and abs(ok.psnr_db - validator.mean_db(path)) < 1e-9
    ok.path.unlink()
    real = derive.convert_to_fp16
    monkeypatch.setattr(derive, "convert_to_fp16", lambda *a, **k: breaks(real(*a, **k)))
    with pytest.raises(CheckFailedError, match=message):
        derive.make_fp16(path, desc, x, validator, half_db=lambda: validator.mean_db(path))
    assert not ok.path.exists()
