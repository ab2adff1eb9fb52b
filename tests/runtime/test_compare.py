"""sr-run --compare: bicubic | sredge, same size, labelled, under the output policy."""

from __future__ import annotations

import numpy as np
import pytest

from sredge.imaging.io import read_image, write_image
from sredge.imaging.resize import imresize
from sredge.runtime.compare import display_rgb, labelled_row, to_8bit
from tests.conftest import asset


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    write_image(path, np.ascontiguousarray(read_image(asset("realworld/OST_009.png"))[200:264, 100:180]))
    return path


def _panels(pic: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(left panel, right panel, label bar height) of a two-panel picture whose panels are ``width`` wide."""
    assert pic.shape[1] == 2 * width + 4
    assert (pic[:, width:width + 4] == 255).all()  # the gap
    return pic[:, :width], pic[:, width + 4:], 0


@pytest.mark.parametrize("extra, out_hw", [([], (128, 160)), (["--outscale", "3"], (192, 240))])
def test_image_compare_is_bicubic_beside_the_output(cli, photo, tmp_path, extra, out_hw):
    out, cmp = tmp_path / "out.png", tmp_path / "cmp.png"
    res = cli("run", "--image", photo, "--scale", "2", "-o", out, "--compare", cmp, *extra)
    assert res.code == 0, res.err
    assert f"before/after: {cmp}" in res.out
    sr = read_image(out)
    assert sr.shape[:2] == out_hw
    pic = read_image(cmp)
    left, right, _ = _panels(pic, out_hw[1])
    bar = pic.shape[0] - out_hw[0]
    assert 10 < bar < 60
    assert np.array_equal(right[bar:], sr)  # the "after" panel is exactly what was written
    assert np.array_equal(left[bar:], imresize(read_image(photo), size=out_hw))  # MATLAB bicubic, same grid
    assert (left[:bar] < 128).any() and (right[:bar] < 128).any()  # each has its label


def test_compare_obeys_the_output_policy(cli, photo, tmp_path):
    res = cli("run", "--image", photo, "--scale", "2", "--compare", photo)
    assert res.code == 2 and "would overwrite the input" in res.err
    cmp = tmp_path / "cmp.png"
    cmp.write_bytes(b"keep me")
    res = cli("run", "--image", photo, "--scale", "2", "--compare", cmp)
    assert res.code == 2 and "--overwrite" in res.err and cmp.read_bytes() == b"keep me"
    assert not photo.with_name("photo_x2.png").exists()  # refused before any work
    res = cli("run", "--image", tmp_path, "--scale", "2", "--compare", tmp_path / "c.png")
    assert res.code == 2 and "--compare shows one image" in res.err


def test_display_rgb_layouts():
    assert to_8bit(np.array([0, 257, 65535], np.uint16)).tolist() == [0, 1, 255]
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert display_rgb(grey).shape == (3, 4, 3) and (display_rgb(grey)[..., 1] == grey).all()
    rgba = np.zeros((3, 4, 4), np.uint16)
    assert display_rgb(rgba).shape == (3, 4, 3) and display_rgb(rgba).dtype == np.uint8
    # transparency is shown over white (the image audit: the colour hidden under transparent pixels showed)
    px = np.array([[[200, 20, 90, 0], [200, 20, 90, 255], [200, 20, 90, 128]]], np.uint8)
    assert display_rgb(px).tolist() == [[[255, 255, 255], [200, 20, 90], [227, 137, 172]]]


def test_labelled_row_cuts_long_labels_to_their_panel():
    a = np.zeros((20, 30, 3), np.uint8)
    row = labelled_row([("a label far too long for thirty pixels", a), ("b", a)])
    assert row.shape[1] == 64 and row.shape[0] > 20
    assert (row[-20:, :30] == 0).all() and (row[-20:, 34:] == 0).all()
