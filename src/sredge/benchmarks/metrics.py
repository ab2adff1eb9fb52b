"""PSNR by the published SR convention (BasicSR / MATLAB).

Quality is measured on the BT.601 Y channel (MATLAB ``rgb2ycbcr``) of 8-bit images,
with ``crop`` pixels removed from every border (crop = scale in SR papers).
"""

from __future__ import annotations

import math

import numpy as np

from sredge.imaging.color import rgb_to_y


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two same-shape arrays; ``inf`` when identical."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def quantize(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> the 8-bit values it would be saved as, as float64 in [0, 255]."""
    return np.round(np.clip(np.asarray(img, np.float64), 0.0, 1.0) * 255.0)


def y_channel(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) / (H, W, 1) Y, float in [0, 1] -> Y in [0, 255] (float64).

    RGB is quantised to 8 bits first, then converted with the MATLAB formula (not re-quantised),
    as BasicSR's ``calculate_psnr(test_y_channel=True)`` does.
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return rgb_to_y(quantize(img) / 255.0).astype(np.float64) * 255.0
    return quantize(img.reshape(img.shape[:2]))


def y_psnr(sr: np.ndarray, hr: np.ndarray, crop: int) -> float:
    """Y-channel PSNR (dB) of an SR result against the ground truth.

    Args:
        sr: (H, W, 3) RGB or (H, W[, 1]) Y, float in [0, 1].
        hr: Same layout and size as ``sr`` (RGB ground truth gives its Y).
        crop: Pixels removed from each border before comparing (the scale, by convention).
    """
    ys, yh = y_channel(sr), y_channel(hr)
    if crop > 0:
        ys, yh = ys[crop:-crop, crop:-crop], yh[crop:-crop, crop:-crop]
    return psnr(ys, yh, 255.0)
