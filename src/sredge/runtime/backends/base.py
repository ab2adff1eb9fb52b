"""The one protocol every inference backend implements (ONNX Runtime, TensorRT, PyTorch, OpenVINO).

A backend is built cheaply from a model path and options; it acquires its session,
engine or device buffers on ``__enter__`` (Polygraphy style) and releases them on
``__exit__``. In between, ``run`` maps a float32 NCHW batch to the network's output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """The input geometry a loaded model accepts."""

    channels: int
    """C of the (N, C, H, W) input."""
    height: int | None
    """Fixed input height, or None when the height axis is dynamic."""
    width: int | None
    """Fixed input width, or None when dynamic."""
    max_batch: int | None = None
    """Largest batch the model accepts (a fixed batch axis or an engine profile); None: any."""
    batch_fixed: bool = False
    """The batch axis is fixed at ``max_batch``: every call runs that many (the backend pads smaller batches)."""
    min_hw: tuple[int, int] | None = None
    """Smallest (height, width) an engine profile accepts; None: no lower bound beyond 1."""
    max_hw: tuple[int, int] | None = None
    """Largest (height, width) an engine profile accepts; None: unbounded."""

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """(height, width) when both axes are fixed, else None."""
        return (self.height, self.width) if self.height and self.width else None


@dataclass(frozen=True)
class BackendOptions:
    """How to run a model; every field is honoured or refused, never silently changed."""

    device: str = "auto"
    """``"cpu"``, ``"cuda"``, ``"tensorrt"`` (ONNX Runtime's TensorRT provider) or ``"auto"``
    (CUDA when available and installed, else CPU)."""
    threads: int = 0
    """Intra-op threads for CPU execution; 0 lets the library pick (all physical cores)."""
    fp16: bool = False
    """Run in float16 where the backend computes it natively (PyTorch on CUDA)."""
    precision: str | None = None
    """``"fp32"``, ``"bf16"`` or ``"int8"`` (``--precision``); None: the model's own precision. Backends that
    cannot compute the requested precision refuse it (OpenVINO honours all three; ONNX Runtime and PyTorch
    run fp32 only; a TensorRT engine's precision is fixed when it is built)."""


@runtime_checkable
class Backend(Protocol):
    """An activated model that upscales batches.

    ``run`` takes (N, C, H, W) float32 in [0, value_range] (C-contiguous) and returns
    (N, C_out, H * scale, W * scale) float32 (pre-upsampling networks: same H, W).
    """

    name: str
    """Registry name: ``"ort"``, ``"trt"``, ``"torch"`` or ``"openvino"``."""

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def input_spec(self) -> InputSpec: ...

    def descriptor(self) -> ModelDescriptor | None:
        """What the model file says about itself (sredge metadata), or None for a foreign model."""
        ...

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        """One line for logs and reports: library version, device/provider, precision."""
        ...


def check_batch(x: np.ndarray, channels: int | None, model: str | Path) -> np.ndarray:
    """``x`` as an array when it is what :meth:`Backend.run` takes: (N, C, H, W) floats with the model's ``C``.

    Checks only the type and shape (no pass over the values: this runs on every tile). An integer batch is
    refused rather than cast: 8-bit pixels (0..255) would run as values 255 times the model's range and come
    back as garbage, with no error.

    Args:
        x: The batch a caller gave ``run``.
        channels: The model's input channels; None: not checked.
        model: The model file, as the message names it.

    Raises:
        InputError: Not 4-D, another channel count, or not floating point; the message says what to pass.
    """
    x = np.asarray(x)
    name = Path(model).name
    want = f"(N, {channels if channels is not None else 'C'}, H, W)"
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        hint = " (channels last? transpose to N, C, H, W)" if x.ndim == 4 and x.shape[-1] == channels else ""
        raise InputError(f"{name} takes {want} batches, not an array of shape {x.shape}{hint}")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"{name} takes a float32 batch in the model's value range, not {x.dtype} samples: "
                         "prepare images with sredge.imaging.model_io.image_to_input (8-bit images / 255)")
    return x


FP16_ON_CPU = "float16 file, computed in float32 here"
"""What ``describe()`` adds for an FP16 ONNX run on the CPU (see :func:`warn_fp16_on_cpu`)."""


def warn_fp16_on_cpu(model: str | Path, library: str) -> None:
    """Say once per open that an FP16 ONNX runs on a CPU that computes it in float32.

    ONNX Runtime's CPU provider casts float16 to float32 around most of its kernels, and OpenVINO (hint
    ``f32``) computes it in float32: the file runs slower than its FP32 file, and its output is not the float16
    arithmetic of a GPU, whose drop ``sr-export`` recorded. Nothing refuses it, so the run is not silent about it.

    Args:
        model: The ONNX file.
        library: The backend's name for the message (``"ONNX Runtime"``, ``"OpenVINO"``).
    """
    log.warning("%s is an FP16 file: %s runs it on the CPU in float32 arithmetic, slower than the FP32 file; use that "
                "one on the CPU and this one on a GPU", Path(model).name, library)


def model_kind(path: str | Path) -> str:
    """Which backend a model file belongs to, by suffix: ``ort``, ``trt`` or ``torch``.

    Raises:
        ValueError: Unknown suffix (the caller turns it into a user-facing error).
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return "ort"
    if suffix in (".engine", ".plan", ".trt"):
        return "trt"
    if suffix in (".pth", ".pt", ".ckpt", ".safetensors"):
        return "torch"
    raise ValueError(f"unknown model file type {suffix!r} (expected .onnx, .engine/.plan, or a .pth checkpoint)")


def companion_files(path: str | Path) -> list[Path]:
    """The files a model is read with besides itself, which no output may replace: an ONNX's external-data
    files, a TensorRT engine's ``.json`` sidecar. None for another file, or one that cannot be read (loading
    it says why)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from sredge.models.onnx_file import external_data_ends, load_onnx

        try:
            return sorted(f for f in external_data_ends(load_onnx(path), path) if f.exists())
        except InputError:
            return []
    if suffix in (".engine", ".plan", ".trt"):
        from sredge.runtime.backends.trt import sidecar_path

        return [p for p in (sidecar_path(path),) if p.exists()]
    return []
