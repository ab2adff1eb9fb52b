"""ModelDescriptor: what a network expects and produces, torch-free.

The exporter writes it into the ONNX ``metadata_props`` and the runtime reads it
back, so a model sredge exported needs no extra flags to run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Literal

ColorSpace = Literal["rgb", "bgr", "y", "ycbcr"]
COLOR_SPACES: tuple[str, ...] = ("rgb", "bgr", "y", "ycbcr")
METADATA_PREFIX = "sredge."


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
    """``"rgb"``; ``"bgr"`` (OpenCV channel order); ``"y"`` for networks that see only BT.601 luma (chroma is upscaled bicubically);
    ``"ycbcr"`` for 3-channel networks trained on BT.601 YCbCr (all three in [0, 1])."""
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
        values = {k: json.loads(v) for k, v in ours.items() if k in known}
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"incomplete sredge metadata: {exc}") from exc

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
