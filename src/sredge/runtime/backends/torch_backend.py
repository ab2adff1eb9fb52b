"""PyTorch reference backend: runs a checkpoint directly, for golden outputs and parity checks.

torch is imported on ``__enter__`` (``pip install "sredge[export]"``), so importing this
module costs nothing on a core install.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from sredge.models.loader import load_model
from sredge.runtime.backends.base import BackendOptions, InputSpec, check_batch

log = logging.getLogger(__name__)


def plan_device(device: str, fp16: bool, cuda_available: bool) -> tuple[str, str]:
    """Where and in which precision to run (pure).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when ``cuda_available``).
        fp16: Run in float16; only on CUDA.
        cuda_available: ``torch.cuda.is_available()``.

    Returns:
        (torch device, dtype name): ``("cpu" | "cuda", "float32" | "float16")``.

    Raises:
        InputError: Unknown device, CUDA asked for but absent, or fp16 on the CPU.
    """
    if device not in ("cpu", "cuda", "auto"):
        raise InputError(f"unknown device {device!r} for PyTorch (cpu, cuda, auto)")
    if device == "cuda" and not cuda_available:
        raise InputError("--device cuda, but PyTorch sees no CUDA device (no GPU, or a CPU-only torch build)")
    resolved = "cuda" if device == "cuda" or (device == "auto" and cuda_available) else "cpu"
    if fp16 and resolved == "cpu":
        why = "no CUDA device is available" if device == "auto" else "--device cpu was asked for"
        raise InputError(f"--fp16 needs CUDA, but {why}: drop --fp16 to run float32 on the CPU")
    return resolved, "float16" if fp16 else "float32"


class TorchBackend:
    """Runs a PyTorch checkpoint (anything :func:`sredge.models.loader.load_model` reads).

    Args:
        model: Checkpoint path (.pth/.pt/.ckpt/.safetensors).
        options: Device, CPU threads, float16 (CUDA only).
        arch: Architecture name when detection from the keys is ambiguous.
        scale: Scale when the weights do not determine it.
        trust_pickle: Allow checkpoints that unpickle code.
        key_map: Rename rules applied to the checkpoint's keys before detection (``--key-map``).
    """

    name = "torch"

    def __init__(
        self,
        model: str | Path,
        options: BackendOptions = BackendOptions(),
        arch: str | None = None,
        scale: int | None = None,
        trust_pickle: bool = False,
        key_map: Any = None,
    ):
        self.path = Path(model)
        self.options = options
        self._load_args = {"arch": arch, "scale": scale, "trust_pickle": trust_pickle, "key_map": key_map}
        self._module: Any = None

    def __enter__(self) -> TorchBackend:
        if self.options.precision not in (None, "fp32"):
            raise InputError(f"--precision {self.options.precision}: the PyTorch reference runs float32 "
                             "(or --fp16 on CUDA); drop --precision")
        torch = require("torch")
        device, dtype_name = plan_device(self.options.device, self.options.fp16, torch.cuda.is_available())
        loaded = load_model(self.path, **self._load_args)
        if self.options.fp16 and not loaded.descriptor.fp16_safe:
            log.warning("%s is not known to be fp16-safe; float16 outputs may overflow", loaded.descriptor.arch)
        self._torch = torch
        self._device = torch.device(device)
        self._dtype = getattr(torch, dtype_name)
        self._descriptor = loaded.descriptor
        # set_num_threads is process-wide: remember the previous value and restore it on exit.
        self._prev_threads = torch.get_num_threads()
        if self.options.threads > 0:
            torch.set_num_threads(self.options.threads)
        self._module = loaded.module.to(device=self._device, dtype=self._dtype).eval()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._module is None:
            return
        self._module = None
        if self.options.threads > 0:
            self._torch.set_num_threads(self._prev_threads)
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()

    def _active(self) -> Any:
        if self._module is None:
            raise RuntimeError("TorchBackend used outside its 'with' block")
        return self._module

    def input_spec(self) -> InputSpec:
        self._active()
        return InputSpec(channels=self._descriptor.in_channels, height=None, width=None)

    def descriptor(self) -> ModelDescriptor:
        self._active()
        return self._descriptor

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the network.

        Args:
            x: (N, C, H, W) float32 in [0, value_range].

        Returns:
            (N, C_out, H_out, W_out) float32.

        Raises:
            InputError: Wrong rank, channel count or sample type (see
                :func:`~sredge.runtime.backends.base.check_batch`), or out of GPU memory.
        """
        module, torch = self._active(), self._torch
        x = check_batch(x, self._descriptor.in_channels, self.path)
        # A private copy: the caller's array may be read-only, and a network that works in place
        # on its input must not change the caller's frame.
        t = torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))
        try:
            with torch.inference_mode():
                y = module(t.to(device=self._device, dtype=self._dtype))
                out = y.to(device="cpu", dtype=torch.float32).numpy()
        except torch.cuda.OutOfMemoryError as exc:
            raise InputError(f"out of GPU memory on a {tuple(x.shape)} batch: use a smaller --tile or --batch") from exc
        return out

    def describe(self) -> str:
        self._active()
        torch = self._torch
        precision = str(self._dtype).removeprefix("torch.")
        if self._device.type == "cuda":
            return f"torch {torch.__version__} cuda ({torch.cuda.get_device_name(self._device)}) {precision}"
        threads = torch.get_num_threads()
        return f"torch {torch.__version__} cpu {precision}, {threads} thread{'s' if threads != 1 else ''}"
