"""TIFF tags OpenCV's decoder acts on: unassociated alpha (it multiplies the colour by it; sredge divides back)
and Orientation (it turns the image; :func:`image_size` says the turned size)."""

from __future__ import annotations

import logging
import math
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from sredge.imaging.headers import tiff_extra_samples, tiff_orientation
from sredge.imaging.io import _opencv_premultiplies_tiff_alpha, image_size, read_image, upright


def _tiff(img: np.ndarray, extra: int | None = None, orientation: int | None = None) -> bytes:
    """An uncompressed little-endian single-strip TIFF of ``img`` by hand (what Pillow writes for RGBA).

    Args:
        img: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16, stored as given (RGB order).
        extra: The ExtraSamples value (1 associated alpha, 2 unassociated); None writes no tag.
        orientation: The Orientation tag (1-8); None writes none.
    """
    h, w = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    bits = img.dtype.itemsize * 8
    pixels = np.ascontiguousarray(img, img.dtype.newbyteorder("<")).tobytes()
    pad = len(pixels) % 2
    depths = struct.pack(f"<{channels}H", *[bits] * channels)  # outside the directory when over 2 values
    depths_at = 8 + len(pixels) + pad
    ifd_at = depths_at + len(depths)

    def short(*v: int) -> bytes:
        return struct.pack("<2H", *(v + (0,) * (2 - len(v))))

    def long_(v: int) -> bytes:
        return struct.pack("<I", v)

    tags = [(256, 3, 1, short(w)), (257, 3, 1, short(h)),
            (258, 3, channels, short(bits) if channels == 1 else long_(depths_at)),
            (259, 3, 1, short(1)), (262, 3, 1, short(2 if channels >= 3 else 1)), (273, 4, 1, long_(8)),
            (274, 3, 1, short(orientation or 1)), (277, 3, 1, short(channels)), (278, 3, 1, short(h)),
            (279, 4, 1, long_(len(pixels))), (284, 3, 1, short(1)), (338, 3, 1, short(extra or 0))]
    tags = [t for t in tags if (t[0] != 274 or orientation is not None) and (t[0] != 338 or extra is not None)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHI", t, k, n) + v for t, k, n, v in tags)
    return b"II*\0" + long_(ifd_at) + pixels + b"\0" * pad + depths + ifd + long_(0)


def _every_colour_and_alpha() -> np.ndarray:
    """(256, 256, 4) uint8 RGBA: row r has colour (r, 255 - r, r // 2), column a has alpha a."""
    c = np.arange(256, dtype=np.uint8)
    rows = np.repeat(c[:, None], 256, axis=1)
    return np.dstack([rows, 255 - rows, rows // 2, np.repeat(c[None, :], 256, axis=0)])


def _decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_opencv_multiplies_unassociated_alpha_as_assumed():
    """What the inverse undoes: libtiff's RGBA reader stores round(c * a / 255) for straight 8-bit colour; an
    OpenCV that stops doing so would make read_image brighten colour, so this is checked first."""
    src = _every_colour_and_alpha()
    got = cv2.cvtColor(_decoded(_tiff(src, extra=2)), cv2.COLOR_BGRA2RGBA)
    a = src[..., 3:].astype(np.float64)
    assert np.array_equal(got[..., 3], src[..., 3])
    assert np.array_equal(got[..., :3], np.round(src[..., :3] * a / 255).astype(np.uint8))
    assert tiff_extra_samples(_tiff(src, extra=2)) == (2,)
    assert _opencv_premultiplies_tiff_alpha()  # read_image's own one-pixel probe agrees


def test_an_unassociated_alpha_tiff_reads_as_its_straight_colour(tmp_path, caplog):
    """The image audit: a Pillow-style RGBA TIFF read darkened where semi-transparent and black where
    transparent, and sr-run wrote that back. Read back now within ceil(127.5 / alpha) levels (the decoder's
    rounding), as read_image's docstring states; exact where opaque."""
    src = _every_colour_and_alpha()
    path = tmp_path / "straight.tif"
    path.write_bytes(_tiff(src, extra=2))
    with caplog.at_level(logging.WARNING, logger="sredge.imaging.io"):
        got = read_image(path)
    assert got.shape == src.shape and got.dtype == np.uint8
    assert np.array_equal(got[..., 3], src[..., 3])
    err = np.abs(got[..., :3].astype(int) - src[..., :3]).max(axis=(0, 2))  # worst level error per alpha
    assert all(err[a] <= math.ceil(127.5 / a) for a in range(1, 256))
    assert (err[64], err[128], err[255]) == (2, 1, 0)
    assert err[64:].max() <= 2 and err[128:].max() <= 1
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: the colour of its 256 fully transparent pixels was lost by OpenCV's TIFF decoder (it multiplies "
        "colour by alpha); a PNG keeps it"]


def test_no_warning_without_fully_transparent_pixels(tmp_path, caplog):
    src = _every_colour_and_alpha()[:, 1:]
    path = tmp_path / "straight.tif"
    path.write_bytes(_tiff(src, extra=2))
    with caplog.at_level(logging.WARNING, logger="sredge.imaging.io"):
        assert np.array_equal(read_image(path)[..., 3], src[..., 3])
    assert caplog.records == []


@pytest.mark.parametrize("extra", [1, 0, None])
def test_other_rgba_tiffs_are_left_as_decoded(tmp_path, extra):
    """Associated (premultiplied) alpha, unspecified extra samples and none at all come as stored."""
    src = _every_colour_and_alpha()
    path = tmp_path / "rgba.tif"
    path.write_bytes(_tiff(src, extra=extra))
    assert np.array_equal(read_image(path), src)


def test_opencv_written_rgba_and_16_bit_and_rgb_tiffs_are_untouched(tmp_path):
    src = _every_colour_and_alpha()
    written = tmp_path / "cv.tif"
    assert cv2.imwrite(str(written), cv2.cvtColor(src, cv2.COLOR_RGBA2BGRA))
    assert tiff_extra_samples(written.read_bytes()) == ()  # OpenCV writes no ExtraSamples tag
    assert np.array_equal(read_image(written), src)
    deep = tmp_path / "deep.tif"
    deep.write_bytes(_tiff(src.astype(np.uint16) * 257, extra=2))  # read sample by sample: never multiplied
    assert np.array_equal(read_image(deep), src.astype(np.uint16) * 257)
    rgb = tmp_path / "rgb.tif"
    rgb.write_bytes(_tiff(src[..., :3], extra=None))
    assert np.array_equal(read_image(rgb), src[..., :3])


def test_sr_run_keeps_the_colour_of_a_semi_transparent_tiff(tmp_path):
    src = np.empty((40, 48, 4), np.uint8)
    src[...] = (200, 120, 40, 128)
    path = tmp_path / "half.tif"
    path.write_bytes(_tiff(src, extra=2))
    out = tmp_path / "up.png"
    res = subprocess.run([sys.executable, "-m", "sredge.cli.run", "--image", str(path), "-o", str(out), "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    centre = got[20:60, 20:76].reshape(-1, 4).astype(int)
    assert np.abs(centre - (200, 120, 40, 128)).max() <= 2, centre.min(axis=0)  # not (100, 60, 20)


@pytest.fixture
def stored() -> np.ndarray:
    img = (np.random.default_rng(0).random((40, 80, 3)) * 255).astype(np.uint8)
    img[:10, :20] = (255, 0, 0)  # a red corner: any turn or mirror moves it
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_image_size_says_the_size_opencv_turns_a_tiff_to(tmp_path, stored, orientation):
    """The image audit: a TIFF tagged Orientation 6 read as 80x40 (OpenCV turns it) but image_size said 40x80."""
    path = tmp_path / "turned.tif"
    path.write_bytes(_tiff(stored, orientation=orientation))
    assert tiff_orientation(path.read_bytes()) == orientation
    img = read_image(path)
    assert np.array_equal(img, upright(stored, orientation))  # turned once, by OpenCV, as EXIF would turn it
    assert image_size(path) == img.shape[:2] == ((80, 40) if orientation >= 5 else (40, 80))


def test_image_size_turns_a_tiff_whose_directory_lies_beyond_the_first_mb(tmp_path):
    big = np.zeros((600, 700, 3), np.uint8)  # 1.26 MB of pixels before the directory
    path = tmp_path / "big.tif"
    path.write_bytes(_tiff(big, orientation=8))
    assert image_size(path) == (700, 600) == read_image(path).shape[:2]


def test_an_absent_or_bad_tiff_orientation_reads_as_stored(tmp_path, stored):
    assert tiff_orientation(_tiff(stored)) == 1
    assert tiff_orientation(_tiff(stored, orientation=9)) == 1
    assert tiff_orientation(_tiff(stored, orientation=6)[:40]) == 1  # the directory not within the bytes given
    assert tiff_orientation(cv2.imencode(".png", stored)[1].tobytes()) == 1
