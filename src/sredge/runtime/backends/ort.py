"""ONNX Runtime backend: CPU by default, CUDA when onnxruntime-gpu and a GPU are present."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from sredge.errors import InputError, MissingDependencyError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.base import FP16_ON_CPU, BackendOptions, InputSpec, check_batch, warn_fp16_on_cpu

log = logging.getLogger(__name__)

_CPU, _CUDA, _TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
_FLOAT_TYPES = ("tensor(float)", "tensor(float16)")
REWRITE_MAX_BYTES = 256 << 20
"""Larger ONNX files are run as stored (parsing them once more to rewrite them would cost more than it saves)."""


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

    def __init__(self, model: str | Path, options: BackendOptions = BackendOptions(), rewrites: bool = True):
        """Args:
            model: The ONNX file.
            options: How to run it.
            rewrites: Run a CPU session with :mod:`sredge.runtime.ort_rewrites` (PReLU as depthwise
                convolutions where that is faster); False runs the graph as stored (for comparisons).
        """
        self.path = Path(model)
        self.options = options
        self.rewrites = rewrites
        self.rewritten = 0
        """PReLU nodes the session runs rewritten (set on entering)."""
        self.fp16_on_cpu = False
        """An FP16 file on the CPU provider, which computes it in float32 (set on entering)."""
        self._sess = None
        self._fixed_batch: int | None = None

    def __enter__(self) -> OrtBackend:
        import onnxruntime as ort

        if not self.path.is_file():
            raise InputError(f"no such model file: {self.path}")
        providers = choose_providers(self.options.device, ort.get_available_providers())
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.options.threads > 0:
            so.intra_op_num_threads = self.options.threads
        # On the CPU a load error comes back as the exception sredge reports: ONNX Runtime's logger says nothing
        # more. A GPU provider that fails to start says why (a missing CUDA or cuDNN library) only in its log.
        so.log_severity_level = 4 if providers == [_CPU] else 3
        if self.options.fp16:
            raise InputError("--fp16 is not an ONNX Runtime option: export an FP16 ONNX instead")
        if self.options.precision not in (None, "fp32"):
            raise InputError(f"--precision {self.options.precision}: ONNX Runtime runs the ONNX as it is typed; "
                             "drop --precision (or use --backend openvino for bf16/int8 on the CPU)")
        typed = _typed_precision(self.path) if self.options.precision == "fp32" else None  # parsed once, if at all
        if typed not in (None, "fp32"):
            raise InputError(f"--precision fp32: this ONNX is {typed} and ONNX Runtime runs it as typed; drop "
                             "--precision, or give the FP32 file")
        source = self._rewritten() if self.rewrites and providers == [_CPU] else None
        if source is not None:
            try:
                self._sess = ort.InferenceSession(source, so, providers=providers)
            except Exception as exc:  # never worse than the file as stored: run that
                log.debug("%s: the rewritten graph did not load (%s); running it as stored", self.path, error_line(exc))
                self.rewritten = 0
        try:
            if self._sess is None:
                self._sess = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf
            _check_external_data(self.path)  # a missing or cut-short weights file, said plainly
            raise InputError(f"{self.path} is not a model ONNX Runtime can load ({error_line(exc)})") from exc
        used = self._sess.get_providers()
        wanted = {"cuda": _CUDA, "tensorrt": _TRT}.get(self.options.device)
        if wanted and wanted not in used:
            raise InputError(f"ONNX Runtime could not start {wanted} "
                             "(no GPU, or CUDA/cuDNN/TensorRT libraries missing)")
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise InputError(f"{self.path} has {len(inputs)} inputs; an SR model has exactly one image input")
        self._in = inputs[0]
        shape = self._in.shape
        if len(shape) != 4:
            raise InputError(f"{self.path} input {self._in.name} has shape {shape}; expected (N, C, H, W)")
        empty = [d for d in shape if isinstance(d, int) and d < 1]
        if empty:
            raise InputError(f"{self.path} input {self._in.name} has shape {shape}, with an empty axis; "
                             "an SR model's input axes are fixed sizes >= 1 or dynamic")
        for role, value in (("input", self._in), ("output", outputs[0])):
            if value.type not in _FLOAT_TYPES:
                raise InputError(f"{self.path}: its {role} {value.name} is {value.type}; sredge feeds and reads "
                                 "float32 or float16 images: export the model with a float input and output")
        self._in_dtype = np.float16 if self._in.type == "tensor(float16)" else np.float32
        n = shape[0]
        self._fixed_batch = n if isinstance(n, int) and n > 1 else None
        self.fp16_on_cpu = used == [_CPU] and (typed or _typed_precision(self.path)) == "fp16"
        if self.fp16_on_cpu:
            warn_fp16_on_cpu(self.path, "ONNX Runtime")
        return self

    def _rewritten(self) -> bytes | None:
        """The model rewritten by :func:`~sredge.runtime.ort_rewrites.prelu_as_depthwise`, serialized; None when
        nothing is rewritten (no PReLU to rewrite, a file over 256 MB, weights kept outside it, or anything that
        goes wrong reading it: ONNX Runtime then loads the file as it is, and says what is wrong with it)."""
        import onnx

        from sredge.runtime import ort_rewrites

        try:
            if self.path.stat().st_size > REWRITE_MAX_BYTES:
                return None
            data = self.path.read_bytes()
            if b"PRelu" not in data:  # most models: no second parse
                return None
            model = onnx.ModelProto.FromString(data)
            if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
                return None
            if ort_rewrites.needs_shapes(model):
                model = onnx.shape_inference.infer_shapes(model)
            count = ort_rewrites.prelu_as_depthwise(model)
            if not count:
                return None
            source = model.SerializeToString()
        except Exception as exc:  # never worse than the file as stored
            log.debug("%s: not rewritten (%s)", self.path, error_line(exc))
            return None
        self.rewritten = count
        return source

    def __exit__(self, *exc: object) -> None:
        self._sess = None

    def _session(self):
        if self._sess is None:
            raise RuntimeError("OrtBackend used outside its 'with' block")
        return self._sess

    def input_spec(self) -> InputSpec:
        """The input geometry. A fixed batch axis of N > 1 is the largest batch per call: :meth:`run` pads
        smaller batches to N (and splits larger ones), so tiles run one at a time still work; ``--batch N``
        fills every call."""
        self._session()
        n, c, h, w = (d if isinstance(d, int) and d > 0 else None for d in self._in.shape)
        if c is None:
            raise InputError(f"{self.path}: the channel axis of the input must be fixed")
        return InputSpec(channels=c, height=h, width=w, max_batch=n, batch_fixed=self._fixed_batch is not None)

    def descriptor(self) -> ModelDescriptor | None:
        meta = self._session().get_modelmeta().custom_metadata_map
        try:
            return ModelDescriptor.from_metadata(dict(meta))
        except ValueError as exc:
            raise InputError(f"{self.path}: {exc} (re-export it with sr-export)") from exc

    def run(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 in [0, value_range] -> the model's output as float32; a fixed batch axis is
        padded to (see :meth:`input_spec`).

        Raises:
            InputError: Not a (N, C, H, W) float batch with the model's C (see
                :func:`~sredge.runtime.backends.base.check_batch`); ONNX Runtime refused the input or failed
                running it (the model's own fault, or out of memory).
        """
        self._session()
        c = self._in.shape[1]
        x = check_batch(x, c if isinstance(c, int) and c > 0 else None, self.path)
        n = self._fixed_batch
        if n is None or x.shape[0] == n:
            return self._run(x)
        parts = []
        for i in range(0, x.shape[0], n):
            part = x[i:i + n]
            k = part.shape[0]
            if k < n:  # repeat the last item: zeros could trip a model's normalisation, copies cannot
                part = np.concatenate([part, np.repeat(part[-1:], n - k, axis=0)])
            parts.append(self._run(part)[:k])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _run(self, x: np.ndarray) -> np.ndarray:
        feed = {self._in.name: np.ascontiguousarray(x, dtype=self._in_dtype)}
        try:
            out = self._session().run(None, feed)[0]
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException
            if type(exc).__module__.split(".")[0] != "onnxruntime":
                raise
            why = error_line(exc)
            if "bad_alloc" in why or "allocate" in why.lower():
                raise InputError(f"{self.path} ran out of memory on a {'x'.join(map(str, x.shape))} input: "
                                 "use a smaller --tile (or --batch)") from None
            raise InputError(f"{self.path} failed on a {'x'.join(map(str, x.shape))} input ({why})") from None
        if not np.issubdtype(out.dtype, np.floating):
            raise InputError(f"{self.path}: its output is {out.dtype}; sredge reads float images")
        return out.astype(np.float32, copy=False)

    @property
    def graph(self) -> str:
        """Which graph the session runs: ``"as stored"`` or ``"N PReLUs rewritten as depthwise convolutions"``
        (for reports: a rewritten graph times differently from the file as stored)."""
        n = self.rewritten
        return f"{n} PReLU{'s' if n > 1 else ''} rewritten as depthwise convolutions" if n else "as stored"

    def describe(self) -> str:
        import onnxruntime as ort

        threads = self.options.threads or "default"
        return (f"onnxruntime {ort.__version__} {self._session().get_providers()[0]}, threads {threads}, "
                f"graph {self.graph}" + (f", {FP16_ON_CPU}" if self.fp16_on_cpu else ""))


_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
"""ONNX Runtime's status prefix (``[ONNXRuntimeError] : 1 : FAIL : ``): no help to a user, and the cause follows it."""


def error_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of ``exc`` without ONNX Runtime's status prefix, cut at a word after ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = _ORT_PREFIX.sub("", lines[0]) if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _check_external_data(path: Path) -> None:
    """Raise :class:`InputError` naming a missing or cut-short external-data file of ``path``; else nothing
    (also when the file is not ONNX at all: ONNX Runtime's own error says so)."""
    from sredge.models.onnx_file import external_data_files, load_onnx

    try:
        model = load_onnx(path)
    except InputError:
        return
    external_data_files(model, path)


def _typed_precision(path: Path) -> str:
    """``"fp32"``, ``"fp16"`` or ``"int8"`` (Q/DQ): what the file itself computes, from its nodes and types."""
    from sredge.models.onnx_file import load_onnx, onnx_facts

    return onnx_facts(load_onnx(path), sha256="").precision
