"""Inference backends behind one protocol (see :mod:`sredge.runtime.backends.base`).

Each backend lives in its own module and imports its library lazily, so choosing
``ort`` never imports torch, TensorRT or OpenVINO.
"""

from __future__ import annotations

from pathlib import Path

from sredge.runtime.backends.base import Backend, BackendOptions, InputSpec, model_kind

BACKENDS = ("ort", "trt", "torch", "openvino")

__all__ = ["BACKENDS", "Backend", "BackendOptions", "InputSpec", "model_kind", "open_backend"]


def open_backend(kind: str, model: str | Path, options: BackendOptions = BackendOptions(), **kwargs) -> Backend:
    """Construct (not yet activate) the backend ``kind`` for ``model``; use it as a context manager.

    Args:
        kind: ``"ort"``, ``"trt"``, ``"torch"`` or ``"openvino"``.
        model: Model file for that backend (.onnx, .engine/.plan, checkpoint; .onnx for openvino).
        options: Device, threads, precision.
        **kwargs: Backend-specific arguments (e.g. ``arch``/``scale``/``trust_pickle`` for torch, ``rewrites``
            for ort); one the backend does not take is a TypeError, never dropped.
    """
    if kind == "ort":
        from sredge.runtime.backends.ort import OrtBackend

        return OrtBackend(model, options, **kwargs)
    if kind == "trt":
        from sredge.runtime.backends.trt import TrtBackend

        return TrtBackend(model, options, **kwargs)
    if kind == "torch":
        from sredge.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(model, options, **kwargs)
    if kind == "openvino":
        from sredge.runtime.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(model, options, **kwargs)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
