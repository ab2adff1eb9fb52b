"""PSNR conventions: Y channel, border crop, 8-bit quantisation."""

from __future__ import annotations

import math

import numpy as np

from sredge.benchmarks.metrics import psnr, y_psnr


def test_psnr_known_value():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.1)
    assert math.isclose(psnr(a, b, 1.0), 20.0, rel_tol=1e-9)
    assert psnr(a, a) == math.inf


def test_y_psnr_ignores_the_cropped_border():
    rng = np.random.default_rng(0)
    hr = rng.random((20, 20, 3))
    sr = hr.copy()
    sr[:3, :, :] = 0  # damage confined to the 3-pixel border
    assert y_psnr(sr, hr, crop=3) == math.inf
    assert y_psnr(sr, hr, crop=2) < 40


def test_y_psnr_accepts_y_planes_and_rgb():
    rng = np.random.default_rng(1)
    hr = rng.random((16, 16, 3))
    from sredge.imaging.color import rgb_to_y

    y = rgb_to_y(np.round(hr * 255) / 255)
    # Scoring the Y plane directly agrees with scoring the RGB it came from, up to 8-bit rounding.
    assert y_psnr(y, hr, crop=2) > 50
