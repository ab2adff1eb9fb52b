"""Lazy imports of heavy optional dependencies.

Every optional module (torch, tensorrt, cuda bindings, ...) is imported through
:func:`require`, so ``import sredge`` and ``--help`` work without them and a
missing extra fails with the pip command that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sredge.errors import MissingDependencyError

# module name -> (pip extra, what needs it)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("export", "loading and exporting PyTorch checkpoints"),
    "onnxscript": ("export", "exporting to ONNX"),
    "onnxslim": ("export", "simplifying exported ONNX"),
    "safetensors": ("export", "reading .safetensors checkpoints"),
    "tensorrt": ("trt", "the TensorRT backend"),
    "cuda": ("gpu", "CUDA device buffers"),
    "openvino": ("openvino", "the OpenVINO backend"),
}


def require(name: str) -> ModuleType:
    """Import an optional module or raise a one-line error naming its extra.

    Args:
        name: Dotted module name, e.g. ``"torch"`` or ``"safetensors.torch"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: The module (or its top-level package) is absent.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra, purpose = _EXTRAS.get(top, ("export", name))
        raise MissingDependencyError(
            f"{top} is not installed; it is needed for {purpose}: "
            f'pip install "sredge[{extra}]"'
        ) from exc
