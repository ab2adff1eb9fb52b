"""Derive the FP16 and INT8 files of an exported FP32 model: what ``sr-export --precision`` runs.

``NAME.onnx`` (FP32) gives ``NAME.fp16.onnx`` and ``NAME.int8.onnx`` beside it. Each derived
file is checked before it takes its name: FP16 against the float16 range on the calibration
set, INT8 against the PSNR budget on the validation set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import onnx

from sredge.calibration.fp16 import Fp16Options, RangeReport, activation_ranges, convert_to_fp16
from sredge.calibration.quantize import Int8Options, calibrate, quantized_nodes, save_model
from sredge.calibration.sensitivity import Int8Result, Validator, quantize_within_budget
from sredge.errors import CheckFailedError, InputError
from sredge.models.descriptor import ModelDescriptor

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")


def parse_precisions(text: str) -> tuple[str, ...]:
    """``"fp32,int8"`` -> ``("fp32", "int8")`` in canonical order; fp32 is always included (pure).

    Raises:
        InputError: An unknown name.
    """
    names = {p.strip().lower() for p in text.split(",") if p.strip()}
    unknown = names - set(PRECISIONS)
    if unknown:
        raise InputError(f"unknown precision {', '.join(sorted(unknown))}: choose from {', '.join(PRECISIONS)}")
    return tuple(p for p in PRECISIONS if p in names or p == "fp32")


def derived_path(fp32_path: str | Path, precision: str) -> Path:
    """``m.onnx`` -> ``m.onnx`` (fp32), ``m.fp16.onnx``, ``m.int8.onnx`` (pure)."""
    p = Path(fp32_path)
    return p if precision == "fp32" else p.with_name(f"{p.stem}.{precision}{p.suffix or '.onnx'}")


def default_validation(scale: int):
    """The bundled photo (NASA, public domain) as a one-image dataset, its LR made by MATLAB bicubic.

    A stand-in when no ``--val`` benchmark is given; Set5 / Set14 measure what papers report.
    """
    from sredge.benchmarks.datasets import Dataset, Sample

    path = Path(str(resources.files("sredge.data") / "astronaut.jpg"))
    return Dataset("astronaut", path.parent, scale, (Sample("astronaut", path, None),), "imresize")


def check_validation(dataset) -> None:
    """Refuse a validation set whose images cannot be read, from their headers alone (nothing is decoded).

    Args:
        dataset: A :class:`sredge.benchmarks.datasets.Dataset`; each sample's ``max_pixels`` is its limit.

    Raises:
        InputError: An HR or LR file without a readable header, or over the pixel limit. (A file damaged
            past its header is found when it is first scored.)
    """
    from sredge.imaging.io import image_size

    for sample in dataset.samples:
        for path in (sample.hr, sample.lr):
            if path is not None:
                image_size(path, sample.max_pixels)


@dataclass(frozen=True)
class DeriveOptions:
    """What to derive from an FP32 model."""

    int8: Int8Options = field(default_factory=Int8Options)
    """Flavour and calibration method of the INT8 file."""
    fp16: Fp16Options = field(default_factory=Fp16Options)
    """FP16 input/output types."""
    max_psnr_drop: float | None = None
    """INT8 PSNR budget (dB of validation Y-PSNR below FP32); None: plain INT8, no sensitivity pass."""


@dataclass(frozen=True)
class Fp16Outcome:
    path: Path
    ranges: RangeReport
    psnr_db: float


def record_quality(model: onnx.ModelProto, drop_db: float, quality_ref: str) -> None:
    """Store a derived model's measured PSNR drop (and the validation set's name) in its sredge metadata.

    ``sr-run --backend auto`` reads it back to keep variants within its ``--max-psnr-drop`` budget.
    A model without sredge metadata is left as it is.
    """
    from dataclasses import replace

    from sredge.models.onnx_file import descriptor_of, write_descriptor

    desc = descriptor_of(model)
    if desc is not None:
        write_descriptor(model, replace(desc, psnr_drop_db=round(float(drop_db), 4), quality_ref=quality_ref))


def make_fp16(fp32_path: Path, desc: ModelDescriptor, calib: np.ndarray, validator: Validator,
              options: Fp16Options = Fp16Options(), reference_db: float | None = None,
              half_db: Callable[[], float | None] | None = None) -> Fp16Outcome:
    """Check the activations fit float16 on the calibration inputs, then write ``NAME.fp16.onnx``.

    With ``reference_db`` (the FP32 file's validation Y-PSNR), the drop is recorded in the file's
    metadata (:func:`record_quality`). ``half_db()`` gives the validation Y-PSNR of the network computed
    in float16 (:func:`sredge.calibration.fp16.torch_half_runner`), called only once the ranges fit (an
    overflow is then named by its layers, not met as NaN output); without it, or when it gives None, the
    file is scored by ONNX Runtime on the CPU, which on x86 rounds only the weights to float16 and
    computes in float32, so that drop understates a GPU's. ONNX Runtime runs the file in either case: a
    file it refuses, that gives NaN, or that scores over :data:`FP16_FILE_TOLERANCE_DB` below ``half_db()``
    is not written.

    Raises:
        CheckFailedError: Some activation exceeds the float16 range (named in the message), or ONNX Runtime
            cannot run the converted file as the network; no file is written.
    """
    ranges = activation_ranges(fp32_path, calib)
    if ranges.overflows:
        raise CheckFailedError(
            "FP16 would overflow (activations beyond +-65504 on the calibration set, i.e. inf/black frames): "
            f"{ranges.describe_overflows()}; no FP16 file was written: use FP32 or INT8 for this model"
        )
    if not desc.fp16_safe:
        _warn_not_fp16_safe(desc, calib)
    model = convert_to_fp16(onnx.load(str(fp32_path)), options, desc)
    ort_db = _runs_in_ort(model, validator)
    db = half_db() if half_db is not None else None
    if db is not None and not ort_db >= db - FP16_FILE_TOLERANCE_DB:
        raise CheckFailedError(
            f"the FP16 file scores {ort_db:.2f} dB in ONNX Runtime but the network computed in float16 by PyTorch "
            f"{db:.2f} dB: the conversion broke it; no FP16 file was written (use FP32, and please report this model)"
        )
    db = ort_db if db is None else db
    if reference_db is not None:
        record_quality(model, reference_db - db, validator.dataset.name)
    out = save_model(model, derived_path(fp32_path, "fp16"))
    return Fp16Outcome(out, ranges, db)


FP16_FILE_TOLERANCE_DB = 1.0
"""How far below the float16 computation's Y-PSNR the FP16 file may score in ONNX Runtime (which computes in
float32 on x86, or float16 where the CPU has it): further is a broken conversion, not float16 rounding."""


def _runs_in_ort(model: onnx.ModelProto, validator: Validator) -> float:
    """The FP16 file's validation Y-PSNR as ONNX Runtime runs it: the file is scored as it will run, so one that
    ONNX Runtime refuses or that gives NaN is never written.

    Raises:
        CheckFailedError: ONNX Runtime cannot run it, or its output is not an image (NaN Y-PSNR).
    """
    from sredge.runtime.backends.ort import error_line

    try:
        db = validator.mean_db(model)
    except Exception as exc:  # onnxruntime's errors derive from Exception alone
        if not type(exc).__module__.startswith("onnxruntime"):
            raise
        raise CheckFailedError(f"ONNX Runtime cannot run the FP16 file ({error_line(exc)}); no FP16 file was "
                               "written (use FP32, and please report this model)") from None
    if not np.isfinite(db):
        raise CheckFailedError("the FP16 file gives no image in ONNX Runtime (NaN output); no FP16 file was written "
                               "(use FP32, and please report this model)")
    return db


def _warn_not_fp16_safe(desc: ModelDescriptor, calib: np.ndarray) -> None:
    """The range check of an architecture not known to be float16-safe (HAN's and CSNLN's attention sums over
    every pixel) holds for the calibration inputs' size only: say so, as ``sr-run --backend torch --fp16`` does."""
    h, w = calib.shape[-2:]
    log.warning("%s is not known to be float16-safe (activations that sum over the image grow with its size, and "
                "overflow inside an op is not seen): the range check passed on %dx%d inputs only; check the FP16 "
                "file on frames of the size you will run, or use FP32", desc.arch.upper(), w, h)


def make_int8(fp32_path: Path, desc: ModelDescriptor, calib: np.ndarray, validator: Validator, reference_db: float,
              options: DeriveOptions = DeriveOptions()) -> tuple[Path, Int8Result]:
    """Calibrate, quantize within the budget and write ``NAME.int8.onnx`` with its drop recorded
    (:func:`record_quality`).

    Raises:
        CheckFailedError: The budget could not be met, or only with every convolution kept in float (a
            file with no INT8 in it); no file is written.
    """
    ranges = calibrate(fp32_path, calib, options.int8)
    result = quantize_within_budget(fp32_path, ranges, validator.mean_db, reference_db, options.max_psnr_drop, desc)
    if not result.within_budget:
        raise CheckFailedError(
            f"INT8 drops {result.drop_db:.3f} dB > --max-psnr-drop {options.max_psnr_drop:g} even with "
            f"{len(result.kept_float)} layers in float; no INT8 file was written"
        )
    if not quantized_nodes(result.model):  # every convolution kept in float: nothing of it runs in INT8
        if options.max_psnr_drop is None:
            raise CheckFailedError("the model has no layer that INT8 quantizes (no convolution); "
                                   "no INT8 file was written")
        raise CheckFailedError(
            f"no layer could be quantized within --max-psnr-drop {options.max_psnr_drop:g} (plain INT8 dropped "
            f"{result.plain_drop_db:.3f} dB; it holds only with every layer in float), so no INT8 file was written: "
            "allow a larger --max-psnr-drop, or train for INT8 with sr-train --qat"
        )
    record_quality(result.model, result.drop_db, validator.dataset.name)
    return save_model(result.model, derived_path(fp32_path, "int8")), result
