"""PSNR conventions: Y channel, border crop, 8-bit quantisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sredge.errors import InputError
from sredge.imaging.metrics import psnr, y_psnr
from tests.conftest import asset


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


def _ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM by its definition, window by window (slow; an independent check of the filtered version)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for y in range(a.shape[0] - 10):
        for x in range(a.shape[1] - 10):
            pa, pb = a[y:y + 11, x:x + 11], b[y:y + 11, x:x + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_its_definition_and_is_one_for_identical_images():
    from sredge.imaging.metrics import ssim

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (24, 30)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(_ssim_direct(a, b), abs=1e-9)
    assert ssim(a, b) < 0.999
    with pytest.raises(InputError, match="at least 11x11 pixels, got 30x10"):
        ssim(a[:10], b[:10])


@pytest.mark.parametrize("hw", [(2, 3), (13, 200), (14, 14)])
def test_too_small_images_are_an_input_error_not_a_warning_or_nan(hw):
    """A 3x2 image (nothing left after crop 2) or a 200x13 strip (9 rows left) is bad input (exit 2), never
    a ValueError (exit 3) with numpy's 'Mean of empty slice' warnings on stderr."""
    import warnings

    from sredge.imaging.metrics import y_psnr, y_ssim

    img = np.random.default_rng(0).random((*hw, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning fails the test
        with pytest.raises(InputError, match=f"a {hw[1]}x{hw[0]} image leaves"):
            y_ssim(img, img, crop=2)
        if min(hw) <= 4:
            with pytest.raises(InputError, match="no pixels left"):
                y_psnr(img, img, crop=2)
        else:
            assert y_psnr(img, img, crop=2) == math.inf
    assert y_ssim(np.random.default_rng(0).random((15, 15, 3)), np.zeros((15, 15, 3)), crop=2) < 0.5


@pytest.mark.parametrize("scale,psnr_paper,ssim_paper", [(2, 33.66, 0.9299), (3, 30.39, 0.8682), (4, 28.42, 0.8104)])
def test_bicubic_on_set5_reproduces_the_published_row(scale, psnr_paper, ssim_paper):
    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_bicubic, mean

    scores = evaluate_bicubic(load_dataset(asset("benchmarks/Set5"), scale))
    assert mean(scores) == pytest.approx(psnr_paper, abs=0.02)
    assert mean(scores, "ssim") == pytest.approx(ssim_paper, abs=0.001)


def test_rgb_psnr_counts_every_channel():
    from sredge.imaging.metrics import rgb_psnr

    hr = np.full((8, 8, 3), 0.5)
    sr = hr.copy()
    sr[..., 2] += 10 / 255  # blue only: the Y channel barely moves, RGB PSNR sees all of it
    assert rgb_psnr(sr, hr, crop=0) == pytest.approx(10 * math.log10(255**2 / (100 / 3)), abs=1e-6)


@pytest.mark.parametrize("score", ["y_psnr", "y_ssim", "rgb_psnr"])
def test_image_scores_refuse_8_bit_images_rather_than_clip_them(score):
    """The metrics audit: uint8 images, or floats in [0, 255], were clipped to 1 and scored as near-white
    (a PSNR near inf for two different images). They are refused with the range expected and how to convert."""
    from sredge.imaging import metrics

    rng = np.random.default_rng(4)
    hr8 = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    sr8 = np.clip(hr8.astype(int) + rng.integers(-9, 10, hr8.shape), 0, 255).astype(np.uint8)
    fn = getattr(metrics, score)
    for sr, hr in ((sr8, hr8), (sr8.astype(np.float64), hr8 / 255.0), (sr8 / 255.0, hr8.astype(np.float32))):
        with pytest.raises(ValueError, match=r"take float images in \[0, 1\], got (uint8 samples: convert with "
                                             r"sredge.imaging.io.to_float|values up to 2\d\d: divide)"):
            fn(sr, hr, crop=2)
    expected = {"y_psnr": (30, 50), "y_ssim": (0.5, 0.999), "rgb_psnr": (30, 50)}[score]
    assert expected[0] < fn(sr8 / 255.0, hr8 / 255.0, crop=2) < expected[1]
    assert fn(np.nextafter(np.float32(1), 2) * np.ones((16, 16, 3), np.float32), np.ones((16, 16, 3)), crop=2) \
        == (math.inf if "psnr" in score else pytest.approx(1.0))  # float32 rounding above 1 is within tolerance


def test_psnr_refuses_integer_samples_over_its_peak():
    a = np.array([[0, 128], [255, 10]], np.uint8)
    b = np.array([[1, 128], [250, 10]], np.uint8)
    with pytest.raises(ValueError, match=r"uint8 samples up to 255 with data_range=1.0: pass data_range=255.0"):
        psnr(a, b)
    assert psnr(a, b, 255.0) == pytest.approx(10 * math.log10(255**2 / (26 / 4)))
    assert psnr(np.array([0, 1]), np.array([1, 1])) == pytest.approx(10 * math.log10(2))  # 0/1 masks are in range
    overshoot = psnr(np.array([1.02, 0.0]), np.array([1.0, 0.0]))  # a network's output is scored, not refused
    assert overshoot == pytest.approx(10 * math.log10(2 / 0.02**2))


def test_image_scores_name_a_layout_they_do_not_take():
    """The library audit: RGBA or channels-first images were numpy's 'cannot reshape array of size ...', and
    y_ssim took a (3, H, W) image for one 3 pixels high ('a 480x3 image leaves 476x0')."""
    from sredge.imaging.metrics import y_ssim

    rgb = np.random.default_rng(0).random((32, 40, 3))
    rgba = np.dstack([rgb, np.ones((32, 40))])
    chw = rgb.transpose(2, 0, 1)
    for score in (y_psnr, y_ssim):
        with pytest.raises(ValueError, match=r"not an array of shape \(32, 40, 4\): drop the alpha channel"):
            score(rgba, rgba, 2)
        with pytest.raises(ValueError, match=r"\(3, 32, 40\): channels first\? transpose"):
            score(chw, chw, 2)
        assert score(rgb, rgb, 2) in (math.inf, 1.0)  # the layouts it takes still score
        assert score(rgb[..., :1], rgb[..., :1], 2) in (math.inf, 1.0)
