"""The real TensorRT Python bindings and cuda-python, made importable on a machine without TensorRT.

TensorRT's compiled bindings are plain PyPI wheels (``tensorrt-cu12-bindings``, ~1.2 MB); only its
libraries (``-libs``) come from NVIDIA's own index. The bindings module needs nine factory symbols
from ``libnvinfer``, ``libnvonnxparser`` and ``libnvinfer_plugin``; :func:`stub_libraries` compiles
a C file exporting those (each returning NULL or 0) under the sonames the module links against
(``.so.10`` / ``.so.11``), so the REAL module imports with them on ``LD_LIBRARY_PATH``. Nothing can
be built or run that way; the classes, properties, enums and signatures are all there to check.

Everything is cached under ``$SREDGE_TEST_CACHE`` (default ``~/.cache/sredge-tests``), guarded by
a file lock so parallel test workers share one download. Without network (PyPI) or gcc the caller
skips with the reason; a version PyPI does not have is an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

TRT_VERSIONS = ("10.3.0", "10.13.0.35", "11.0.0.114", "11.4.0.106")
"""10.3: JetPack 6; 10.13: JetPack 7 and desktop; 11.0 and 11.4: the strongly typed generation."""

CUDA_PACKAGES = {
    # the pre-12.6 layout (cuda.cudart only); raises RuntimeError without a driver
    "cuda-python-12.4.0": ["cuda-python==12.4.0"],
    # the current layout (cuda.bindings.runtime only)
    "cuda-bindings-13.0.3": ["cuda-bindings==13.0.3", "cuda-pathfinder==1.9.1"],
}

STUB_SOURCE = """
void *createInferBuilder_INTERNAL(void *logger, int version) { return 0; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return 0; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return 0; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return 0; }
void *getBuilderPluginRegistry(int capability) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
void *getPluginRegistry(void) { return 0; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
"""
STUB_LIBRARIES = ("nvinfer", "nvonnxparser", "nvinfer_plugin")


class Unavailable(Exception):
    """The real modules cannot be had here (no network or no compiler): skip with this reason."""


def cache_root() -> Path:
    base = os.environ.get("SREDGE_TEST_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "sredge-tests"
    return Path(base) / "trt-conformance"


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip(args: list[str], what: str) -> None:
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"downloading {what} timed out (no network to PyPI?)") from None
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if "No matching distribution" in text or "Could not find a version" in text:
            raise RuntimeError(f"PyPI has no {what} for this Python: {text.strip().splitlines()[-1]}")
        raise Unavailable(f"could not download {what} (no network to PyPI?): {text.strip().splitlines()[-1]}")


def bindings_dir(version: str) -> Path:
    """A folder holding the real ``tensorrt_bindings`` package of TensorRT ``version``."""
    root = cache_root()
    target = root / "bindings" / version
    with _locked(root):
        if (target / "tensorrt_bindings" / "__init__.py").is_file():
            return target
        dl = root / "wheels"
        py = f"{sys.version_info.major}{sys.version_info.minor}"
        _pip(["download", "--no-deps", "--only-binary=:all:", "--python-version", py, "--dest", str(dl),
              f"tensorrt-cu12-bindings=={version}"], f"tensorrt-cu12-bindings {version}")
        wheels = sorted(dl.glob(f"tensorrt_cu12_bindings-{version}-cp{py}-*.whl"))
        if not wheels:
            raise RuntimeError(f"no tensorrt-cu12-bindings {version} wheel for cp{py} in {dl}")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target


def cuda_dir(name: str) -> Path:
    """A folder holding the real cuda-python runtime module ``name`` (a key of :data:`CUDA_PACKAGES`)."""
    root = cache_root()
    target = root / "cuda" / name
    with _locked(root):
        if (target / "cuda").is_dir() and (target / ".complete").is_file():
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        _pip(["install", "--no-deps", "--only-binary=:all:", "--python-version", py, "--target", str(tmp),
              *CUDA_PACKAGES[name]], name)
        (tmp / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target


def stub_libraries(major: int) -> Path:
    """A folder of ``lib{nvinfer,nvonnxparser,nvinfer_plugin}.so.<major>`` exporting TensorRT's factories."""
    root = cache_root()
    target = root / "stubs" / str(major)
    with _locked(root):
        if all((target / f"lib{n}.so.{major}").is_file() for n in STUB_LIBRARIES):
            return target
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise Unavailable("no C compiler (gcc) to build the TensorRT stub libraries")
        target.mkdir(parents=True, exist_ok=True)
        src = target / "stub.c"
        src.write_text(STUB_SOURCE)
        for name in STUB_LIBRARIES:
            lib = f"lib{name}.so.{major}"
            subprocess.run([gcc, "-shared", "-fPIC", "-o", str(target / lib), f"-Wl,-soname,{lib}", str(src)],
                           check=True, capture_output=True, timeout=120)
        return target


def environment(trt_version: str, cuda: str) -> dict[str, str]:
    """The environment of a process that imports the real TensorRT ``trt_version`` bindings and ``cuda``."""
    major = int(trt_version.split(".")[0])
    paths = [str(bindings_dir(trt_version)), str(cuda_dir(cuda)), str(Path(__file__).resolve().parents[2])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(stub_libraries(major))]
                                             + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    env.pop("SREDGE_DEBUG", None)
    return env
