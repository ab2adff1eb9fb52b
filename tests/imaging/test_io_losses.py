"""Nothing read or written is silently lost or garbled: a large WebP's orientation, a grey PNG's colour key,
the frames, pages and colour profile a read leaves out (named in notes), and sizes a format cannot store."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.imaging.io import check_encodable_size, image_notes, image_size, read_image, write_image
from tests.imaging.test_orientation import _exif


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def _icc(size: int = 132) -> bytes:
    """A display-class RGB ICC profile header (no tags), padded to ``size`` bytes."""
    head = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
            + bytes(128 - 40))
    return head + bytes(size - len(head))


def _webp(img_bgr: np.ndarray, before: bytes = b"", after: bytes = b"", flags: int = 0) -> bytes:
    """A lossless WebP from OpenCV made extended (VP8X with ``flags``), with chunks before and after its image."""
    simple = cv2.imencode(".webp", img_bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    h, w = img_bgr.shape[:2]
    vp8x = _riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + before + simple[12:] + after
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def photo() -> np.ndarray:
    img = (np.random.default_rng(1).random((24, 40, 3)) * 255).astype(np.uint8)
    img[:6, :10] = (0, 0, 255)  # a red corner (BGR): any turn moves it
    return img


@pytest.mark.parametrize("pad", ["iccp", "unknown"])
def test_webp_orientation_is_read_beyond_the_first_mib(tmp_path, photo, pad):
    exif = _riff_chunk(b"EXIF", _exif(6))
    if pad == "iccp":  # a large (printer-style) profile before the image data, EXIF after it
        data = _webp(photo, before=_riff_chunk(b"ICCP", _icc(1_100_000)), after=exif, flags=0x28)
    else:  # an unknown chunk after the image data, which readers skip
        data = _webp(photo, after=_riff_chunk(b"ZZZZ", bytes(1_100_000)) + exif, flags=0x08)
    assert data.index(b"EXIF") > 1 << 20
    path = tmp_path / "phone.webp"
    path.write_bytes(data)
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(stored, photo)  # OpenCV reads the file as written
    ours = read_image(path)
    assert np.array_equal(ours, np.rot90(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), -1))
    assert image_size(path) == ours.shape[:2] == (40, 24)


def _grey_png(samples: np.ndarray, depth: int, key: int | None) -> bytes:
    """A grey PNG (colour type 0) of ``samples`` (0..2**depth-1) at ``depth`` bits, with a tRNS key when given."""
    h, w = samples.shape
    if depth == 16:
        rows = [samples[y].astype(">u2").tobytes() for y in range(h)]
    else:
        per = 8 // depth
        padded = np.zeros((h, -(-w // per) * per), np.uint8)
        padded[:, :w] = samples
        shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)  # the first sample in the high bits
        packed = (padded.reshape(h, -1, per) << shifts).sum(axis=2, dtype=np.uint8)
        rows = [packed[y].tobytes() for y in range(h)]
    raw = b"".join(b"\0" + row for row in rows)
    trns = _png_chunk(b"tRNS", struct.pack(">H", key)) if key is not None else b""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)) + trns
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_a_grey_png_colour_key_becomes_alpha(tmp_path, depth):
    top = (1 << depth) - 1
    samples = (np.arange(5 * 7).reshape(5, 7) * 7919 % (top + 1)).astype(np.uint16)
    key = int(samples[2, 3])
    path = tmp_path / "key.png"
    path.write_bytes(_grey_png(samples, depth, key))
    plain = tmp_path / "plain.png"
    plain.write_bytes(_grey_png(samples, depth, None))
    grey = cv2.imdecode(np.fromfile(plain, np.uint8), cv2.IMREAD_UNCHANGED)  # OpenCV widens 1-4 bits to 8
    assert np.array_equal(read_image(plain), grey)  # no key: grey stays grey
    ours = read_image(path)
    full = 65535 if depth == 16 else 255
    assert ours.shape == (5, 7, 4) and ours.dtype == (np.uint16 if depth == 16 else np.uint8)
    assert all(np.array_equal(ours[..., c], grey) for c in range(3))
    assert np.array_equal(ours[..., 3], np.where(samples == key, 0, full))
    assert 0 < (ours[..., 3] == 0).sum() < samples.size


def _animation(ext: str, frames: list[np.ndarray]) -> bytes:
    anim = cv2.Animation()
    anim.frames, anim.durations = frames, [100] * len(frames)
    ok, buf = cv2.imencodeanimation(ext, anim)
    assert ok
    return buf.tobytes()


def _with_profile(kind: str, img_bgr: np.ndarray) -> bytes:
    """An image file of ``kind`` carrying an ICC profile the way its format embeds one."""
    if kind == "png":
        data = cv2.imencode(".png", img_bgr)[1].tobytes()
        return data[:33] + _png_chunk(b"iCCP", b"display\0\0" + zlib.compress(_icc())) + data[33:]
    if kind == "jpg":
        data = cv2.imencode(".jpg", img_bgr)[1].tobytes()
        app2 = b"ICC_PROFILE\0\x01\x01" + _icc()
        return data[:2] + b"\xff\xe2" + struct.pack(">H", len(app2) + 2) + app2 + data[2:]
    return _webp(img_bgr, before=_riff_chunk(b"ICCP", _icc()), flags=0x20)


@pytest.mark.parametrize("kind", ["apng", "animated webp", "multi-page tiff", "png icc", "jpg icc", "webp icc"])
def test_notes_name_frames_pages_and_profiles_left_out(tmp_path, photo, kind):
    frames = [np.full_like(photo, v) for v in (10, 128, 250)]
    data, suffix, want = {
        "apng": (lambda: _animation(".png", frames), ".png", "only the first of 3 frames of {} is upscaled"),
        "animated webp": (lambda: _animation(".webp", frames), ".webp", "only the first of 3 frames of {}"),
        "multi-page tiff": (lambda: cv2.imencodemulti(".tif", frames)[1].tobytes(), ".tif",
                            "only the first of 3 pages of {}"),
        "png icc": (lambda: _with_profile("png", photo), ".png", "{}'s ICC colour profile is not kept"),
        "jpg icc": (lambda: _with_profile("jpg", photo), ".jpg", "{}'s ICC colour profile is not kept"),
        "webp icc": (lambda: _with_profile("webp", photo), ".webp", "{}'s ICC colour profile is not kept"),
    }[kind]
    path = tmp_path / f"in{suffix}"
    path.write_bytes(data())
    notes: list[str] = []
    img = read_image(path, notes=notes)
    assert len(notes) == 1 and notes[0].startswith(want.format(path)), notes
    assert notes == image_notes(path.read_bytes(), path)
    if kind in ("apng", "animated webp", "multi-page tiff"):
        assert (img == 10).all()  # the first frame, as before
    else:
        assert img.shape == photo.shape


def test_still_images_have_no_notes(tmp_path, photo):
    for suffix in (".png", ".jpg", ".webp", ".tif"):
        data = cv2.imencode(suffix, photo)[1].tobytes()
        assert image_notes(data, f"x{suffix}") == []
        path = tmp_path / f"x{suffix}"
        path.write_bytes(data)
        notes: list[str] = []
        read_image(path, notes=notes)
        assert notes == []


@pytest.mark.parametrize("suffix,limit", [(".webp", 16383), (".jpg", 65500), (".jpeg", 65500), (".png", 1_000_000)])
def test_write_image_refuses_a_side_over_the_format_limit_in_one_line(tmp_path, capfd, suffix, limit):
    for shape in ((1, limit + 1, 3), (limit + 1, 1)):
        out = tmp_path / f"wide{suffix}"
        with pytest.raises(InputError) as err:
            write_image(out, np.zeros(shape, np.uint8))
        h, w = shape[:2]
        fits = ".tif" if suffix == ".png" else ".png or .tif"
        assert str(err.value) == (f"{out} would be {w}x{h}: {suffix} stores at most {limit} pixels a side; "
                                  f"choose {fits}")
        assert not out.exists()
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""  # no "libpng warning" or OpenCV log lines
    written = write_image(tmp_path / f"edge{suffix}", np.zeros((1, limit, 3), np.uint8))  # the limit itself is fine
    assert cv2.imread(str(written), cv2.IMREAD_UNCHANGED).shape[:2] == (1, limit)


def test_check_encodable_size_before_any_work():
    check_encodable_size("out.tif", 2_000_000, 1)  # no side limit below OpenCV's own
    check_encodable_size("out.webp", 16383, 16383)
    check_encodable_size("out.unknown", 10**7, 1)  # write_image refuses the suffix itself
    with pytest.raises(InputError, match=r"^out\.JPG would be 70000x10: \.jpg stores at most 65500 pixels a side; "
                                         r"choose \.png or \.tif$"):
        check_encodable_size("out.JPG", 70000, 10)


def test_sr_run_says_what_an_image_loses_and_refuses_an_unwritable_size_before_inference(cli, tmp_path):
    """The image audit, through sr-run: an animated WebP's frames after the first were dropped with only
    'wrote 1 image(s)'; --target 20000x1 into .webp failed after inference with raw encoder lines."""
    frames = [np.full((24, 32, 3), v, np.uint8) for v in (40, 120, 200)]
    anim = tmp_path / "anim.webp"
    anim.write_bytes(_animation(".webp", frames))
    res = cli("run", "--image", anim, "-o", tmp_path / "out.webp", "-q")
    assert res.code == 0, res.err
    assert res.err.strip() == (f"sr-run: note: only the first of 3 frames of {anim} is upscaled (an animated WebP): "
                               "split it into single images to upscale the others")
    res = cli("run", "--image", anim, "-o", tmp_path / "wide.webp", "--target", "20000x1", "-q")
    assert res.code == 2 and res.err.strip().splitlines()[-1].endswith(
        "wide.webp would be 20000x1: .webp stores at most 16383 pixels a side; choose .png or .tif"), res.err
    assert not (tmp_path / "wide.webp").exists()


def _grey_alpha_tiff(grey: np.ndarray, alpha: np.ndarray) -> bytes:
    """An uncompressed little-endian TIFF of 8-bit grey + unassociated alpha (ExtraSamples 2), by hand."""
    h, w = grey.shape
    pixels = np.dstack([grey, alpha]).astype(np.uint8).tobytes()
    strip_at = 8
    ifd_at = strip_at + len(pixels) + (len(pixels) % 2)
    short, long_ = (lambda *v: struct.pack("<2H", *(v + (0,) * (2 - len(v))))), (lambda v: struct.pack("<I", v))
    tags = [(256, 3, 1, short(w)), (257, 3, 1, short(h)), (258, 3, 2, short(8, 8)),  # two 8-bit samples, inline
            (259, 3, 1, short(1)), (262, 3, 1, short(1)), (273, 4, 1, long_(strip_at)), (277, 3, 1, short(2)),
            (278, 3, 1, short(h)), (279, 4, 1, long_(len(pixels))), (284, 3, 1, short(1)), (338, 3, 1, short(2))]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHI", t, k, n) + v for t, k, n, v in tags)
    return b"II*\0" + struct.pack("<I", ifd_at) + pixels + b"\0" * (len(pixels) % 2) + ifd + struct.pack("<I", 0)


def test_a_grey_alpha_tiff_says_its_alpha_is_not_read(tmp_path):
    """The image audit: a grey+alpha TIFF came out plain grey, its transparency gone without a word (OpenCV's
    TIFF reader drops the second sample). sr-run now says so; an RGBA TIFF, whose alpha is read, does not."""
    grey = np.tile(np.arange(10, dtype=np.uint8) * 20, (8, 1))
    alpha = np.full((8, 10), 255, np.uint8)
    alpha[:, :5] = 0
    path = tmp_path / "la.tif"
    path.write_bytes(_grey_alpha_tiff(grey, alpha))
    notes: list[str] = []
    img = read_image(path, notes=notes)
    assert img.shape[:2] == (8, 10) and (img.ndim == 2 or img.shape[2] in (1, 3))  # OpenCV drops the alpha
    assert notes == [f"{path}'s alpha channel is not read (OpenCV's TIFF reader drops it for this layout): "
                     "the output is opaque; save it as PNG to keep its transparency"]
    rgba = tmp_path / "rgba.tif"
    assert cv2.imwrite(str(rgba), np.dstack([grey, grey, grey, alpha]))
    notes = []
    assert read_image(rgba, notes=notes).shape == (8, 10, 4) and notes == []
