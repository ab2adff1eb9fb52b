"""ONNX Runtime backend: provider choice (pure), a real session, metadata and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sredge.errors import InputError, MissingDependencyError
from sredge.runtime.backends import BackendOptions, open_backend
from sredge.runtime.backends.ort import choose_providers

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def test_choose_providers():
    assert choose_providers("cpu", [TRT, CUDA, CPU]) == [CPU]
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [TRT, CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("cuda", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("tensorrt", [TRT, CUDA, CPU]) == [TRT, CUDA, CPU]
    with pytest.raises(MissingDependencyError, match=r'sredge\[gpu\]'):
        choose_providers("cuda", [CPU])
    with pytest.raises(MissingDependencyError, match="TensorRT execution provider"):
        choose_providers("tensorrt", [CUDA, CPU])
    with pytest.raises(InputError):
        choose_providers("tpu", [CPU])


def test_real_session(exported):
    with open_backend("ort", exported("espcn_x3"), BackendOptions(device="cpu", threads=1)) as be:
        spec = be.input_spec()
        assert (spec.channels, spec.height, spec.width) == (3, None, None)
        desc = be.descriptor()
        assert (desc.arch, desc.scale, desc.color_space) == ("espcn", 3, "ycbcr")
        out = be.run(np.random.default_rng(0).random((2, 3, 10, 13), dtype=np.float32))
        assert out.shape == (2, 3, 30, 39) and out.dtype == np.float32
        assert "CPUExecutionProvider" in be.describe() and "threads 1" in be.describe()


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a model ONNX Runtime can load"):
        with open_backend("ort", bad):
            pass


def _with_external_data(folder: Path) -> tuple[Path, Path]:
    """(``folder/m.onnx``, ``folder/m.onnx.data``): the bundled x2 model with its weights kept beside it."""
    import onnx

    from sredge.runtime.bundled import default_model

    model = folder / "m.onnx"
    onnx.save(onnx.load(str(default_model(2))), str(model), save_as_external_data=True, location="m.onnx.data")
    return model, folder / "m.onnx.data"


def test_a_missing_or_cut_short_weights_file_is_named(tmp_path):
    """The audit: a model whose external-data file was cut short by a copy came out as two lines, ONNX Runtime's
    own log line and sredge's error cut at 200 characters inside a C++ source location."""
    model, data = _with_external_data(tmp_path)
    whole = data.read_bytes()
    data.write_bytes(whole[:1000])
    with pytest.raises(InputError, match=r"m\.onnx\.data, which is 1,000 bytes while they end at byte [\d,]+: it "
                                         r"was cut short; copy it again"):
        with open_backend("ort", model):
            pass
    data.unlink()
    with pytest.raises(InputError, match=r"m\.onnx\.data, which is not beside it"):
        with open_backend("ort", model):
            pass
    data.write_bytes(whole)
    with open_backend("ort", model, BackendOptions(threads=1)) as be:
        assert be.run(np.zeros((1, 1, 8, 8), np.float32)).shape == (1, 1, 16, 16)


def test_onnx_runtime_logs_nothing_of_its_own_when_a_model_fails_to_load(tmp_path):
    """sr-run says what is wrong in one line; ONNX Runtime's logger printed its own '[E:onnxruntime:...]' above it."""
    import subprocess
    import sys

    model, data = _with_external_data(tmp_path)
    data.write_bytes(data.read_bytes()[:1000])
    image = tmp_path / "in.png"
    image.write_bytes((Path(__file__).parents[2] / "src/sredge/data/astronaut_crop.png").read_bytes())
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.run", "--image", str(image), "--model", str(model),
                           "-o", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "cut short" in proc.stderr and not (tmp_path / "out.png").exists()


def test_run_refuses_what_it_would_misread():
    """The library audit: an 8-bit batch ran as values 0..255 (garbage out, no error), a channels-last batch
    failed with ONNX Runtime's first line ('invalid dimensions ... for the following indices', the indices
    cut off), and ``run`` outside the ``with`` block was an AttributeError."""
    from sredge.runtime.bundled import default_model

    be = open_backend("ort", default_model(2), BackendOptions(device="cpu", threads=1))
    with pytest.raises(RuntimeError, match="outside its 'with' block"):
        be.run(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(RuntimeError, match="outside its 'with' block"):
        be.input_spec()
    with be:
        with pytest.raises(InputError, match=r"float32 batch .* not uint8 samples.*image_to_input"):
            be.run(np.full((1, 1, 8, 8), 128, np.uint8))
        with pytest.raises(InputError, match=r"takes \(N, 1, H, W\) batches, not an array of shape \(1, 8, 8, 3\)"):
            be.run(np.zeros((1, 8, 8, 3), np.float32))
        with pytest.raises(InputError, match=r"channels last\? transpose"):
            be.run(np.zeros((1, 8, 8, 1), np.float32))
        with pytest.raises(InputError, match=r"\(N, 1, H, W\) batches, not an array of shape \(8, 8\)"):
            be.run(np.zeros((8, 8), np.float32))
        out = be.run(np.full((1, 1, 8, 8), 0.5, np.float64)[..., ::1, ::-1])  # other floats, views: run as float32
        assert out.dtype == np.float32 and out.shape == (1, 1, 16, 16)


def test_an_fp16_file_on_the_cpu_says_it_is_computed_in_float32(tmp_path, caplog):
    """ONNX Runtime's CPU provider computes an FP16 file in float32 (casts around its kernels): slower than the FP32
    file and not a GPU's float16 output. sr-run and sr-bench said nothing; now describe() and a warning do."""
    import onnx

    from sredge.calibration.fp16 import convert_to_fp16
    from sredge.runtime.bundled import bundled_models

    fp32 = bundled_models()[2]
    fp16 = tmp_path / "m.fp16.onnx"
    onnx.save(convert_to_fp16(onnx.load(str(fp32))), fp16)
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32)
    with caplog.at_level("WARNING"), open_backend("ort", fp16, BackendOptions(device="cpu", threads=1)) as be:
        assert "float16 file, computed in float32 here" in be.describe()
        assert be.run(x).dtype == np.float32
    assert any("m.fp16.onnx is an FP16 file: ONNX Runtime runs it on the CPU in float32 arithmetic" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"), open_backend("ort", fp32, BackendOptions(device="cpu", threads=1)) as be:
        assert "float16" not in be.describe()
    assert not caplog.records
