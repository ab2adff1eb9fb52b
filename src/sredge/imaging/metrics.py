"""PSNR and SSIM by the published SR convention (BasicSR / MATLAB).

Quality is measured on the BT.601 Y channel (MATLAB ``rgb2ycbcr``) of 8-bit images,
with ``crop`` pixels removed from every border (crop = scale in SR papers). SSIM uses
an 11x11 Gaussian window (sigma 1.5) over the valid region, as MATLAB's ``ssim`` in
the SR papers' evaluation scripts and BasicSR's ``calculate_ssim`` do.

The image scores (:func:`y_psnr`, :func:`y_ssim`, :func:`rgb_psnr`) take float images in [0, 1] and
refuse integer samples or floats above 1 (a ValueError: a caller's mistake, which would otherwise be
clipped to 1 and scored as a near-white image).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sredge.errors import InputError
from sredge.imaging.color import rgb_to_y

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window: the smallest plane (after the border crop) SSIM can score."""


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two same-shape arrays; ``inf`` when identical.

    Args:
        a: Any shape, any real dtype; floats are compared as given (a network's overshoot past
            ``data_range`` counts as error, as a parity check needs).
        b: Same shape as ``a``.
        data_range: The peak: 1.0 for floats in [0, 1], 255.0 for 8-bit samples, 65535.0 for 16-bit.

    Raises:
        ValueError: The shapes differ, or integer samples exceed ``data_range`` (8-bit samples scored
            against the default peak of 1).
        InputError: The arrays are empty (an image with nothing left after the border crop).
    """
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if np.asarray(a).size == 0:
        raise InputError(f"PSNR needs at least one pixel, got an empty {np.asarray(a).shape} image")
    for x in (np.asarray(a), np.asarray(b)):
        if not np.issubdtype(x.dtype, np.floating) and x.max() > data_range:
            raise ValueError(f"PSNR got {x.dtype} samples up to {x.max()} with data_range={data_range}: "
                             "pass data_range=255.0 for 8-bit (65535.0 for 16-bit) samples")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def quantize(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> the 8-bit values it would be saved as, as float64 in [0, 255].

    Values below 0 (a network's undershoot) are clipped to 0, as saving does.

    Raises:
        ValueError: Integer samples, or floats above 1.
    """
    return np.round(np.clip(np.asarray(_unit_floats(img), np.float64), 0.0, 1.0) * 255.0)


def _unit_floats(img: np.ndarray) -> np.ndarray:
    """``img`` as an array when it holds floats no larger than 1 (+1e-6); costs one ``max``.

    Raises:
        ValueError: Integer (or bool) samples, or a float above 1: the [0, 255] convention, which
            scoring would clip to 1. The message says how to convert.
    """
    img = np.asarray(img)
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"image metrics take float images in [0, 1], got {img.dtype} samples: convert with "
                         "sredge.imaging.io.to_float (8-bit / 255, 16-bit / 65535)")
    top = float(img.max()) if img.size else 0.0
    if top > 1.0 + 1e-6:
        raise ValueError(f"image metrics take float images in [0, 1], got values up to {top:g}: divide [0, 255] "
                         "images by 255 (or clip a network's output to [0, 1])")
    return img


def y_channel(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) / (H, W, 1) Y, float in [0, 1] -> Y in [0, 255] (float64).

    RGB is quantised to 8 bits first, then converted with the MATLAB formula (not re-quantised),
    as BasicSR's ``calculate_psnr(test_y_channel=True)`` does.

    Raises:
        ValueError: Another layout (RGBA, channels first), integer samples, or floats above 1.
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return rgb_to_y(quantize(img) / 255.0).astype(np.float64) * 255.0
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return quantize(img.reshape(img.shape[:2]))
    hint = (": drop the alpha channel, img[..., :3]" if img.ndim == 3 and img.shape[2] == 4 else
            ": channels first? transpose to (H, W, C)" if img.ndim == 3 and img.shape[0] in (1, 3) else
            ": score one image at a time" if img.ndim == 4 else "")
    raise ValueError(f"image metrics take (H, W, 3) RGB or (H, W) Y images, not an array of shape {img.shape}{hint}")


def y_psnr(sr: np.ndarray, hr: np.ndarray, crop: int) -> float:
    """Y-channel PSNR (dB) of an SR result against the ground truth.

    Args:
        sr: (H, W, 3) RGB or (H, W[, 1]) Y, float in [0, 1].
        hr: Same layout and size as ``sr`` (RGB ground truth gives its Y).
        crop: Pixels removed from each border before comparing (the scale, by convention).

    Raises:
        ValueError: Integer samples, or floats above 1.
        InputError: No pixels left after the crop.
    """
    return psnr(_crop(y_channel(sr), crop), _crop(y_channel(hr), crop), 255.0)


def _crop(img: np.ndarray, crop: int) -> np.ndarray:
    """``img`` without ``crop`` pixels on every border.

    Raises:
        InputError: Nothing is left (a side of at most ``2 * crop`` pixels).
    """
    if crop > 0 and min(img.shape[:2]) <= 2 * crop:
        raise InputError(f"a {img.shape[1]}x{img.shape[0]} image has no pixels left to score after cropping "
                         f"{crop} from each border")
    return img[crop:-crop, crop:-crop] if crop > 0 else img


def rgb_psnr(sr: np.ndarray, hr: np.ndarray, crop: int) -> float:
    """PSNR (dB) over all three 8-bit-quantised RGB channels, ``crop`` pixels off every border.

    Args:
        sr: (H, W, 3) RGB float in [0, 1].
        hr: Same shape.
        crop: Border pixels removed before comparing.

    Raises:
        ValueError: Not (H, W, 3), integer samples, or floats above 1.
        InputError: No pixels left after the crop.
    """
    if np.asarray(sr).ndim != 3 or np.asarray(sr).shape[2] != 3:
        raise ValueError("RGB PSNR needs (H, W, 3) images")
    return psnr(_crop(quantize(sr), crop), _crop(quantize(hr), crop), 255.0)


_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two (H, W) float planes in [0, 255]: 11x11 Gaussian window, sigma 1.5.

    Only windows that fit wholly inside the image count (the 5-pixel margin is dropped),
    as in MATLAB's reference implementation.

    Raises:
        ValueError: The planes differ in shape or are not 2-D.
        InputError: A side under :data:`SSIM_WINDOW` (11) pixels.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"SSIM needs two same-size planes, got {a.shape} and {b.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise InputError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {a.shape[1]}x{a.shape[0]}")
    g = cv2.getGaussianKernel(SSIM_WINDOW, 1.5)
    window = g @ g.T

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)
    den = (mu_a**2 + mu_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    return float(np.mean(num / den))


def y_ssim(sr: np.ndarray, hr: np.ndarray, crop: int) -> float:
    """Y-channel SSIM of an SR result against the ground truth (same inputs as :func:`y_psnr`).

    Raises:
        ValueError: Another layout (see :func:`y_channel`), integer samples, or floats above 1.
        InputError: Less than :data:`SSIM_WINDOW` x :data:`SSIM_WINDOW` pixels left after the crop.
    """
    y_sr, y_hr = y_channel(sr), y_channel(hr)  # the layout first: a (3, H, W) image is not 3 pixels high
    h, w = y_hr.shape
    if min(h, w) - 2 * max(crop, 0) < SSIM_WINDOW:
        raise InputError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping {crop} from "
                         f"each border; a {w}x{h} image leaves {max(w - 2 * crop, 0)}x{max(h - 2 * crop, 0)}")
    return ssim(_crop(y_sr, crop), _crop(y_hr, crop))
