"""EXIF Orientation: a phone photo is read upright, as OpenCV's own imread (which applies the tag) shows it."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from sredge.imaging.headers import exif_orientation
from sredge.imaging.io import image_size, read_image, upright


def _exif(orientation: int, order: str = "<") -> bytes:
    """A TIFF-structured EXIF block whose first directory holds only Orientation."""
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    return (head + struct.pack(order + "IH", 8, 1) + struct.pack(order + "HHI", 0x0112, 3, 1)
            + struct.pack(order + "HH", orientation, 0) + struct.pack(order + "I", 0))


def _jpeg(img_bgr: np.ndarray, block: bytes) -> bytes:
    data = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    app1 = b"Exif\0\0" + block
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _png(img_bgr: np.ndarray, block: bytes) -> bytes:
    data = cv2.imencode(".png", img_bgr)[1].tobytes()
    chunk = struct.pack(">I", len(block)) + b"eXIf" + block + struct.pack(">I", zlib.crc32(b"eXIf" + block))
    return data[:33] + chunk + data[33:]  # after IHDR, before the image data


def _webp(img_bgr: np.ndarray, block: bytes) -> bytes:
    """A lossless WebP made extended (VP8X, EXIF flag) with an ``EXIF`` chunk after the image."""
    data = cv2.imencode(".webp", img_bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    h, w = img_bgr.shape[:2]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08, 0, 0, 0]) + (w - 1).to_bytes(3, "little") \
        + (h - 1).to_bytes(3, "little")
    exif = b"EXIF" + struct.pack("<I", len(block)) + block + (b"\0" if len(block) & 1 else b"")
    body = b"WEBP" + vp8x + data[12:] + exif
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def photo() -> np.ndarray:
    img = (np.random.default_rng(0).random((40, 64, 3)) * 255).astype(np.uint8)
    img[:10, :20] = (0, 0, 255)  # a red corner (BGR): any turn or mirror moves it
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind,order", [("jpg", "<"), ("jpg", ">"), ("png", "<"), ("webp", ">")])
def test_read_upright_as_opencv_shows_it(tmp_path, photo, orientation, kind, order):
    path = tmp_path / f"p.{kind}"
    path.write_bytes({"jpg": _jpeg, "png": _png, "webp": _webp}[kind](photo, _exif(orientation, order)))
    shown = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)  # OpenCV applies the tag
    ours = read_image(path)
    assert ours.shape == shown.shape and np.array_equal(ours, shown)
    assert image_size(path) == ours.shape[:2]
    assert (ours.shape[:2] == (64, 40)) == (orientation >= 5)


def test_a_damaged_or_absent_tag_reads_as_stored(tmp_path, photo):
    stored = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    for block in (_exif(6)[:14], b"XX" + _exif(6)[2:], _exif(9)):  # cut short, no byte order, out of range
        path = tmp_path / "p.png"
        path.write_bytes(_png(photo, block))
        assert exif_orientation(path.read_bytes()) == 1 and np.array_equal(read_image(path), stored)
    assert exif_orientation(cv2.imencode(".jpg", photo)[1].tobytes()) == 1
    assert np.array_equal(upright(stored, 1), stored)


def test_sr_run_writes_a_phone_photo_upright(tmp_path, photo):
    src = tmp_path / "phone.jpg"
    src.write_bytes(_jpeg(photo, _exif(6)))  # taken holding the phone upright: stored on its side
    out = tmp_path / "up.png"
    res = subprocess.run([sys.executable, "-m", "sredge.cli.run", "--image", str(src), "-o", str(out), "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert cv2.imread(str(out)).shape == (128, 80, 3)  # upright x2, not 80x128 on its side
