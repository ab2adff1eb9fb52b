"""ONNX Runtime backend: CPU by default, CUDA when onnxruntime-gpu and a GPU are present."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sredge.errors import InputError, MissingDependencyError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.base import BackendOptions, InputSpec

log = logging.getLogger(__name__)

_CPU, _CUDA, _TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for a device request (pure).

    Args:
        device: ``"cpu"``; ``"cuda"``; ``"tensorrt"`` (ONNX Runtime's TensorRT provider, CUDA
            then CPU as fallbacks for unsupported nodes); ``"auto"`` (CUDA when this
            onnxruntime has it, else CPU).
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        MissingDependencyError: ``cuda`` asked for but this onnxruntime has no CUDA provider.
        InputError: Unknown device name.
    """
    if device == "cpu":
        return [_CPU]
    if device == "cuda":
        if _CUDA not in available:
            raise MissingDependencyError(
                'this onnxruntime has no CUDA execution provider: pip install "sredge[gpu]" '
                "(onnxruntime-gpu) on a machine with an NVIDIA GPU, or use --device cpu"
            )
        return [_CUDA, _CPU]
    if device == "tensorrt":
        if _TRT not in available:
            raise MissingDependencyError(
                'this onnxruntime has no TensorRT execution provider: pip install "sredge[gpu]" and TensorRT '
                "on a machine with an NVIDIA GPU, or use --device cuda / cpu"
            )
        return [_TRT, _CUDA, _CPU]
    if device == "auto":
        return [_CUDA, _CPU] if _CUDA in available else [_CPU]
    raise InputError(f"unknown device {device!r} for ONNX Runtime (cpu, cuda, tensorrt, auto)")


class OrtBackend:
    """Runs an ONNX file with ONNX Runtime. Input float32 (or float16 models, cast here)."""

    name = "ort"

    def __init__(self, model: str | Path, options: BackendOptions = BackendOptions()):
        self.path = Path(model)
        self.options = options
        self._sess = None

    def __enter__(self) -> OrtBackend:
        import onnxruntime as ort

        if not self.path.is_file():
            raise InputError(f"no such model file: {self.path}")
        providers = choose_providers(self.options.device, ort.get_available_providers())
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.options.threads > 0:
            so.intra_op_num_threads = self.options.threads
        so.log_severity_level = 3  # errors only: provider fallbacks are reported by us
        if self.options.fp16:
            raise InputError("--fp16 is not an ONNX Runtime option: export an FP16 ONNX instead")
        if self.options.precision not in (None, "fp32"):
            raise InputError(f"--precision {self.options.precision}: ONNX Runtime runs the ONNX as it is typed; "
                             "drop --precision (or use --backend openvino for bf16/int8 on the CPU)")
        try:
            self._sess = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf
            raise InputError(f"{self.path} is not a model ONNX Runtime can load ({_first(exc)})") from exc
        used = self._sess.get_providers()
        wanted = {"cuda": _CUDA, "tensorrt": _TRT}.get(self.options.device)
        if wanted and wanted not in used:
            raise InputError(f"ONNX Runtime could not start {wanted} (no GPU, or CUDA/cuDNN/TensorRT libraries missing)")
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise InputError(f"{self.path} has {len(inputs)} inputs; an SR model has exactly one image input")
        self._in = inputs[0]
        shape = self._in.shape
        if len(shape) != 4:
            raise InputError(f"{self.path} input {self._in.name} has shape {shape}; expected (N, C, H, W)")
        self._in_dtype = np.float16 if self._in.type == "tensor(float16)" else np.float32
        return self

    def __exit__(self, *exc: object) -> None:
        self._sess = None

    def _session(self):
        if self._sess is None:
            raise RuntimeError("OrtBackend used outside its 'with' block")
        return self._sess

    def input_spec(self) -> InputSpec:
        n, c, h, w = (d if isinstance(d, int) and d > 0 else None for d in self._in.shape)
        if c is None:
            raise InputError(f"{self.path}: the channel axis of the input must be fixed")
        return InputSpec(channels=c, height=h, width=w, max_batch=n)

    def descriptor(self) -> ModelDescriptor | None:
        meta = self._session().get_modelmeta().custom_metadata_map
        try:
            return ModelDescriptor.from_metadata(dict(meta))
        except ValueError as exc:
            raise InputError(f"{self.path}: {exc}") from exc

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self._session().run(None, {self._in.name: np.ascontiguousarray(x, dtype=self._in_dtype)})[0]
        return out.astype(np.float32, copy=False)

    def describe(self) -> str:
        import onnxruntime as ort

        threads = self.options.threads or "default"
        return f"onnxruntime {ort.__version__} {self._session().get_providers()[0]}, threads {threads}"


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]
