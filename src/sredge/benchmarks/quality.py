"""Scoring a network on a benchmark dataset: Y-PSNR, Y-SSIM (and RGB PSNR) per image.

The network runs through the runtime's :class:`~sredge.runtime.upscaler.Upscaler`, so a
benchmark measures exactly what ``sr-run`` produces for the same tile settings. Luma-only
networks are scored on their Y output directly (no RGB round trip), as papers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sredge.benchmarks.datasets import Dataset, load_pair
from sredge.errors import InputError
from sredge.imaging.io import to_float
from sredge.imaging.metrics import rgb_psnr, y_psnr, y_ssim
from sredge.imaging.model_io import output_to_image
from sredge.imaging.resize import imresize
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.tiling import Runner, TileConfig
from sredge.runtime.upscaler import Upscaler, check_finite


@dataclass(frozen=True)
class ImageScore:
    """Quality of one upscaled image against its ground truth (crop = scale)."""

    name: str
    psnr: float
    """Y-channel PSNR, dB."""
    ssim: float
    """Y-channel SSIM in [-1, 1]."""
    rgb_psnr: float | None = None
    """RGB PSNR, dB, when asked for."""


Keep = Callable[[str, np.ndarray, np.ndarray, np.ndarray], None]
"""``keep(name, lr, sr, hr)`` with (H, W, 3) uint8 RGB images: sees every upscaled image."""


def score(sr: np.ndarray, hr: np.ndarray, crop: int,
          sr_rgb8: np.ndarray | None = None) -> tuple[float, float, float | None]:
    """``(y_psnr, y_ssim, rgb_psnr)`` of one result.

    Args:
        sr: (H, W, 1) Y or (H, W, 3) RGB float in [0, 1] (the network's own output).
        hr: (H, W, 3) uint8 RGB ground truth.
        crop: Border pixels ignored (the scale).
        sr_rgb8: (H, W, 3) uint8 RGB result for the RGB PSNR; None skips it.
    """
    hr_f = to_float(hr)
    rgb = rgb_psnr(to_float(sr_rgb8), hr_f, crop) if sr_rgb8 is not None else None
    return y_psnr(sr, hr_f, crop), y_ssim(sr, hr_f, crop), rgb


def evaluate(upscaler_for: Callable[[int, int], Upscaler], dataset: Dataset, rgb: bool = False,
             keep: Keep | None = None) -> list[ImageScore]:
    """Score a model on every image of ``dataset``.

    Args:
        upscaler_for: ``(lr_height, lr_width) -> Upscaler`` (tiling planned for that size).
        dataset: The benchmark.
        rgb: Also compute RGB PSNR.
        keep: Called with each (lr, sr, hr) triple, e.g. to save crops.

    Raises:
        InputError: The model's scale differs from the dataset's, or an output has the wrong size.
        CheckFailedError: An output holds NaN or Inf (see :func:`~sredge.runtime.upscaler.check_finite`).
    """
    scores = []
    for sample in dataset.samples:
        hr, lr = load_pair(sample, dataset.scale)
        ups = upscaler_for(*lr.shape[:2])
        if ups.desc.scale != dataset.scale:
            raise InputError(f"the model upscales x{ups.desc.scale}, the benchmark is x{dataset.scale}")
        prep = ups.preprocess(lr)
        out = ups.infer(prep.x)
        check_finite(out, ups.desc, sample.hr.name, ups.name)  # a NaN output is a failure, not a low score
        sr = output_to_image(out, ups.desc)
        if sr.shape[:2] != hr.shape[:2]:
            raise InputError(f"{sample.name}: output {sr.shape[:2]} does not match HR {hr.shape[:2]}")
        sr8 = ups.postprocess(out, prep) if (rgb or keep is not None) else None
        scores.append(ImageScore(sample.name, *score(sr, hr, dataset.scale, sr8 if rgb else None)))
        if keep is not None:
            keep(sample.name, lr, sr8, hr)
    return scores


def evaluate_bicubic(dataset: Dataset, rgb: bool = False, keep: Keep | None = None) -> list[ImageScore]:
    """The baseline row: MATLAB bicubic (a = -0.5) upscaling of each LR image, scored like a model."""
    scores = []
    for sample in dataset.samples:
        hr, lr = load_pair(sample, dataset.scale)
        up = imresize(lr, scale=dataset.scale)
        scores.append(ImageScore(sample.name, *score(to_float(up), hr, dataset.scale, up if rgb else None)))
        if keep is not None:
            keep(sample.name, lr, up, hr)
    return scores


def evaluate_y_psnr(run: Runner, desc: ModelDescriptor, dataset: Dataset) -> dict[str, float]:
    """Y-PSNR (dB) per image of a bare network function on a dataset, whole images, no tiling.

    Args:
        run: (1, C, H, W) float32 network input -> its output (see :class:`Upscaler`).
        desc: The network's descriptor.
        dataset: The benchmark (its scale must be the network's).
    """
    return {s.name: s.psnr for s in evaluate(lambda h, w: Upscaler(run, desc, TileConfig(tile=None)), dataset)}


def mean(scores: list[ImageScore], field: str = "psnr") -> float:
    """Mean of one field over images (NaN when there are none or the field was not computed)."""
    values = [getattr(s, field) for s in scores if getattr(s, field) is not None]
    return float(np.mean(values)) if values else float("nan")
