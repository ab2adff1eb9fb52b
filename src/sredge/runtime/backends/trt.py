"""Native TensorRT backend for serialized engines (``.engine`` / ``.plan``).

Runs on the name-based I/O tensor API that TensorRT 10 (JetPack 6) and TensorRT 11
share: ``num_io_tensors`` / ``get_tensor_*`` on the engine, ``set_input_shape``,
``set_tensor_address`` and ``execute_async_v3`` on the execution context. Page-locked
host memory, device memory, streams and events come from cuda-python's runtime bindings
(:mod:`sredge.runtime.backends.cuda_rt`).

Every decision is a pure function (:func:`plan_io`, :func:`spec_from_profile`,
:func:`check_shape_in_profile`, :func:`nbytes`, :func:`grown_capacity`,
:func:`numpy_dtype`, :func:`missing_trt_api`, :func:`cuda_value`,
:func:`check_engine_matches`, ...) tested without
TensorRT; :class:`TrtBackend` only applies them to a live engine.

An engine carries no sredge metadata of its own, so ``sr-build`` writes a sidecar
``<engine path>.json`` (:func:`write_engine_sidecar`) holding the
:class:`~sredge.models.descriptor.ModelDescriptor` keys plus what built the engine.
An engine whose sidecar records another TensorRT version, GPU or compute capability is
refused with a message to rebuild it (:func:`check_engine_matches`), never run.

**Never run on real TensorRT.** ``tests/trt_conformance`` drives ``__enter__``,
``run``, ``run_many`` and ``__exit__`` through the real Python bindings of TensorRT 10.3,
10.13, 11.0 and 11.4 and the real cuda-python 12.4 and 13.0 modules: every attribute, property
write, enum member and call signature is checked against them, and a simulated device (stream
ordering, events, pinned and pageable copies) checks the data and the ordering. That proves the
code matches those APIs, not how a real engine behaves. On an NVIDIA H200 the class ran with real
cuda-python 13.3 and a stand-in engine that runs the network in PyTorch (``tools/gpu_check.py``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.atomic import write_bytes_atomic
from sredge.errors import InputError, MissingDependencyError
from sredge.models.descriptor import METADATA_PREFIX, ModelDescriptor
from sredge.runtime.backends.base import BackendOptions, InputSpec, check_batch
from sredge.runtime.backends.cuda_rt import (  # noqa: F401  (re-exported: the TensorRT API of this module)
    BUFFER_GRANULARITY,
    CUDA_RUNTIME_MODULES,
    TRT_INSTALL_HINT,
    CudaError,
    DeviceBuffer,
    PinnedBuffer,
    cuda_value,
    current_gpu,
    grown_capacity,
    import_cuda_runtime,
)

log = logging.getLogger(__name__)

# TensorRT DataType names -> numpy. BF16, FP8, INT4 and FP4 have no numpy type.
TRT_TO_NUMPY: dict[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "UINT8": np.dtype(np.uint8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
}
IMAGE_DTYPES = ("FLOAT", "HALF")
"""I/O types an image network may have: float32, or float16 for engines built from an FP16-IO ONNX."""

ENGINE_API = (
    "num_io_tensors",
    "get_tensor_name",
    "get_tensor_mode",
    "get_tensor_shape",
    "get_tensor_dtype",
    "get_tensor_format",
    "get_tensor_profile_shape",
    "create_execution_context",
)
CONTEXT_API = ("set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3")

# --------------------------------------------------------------------------- pure planning


@dataclass(frozen=True)
class TensorInfo:
    """One I/O tensor of an engine, as TensorRT reports it."""

    name: str
    is_input: bool
    shape: tuple[int, ...]
    """Engine shape; -1 marks a dynamic axis."""
    dtype: str
    """TensorRT DataType name: ``"FLOAT"``, ``"HALF"``, ..."""
    layout: str = "LINEAR"
    """TensorRT TensorFormat name: ``"LINEAR"`` is dense NCHW; others (``"CHW4"``, ``"HWC8"`` ...) are
    vectorized layouts an engine built with ``allowed_formats`` may have at its I/O."""


@dataclass(frozen=True)
class IoPlan:
    """The image input and output of an engine, with their host dtypes."""

    input: TensorInfo
    output: TensorInfo

    @property
    def input_dtype(self) -> np.dtype:
        """numpy dtype the input is copied to the device in."""
        return numpy_dtype(self.input.dtype)

    @property
    def output_dtype(self) -> np.dtype:
        """numpy dtype the output arrives in (converted to float32 after the copy)."""
        return numpy_dtype(self.output.dtype)


def dtype_name(dtype: Any) -> str:
    """The name of a TensorRT DataType (``trt.DataType.HALF`` -> ``"HALF"``) or other enum member
    (``trt.TensorFormat.LINEAR`` -> ``"LINEAR"``); strings pass through."""
    if isinstance(dtype, str):
        return dtype.rsplit(".", 1)[-1].upper()
    name = getattr(dtype, "name", None)
    if isinstance(name, str) and name:
        return name.upper()
    return str(dtype).rsplit(".", 1)[-1].upper()


def numpy_dtype(dtype: Any) -> np.dtype:
    """numpy dtype of a TensorRT DataType (or its name).

    Raises:
        InputError: A type numpy cannot hold (BF16, FP8, INT4, FP4).
    """
    name = dtype_name(dtype)
    try:
        return TRT_TO_NUMPY[name]
    except KeyError:
        raise InputError(
            f"engine tensor type {name} has no numpy equivalent; build the engine with float32 or float16 I/O"
        ) from None


def plan_io(tensors: Sequence[TensorInfo]) -> IoPlan:
    """Pick the image input and output of an engine.

    Args:
        tensors: Every I/O tensor of the engine, in engine order.

    Raises:
        InputError: Not exactly one input and one output, not 4-D, or not float32/float16.
    """
    inputs = [t for t in tensors if t.is_input]
    outputs = [t for t in tensors if not t.is_input]
    if len(inputs) != 1 or len(outputs) != 1:
        def names(ts: list[TensorInfo]) -> str:
            return ", ".join(t.name for t in ts) or "none"

        raise InputError(
            f"the engine has {len(inputs)} input(s) ({names(inputs)}) and {len(outputs)} output(s) "
            f"({names(outputs)}); an SR engine has exactly one image input and one image output"
        )
    for role, t in (("input", inputs[0]), ("output", outputs[0])):
        if len(t.shape) != 4:
            raise InputError(f"engine {role} {t.name!r} has shape {t.shape}; expected (N, C, H, W)")
        if t.layout != "LINEAR":
            raise InputError(f"engine {role} {t.name!r} has the {t.layout} layout; sredge copies dense NCHW "
                             "(LINEAR) tensors: build the engine without I/O format restrictions (sr-build)")
        if dtype_name(t.dtype) not in IMAGE_DTYPES:
            raise InputError(
                f"engine {role} {t.name!r} is {dtype_name(t.dtype)}; sredge runs engines with float32 or "
                "float16 I/O (rebuild from the float ONNX)"
            )
    if inputs[0].shape[1] <= 0:
        raise InputError(f"engine input {inputs[0].name!r} has a dynamic channel axis; it must be fixed (1 or 3)")
    return IoPlan(inputs[0], outputs[0])


def profile_bounds(
    shape: Sequence[int], profile: Sequence[Sequence[int]] | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(min, max) input shape the engine accepts.

    Args:
        shape: Engine input shape (-1 for dynamic axes).
        profile: ``get_tensor_profile_shape(name, 0)``: (min, opt, max); None for a static engine.

    Raises:
        InputError: A dynamic engine without a usable profile.
    """
    shape = tuple(int(d) for d in shape)
    if all(d > 0 for d in shape):
        return shape, shape
    if profile is None or len(profile) != 3:
        raise InputError(f"the engine input has dynamic shape {shape} but no optimization profile 0")
    lo, hi = (tuple(int(d) for d in profile[0]), tuple(int(d) for d in profile[2]))
    if len(lo) != len(shape) or len(hi) != len(shape):
        raise InputError(f"the engine profile {lo}..{hi} does not match its input rank {shape}")
    return lo, hi


def spec_from_profile(shape: Sequence[int], profile_min: Sequence[int], profile_max: Sequence[int]) -> InputSpec:
    """InputSpec of an engine input from its shape and optimization profile 0.

    Args:
        shape: Engine input shape (N, C, H, W), -1 on dynamic axes.
        profile_min: Smallest shape profile 0 accepts (equal to ``shape`` on fixed axes).
        profile_max: Largest shape profile 0 accepts.
    """
    n, c, h, w = (int(d) for d in shape)
    max_batch = n if n > 0 else int(profile_max[0])
    lo_h, lo_w, hi_h, hi_w = int(profile_min[2]), int(profile_min[3]), int(profile_max[2]), int(profile_max[3])
    return InputSpec(
        channels=c if c > 0 else int(profile_max[1]),
        # a profile of one shape (min = max: DLA engines, --min-tile = --max-tile) takes only that shape
        height=h if h > 0 else (lo_h if lo_h == hi_h else None),
        width=w if w > 0 else (lo_w if lo_w == hi_w else None),
        max_batch=max_batch,
        batch_fixed=int(profile_min[0]) == max_batch,  # smaller batches are filled (TrtBackend._submit)
        min_hw=(lo_h, lo_w),
        max_hw=(hi_h, hi_w),
    )


def check_shape_in_profile(shape: Sequence[int], profile_min: Sequence[int], profile_max: Sequence[int]) -> None:
    """Refuse an input the engine cannot take, naming the range it can and how to widen it.

    Args:
        shape: The (N, C, H, W) batch about to run.
        profile_min: Smallest shape the engine accepts.
        profile_max: Largest shape the engine accepts.

    Raises:
        InputError: Wrong rank or channels, or a batch or tile size outside the profile.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4:
        raise InputError(f"input has shape {shape}; the engine takes (N, C, H, W)")
    n, c, h, w = shape
    (n0, c0, h0, w0), (n1, c1, h1, w1) = profile_min, profile_max
    if not c0 <= c <= c1:
        raise InputError(f"input has {c} channels; the engine takes {c1}")
    if not n0 <= n <= n1:
        raise InputError(
            f"batch {n} is outside the engine's profile (batch {n0}..{n1}): run with a batch in that range "
            f"or rebuild the engine with sr-build --batch {n}"
        )
    if not (h0 <= h <= h1 and w0 <= w <= w1):
        if (h0, w0) == (h1, w1):
            allowed = f"the engine takes only {h0}x{w0} tiles"
        else:
            allowed = f"the engine's profile allows {h0}x{w0} up to {h1}x{w1}"
        rebuild = (f"--min-tile {min(h, w)}" if h < h0 or w < w0 else f"--max-tile {max(h, w)}")
        raise InputError(
            f"tile {h}x{w} (height x width) is outside the engine's profile: {allowed}; use a tile size in "
            f"that range or rebuild the engine with sr-build {rebuild}"
        )


def check_resolved_shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    """The output shape TensorRT resolved for the current input; refuse data-dependent (-1) axes."""
    shape = tuple(int(d) for d in shape)
    if not shape or any(d < 0 for d in shape):
        raise InputError(f"TensorRT could not resolve the shape of output {name!r} ({shape}) for this input")
    return shape


def nbytes(shape: Sequence[int], dtype: Any) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype`` (numpy dtype, TensorRT DataType or its name).

    Raises:
        ValueError: A negative (unresolved) dimension.
    """
    if any(int(d) < 0 for d in shape):
        raise ValueError(f"cannot size a buffer for unresolved shape {tuple(shape)}")
    return math.prod(int(d) for d in shape) * _as_numpy(dtype).itemsize


def _as_numpy(dtype: Any) -> np.dtype:
    if isinstance(dtype, (np.dtype, type)):
        return np.dtype(dtype)
    if isinstance(dtype, str) and dtype_name(dtype) not in TRT_TO_NUMPY:
        return np.dtype(dtype)  # a numpy name such as "float16"
    return numpy_dtype(dtype)


def missing_attrs(obj: object, names: Sequence[str]) -> list[str]:
    """Which of ``names`` ``obj`` lacks (feature detection, not version parsing)."""
    return [n for n in names if not hasattr(obj, n)]


def missing_trt_api(engine: object, context: object | None = None) -> list[str]:
    """The name-based TensorRT API members (10.x / 11.x) an engine and its context lack.

    Returns:
        Qualified names such as ``"IExecutionContext.execute_async_v3"``; empty when all exist.
    """
    missing = [f"ICudaEngine.{n}" for n in missing_attrs(engine, ENGINE_API)]
    if context is not None:
        missing += [f"IExecutionContext.{n}" for n in missing_attrs(context, CONTEXT_API)]
    return missing


def check_options(options: BackendOptions) -> None:
    """Refuse options TensorRT cannot honour (never silently ignore them).

    Raises:
        InputError: ``device="cpu"``, ``threads > 0``, ``fp16=True`` or a ``precision``.
    """
    if options.device not in ("auto", "cuda", "cpu"):
        raise InputError(f"unknown device {options.device!r} for TensorRT (cuda, auto)")
    if options.device == "cpu":
        raise InputError("TensorRT runs only on an NVIDIA GPU: use --device cuda/auto, or the ort backend for CPU")
    if options.threads > 0:
        raise InputError("--threads sets CPU threads; a TensorRT engine runs on the GPU (drop --threads)")
    if options.fp16:
        raise InputError(
            "a TensorRT engine's precision is fixed when it is built: drop --fp16 and build the engine from an "
            "FP16 ONNX instead"
        )
    if options.precision is not None:
        raise InputError(
            f"--precision {options.precision}: a TensorRT engine's precision is fixed when it is built "
            "(sr-build); drop --precision"
        )


# --------------------------------------------------------------------------- sidecar


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def write_engine_sidecar(engine_path: str | Path, descriptor: ModelDescriptor | None, extra: dict) -> Path:
    """Write ``<engine>.json``: the descriptor's metadata keys plus ``extra`` (atomically).

    Args:
        engine_path: The engine the sidecar describes.
        descriptor: What the model is; None for a foreign ONNX (the sidecar then holds only ``extra``).
        extra: JSON-serialisable build facts (TensorRT version, GPU, ONNX checksum, profile, ...).

    Returns:
        The sidecar path.

    Raises:
        ValueError: An ``extra`` key in the ``sredge.`` namespace, which belongs to the descriptor.
    """
    clash = sorted(k for k in extra if str(k).startswith(METADATA_PREFIX))
    if clash:
        raise ValueError(f"extra keys {clash} would be read as descriptor fields; drop the {METADATA_PREFIX!r} prefix")
    data = {**(descriptor.to_metadata() if descriptor else {}), **extra}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes_atomic(sidecar_path(engine_path), text.encode("utf-8"))


def _load_sidecar(engine_path: str | Path) -> dict | None:
    path = sidecar_path(engine_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); rebuild the engine") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a JSON {type(data).__name__}, not an object; rebuild the engine")
    return data


def read_engine_sidecar(engine_path: str | Path) -> ModelDescriptor | None:
    """The ModelDescriptor in ``<engine>.json``; None when there is no sidecar (a foreign engine).

    Raises:
        InputError: The sidecar exists but is unreadable or its descriptor keys are malformed.
    """
    data = _load_sidecar(engine_path)
    if data is None:
        return None
    props = {k: v for k, v in data.items() if k.startswith(METADATA_PREFIX)}
    bad = sorted(k for k, v in props.items() if not isinstance(v, str))
    if bad:
        raise InputError(f"{sidecar_path(engine_path)}: descriptor keys {bad} are not JSON-encoded strings")
    try:
        return ModelDescriptor.from_metadata(props)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise InputError(f"{sidecar_path(engine_path)}: {exc}; rebuild the engine") from exc


def check_engine_matches(extra: dict, trt_version: str, gpu_name: str, compute_capability: str,
                         engine_path: str | Path = "the engine", multiprocessors: int = 0) -> None:
    """Refuse an engine that ``sr-build`` made for another TensorRT or GPU (pure).

    A stale or foreign engine is never run: TensorRT may load it and run it wrongly or slowly.
    Only the facts the sidecar records are compared (engines from other tools have none).

    Args:
        extra: The sidecar's build facts (:func:`read_engine_sidecar_extra`).
        trt_version: ``tensorrt.__version__`` here.
        gpu_name: This device's name.
        compute_capability: This device's ``"major.minor"``.
        multiprocessors: This device's multiprocessor count (0: unknown, not compared).

    Raises:
        InputError: A recorded fact differs, or sr-build stopped while writing the engine; the message says
            to rebuild with sr-build.
    """
    if extra.get("incomplete"):
        raise InputError(f"{engine_path}: sr-build stopped while writing it (its sidecar marks the build "
                         "unfinished): run sr-build again")
    here = {"tensorrt_version": trt_version, "gpu_name": gpu_name, "compute_capability": compute_capability}
    if multiprocessors:
        here["multiprocessors"] = multiprocessors
    label = {"tensorrt_version": "TensorRT", "gpu_name": "GPU", "compute_capability": "compute capability",
             "multiprocessors": "multiprocessor count"}
    diffs = [f"{label[k]} {extra[k]} (here {v})" for k, v in here.items()
             if k in extra and extra[k] and str(extra[k]) != str(v)]
    if diffs:
        raise InputError(
            f"{engine_path} was built for {', '.join(diffs)}; an engine runs only where it was built: "
            f"rebuild it here with sr-build"
        )


def read_engine_sidecar_extra(engine_path: str | Path) -> dict:
    """The build facts (non-descriptor keys) of ``<engine>.json``; empty when there is no sidecar."""
    data = _load_sidecar(engine_path) or {}
    return {k: v for k, v in data.items() if not k.startswith(METADATA_PREFIX)}


# --------------------------------------------------------------------------- runtime


_LOGGERS: dict[int, Any] = {}


def _trt_logger(trt: ModuleType) -> Any:
    # TensorRT expects one logger per process; it warns when Runtime/Builder get different ones.
    key = id(trt)
    if key not in _LOGGERS:
        _LOGGERS[key] = trt.Logger(trt.Logger.WARNING)
    return _LOGGERS[key]


def create_trt_object(factory: Callable[[Any], Any], logger: Any, what: str, version: str) -> Any:
    """``trt.Builder(logger)`` / ``trt.Runtime(logger)``, with TensorRT's failure as one clear error.

    TensorRT's factories return nullptr when CUDA cannot be initialised (no GPU, no driver, a
    mismatched CUDA); its Python bindings then raise ``TypeError("... returned nullptr")``.

    Raises:
        CudaError: The factory returned nothing.
    """
    try:
        obj = factory(logger)
    except TypeError as exc:
        if "nullptr" not in str(exc):
            raise
        obj = None
    if obj is None:
        raise CudaError(f"TensorRT {version} could not create its {what}: no usable GPU, driver or CUDA for it "
                        "(see its log above)")
    return obj


def _tensor_info(trt: ModuleType, engine: Any, name: str) -> TensorInfo:
    return TensorInfo(
        name=name,
        is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
        shape=tuple(int(d) for d in engine.get_tensor_shape(name)),
        dtype=dtype_name(engine.get_tensor_dtype(name)),
        layout=dtype_name(engine.get_tensor_format(name)),  # an enum's name, as for DataType
    )


class _Slot:
    """One of the two buffer sets of the copy/compute pipeline: page-locked host and device memory
    for the input and the output, and the events that order their reuse."""

    def __init__(self, cudart: Any, index: int):
        self.host_in = PinnedBuffer(cudart, f"pinned input {index}")
        self.host_out = PinnedBuffer(cudart, f"pinned output {index}")
        self.dev_in = DeviceBuffer(cudart, f"engine input {index}")
        self.dev_out = DeviceBuffer(cudart, f"engine output {index}")
        self.events: dict[str, Any] = {}
        """``uploaded`` (input copied), ``computed`` (engine done), ``downloaded`` (output copied)."""
        self.busy: tuple[tuple[int, ...], np.dtype, int] | None = None
        """(output shape, output dtype, batch items to hand out) of the batch in flight; None when free."""

    def buffers(self) -> tuple[DeviceBuffer | PinnedBuffer, ...]:
        return self.host_in, self.host_out, self.dev_in, self.dev_out


class TrtBackend:
    """Runs a serialized TensorRT engine on the GPU (TensorRT 10 or 11, cuda-python).

    Construction only records the path; ``__enter__`` imports TensorRT, deserializes
    the engine, creates the execution context and three CUDA streams (upload, compute,
    download). Buffers are allocated on the first batch and grow only when a larger batch
    or tile arrives.

    Copies overlap compute: host buffers are page-locked (``cudaMallocHost``) and there are
    two buffer sets, so in :meth:`run_many` batch k+1 is uploaded while batch k computes and
    batch k's output is downloaded while k+1 computes; events order every reuse. :meth:`run`
    is one batch through the same pipeline. Not thread-safe: one backend per thread.
    """

    name = "trt"

    def __init__(self, model: str | Path, options: BackendOptions = BackendOptions()):
        check_options(options)
        self.path = Path(model)
        self.options = options
        self._active = False

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> TrtBackend:
        if getattr(self, "_active", False):  # a second enter would replace (and leak) the engine and streams
            raise RuntimeError("TrtBackend is already open")
        trt = require("tensorrt")
        cudart = import_cuda_runtime()
        if not self.path.is_file():
            raise InputError(f"no such engine file: {self.path}")
        self._trt, self._cudart = trt, cudart
        self._streams: dict[str, Any] = {}
        self._engine = self._context = self._runtime = None
        self._slots = [_Slot(cudart, 0), _Slot(cudart, 1)]
        try:
            self._acquire()
        except BaseException:
            self._release()
            raise
        self._active = True
        return self

    def _acquire(self) -> None:
        trt, cudart = self._trt, self._cudart
        version = str(trt.__version__)
        gpu = current_gpu(cudart, "TensorRT needs an NVIDIA GPU")
        self._gpu = gpu.name
        extra = read_engine_sidecar_extra(self.path)
        check_engine_matches(extra, version, gpu.name, gpu.compute_capability, self.path, gpu.multiprocessors)
        for role in ("upload", "compute", "download"):
            self._streams[role] = cuda_value(cudart.cudaStreamCreate(), f"cudaStreamCreate ({role})")
        flags = cudart.cudaEventDisableTiming
        for slot in self._slots:
            for event in ("uploaded", "computed", "downloaded"):
                slot.events[event] = cuda_value(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

        self._runtime = create_trt_object(trt.Runtime, _trt_logger(trt), "Runtime", version)
        if isinstance(extra.get("dla_core"), int):  # the DLA core sr-build built for (the runtime's default is -1)
            self._runtime.DLA_core = extra["dla_core"]
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise InputError(
                f"TensorRT {version} could not load {self.path}: an engine only runs on the TensorRT "
                "version and GPU model that built it; rebuild it here with sr-build (details in the log above)"
            )
        if missing := missing_trt_api(self._engine):
            raise MissingDependencyError(
                f"TensorRT {version} lacks the name-based tensor API ({', '.join(missing)}); sredge needs "
                f"TensorRT 10 or newer: {TRT_INSTALL_HINT}"
            )
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise CudaError(f"TensorRT could not create an execution context for {self.path} (out of GPU memory?)")
        if missing := missing_trt_api(self._engine, self._context):
            raise MissingDependencyError(
                f"TensorRT {version} lacks {', '.join(missing)}; sredge needs TensorRT 10 or newer: "
                f"{TRT_INSTALL_HINT}"
            )

        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._plan = plan_io([_tensor_info(trt, self._engine, n) for n in names])
        shape = self._plan.input.shape
        profile = None
        if any(d < 0 for d in shape):
            profile = [tuple(int(d) for d in s)
                       for s in self._engine.get_tensor_profile_shape(self._plan.input.name, 0)]
        self._min, self._max = profile_bounds(shape, profile)
        self._shape: tuple[int, ...] | None = None  # input shape currently set on the context
        self._out_shape: tuple[int, ...] = ()
        self._bound: dict[str, int] = {}  # tensor name -> device address set on the context
        log.debug("TensorRT engine %s: %s -> %s, profile %s..%s", self.path, self._plan.input, self._plan.output,
                  self._min, self._max)

    def __exit__(self, *exc: object) -> None:
        self._active = False
        self._release()

    def _release(self) -> None:
        # Work in flight first (its memory is about to go), then buffers, events and streams (they
        # belong to the CUDA context the engine uses), then TensorRT objects in reverse creation
        # order: context, engine, runtime.
        errors: list[BaseException] = []
        cudart = self._cudart

        def attempt(fn: Callable[[], Any]) -> None:
            try:
                fn()
            except CudaError as exc:
                errors.append(exc)

        streams = getattr(self, "_streams", {})
        for stream in streams.values():
            attempt(lambda s=stream: cuda_value(cudart.cudaStreamSynchronize(s), "cudaStreamSynchronize"))
        for slot in getattr(self, "_slots", []):
            for buf in slot.buffers():
                attempt(buf.free)
            for event in slot.events.values():
                attempt(lambda e=event: cuda_value(cudart.cudaEventDestroy(e), "cudaEventDestroy"))
            slot.events.clear()
            slot.busy = None
        for stream in streams.values():
            attempt(lambda s=stream: cuda_value(cudart.cudaStreamDestroy(s), "cudaStreamDestroy"))
        streams.clear()
        self._context = self._engine = self._runtime = None
        if errors:
            log.warning("releasing TensorRT resources: %s", "; ".join(map(str, errors)))

    def _require_active(self) -> None:
        if not self._active:
            raise RuntimeError("TrtBackend used outside its 'with' block")

    # -- Backend protocol --------------------------------------------------

    def input_spec(self) -> InputSpec:
        self._require_active()
        return spec_from_profile(self._plan.input.shape, self._min, self._max)

    def descriptor(self) -> ModelDescriptor | None:
        return read_engine_sidecar(self.path)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Upscale a batch.

        Args:
            x: (N, C, H, W) float32, C-contiguous or not; cast to the engine's input type here.

        Returns:
            (N, C_out, H_out, W_out) float32.

        Raises:
            InputError: The batch or tile is outside the engine's profile.
            CudaError: A CUDA call or the engine execution failed.
        """
        return next(self.run_many([x]))

    def run_many(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Upscale a sequence of batches with copies overlapping compute (see the class docstring).

        Args:
            batches: (N, C, H, W) float32 arrays, each inside the engine's profile.

        Yields:
            (N, C_out, H_out, W_out) float32 for each batch, in order; a batch's result is yielded
            once the next batch has been queued behind it.

        Raises:
            InputError: A batch or tile outside the engine's profile.
            CudaError: A CUDA call or the engine execution failed.
        """
        self._require_active()
        in_flight: list[_Slot] = []
        k = 0
        try:
            for x in batches:
                slot = self._slots[k % 2]
                k += 1
                if slot.busy is not None:  # its previous batch is the oldest in flight: hand it out first
                    yield self._collect(in_flight.pop(0))
                self._submit(slot, x)
                in_flight.append(slot)
            while in_flight:
                yield self._collect(in_flight.pop(0))
        finally:
            if in_flight:  # the caller stopped early or a batch failed: let the device finish with the memory
                for stream in self._streams.values():
                    cuda_value(self._cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
                for slot in in_flight:
                    slot.busy = None

    def _submit(self, slot: _Slot, x: np.ndarray) -> None:
        """Queue one batch on ``slot``: upload, then the engine, then download, ordered by events."""
        cudart, ctx, plan, streams, ev = self._cudart, self._context, self._plan, self._streams, slot.events
        x = check_batch(x, None, self.path)  # floats: the copy below would turn uint8 pixels into 0..255 values
        n = int(x.shape[0]) if x.ndim == 4 else 0
        if x.ndim == 4 and 0 < n < self._min[0]:
            # A profile whose smallest batch is above 1 (a DLA engine's fixed batch, --batch 2:4:8): fill the
            # batch with copies of the last item, as ONNX Runtime's fixed batches are filled, and hand out n.
            x = np.concatenate([x, np.repeat(x[-1:], self._min[0] - n, axis=0)])
        check_shape_in_profile(x.shape, self._min, self._max)
        in_dtype, out_dtype = plan.input_dtype, plan.output_dtype
        in_bytes = nbytes(x.shape, in_dtype)

        # The slot's pinned buffers are free to write: run_many hands a slot a new batch only after
        # collecting its previous one, whose download came after its engine, which came after its upload.
        slot.host_in.ensure(in_bytes)
        host_in = slot.host_in.view(x.shape, in_dtype)
        np.copyto(host_in, x, casting="unsafe")
        slot.dev_in.ensure(in_bytes)
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        # The device input of this slot was last read by its engine run two batches ago.
        cuda_value(cudart.cudaStreamWaitEvent(streams["upload"], ev["computed"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaMemcpyAsync(slot.dev_in.ptr, slot.host_in.ptr, in_bytes, h2d, streams["upload"]),
                   "cudaMemcpyAsync (input to device)")
        cuda_value(cudart.cudaEventRecord(ev["uploaded"], streams["upload"]), "cudaEventRecord")

        if x.shape != self._shape:
            # A new shape changes the context's state: let the batch in flight finish with the old one.
            cuda_value(cudart.cudaStreamSynchronize(streams["compute"]), "cudaStreamSynchronize")
            if not ctx.set_input_shape(plan.input.name, tuple(int(d) for d in x.shape)):
                raise InputError(f"TensorRT refused input shape {x.shape} for {plan.input.name!r}")
            self._shape = None  # until the output shape is known, the context state is not trusted
            self._out_shape = check_resolved_shape(plan.output.name, ctx.get_tensor_shape(plan.output.name))
            self._shape = tuple(x.shape)
        out_shape = self._out_shape
        out_bytes = nbytes(out_shape, out_dtype)
        slot.dev_out.ensure(out_bytes)
        slot.host_out.ensure(out_bytes)
        for name, buf in ((plan.input.name, slot.dev_in), (plan.output.name, slot.dev_out)):
            if self._bound.get(name) != buf.ptr:  # bind again only when the address changes
                if not ctx.set_tensor_address(name, buf.ptr):
                    raise CudaError(f"TensorRT refused the device address for {name!r}")
                self._bound[name] = buf.ptr

        compute = streams["compute"]
        cuda_value(cudart.cudaStreamWaitEvent(compute, ev["uploaded"], 0), "cudaStreamWaitEvent")
        # The device output of this slot was last read by its download two batches ago.
        cuda_value(cudart.cudaStreamWaitEvent(compute, ev["downloaded"], 0), "cudaStreamWaitEvent")
        if not ctx.execute_async_v3(int(compute)):
            raise CudaError(f"TensorRT failed to enqueue {self.path} for input {x.shape} (see the log above)")
        cuda_value(cudart.cudaEventRecord(ev["computed"], compute), "cudaEventRecord")

        download = streams["download"]
        cuda_value(cudart.cudaStreamWaitEvent(download, ev["computed"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaMemcpyAsync(slot.host_out.ptr, slot.dev_out.ptr, out_bytes, d2h, download),
                   "cudaMemcpyAsync (output to host)")
        cuda_value(cudart.cudaEventRecord(ev["downloaded"], download), "cudaEventRecord")
        slot.busy = (out_shape, out_dtype, n)

    def _collect(self, slot: _Slot) -> np.ndarray:
        """Wait for ``slot``'s download and copy its output out of pinned memory (float32)."""
        shape, dtype, n = slot.busy
        try:
            cuda_value(self._cudart.cudaEventSynchronize(slot.events["downloaded"]),
                       "cudaEventSynchronize (engine execution and download)")
        finally:
            slot.busy = None  # a failed wait must not leave the slot taken for the next run_many
        return slot.host_out.view(shape, dtype)[:n].astype(np.float32, copy=True)

    def describe(self) -> str:
        self._require_active()
        p = self._plan
        return (
            f"tensorrt {self._trt.__version__} on {self._gpu}, engine I/O "
            f"{p.input_dtype.name}->{p.output_dtype.name}, pinned double-buffered copies"
        )
