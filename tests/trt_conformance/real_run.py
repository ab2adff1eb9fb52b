"""The fully real path: the REAL TensorRT bindings (over stub libraries) and the REAL cuda-python.

No stand-ins at all: on this machine (no GPU, no driver) TensorRT's factories return nullptr and
cuda-python reports the missing driver (an error code from cuda-bindings 12.9/13; a RuntimeError
from cuda-python before 12.6). sredge must turn both into one line and exit 2, not exit 3.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from .models import make_onnx


def run_real(work: Path) -> dict:
    import tensorrt_bindings

    sys.modules["tensorrt"] = tensorrt_bindings
    from sredge.cli import build
    from sredge.cli._app import run
    from sredge.errors import SredgeError
    from sredge.runtime.backends.trt import TrtBackend

    work.mkdir(parents=True, exist_ok=True)
    onnx = make_onnx(work / "real.onnx")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run("sr-build", build.main, [str(onnx), "-o", str(work / "real.engine")])
    engine = work / "fake.engine"
    engine.write_bytes(b"not an engine")
    backend_error = None
    try:
        with TrtBackend(engine):
            pass
    except SredgeError as exc:
        backend_error = ("SredgeError", type(exc).__name__, exc.exit_code, str(exc))
    except Exception as exc:  # what the defects 5 and 6 produced
        backend_error = ("other", type(exc).__name__, 3, str(exc))
    return {"tensorrt": tensorrt_bindings.__version__, "build_code": code, "build_stderr": err.getvalue(),
            "engine_written": (work / "real.engine").exists(), "backend_error": backend_error}
