"""sredge's TensorRT and CUDA code checked against the REAL TensorRT 10.3, 10.13, 11.0 and 11.4 Python
bindings and the real cuda-python 12.4 (``cuda.cudart``) and 13.0 (``cuda.bindings.runtime``) modules.

What this proves: every TensorRT class, method, property, property write, enum member and call
signature that ``sr-build`` and the ``trt`` backend use exists in that version and is called the way
its pybind11 overloads accept; every cuda-python call has the right arity and argument types; the
feature sets the pure planning tests assume are what the real modules expose; the copies, events and
streams are ordered correctly on a simulated device; and, with nothing simulated at all, a machine
without a GPU gets exit 2 and one line from both commands. What it does not prove: anything about a
real build or a real engine's output or speed (TensorRT's libraries are stubs here: see ``fetch.py``).

Each run happens in its own process (the stub libraries must be on ``LD_LIBRARY_PATH`` at start).
The wheels are downloaded once and cached; without PyPI or gcc these tests skip with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.test_engine_plan import TRT10, TRT11

from . import fetch

ROOT = Path(__file__).resolve().parents[2]
CUDA = tuple(fetch.CUDA_PACKAGES)


def _run(tmp_path: Path, trt_version: str, cuda: str, *flags: str) -> dict:
    try:
        env = fetch.environment(trt_version, cuda)
    except fetch.Unavailable as exc:
        pytest.skip(str(exc))
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "tests.trt_conformance.driver", str(tmp_path / "work"), str(out),
                           *flags], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and out.is_file(), f"driver failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())


@pytest.mark.parametrize("cuda", CUDA)
@pytest.mark.parametrize("trt_version", fetch.TRT_VERSIONS)
def test_build_and_runtime_conform_to_the_real_bindings(tmp_path, trt_version, cuda):
    r = _run(tmp_path, trt_version, cuda)
    assert r["tensorrt"] == trt_version
    assert r["cuda_module"] == ("cuda.cudart" if cuda.startswith("cuda-python-12.4") else "cuda.bindings.runtime")
    failed = {k: v for k, v in r["scenarios"].items() if not v["ok"]}
    assert not failed, json.dumps(failed, indent=1)[:8000]
    assert len(r["scenarios"]) >= 14
    # the planning tests' feature sets are what the real module has
    expected = TRT10 if trt_version.startswith("10.") else TRT11
    assert set(r["features"]) == set(expected), (sorted(r["features"]), sorted(expected))
    # the whole surface sredge uses was exercised
    for name in ("Builder.build_serialized_network", "IBuilderConfig.set_timing_cache", "IBuilderConfig.can_run_on_DLA",
                 "IExecutionContext.execute_async_v3", "ICudaEngine.get_tensor_profile_shape"):
        assert name in r["used"], name
    if trt_version.startswith("10."):
        assert "IBuilderConfig.int8_calibrator" in r["used"] and "IBuilderConfig.set_calibration_profile" in r["used"]
    for name in ("cudaMallocHost", "cudaMemcpyAsync", "cudaStreamWaitEvent", "cudaEventRecord"):
        assert name in r["cuda_used"], name


@pytest.mark.parametrize("trt_version", fetch.TRT_VERSIONS)
def test_the_check_catches_injected_mistakes(tmp_path, trt_version):
    r = _run(tmp_path, trt_version, "cuda-bindings-13.0.3" if trt_version >= "10.13" else "cuda-python-12.4.0",
             "--mistakes")
    major = int(trt_version.split(".")[0])
    only_on_11 = {"explicit_batch_flag", "fp16_flag_on_tensorrt_11"}
    for name, m in r["mistakes"].items():
        if major == 10 and name in only_on_11:
            assert m["caught"] is None, (name, m)  # valid API there: nothing to catch
        else:
            assert m["caught"] is True, (name, m)
    assert len(r["mistakes"]) >= 12


@pytest.mark.parametrize("cuda", CUDA)
@pytest.mark.parametrize("trt_version", ["10.3.0", "11.4.0.106"])
def test_real_modules_without_a_gpu_give_one_line_and_exit_2(tmp_path, trt_version, cuda):
    """Defects 5 and 6 of issue 13, with nothing simulated: TensorRT's Builder returned nullptr before the
    device check (exit 3), and cuda-python < 12.6 raised RuntimeError instead of an error code (exit 3)."""
    r = _run(tmp_path, trt_version, cuda, "--real")
    assert r["build_code"] == 2, r
    assert r["build_stderr"].count("\n") == 1 and "no usable NVIDIA GPU/driver" in r["build_stderr"], r
    assert not r["engine_written"]
    kind, name, code, message = r["backend_error"]
    assert (kind, name, code) == ("SredgeError", "CudaError", 2), r
    assert "no usable NVIDIA GPU/driver" in message
