"""Parity check: the exported ONNX (ONNX Runtime, CPU) against the PyTorch module, on a real image."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.imaging.io import read_bundled_rgb, to_float
from sredge.imaging.metrics import psnr
from sredge.imaging.model_io import image_to_input
from sredge.models.descriptor import ModelDescriptor

DEFAULT_SIZES: tuple[tuple[int, int], tuple[int, int]] = ((48, 64), (37, 53))
DEFAULT_THRESHOLD_DB = 60.0


def reference_image() -> np.ndarray:
    """The bundled real photo used for parity checks: (128, 128, 3) float32 RGB in [0, 1].

    A crop of NASA's portrait of astronaut Eileen Collins (public domain), as shipped
    with scikit-image.
    """
    return to_float(read_bundled_rgb("astronaut_crop.png"))


@dataclass(frozen=True)
class ParityCase:
    """One comparison: an input size and batch, and how far ONNX Runtime is from PyTorch."""

    height: int
    width: int
    batch: int
    max_abs_error: float
    """Largest absolute difference, in the model's value range."""
    psnr_db: float
    """PSNR of the ONNX output against the PyTorch output (value range as peak); inf if identical."""


@dataclass(frozen=True)
class ParityReport:
    """All comparisons of one parity check."""

    cases: tuple[ParityCase, ...]
    threshold_db: float = DEFAULT_THRESHOLD_DB
    providers: tuple[str, ...] = field(default=("CPUExecutionProvider",))

    @property
    def worst_psnr_db(self) -> float:
        return min(c.psnr_db for c in self.cases)

    @property
    def max_abs_error(self) -> float:
        return max(c.max_abs_error for c in self.cases)

    @property
    def passed(self) -> bool:
        return self.worst_psnr_db >= self.threshold_db


def parity_inputs(desc: ModelDescriptor, sizes=DEFAULT_SIZES, image: np.ndarray | None = None) -> list[np.ndarray]:
    """Real-image network inputs for a parity check.

    The first size gets a batch of two different crops (exercises the dynamic batch axis),
    the others one crop. Sizes are LR (height, width) and are rounded up to the model's
    size multiple.

    Returns:
        Arrays (N, C, H', W') float32 in [0, value_range], prepared by ``image_to_input``.
    """
    img = reference_image() if image is None else image
    m = max(desc.size_multiple, 1)
    batches = []
    for i, (h, w) in enumerate(sizes):
        h, w = -(-h // m) * m, -(-w // m) * m
        if h > img.shape[0] or w > img.shape[1]:
            raise ValueError(f"parity size {h}x{w} exceeds the reference image {img.shape[:2]}")
        offsets = [(0, 0), (img.shape[0] - h, img.shape[1] - w)] if i == 0 else [(7, 5)]
        crops = [img[y:y + h, x:x + w] for y, x in offsets]
        batches.append(np.concatenate([image_to_input(c, desc) for c in crops]))
    return batches


def check_parity(
    module: Any,
    desc: ModelDescriptor,
    onnx_path: str | Path,
    sizes=DEFAULT_SIZES,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
) -> ParityReport:
    """Run the PyTorch module and the ONNX file (ONNX Runtime, CPU) on the same real inputs.

    Args:
        module: The float32 ``nn.Module`` the file was exported from.
        desc: Its descriptor.
        onnx_path: The exported file.
        sizes: LR (height, width) sizes to test; keep one that is not a multiple of 8.
        threshold_db: Minimum PSNR (ONNX vs PyTorch) for ``passed``.
    """
    torch = require("torch")
    from sredge.runtime.backends import BackendOptions, open_backend

    cases = []
    with open_backend("ort", onnx_path, BackendOptions(device="cpu")) as backend:
        for x in parity_inputs(desc, sizes):
            with torch.no_grad():
                ref = module(torch.from_numpy(x)).numpy()
            got = backend.run(x)
            if got.shape != ref.shape:
                err, db = math.inf, -math.inf
            else:
                err = float(np.max(np.abs(got.astype(np.float64) - ref)))
                db = psnr(got, ref, desc.value_range)
            cases.append(ParityCase(int(x.shape[2]), int(x.shape[3]), int(x.shape[0]), err, db))
    return ParityReport(tuple(cases), threshold_db)
