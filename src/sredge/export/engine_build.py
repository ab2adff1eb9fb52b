"""Building TensorRT engines (``sr-build``): apply a :class:`~sredge.export.engine_plan.BuildPlan`.

Side effects only; every decision comes from :mod:`sredge.export.engine_plan`. Uses the
documented TensorRT Python API shared by TensorRT 10 and 11: ``Builder``, ``OnnxParser``,
``IBuilderConfig`` (``set_memory_pool_limit``, ``set_flag``/``clear_flag``,
``create_timing_cache``/``set_timing_cache``/``get_timing_cache``, ``add_optimization_profile``,
``default_device_type``/``DLA_core``, ``int8_calibrator``/``set_calibration_profile``),
``IOptimizationProfile.set_shape`` and ``Builder.build_serialized_network``; the legacy
``IInt8EntropyCalibrator2`` is subclassed lazily, only when a build needs it. The GPU name
and compute capability come from cuda-python (``cudaGetDeviceProperties``).

The engine is written atomically with its ``<engine>.json`` sidecar
(:func:`sredge.runtime.backends.trt.write_engine_sidecar`), which carries the model
descriptor and the cache key, so ``sr-run --backend trt`` can run it and refuses it on
another TensorRT or GPU.

**Never run on real TensorRT**: this module was written on machines without TensorRT,
cuda-python or a GPU. :func:`read_onnx_facts`, :func:`file_sha256`,
:func:`calibration_inputs` and the missing-TensorRT error are tested here; :func:`trt_features`,
:func:`device_info`, the calibrator and :func:`build_engine` past the TensorRT import have
not run, and their tests skip where TensorRT is not importable.
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
    cache_key,
    center_crop,
    default_timing_cache,
    fingerprint_files,
    is_up_to_date,
    onnx_facts,
    plan_build,
    sidecar_facts,
)
from sredge.imaging.io import IMAGE_SUFFIXES
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.trt import (
    _DeviceBuffer,
    _trt_logger,
    cuda_value,
    import_cuda_runtime,
    read_engine_sidecar_extra,
    sidecar_path,
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
    """The timing cache read and updated."""


# --------------------------------------------------------------------------- inputs (no TensorRT needed)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_onnx_facts(path: str | Path) -> OnnxFacts:
    """:class:`OnnxFacts` of an ONNX file (its checksum, input, precision, sredge metadata).

    Raises:
        InputError: Missing or not an ONNX file, or not an SR network's single image input.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from exc
    return onnx_facts(model, file_sha256(path))


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


def calibration_inputs(images: list[Path], desc: ModelDescriptor, tile: int, batch: int) -> Iterator[np.ndarray]:
    """Calibration batches: each image prepared as the network sees it, centre-cropped to ``tile``.

    Args:
        images: Image files (any size; smaller ones are reflect-padded).
        desc: The network's descriptor (colour space, value range, pre-upsampling).
        tile: Edge of the profile's opt shape, network-input pixels.
        batch: Images per batch (the profile's opt batch); a short last batch is dropped.

    Yields:
        (batch, C, tile, tile) float32 C-contiguous arrays in [0, desc.value_range].
    """
    from sredge.imaging.io import read_rgb, to_float
    from sredge.imaging.model_io import image_to_input

    pending: list[np.ndarray] = []
    for path in images:
        x = image_to_input(to_float(read_rgb(path)), desc)
        pending.append(center_crop(x, tile))
        if len(pending) == batch:
            yield np.ascontiguousarray(np.concatenate(pending, axis=0), dtype=np.float32)
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


def device_info(cudart: ModuleType) -> DeviceInfo:
    """Name and compute capability of the current CUDA device.

    Raises:
        CudaError: No device, or a failed CUDA call.
    """
    from sredge.runtime.backends.trt import CudaError

    if not cuda_value(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount"):
        raise CudaError("no CUDA device is visible; sr-build must run on the GPU (or Jetson) that will run the engine")
    device = cuda_value(cudart.cudaGetDevice(), "cudaGetDevice")
    props = cuda_value(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    raw = getattr(props, "name", b"")
    name = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip("\x00 ") or "GPU"
    return DeviceInfo(name=name, compute_capability=f"{int(props.major)}.{int(props.minor)}")


def make_calibrator(trt: ModuleType, cudart: ModuleType, batches: Iterator[np.ndarray] | None,
                    batch_size: int, cache: Path | None) -> Any:
    """An ``IInt8EntropyCalibrator2`` over ``batches`` (class built here: its base needs TensorRT).

    With ``batches`` (a ``--calib`` folder) TensorRT calibrates afresh and the result is written
    to ``cache`` when given; without, the existing ``cache`` is read and no batch is served.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._buf = _DeviceBuffer(cudart, "calibration batch")
            self.batches_served = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if batches is None:
                return None
            x = next(batches, None)
            if x is None:
                return None
            self._buf.ensure(x.nbytes)
            kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            cuda_value(cudart.cudaMemcpy(self._buf.ptr, x.ctypes.data, x.nbytes, kind), "cudaMemcpy (calibration)")
            self.batches_served += 1
            return [int(self._buf.ptr)]

        def read_calibration_cache(self) -> bytes | None:
            if batches is None and cache is not None and cache.is_file():
                return cache.read_bytes()
            return None

        def write_calibration_cache(self, data: Any) -> None:
            if cache is not None:
                write_bytes_atomic(cache, bytes(data))

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

    Returns:
        What was done; ``built`` is False when the engine at ``engine_path`` was already built for
        the same key (same ONNX bytes, options, TensorRT, GPU and compute capability).

    Raises:
        MissingDependencyError: TensorRT or cuda-python is not installed (``sredge[trt]``).
        InputError: Bad input or options this TensorRT/ONNX cannot honour.
        BuildFailedError: TensorRT could not parse or build.
    """
    trt = require("tensorrt")
    cudart = import_cuda_runtime()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    calib_cache = Path(calib_cache) if calib_cache is not None else None
    facts = read_onnx_facts(onnx_path)
    images = calibration_images(calib_dir) if calib_dir is not None else None
    if calib_cache is not None and images is None and not calib_cache.is_file():
        raise InputError(f"--calib-cache {calib_cache} does not exist; give --calib DIR to make it")
    opts = replace(opts, calibration_fingerprint=calibration_fingerprint(images, calib_cache))

    features = trt_features(trt)
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    dla_cores = int(builder.num_DLA_cores) if opts.dla_core is not None else None
    plan = plan_build(opts, facts, features, dla_cores)
    device = device_info(cudart)
    version = str(trt.__version__)
    key = cache_key(facts, opts, plan, version, device)
    if not force and is_up_to_date(engine_path, read_engine_sidecar_extra(engine_path), key):
        log.info("%s is up to date (key %s)", engine_path, key[:12])
        return BuildResult(engine_path, key, False, plan, 0.0, None)

    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tc_path = Path(timing_cache) if timing_cache is not None else default_timing_cache(cache_home, version, device)

    t0 = time.perf_counter()
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.precision.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildFailedError(f"TensorRT {version} could not parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    if plan.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    p = plan.precision
    if p.clear_tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    if p.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if p.int8:
        config.set_flag(trt.BuilderFlag.INT8)

    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, plan.profile.min, plan.profile.opt, plan.profile.max)
    config.add_optimization_profile(profile)

    calibrator = None
    if p.calibrate:
        desc = facts.descriptor
        if images is not None and desc is None:
            raise InputError(f"{onnx_path} has no sredge metadata, so its images cannot be prepared for "
                             "calibration: export it with sr-export, or give an existing --calib-cache")
        opt_n, _, opt_h, _ = plan.profile.opt
        batches = calibration_inputs(images, desc, opt_h, opt_n) if images is not None else None
        calibrator = make_calibrator(trt, cudart, batches, opt_n, calib_cache)
        config.int8_calibrator = calibrator
        if hasattr(config, "set_calibration_profile"):
            config.set_calibration_profile(profile)

    if plan.dla is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla.core
        if plan.dla.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    cache = config.create_timing_cache(tc_path.read_bytes() if tc_path.is_file() else b"")
    config.set_timing_cache(cache, False)  # ignore_mismatch=False: a foreign cache is not used

    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise BuildFailedError(f"TensorRT {version} failed to build an engine from {onnx_path} (see its log above)")
    if calibrator is not None and images is not None and calibrator.batches_served == 0:
        raise BuildFailedError(f"no calibration batch was made from --calib: it needs at least "
                               f"{plan.profile.opt[0]} images (the opt batch)")

    tc_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(tc_path, bytes(config.get_timing_cache().serialize()))
    # Old sidecar first: a crash between the two writes leaves an engine without a key, which the
    # next sr-build rebuilds, never a new engine described by an old sidecar.
    sidecar_path(engine_path).unlink(missing_ok=True)
    write_bytes_atomic(engine_path, bytes(serialized))
    write_engine_sidecar(engine_path, facts.descriptor, sidecar_facts(key, facts, plan, version, device))
    seconds = time.perf_counter() - t0
    log.info("built %s in %.1f s (key %s)", engine_path, seconds, key[:12])
    return BuildResult(engine_path, key, True, plan, seconds, tc_path)
