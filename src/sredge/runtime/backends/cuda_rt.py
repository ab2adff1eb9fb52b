"""cuda-python's runtime API as sredge uses it: the module, error codes, device and pinned host buffers.

cuda-python has shipped its runtime bindings as ``cuda.bindings.runtime`` (12.6 and later, the only
path in 13) and as ``cuda.cudart`` (before 12.6); :func:`import_cuda_runtime` takes whichever imports.
Every call returns a tuple ``(cudaError_t, *values)`` that :func:`cuda_value` unpacks, except that
cuda-python before 12.6 raises ``RuntimeError("Failed to dlopen libcuda.so.1")`` on a machine without
a driver: the module is wrapped (:class:`CudaRuntime`) so that case is a :class:`CudaError` too.

The calls used here (``cudaGetDeviceCount``, ``cudaGetDevice``, ``cudaGetDeviceProperties``,
``cudaMalloc``/``cudaFree``, ``cudaMallocHost``/``cudaFreeHost``, ``cudaMemcpy``,
``cudaMemcpyAsync``, ``cudaStreamCreate``/``Synchronize``/``Destroy``/``WaitEvent``,
``cudaEventCreateWithFlags``/``Record``/``Synchronize``/``Destroy``) are checked for arity and
argument types against the real cuda-python 12.4 and 13.0 modules in ``tests/trt_conformance``,
with simulated behaviour, and ran on an NVIDIA H200 with cuda-python 13.3 (``tools/gpu_check.py``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.errors import MissingDependencyError, SredgeError

TRT_INSTALL_HINT = 'pip install "sredge[trt]"'

# Newest first: cuda-python >= 12.6 exposes cuda.bindings.runtime; 13 removed cuda.cudart.
CUDA_RUNTIME_MODULES = ("cuda.bindings.runtime", "cuda.cudart")

BUFFER_GRANULARITY = 1 << 20
"""Buffers grow in whole MiB so that slightly larger edge tiles do not each reallocate."""


class CudaError(SredgeError):
    """A CUDA runtime call failed (no device or driver, out of memory, a failed kernel)."""


class CudaRuntime:
    """A cuda-python runtime module whose functions raise :class:`CudaError` instead of RuntimeError.

    Attributes other than functions (enums such as ``cudaMemcpyKind``, struct types) pass through.
    """

    def __init__(self, module: ModuleType):
        self.module = module
        """The wrapped cuda-python module."""

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.module, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except RuntimeError as exc:  # cuda-python < 12.6 without a driver: "Failed to dlopen libcuda.so.1"
                raise CudaError(f"{name}: {exc}: no usable NVIDIA GPU/driver is visible to this process") from exc

        call.__name__ = name
        return call


def import_cuda_runtime(importer: Callable[[str], ModuleType] = require) -> CudaRuntime:
    """The cuda-python runtime bindings, trying each module path this install may have.

    Args:
        importer: Imports a module by name, raising ImportError or MissingDependencyError.

    Raises:
        MissingDependencyError: cuda-python is not installed (names the ``trt`` extra).
    """
    for name in CUDA_RUNTIME_MODULES:
        try:
            return CudaRuntime(importer(name))
        except (ImportError, MissingDependencyError):
            continue
    raise MissingDependencyError(
        f"cuda-python is not installed; the TensorRT backend needs it for device buffers: {TRT_INSTALL_HINT}"
    )


def cuda_value(result: Any, what: str) -> Any:
    """Unpack a cuda-python call's ``(error, *values)`` tuple, raising on a non-success code.

    Returns:
        None for calls that return only the error, the single value, or a tuple of values.

    Raises:
        CudaError: The error code is not ``cudaSuccess`` (0); the message names the call.
    """
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    code = int(err)
    if code != 0:
        name = getattr(err, "name", None) or f"error {code}"
        hint = ""
        if "MemoryAllocation" in name:
            hint = ": out of GPU memory, use a smaller --tile or --batch"
        elif "InsufficientDriver" in name:
            hint = insufficient_driver_hint()
        elif "NoDevice" in name:
            hint = ": no usable NVIDIA GPU/driver is visible to this process"
        raise CudaError(f"CUDA {what} failed with {name} ({code}){hint}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def insufficient_driver_hint(version: str | None = None) -> str:
    """The end of the message for ``cudaErrorInsufficientDriver``, which CUDA returns both without any NVIDIA
    driver and with one older than the CUDA the installed cuda-python binds (cuda-python 13 needs driver 580
    or newer; JetPack 6's is 540).

    Args:
        version: cuda-python's version (None: read from the install).
    """
    if version is None:
        from importlib import metadata

        for dist in ("cuda-python", "cuda-bindings"):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    major = (version or "").split(".")[0]
    which = f"cuda-python {version} (CUDA {major})" if major.isdigit() else "this cuda-python"
    fix = f'pip install "cuda-python<{major}"' if major.isdigit() else "install the cuda-python of its CUDA"
    return (f": no usable NVIDIA GPU/driver is visible to this process, or the driver is older than {which} "
            f"needs; for an older driver, {fix} (nvidia-smi shows the driver's CUDA)")


@dataclass(frozen=True)
class GpuInfo:
    """The current CUDA device."""

    name: str
    """Device name, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"Orin"``."""
    compute_capability: str
    """``"major.minor"``."""
    multiprocessors: int = 0
    """Streaming multiprocessors (``multiProcessorCount``): Jetson Orin modules share the name "Orin" and
    capability 8.7 but differ here; 0 when the CUDA bindings do not say."""


def current_gpu(cudart: Any, needed_by: str) -> GpuInfo:
    """Name and compute capability of the current CUDA device.

    Args:
        cudart: From :func:`import_cuda_runtime`.
        needed_by: What needs the GPU, for the message when there is none.

    Raises:
        CudaError: No device or driver, or a failed CUDA call.
    """
    if not cuda_value(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount"):
        raise CudaError(f"no CUDA device is visible; {needed_by}")
    device = cuda_value(cudart.cudaGetDevice(), "cudaGetDevice")
    props = cuda_value(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    raw = getattr(props, "name", b"")
    name = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip("\x00 ") or "GPU"
    return GpuInfo(name=name, compute_capability=f"{int(props.major)}.{int(props.minor)}",
                   multiprocessors=int(getattr(props, "multiProcessorCount", 0) or 0))


def grown_capacity(current: int, needed: int, granularity: int = BUFFER_GRANULARITY) -> int:
    """Growth policy of a reused buffer: its new size in bytes (pure).

    A buffer keeps its size while requests fit (no reallocation per frame or per
    smaller edge tile); otherwise it grows to ``needed`` rounded up to ``granularity``.
    It never shrinks: the largest shape seen so far stays allocated.
    """
    if needed < 0 or current < 0 or granularity <= 0:
        raise ValueError(f"invalid buffer sizes: current={current}, needed={needed}, granularity={granularity}")
    if needed <= current:
        return current
    return -(-needed // granularity) * granularity


class _GrowingBuffer:
    """A CUDA allocation that grows by :func:`grown_capacity` and is reused otherwise."""

    _alloc_call = ""
    _free_call = ""

    def __init__(self, cudart: Any, what: str):
        self._cudart = cudart
        self._what = what
        self.ptr = 0
        self.capacity = 0
        self.allocations = 0
        """How many times memory was (re)allocated; tests check that frames reuse it."""

    def ensure(self, needed: int) -> None:
        """Make room for ``needed`` bytes; the address (and the contents) change only when it grows."""
        size = grown_capacity(self.capacity, max(needed, 1))
        if size == self.capacity and self.ptr:
            return
        self.free()
        alloc = getattr(self._cudart, self._alloc_call)
        self.ptr = int(cuda_value(alloc(size), f"{self._alloc_call}({size} bytes for the {self._what})"))
        self.capacity = size
        self.allocations += 1

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.capacity = self.ptr, 0, 0
            cuda_value(getattr(self._cudart, self._free_call)(ptr), f"{self._free_call}({self._what})")


class DeviceBuffer(_GrowingBuffer):
    """Device memory (``cudaMalloc``)."""

    _alloc_call, _free_call = "cudaMalloc", "cudaFree"


class PinnedBuffer(_GrowingBuffer):
    """Page-locked host memory (``cudaMallocHost``) seen as numpy arrays.

    Asynchronous copies overlap kernels only from and to page-locked memory: from pageable memory
    ``cudaMemcpyAsync`` stages through a driver buffer and, device to host, does not return before
    the copy is done.
    """

    _alloc_call, _free_call = "cudaMallocHost", "cudaFreeHost"

    def view(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` over the start of the buffer (no copy)."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n > self.capacity:
            raise ValueError(f"{self._what}: {n} bytes do not fit in {self.capacity}")
        raw = (ctypes.c_uint8 * max(n, 1)).from_address(self.ptr)
        return np.frombuffer(raw, dtype=np.uint8, count=n).view(dtype).reshape(shape)
