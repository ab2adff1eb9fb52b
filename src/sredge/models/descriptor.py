"""ModelDescriptor: what a network expects and produces, torch-free.

The exporter writes it into the ONNX ``metadata_props`` and the runtime reads it
back, so a model sredge exported needs no extra flags to run.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Literal

ColorSpace = Literal["rgb", "bgr", "y", "ycbcr"]
COLOR_SPACES: tuple[str, ...] = ("rgb", "bgr", "y", "ycbcr")
VALUE_RANGES: tuple[float, ...] = (1.0, 255.0)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8-cpu", "int8-trt")
MAX_SCALE = 16
MAX_SIZE_MULTIPLE = 64
METADATA_PREFIX = "sredge."


WHOLE_INPUT_ARCHS = frozenset({"han", "csnln", "imdn", "rfdn", "rlfn", "bsrn", "efdn"})
"""Architectures whose output at a pixel depends on the whole input, not a neighbourhood: HAN's and CSNLN's
attention spans it, IMDN's and BSRN's contrast-aware channel attention averages over it, and the enhanced
spatial attention of RFDN, RLFN, BSRN and EFDN pools it on a grid and resizes back by the input's size.
Tiled output differs from whole-image output whatever the overlap (measured: RFDN up to 120 levels in 8 bits)."""


@dataclass(frozen=True)
class ModelDescriptor:
    """The contract between a network and everything that feeds it.

    Tensors are NCHW float. ``in_channels`` is 3 for RGB networks and 1 for
    luma-only ones; RGB channel order is always R, G, B.
    """

    arch: str
    """Registry name of the architecture, e.g. ``"fsrcnn"``."""
    scale: int
    """Output size / input size of the whole pipeline (2, 3, 4 or 8; 1 for restoration)."""
    in_channels: int
    """Channels of the network input (1 or 3)."""
    out_channels: int
    """Channels of the network output (1 or 3)."""
    color_space: ColorSpace
    """``"rgb"``; ``"bgr"`` (OpenCV channel order); ``"y"`` for networks that see only BT.601 luma
    (chroma is upscaled bicubically); ``"ycbcr"`` for 3-channel networks trained on BT.601 YCbCr
    (all three in [0, 1])."""
    value_range: float
    """Input and output values span ``[0, value_range]``: 1.0 or 255.0 (EDSR-PyTorch, RCAN)."""
    pre_upsample: bool
    """True when the network expects an input already bicubic-upsampled by ``scale`` (SRCNN, VDSR)."""
    size_multiple: int = 1
    """Input height and width must be multiples of this (SwinIR windows); 1 means any size."""
    fp16_safe: bool = True
    """Whether float16 inference is known to keep the activations in range."""
    num_params: int = 0
    """Number of trainable parameters, for reports."""
    variant: str = ""
    """Descriptive variant name, e.g. ``"edsr_baseline_x4"``; informational only."""
    precision: str = "fp32"
    """Arithmetic the file was made for: ``"fp32"``; ``"fp16"`` (float16 weights and activations);
    ``"int8-cpu"`` (Q/DQ, uint8 activations, int8 per-channel weights: ONNX Runtime CPU) or
    ``"int8-trt"`` (Q/DQ, symmetric int8 activations and weights: TensorRT). Files written before
    this field existed read as ``"fp32"``."""
    psnr_drop_db: float | None = None
    """For a derived file (FP16, INT8): its mean validation Y-PSNR drop in dB against the FP32 file it was
    made from, as ``sr-export --precision`` measured it; None when not measured (FP32 files, and files
    written before this field existed). ``sr-run --backend auto`` admits a variant only within its budget."""
    quality_ref: str = ""
    """Name of the validation set ``psnr_drop_db`` was measured on (e.g. ``"Set5"``); empty when not measured."""

    @property
    def tile_exact(self) -> bool:
        """Whether tiles with enough overlap give the whole-image output: False for architectures whose
        attention pools or averages over the whole input (see :data:`WHOLE_INPUT_ARCHS`)."""
        return self.arch not in WHOLE_INPUT_ARCHS

    def to_metadata(self) -> dict[str, str]:
        """Serialise to string key/values for ONNX ``metadata_props`` (keys prefixed ``sredge.``)."""
        return {METADATA_PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str]) -> ModelDescriptor | None:
        """Rebuild from ONNX ``metadata_props``; None when the file was not exported by sredge.

        Raises:
            ValueError: The ``sredge.*`` keys are present but incomplete or malformed.
        """
        ours = {k[len(METADATA_PREFIX):]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}
        if not ours:
            return None
        known = {f.name for f in fields(cls)}
        values = {}
        for key, text in ours.items():
            if key not in known:
                continue  # written by a newer sredge: ignored
            try:
                values[key] = json.loads(text)
            except (TypeError, ValueError):
                raise ValueError(f"{METADATA_PREFIX}{key} = {_clip(repr(text))} is not a JSON value") from None
        required = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
        if required:
            raise ValueError(f"incomplete sredge metadata: {', '.join(METADATA_PREFIX + k for k in required)} missing")
        problem = metadata_problem(values)
        if problem is not None:
            raise ValueError(problem)
        return cls(**values)

    def summary(self) -> str:
        """One human-readable line: architecture, scale, channels, colour space, parameters."""
        extras = []
        if self.pre_upsample:
            extras.append("bicubic-upsampled input")
        if self.size_multiple > 1:
            extras.append(f"size multiple {self.size_multiple}")
        if not self.fp16_safe:
            extras.append("not fp16-safe")
        if self.precision != "fp32":
            extras.append(self.precision)
        tail = f", {', '.join(extras)}" if extras else ""
        return (
            f"{self.variant or self.arch}: x{self.scale}, {self.in_channels}->{self.out_channels} channels, "
            f"{self.color_space.upper()} in [0, {self.value_range:g}], "
            f"{self.num_params:,} parameters{tail}"
        )


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _shown(value: Any) -> str:
    """A decoded value as the metadata spells it (JSON), clipped for a one-line message."""
    try:
        return _clip(json.dumps(value))
    except (TypeError, ValueError):
        return _clip(repr(value))


def _field_problem(key: str, v: Any) -> str | None:
    """What is wrong with one descriptor value, or None (pure). Booleans are not numbers here."""
    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if key in ("arch", "variant", "quality_ref"):
        ok = isinstance(v, str) and (key != "arch" or v != "")
        return None if ok else ("a non-empty string" if key == "arch" else "a string")
    if key == "scale":
        return None if is_int(v) and 1 <= v <= MAX_SCALE else f"an integer from 1 to {MAX_SCALE}"
    if key in ("in_channels", "out_channels"):
        return None if is_int(v) and v in (1, 3) else "1 or 3"
    if key == "color_space":
        return None if v in COLOR_SPACES and isinstance(v, str) else f"one of {', '.join(COLOR_SPACES)}"
    if key == "value_range":
        return None if is_num(v) and float(v) in VALUE_RANGES else "1.0 or 255.0"
    if key in ("pre_upsample", "fp16_safe"):
        return None if isinstance(v, bool) else "true or false"
    if key == "size_multiple":
        return None if is_int(v) and 1 <= v <= MAX_SIZE_MULTIPLE else f"an integer from 1 to {MAX_SIZE_MULTIPLE}"
    if key == "num_params":
        return None if is_int(v) and v >= 0 else "a non-negative integer"
    if key == "precision":
        return None if isinstance(v, str) and v in PRECISIONS else f"one of {', '.join(PRECISIONS)}"
    if key == "psnr_drop_db":
        return None if v is None or is_num(v) else "a finite number or null"
    return None


def metadata_problem(values: dict[str, Any]) -> str | None:
    """The first thing wrong with decoded descriptor values, as one line naming the ``sredge.*`` key and the
    bad value, or None when they fit the schema (pure).

    The schema: scale 1..16, channels 1 or 3, a known colour space and value range (1 or 255), size multiple
    1..64, booleans that are JSON booleans, a non-negative integer parameter count, a known precision, a
    colour space that fits the channel count (``y`` is the one single-channel space) and as many output
    channels as input channels.
    """
    for key, value in values.items():
        want = _field_problem(key, value)
        if want is not None:
            return f"{METADATA_PREFIX}{key} = {_shown(value)} is invalid: expected {want}"
    channels, color = values.get("in_channels"), values.get("color_space")
    if channels is not None and color is not None and (channels == 1) != (color == "y"):
        return (f"{METADATA_PREFIX}color_space = {_shown(color)} does not fit "
                f"{METADATA_PREFIX}in_channels = {channels} "
                "(y is the one single-channel colour space)")
    out = values.get("out_channels")
    if channels is not None and out is not None and out != channels:
        return f"{METADATA_PREFIX}out_channels = {out} differs from {METADATA_PREFIX}in_channels = {channels}"
    return None
