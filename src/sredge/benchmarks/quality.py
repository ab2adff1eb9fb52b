"""Y-PSNR of a network over an SR benchmark laid out as ``HR/`` + ``LR_bicubic/X{s}/``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.benchmarks.metrics import y_psnr
from sredge.errors import InputError
from sredge.imaging.io import IMAGE_SUFFIXES, read_rgb, to_float
from sredge.imaging.model_io import image_to_input, output_to_image
from sredge.models.descriptor import ModelDescriptor


Runner = Callable[[np.ndarray], np.ndarray]
"""(1, C, H, W) float32 network input -> (1, C, H', W') network output."""


@dataclass(frozen=True)
class Pair:
    """One benchmark image: its name and the HR / LR files."""

    name: str
    hr: Path
    lr: Path


def benchmark_pairs(root: str | Path, scale: int) -> list[Pair]:
    """Pair ``root/HR/NAME.png`` with ``root/LR_bicubic/X{scale}/NAMEx{scale}.png``.

    Raises:
        InputError: The layout is missing or no pairs are found.
    """
    root = Path(root)
    hr_dir, lr_dir = root / "HR", root / "LR_bicubic" / f"X{scale}"
    if not hr_dir.is_dir() or not lr_dir.is_dir():
        raise InputError(f"{root} does not have HR/ and LR_bicubic/X{scale}/ folders")
    pairs = []
    for hr in sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        lr = lr_dir / f"{hr.stem}x{scale}{hr.suffix}"
        if lr.is_file():
            pairs.append(Pair(hr.stem, hr, lr))
    if not pairs:
        raise InputError(f"no HR/LR image pairs in {root} for x{scale}")
    return pairs


def evaluate_y_psnr(run: Runner, desc: ModelDescriptor, pairs: list[Pair]) -> dict[str, float]:
    """Y-PSNR (dB, crop = scale) per image of ``run`` on the pairs.

    The HR image is cropped to LR size x scale (as BasicSR's ``mod_crop``). Luma-only
    networks are scored on their Y output directly.
    """
    scores = {}
    for pair in pairs:
        lr = to_float(read_rgb(pair.lr))
        hr = to_float(read_rgb(pair.hr))
        s = desc.scale
        hr = hr[: lr.shape[0] * s, : lr.shape[1] * s]
        out = output_to_image(run(image_to_input(lr, desc)), desc)
        if out.shape[:2] != hr.shape[:2]:
            raise InputError(f"{pair.name}: output {out.shape[:2]} does not match HR {hr.shape[:2]}")
        scores[pair.name] = y_psnr(out, hr, crop=s)
    return scores
