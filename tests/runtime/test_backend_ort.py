"""ONNX Runtime backend: provider choice (pure), a real session, metadata and errors."""

from __future__ import annotations

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
