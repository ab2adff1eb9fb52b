"""Building TensorRT engines (``sr-build``): apply a :class:`~sredge.export.engine_plan.BuildPlan`.

Side effects only; every decision comes from :mod:`sredge.export.engine_plan`. Uses the
documented TensorRT Python API shared by TensorRT 10 and 11: ``Builder``, ``OnnxParser``,
``IBuilderConfig`` (``set_memory_pool_limit``, ``set_flag``/``clear_flag``,
``create_timing_cache``/``set_timing_cache``/``get_timing_cache``, ``add_optimization_profile``,
``default_device_type``/``DLA_core``/``can_run_on_DLA``, ``int8_calibrator``/``set_calibration_profile``),
``INetworkDefinition.num_layers``/``get_layer``, ``IOptimizationProfile.set_shape`` and
``Builder.build_serialized_network``; the legacy ``IInt8EntropyCalibrator2`` (TensorRT 10 only) is
subclassed lazily, only when a build needs it. The GPU name and compute capability come from
cuda-python (``cudaGetDeviceProperties``), checked before TensorRT is touched.

The engine is written atomically with its ``<engine>.json`` sidecar
(:func:`sredge.runtime.backends.trt.write_engine_sidecar`), which carries the model
descriptor and the cache key, so ``sr-run --backend trt`` can run it and refuses it on
another TensorRT or GPU. The timing cache is optional: one from another TensorRT or GPU, or a
corrupt one, is reported and replaced, and it is written only after the engine.

**Never run on real TensorRT.** Every TensorRT and cuda-python call here is checked against the
real Python bindings of TensorRT 10.3, 10.13, 11.0 and 11.4 and of cuda-python 12.4 and 13.0
(``tests/trt_conformance``: the real compiled modules, loaded over stub libraries, with
simulated behaviour); that proves names, signatures, property access and enum members, not
what a real build does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.atomic import write_bytes_atomic
from sredge.errors import InputError, SredgeError
from sredge.export.engine_plan import (
    FEATURES,
    BuildOptions,
    BuildPlan,
    DeviceInfo,
    OnnxFacts,
    QdqEncoding,
    cache_key,
    center_crop,
    default_timing_cache,
    fingerprint_files,
    is_up_to_date,
    onnx_facts,
    plan_build,
    preflight,
    qdq_encoding,
    sidecar_facts,
)
from sredge.imaging.io import IMAGE_SUFFIXES
from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import external_data_files, load_onnx
from sredge.runtime.backends.cuda_rt import DeviceBuffer, cuda_value, current_gpu, import_cuda_runtime
from sredge.runtime.backends.trt import (
    _trt_logger,
    create_trt_object,
    read_engine_sidecar_extra,
    write_engine_sidecar,
)

log = logging.getLogger(__name__)


class BuildFailedError(SredgeError):
    """TensorRT could not parse the ONNX or build the engine (details in its log): exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class BuildResult:
    """What ``build_engine`` did."""

    engine: Path
    """The engine file (its sidecar is ``<engine>.json``)."""
    key: str
    """The cache key the engine was built for."""
    built: bool
    """False when an up-to-date engine was already there."""
    plan: BuildPlan
    seconds: float
    """Wall time of the build (0 when nothing was built)."""
    timing_cache: Path | None
    """The timing cache read and updated (None when it could not be written)."""
    dla_layers: tuple[int, int] | None = None
    """For a DLA build: (layers TensorRT can place on the DLA, all layers of the network); the rest
    run on the GPU (fallback). None for a GPU build."""


# --------------------------------------------------------------------------- inputs (no TensorRT needed)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


CALIBRATION_CACHE_HEADER = b"TRT-"
"""How a TensorRT calibration cache begins: a text line ``TRT-<version>-EntropyCalibration2``."""


def calibration_cache_origin(data: bytes) -> str:
    """Which TensorRT wrote a calibration cache, as its first line tells (pure).

    The line is ``TRT-<version>-<algorithm>``, ``<version>`` being TensorRT's ``NV_TENSORRT_VERSION``:
    major * 1000 + minor * 100 + patch up to TensorRT 9 (``8601``: 8.6.1), major * 10000 + minor * 100
    + patch from TensorRT 10 (``100300``: 10.3.0).

    Returns:
        E.g. ``"TensorRT 10.3.0 (TRT-100300-EntropyCalibration2)"``; the line as it is when its version
        is not a number; ``"no TRT-<version> line"`` for anything else.
    """
    line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    parts = line.split("-")
    if len(parts) < 3 or parts[0] != "TRT":
        return "no TRT-<version> line"
    if not parts[1].isdigit():
        return line
    n = int(parts[1])
    major, minor = (n // 10000, n // 100 % 100) if n >= 100000 else (n // 1000, n // 100 % 10)
    return f"TensorRT {major}.{minor}.{n % 100} ({line})"


def is_calibration_cache(path: str | Path) -> bool:
    """Whether ``path`` is a readable file that begins as a TensorRT calibration cache does."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(CALIBRATION_CACHE_HEADER)) == CALIBRATION_CACHE_HEADER
    except OSError:
        return False


def read_onnx_facts(path: str | Path) -> OnnxFacts:
    """:class:`OnnxFacts` of an ONNX file (its checksum, input, precision, sredge metadata).

    Raises:
        InputError: Missing or not an ONNX file, or not an SR network's single image input.
    """
    path = Path(path)
    return onnx_facts(load_onnx(path), file_sha256(path))


@dataclass(frozen=True)
class BuildInputs:
    """What a build reads, read and checked without TensorRT (:func:`read_build_inputs`)."""

    onnx: Path
    facts: OnnxFacts
    qdq: QdqEncoding
    """The integer encoding of the ONNX's Q/DQ nodes (empty without them)."""
    opts: BuildOptions
    """The options, ``calibration_fingerprint`` filled in from the calibration data."""
    images: list[Path] | None
    """The ``--calib`` images; None without a folder."""
    calib_cache: Path | None


def read_build_inputs(onnx_path: str | Path, opts: BuildOptions, *, calib_dir: str | Path | None = None,
                      calib_cache: str | Path | None = None) -> BuildInputs:
    """Read the ONNX and the calibration data and make every refusal that needs no TensorRT.

    :func:`build_engine` calls this before it imports TensorRT, so a bad option, a missing file or an
    ONNX TensorRT cannot take is reported on a machine without TensorRT too
    (:func:`~sredge.export.engine_plan.preflight`).

    Raises:
        InputError: A missing or unusable ONNX, calibration folder or cache, or options this ONNX
            cannot honour on any TensorRT.
    """
    onnx_path = Path(onnx_path)
    calib_cache = Path(calib_cache) if calib_cache is not None else None
    model = load_onnx(onnx_path)
    digest = file_sha256(onnx_path)
    external = external_data_files(model, onnx_path)
    if external:  # weights kept beside the file are part of what the engine is built from
        digest = fingerprint_files([(onnx_path.name, digest)] + [(f.name, file_sha256(f)) for f in external])
    facts, qdq = onnx_facts(model, digest), qdq_encoding(model)
    images = calibration_images(calib_dir) if calib_dir is not None else None
    if calib_cache is not None and calib_cache.is_dir():
        raise InputError(f"--calib-cache {calib_cache} is a folder; name the cache file")
    if calib_cache is not None and images is None and not calib_cache.is_file():
        raise InputError(f"--calib-cache {calib_cache} does not exist; give --calib DIR to make it")
    if calib_cache is not None and images is None and not is_calibration_cache(calib_cache):
        raise InputError(f"--calib-cache {calib_cache} is not a TensorRT calibration cache (it does not begin "
                         "with TRT-<version>-...): name the cache sr-build wrote, or give --calib DIR to make one")
    opts = replace(opts, calibration_fingerprint=calibration_fingerprint(images, calib_cache))
    profile = preflight(opts, facts, qdq)
    if images is not None and len(images) < profile.opt[0]:  # TensorRT would fail with no scales at all
        raise InputError(f"--calib {calib_dir}: {len(images)} images, but calibration runs whole batches of "
                         f"{profile.opt[0]} (the opt batch): add images, or build with a smaller --batch")
    if images is not None and facts.descriptor is None:  # preflight: images mean INT8 calibration
        raise InputError(f"{onnx_path} has no sredge metadata, so its images cannot be prepared for "
                         "calibration: export it with sr-export, or give an existing --calib-cache")
    return BuildInputs(onnx_path, facts, qdq, opts, images, calib_cache)


def calibration_images(folder: str | Path) -> list[Path]:
    """The image files of a calibration folder, sorted.

    Raises:
        InputError: Not a folder, or no images in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--calib {folder}: not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"--calib {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def calibration_fingerprint(images: list[Path] | None, cache: Path | None) -> str | None:
    """The checksum that puts the calibration data into the engine's cache key.

    Images win when given (the calibration runs on them and rewrites the cache); otherwise an
    existing calibration cache file; None when there is neither.
    """
    if images:
        return fingerprint_files([(p.name, file_sha256(p)) for p in images])
    if cache is not None and cache.is_file():
        return fingerprint_files([("calibration.cache", file_sha256(cache))])
    return None


def calibration_inputs(images: list[Path], desc: ModelDescriptor, tile: int | tuple[int, int], batch: int,
                       dtype: str | np.dtype = "float32") -> Iterator[np.ndarray]:
    """Calibration batches: each image prepared as the network sees it, centre-cropped to the opt shape.

    Args:
        images: Image files (any size; smaller ones are reflect-padded).
        desc: The network's descriptor (colour space, value range, pre-upsampling).
        tile: (height, width) of the profile's opt shape, network-input pixels; an int: a square.
        batch: Images per batch (the profile's opt batch); a short last batch is dropped.
        dtype: The network input's type (``"float32"``, or ``"float16"`` for an FP16-input ONNX):
            TensorRT reads calibration batches in the input tensor's own type.

    Yields:
        (batch, C, height, width) C-contiguous arrays of ``dtype`` in [0, desc.value_range].
    """
    from sredge.imaging.io import read_rgb, to_float
    from sredge.imaging.model_io import image_to_input

    th, tw = (tile, tile) if isinstance(tile, int) else tile
    pending: list[np.ndarray] = []
    for path in images:
        x = image_to_input(to_float(read_rgb(path)), desc)
        pending.append(center_crop(x, th, tw))
        if len(pending) == batch:
            yield np.ascontiguousarray(np.concatenate(pending, axis=0), dtype=np.dtype(dtype))
            pending = []


# --------------------------------------------------------------------------- TensorRT / CUDA (never run here)


def trt_features(trt: ModuleType) -> frozenset[str]:
    """Which of :data:`~sredge.export.engine_plan.FEATURES` this TensorRT module has (by attribute)."""
    present = set()
    for name in FEATURES:
        obj: Any = trt
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            present.add(name)
    return frozenset(present)


def device_info(cudart: Any) -> DeviceInfo:
    """Name and compute capability of the current CUDA device.

    Raises:
        CudaError: No device or driver, or a failed CUDA call.
    """
    gpu = current_gpu(cudart, "sr-build must run on the GPU (or Jetson) that will run the engine")
    return DeviceInfo(name=gpu.name, compute_capability=gpu.compute_capability, multiprocessors=gpu.multiprocessors)


def make_calibrator(trt: ModuleType, cudart: Any, batches: Iterator[np.ndarray] | None,
                    batch_size: int, cache: Path | None) -> Any:
    """An ``IInt8EntropyCalibrator2`` over ``batches`` (class built here: its base needs TensorRT).

    With ``batches`` (a ``--calib`` folder) TensorRT calibrates afresh and the result is written
    to ``cache`` when given; without, the existing ``cache`` is read and no batch is served.

    TensorRT's Python bindings catch an exception raised in a calibrator callback, print it, and carry
    on as if the data had ended (``get_batch``) or the cache were written: a damaged image would end
    calibration early and the build would succeed. So each callback keeps its exception in ``error``
    and the caller raises it after the build (:func:`build_engine`).

    TensorRT skips a cache it cannot use (one written by another TensorRT version, as NVIDIA says in
    NVIDIA/TensorRT#1378) and asks for batches instead; without ``batches`` that request sets
    ``cache_skipped``, which the caller reports instead of building an engine without scales.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._buf = DeviceBuffer(cudart, "calibration batch")
            self.error: BaseException | None = None
            self.cache_skipped = False

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if batches is None:
                self.cache_skipped = True
                return None
            if self.error is not None:
                return None
            try:
                x = next(batches, None)
                if x is None:
                    return None
                self._buf.ensure(x.nbytes)
                kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
                cuda_value(cudart.cudaMemcpy(self._buf.ptr, x.ctypes.data, x.nbytes, kind),
                           "cudaMemcpy (calibration)")
            except BaseException as exc:  # noqa: BLE001 - kept, raised after the build
                self.error = exc
                return None
            return [int(self._buf.ptr)]

        def read_calibration_cache(self) -> bytes | None:
            if batches is None and cache is not None and cache.is_file():
                return cache.read_bytes()
            return None

        def write_calibration_cache(self, data: Any) -> None:
            # Without batches nothing was calibrated here: the user's cache is never replaced by TensorRT's
            # table of an empty calibration.
            if cache is not None and batches is not None and self.error is None:
                try:
                    write_bytes_atomic(cache, bytes(data))
                except BaseException as exc:  # noqa: BLE001 - kept, raised after the build
                    self.error = exc

        def free(self) -> None:
            self._buf.free()

    return EntropyCalibrator()


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    opts: BuildOptions = BuildOptions(),
    *,
    calib_dir: str | Path | None = None,
    calib_cache: str | Path | None = None,
    timing_cache: str | Path | None = None,
    force: bool = False,
    overwrite: bool = False,
) -> BuildResult:
    """Build (or reuse) a TensorRT engine for ``onnx_path`` on this machine's GPU.

    Args:
        onnx_path: The ONNX (float32, FP16 or Q/DQ INT8).
        engine_path: Where the engine goes; its sidecar is ``<engine_path>.json``.
        opts: Profile, precision and device options (``calibration_fingerprint`` is filled here).
        calib_dir: Images for implicit INT8 calibration of a float ONNX (TensorRT 10).
        calib_cache: Calibration cache file: written after calibrating ``calib_dir``, read without it.
        timing_cache: Persistent timing cache; None: a per-TensorRT/GPU file under ``~/.cache/sredge``.
        force: Rebuild even when the existing engine's key matches.
        overwrite: Replace a ``timing_cache`` file TensorRT cannot read (without it such a file, which may
            not be a cache at all, is left as it is and the build's timing cache is not saved).

    Returns:
        What was done; ``built`` is False when the engine at ``engine_path`` was already built for
        the same key (same ONNX bytes, options, TensorRT, GPU and compute capability).

    Raises:
        InputError: Bad input or options this ONNX cannot honour (checked before TensorRT is imported,
            :func:`read_build_inputs`), or options this TensorRT cannot honour.
        MissingDependencyError: TensorRT or cuda-python is not installed (``sredge[trt]``).
        CudaError: No usable GPU, driver or CUDA (checked before TensorRT is touched).
        BuildFailedError: TensorRT could not parse or build.
    """
    inputs = read_build_inputs(onnx_path, opts, calib_dir=calib_dir, calib_cache=calib_cache)
    onnx_path, engine_path = inputs.onnx, Path(engine_path)
    facts, opts, images, calib_cache = inputs.facts, inputs.opts, inputs.images, inputs.calib_cache
    trt = require("tensorrt")
    cudart = import_cuda_runtime()

    features = trt_features(trt)
    version = str(trt.__version__)
    # The device first: without a GPU TensorRT's Builder fails with an opaque nullptr error.
    device = device_info(cudart)
    logger = _trt_logger(trt)
    builder = create_trt_object(trt.Builder, logger, "Builder", version)
    dla_cores = int(builder.num_DLA_cores) if opts.dla_core is not None else None
    plan = plan_build(opts, facts, features, dla_cores, inputs.qdq)
    key = cache_key(facts, opts, plan, version, device)
    try:
        recorded = read_engine_sidecar_extra(engine_path)
    except InputError:  # a damaged sidecar describes nothing: rebuild (the output policy let us replace it)
        recorded = {}
    cache_wanted = images is not None and calib_cache is not None and not calib_cache.is_file()
    if not force and not cache_wanted and is_up_to_date(engine_path, recorded, key):
        log.info("%s is up to date (key %s)", engine_path, key[:12])
        return BuildResult(engine_path, key, False, plan, 0.0, None)

    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tc_path = Path(timing_cache) if timing_cache is not None else default_timing_cache(cache_home, version, device)

    t0 = time.perf_counter()
    p = plan.precision
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if p.typed_flag else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildFailedError(f"TensorRT {version} could not parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    if plan.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    if p.clear_tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    if p.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if p.int8:
        config.set_flag(trt.BuilderFlag.INT8)

    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, plan.profile.min, plan.profile.opt, plan.profile.max)
    if config.add_optimization_profile(profile) < 0:  # -1: TensorRT found the profile invalid
        raise BuildFailedError(f"TensorRT {version} refused the optimization profile of {plan.input_name} "
                               f"(min {plan.profile.min}, opt {plan.profile.opt}, max {plan.profile.max})")

    calibrator = None
    if p.calibrate:
        desc = facts.descriptor  # not None with images (read_build_inputs)
        opt_n, _, opt_h, opt_w = plan.profile.opt
        batches = (calibration_inputs(images, desc, (opt_h, opt_w), opt_n, facts.input_dtype)
                   if images is not None else None)
        calibrator = make_calibrator(trt, cudart, batches, opt_n, calib_cache)
        config.int8_calibrator = calibrator
        if hasattr(config, "set_calibration_profile"):
            config.set_calibration_profile(profile)

    dla_layers = None
    if plan.dla is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla.core
        if plan.dla.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        dla_layers = dla_placement(network, config)
        on_dla, total = dla_layers
        if on_dla == 0:
            log.warning("no layer of %s can run on DLA core %d: the engine will run on the GPU", onnx_path,
                        plan.dla.core)

    may_save = attach_timing_cache(config, tc_path, replace_unreadable=overwrite or timing_cache is None)

    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if calibrator is not None and calibrator.error is not None:  # swallowed by TensorRT: see make_calibrator
        raise calibrator.error
    if calibrator is not None and calibrator.cache_skipped:
        raise InputError(_skipped_cache_message(calib_cache, version))
    if serialized is None:
        raise BuildFailedError(f"TensorRT {version} failed to build an engine from {onnx_path} (see its log above)")

    # The engine first: what follows is optional and must never lose it.
    # A sidecar that marks the build unfinished goes first: a stop between the writes leaves an engine
    # sr-run refuses and the next sr-build rebuilds as its own (no --overwrite), never a new engine
    # described by an old sidecar.
    write_engine_sidecar(engine_path, facts.descriptor, UNFINISHED_SIDECAR)
    write_bytes_atomic(engine_path, bytes(serialized))
    extra = sidecar_facts(key, facts, plan, version, device)
    if dla_layers is not None:
        extra["dla_layers"] = {"on_dla": dla_layers[0], "total": dla_layers[1]}
    write_engine_sidecar(engine_path, facts.descriptor, extra)
    seconds = time.perf_counter() - t0
    log.info("built %s in %.1f s (key %s)", engine_path, seconds, key[:12])
    saved = may_save and save_timing_cache(config, tc_path)
    return BuildResult(engine_path, key, True, plan, seconds, tc_path if saved else None, dla_layers)


UNFINISHED_SIDECAR = {"built_by": "sr-build", "build_key": None, "incomplete": True}
"""The sidecar written while an engine is being replaced (see :func:`build_engine`)."""


def _skipped_cache_message(cache: Path | None, version: str) -> str:
    """The one-line error for a ``--calib-cache`` TensorRT did not take (see :func:`make_calibrator`)."""
    try:
        origin = calibration_cache_origin(cache.read_bytes()[:200]) if cache is not None else "no file"
    except OSError as exc:
        origin = f"unreadable now: {exc.strerror}"
    return (f"TensorRT {version} did not take --calib-cache {cache} ({origin}) and asked for calibration images "
            "instead: give --calib DIR to calibrate again for this TensorRT (the cache is then rewritten)")


def dla_placement(network: Any, config: Any) -> tuple[int, int]:
    """(layers TensorRT can run on the configured DLA core, all layers), by ``can_run_on_DLA``.

    Asked after ``default_device_type``/``DLA_core`` are set, before the build. The engine inspector
    is no help here: a DLA subgraph and a GPU Myelin subgraph both appear in it as ``{ForeignNode[...]}``.
    """
    total = int(network.num_layers)
    on_dla = sum(1 for i in range(total) if config.can_run_on_DLA(network.get_layer(i)))
    return on_dla, total


_FOREIGN = "it was made by another TensorRT version or GPU"


def attach_timing_cache(config: Any, path: Path, replace_unreadable: bool = True) -> bool:
    """Attach the persistent timing cache at ``path`` to ``config``, or a new one.

    A cache TensorRT refuses (another TensorRT version or GPU, e.g. a ``--timing-cache`` file from
    elsewhere) is reported in one warning and replaced by the new one; so is a file TensorRT cannot
    read at all (corrupt), unless ``replace_unreadable`` is False: such a file may not be a cache
    (a user's file named by mistake), so it is left as it is. It never fails the build.

    Returns:
        Whether the build's timing cache may be saved to ``path`` afterwards.
    """
    data, problem = b"", None
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            problem = f"cannot read it ({exc.strerror})"
    if data:
        try:
            cache = config.create_timing_cache(data)
        except Exception as exc:  # the bindings raise on some malformed caches; others return None
            log.debug("create_timing_cache: %s", exc)
            cache = None
        if cache is None:
            problem = "it is corrupt"
        elif config.set_timing_cache(cache, False):  # ignore_mismatch=False: a foreign cache is refused
            return True
        else:
            problem = _FOREIGN
    keep = problem is not None and problem != _FOREIGN and not replace_unreadable
    if keep:
        log.warning("timing cache %s not used: %s; it is left as it is and this build's timing cache is not "
                    "saved (name another file, or pass --overwrite to replace it)", path, problem)
    elif problem:
        log.warning("timing cache %s not used: %s; starting a new one, which will replace it", path, problem)
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        log.warning("TensorRT refused a new timing cache; building without one")
    return not keep


def save_timing_cache(config: Any, path: Path) -> bool:
    """Write the build's timing cache to ``path`` (atomically); a failure is a warning, not an error.

    Returns:
        Whether the cache was written.
    """
    cache = config.get_timing_cache()
    if cache is None:
        return False
    try:
        data = bytes(cache.serialize())
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as exc:
        log.warning("could not write the timing cache %s (%s); the engine is written", path, exc.strerror or exc)
        return False
    return True
