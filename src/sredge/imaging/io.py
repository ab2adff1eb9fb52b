"""Reading and writing image files with OpenCV, in RGB order.

Reading is checked before and after decoding: the header's pixel size against a limit (nothing
is decoded over it), the file's structure for truncation and corruption (see
:mod:`sredge.imaging.headers`; a decoder that fills a cut-short JPEG with grey is not trusted),
and the decoder's own complaints, which are kept off the terminal and turned into one error.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import InputError
from sredge.imaging.headers import (
    NeedMoreData,
    damage,
    exif_orientation,
    frame_count,
    has_icc_profile,
    png_grey_key,
    read_header,
    tiff_extra_samples,
    tiff_has_extra_samples,
    tiff_orientation,
)
from sredge.interrupts import uninterruptible
from sredge.limits import DEFAULT_MAX_PIXELS, check_pixels

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts")
"""Video files by name (sredge reads any container FFmpeg reads; these are the names it recognises as video)."""

_PREFIX = 1 << 20
"""Bytes read first for the header; the rest only once the size is known to be within the limit."""
_BYTES_PER_PIXEL = 8
"""Most a stored pixel can take (16-bit RGBA, uncompressed); a file far larger than its pixels is not an image."""
_CORRUPT = ("Corrupt JPEG data", "Premature end of JPEG file", "libpng error", "TIFF_Error", "Unexpected end")
"""Decoder messages that mean the picture is damaged even when a decoder returns one."""


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list[str] | None = None) -> np.ndarray:
    """Read an image keeping its layout and sample type.

    Args:
        path: A PNG, JPEG, WebP, BMP or TIFF file (the first frame of an animation, the first page of a
            multi-page TIFF).
        max_pixels: Largest width x height admitted, checked from the header before decoding.
        notes: When given, what the returned image leaves out of the file is appended to it, a line
            each (see :func:`image_notes`).

    Returns:
        (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16 as stored (a grey PNG with a
        ``tRNS`` colour key comes as RGBA, as a grey+alpha PNG does); colour straight, not multiplied by
        alpha (OpenCV multiplies an 8-bit RGBA TIFF's, which is divided back to within ``ceil(127.5 / alpha)``
        levels; under alpha 0 it is lost, with a logged warning); turned and mirrored as its EXIF
        Orientation says (JPEG, PNG, WebP) or its TIFF Orientation tag says (OpenCV's decoder applies
        that one), so it is upright as a viewer shows it.

    Raises:
        InputError: The file is missing, over ``max_pixels``, truncated or corrupt, or not an image
            OpenCV can decode.
    """
    path = Path(path)
    data = _read_checked(path, max_pixels)
    buf = np.frombuffer(data, np.uint8)
    said: list[str] = []
    with _decoder_messages(said):
        try:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:
            raise InputError(f"{path} could not be decoded ({_last_line(str(exc))})") from None
    text = "".join(said)
    if text:
        log.debug("decoder messages for %s: %s", path, text.strip())
    bad = [line for line in text.splitlines() if any(k in line for k in _CORRUPT)]
    if img is None or bad:
        why = _decoder_line(bad[0] if bad else text) or "OpenCV cannot decode it"
        raise InputError(f"{path} is corrupt or not an image OpenCV can read ({why})")
    if notes is not None:
        notes.extend(image_notes(data, path))
        if (img.ndim == 2 or img.shape[2] in (1, 3)) and tiff_has_extra_samples(data):  # grey+alpha TIFF
            notes.append(f"{path}'s alpha channel is not read (OpenCV's TIFF reader drops it for this layout): "
                         "the output is opaque; save it as PNG to keep its transparency")
    img = upright(_grey_key_as_alpha(img, data), exif_orientation(data))  # WebP's EXIF follows the image data
    if img.ndim == 3 and img.shape[2] == 4 and img.dtype == np.uint8 and tiff_extra_samples(data)[:1] == (2,) \
            and _opencv_premultiplies_tiff_alpha():
        img = _unpremultiplied(img, path)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    return img


def image_notes(data: bytes, path: str | Path) -> list[str]:
    """What :func:`read_image` leaves out of an image file, one line each; empty when nothing (pure).

    The frames after the first of an animated PNG or WebP, the pages after the first of a TIFF, and an
    embedded ICC colour profile (the pixels are taken as sRGB and no profile is written).

    Args:
        data: The whole file.
        path: Its name, for the lines.
    """
    notes = []
    frames = frame_count(data)
    if frames > 1:
        kind = {b"\x89P": "an animated PNG", b"RI": "an animated WebP"}.get(bytes(data[:2]), "a multi-page TIFF")
        unit = "pages" if kind.endswith("TIFF") else "frames"
        notes.append(f"only the first of {frames} {unit} of {path} is upscaled ({kind}): "
                     f"split it into single images to upscale the others")
    if has_icc_profile(data):
        notes.append(f"{path}'s ICC colour profile is not kept: its colours are read as sRGB and the output "
                     "carries no profile; convert it to sRGB first if they differ")
    return notes


def _grey_key_as_alpha(img: np.ndarray, data: bytes) -> np.ndarray:
    """A decoded grey PNG with a ``tRNS`` colour key as BGRA (OpenCV drops the key); other images unchanged."""
    key = png_grey_key(data) if img.ndim == 2 or img.shape[2] == 1 else None
    if key is None:
        return img
    depth, level = key
    grey = img.reshape(img.shape[:2])
    # OpenCV widens 1, 2 and 4-bit samples to 8 bits by replication (1-bit 1 -> 255, 2-bit 1 -> 85)
    level *= (255 // ((1 << depth) - 1)) if depth < 8 else 1
    full = np.iinfo(grey.dtype).max
    alpha = np.where(grey == level, 0, full).astype(grey.dtype)
    return np.dstack([grey, grey, grey, alpha])


@functools.cache
def _opencv_premultiplies_tiff_alpha() -> bool:
    """Whether this OpenCV multiplies the colour of an 8-bit TIFF with unassociated alpha by it, tried once on a
    one-pixel TIFF built here (colour 200, alpha 128: 100 when it does). A later OpenCV that stops doing so is
    not "corrected" into brighter colour."""
    depths_at, ifd_at = 12, 20  # header (8 bytes), the pixel (4), its four BitsPerSample values (8), directory
    tags = ((256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 4, depths_at), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8),
            (277, 3, 1, 4), (278, 3, 1, 1), (279, 4, 1, 4), (338, 3, 1, 2))  # (tag, type, count, value or offset)
    data = (b"II*\0" + struct.pack("<I", ifd_at) + bytes([200, 200, 200, 128]) + struct.pack("<4H", 8, 8, 8, 8)
            + struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + bytes(4))
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return False
    return img is not None and img.shape == (1, 1, 4) and int(img[0, 0, 0]) == 100


def _unpremultiplied(bgra: np.ndarray, path: Path) -> np.ndarray:
    """Straight colour back from what OpenCV decodes an 8-bit TIFF with unassociated alpha to (pure but for a
    logged warning).

    OpenCV reads 8-bit colour TIFFs through libtiff's ``TIFFRGBAImage``, which multiplies straight colour by
    alpha: ``round(c * a / 255)`` (checked against every c, a; see :func:`_opencv_premultiplies_tiff_alpha`).
    Dividing back, ``round(p * 255 / a)``, recovers
    c to within the rounding the multiplication threw away, at most ``ceil(127.5 / a)`` levels: exact at
    alpha 255, within 1 from alpha 128 (0.5 on average), within 2 at alpha 64 (1.0 on average); 16-bit TIFFs
    are read as stored and never come here. Where alpha is 0 the colour was multiplied to black and is lost:
    a warning names the file.

    Args:
        bgra: (H, W, 4) uint8 BGRA, colour premultiplied by alpha, alpha in [0, 255].
        path: The file, for the warning.

    Returns:
        (H, W, 4) uint8 BGRA, colour straight (clipped to 255), alpha unchanged.
    """
    colour, alpha = bgra[..., :3].astype(np.uint16), bgra[..., 3:].astype(np.uint16)  # p * 255 + a fits 16 bits
    divisor = np.maximum(alpha, 1)  # alpha 0: the colour is 0 and stays 0
    colour *= 255
    colour += divisor // 2
    colour //= divisor
    out = bgra.copy()
    out[..., :3] = np.minimum(colour, 255)
    lost = alpha.size - np.count_nonzero(alpha)
    if lost:
        log.warning("%s: the colour of its %d fully transparent pixels was lost by OpenCV's TIFF decoder (it "
                    "multiplies colour by alpha); a PNG keeps it", path, lost)
    return out


def upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """An (H, W[, C]) image turned and mirrored as EXIF ``orientation`` (1-8) says; 1: unchanged.

    See :func:`sredge.imaging.headers.exif_orientation` for the values; 5-8 swap height and width.
    """
    turned = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
              5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
              7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}.get(orientation)
    return np.ascontiguousarray(turned(img)) if turned is not None else img


_QUALITY_FLAGS = {".jpg": cv2.IMWRITE_JPEG_QUALITY, ".jpeg": cv2.IMWRITE_JPEG_QUALITY,
                  ".webp": cv2.IMWRITE_WEBP_QUALITY}


def write_image(path: str | Path, img: np.ndarray, quality: int | None = None) -> Path:
    """Write (H, W) / (H, W, 3) RGB / (H, W, 4) RGBA uint8 or uint16 atomically; format from the suffix.

    Args:
        path: Output file; its suffix gives the format.
        img: The image, RGB(A) channel order.
        quality: 1..100 for JPEG and WebP (None: OpenCV's default); ignored by lossless formats.

    Raises:
        InputError: Unwritable location, an image that is not uint8/uint16 grey, RGB or RGBA (a float image
            was written as 0s and 1s: black), or a format that cannot hold the image (e.g. 16-bit JPEG, a
            WebP over 16383 pixels a side; see :func:`check_encodable_size`).
    """
    path = check_writable(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"cannot tell the image format of {path}: "
                         f"use a suffix such as .png ({', '.join(IMAGE_SUFFIXES)})")
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"cannot write {path}: images are written from uint8 or uint16 samples, not {img.dtype} "
                         "(a float image in [0, 1]: np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3, 4))):
        raise InputError(f"cannot write {path}: an image is (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, channels "
                         f"last, not an array of shape {img.shape}")
    check_encodable_size(path, img.shape[1], img.shape[0])
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if img.dtype == np.uint16 and path.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".webp"):
        raise InputError(f"{path.suffix} cannot store 16-bit samples; write .png or .tif")
    flag = _QUALITY_FLAGS.get(path.suffix.lower())
    params = [flag, int(quality)] if quality is not None and flag is not None else []
    said: list[str] = []
    raised = ""
    with _decoder_messages(said):  # encoders complain there too (libpng warnings, OpenCV's log)
        try:
            ok, buf = cv2.imencode(path.suffix, img, params)
        except cv2.error as exc:
            ok, raised = False, _last_line(str(exc))
    text = "".join(said)
    if text:
        log.debug("encoder messages for %s: %s", path, text.strip())
    if not ok:
        why = raised or _encoder_line(text) or "no reason given"
        others = " or ".join(s for s in (".png", ".tif") if s != path.suffix.lower())
        raise InputError(f"OpenCV could not write {path} as {path.suffix} ({why}): choose {others}")
    return write_bytes_atomic(path, buf.tobytes())


_MAX_SIDE = {".webp": 16383, ".jpg": 65500, ".jpeg": 65500, ".png": 1_000_000}
"""Most pixels a side this OpenCV's encoders write (tried): libwebp's; libjpeg-turbo's JPEG_MAX_DIMENSION (not
the format's 65535); libpng's default user limit. TIFF and BMP have none (OpenCV reads back 2**20 a side)."""


def check_encodable_size(path: str | Path, width: int, height: int) -> None:
    """Refuse an output size the format of ``path`` (from its suffix) cannot store, before any work (pure).

    Args:
        path: The output file; an unknown suffix is not checked here (:func:`write_image` refuses it).
        width: Output width in pixels.
        height: Output height in pixels.

    Raises:
        InputError: One line naming the limit and the formats that hold the size.
    """
    suffix = Path(path).suffix.lower()
    limit = _MAX_SIDE.get(suffix)
    if limit is None or max(width, height) <= limit:
        return
    fits = [s for s in (".png", ".tif") if max(width, height) <= _MAX_SIDE.get(s, 1 << 31)]
    raise InputError(f"{path} would be {width}x{height}: {suffix} stores at most {limit} pixels a side; "
                     f"choose {' or '.join(fits)}")


def read_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB (checked as :func:`read_image` checks it).

    Returns:
        (H, W, 3) uint8 (or uint16 for 16-bit files) in R, G, B order; greyscale files
        are replicated to three channels and alpha is dropped.

    Raises:
        InputError: See :func:`read_image`.
    """
    img = read_image(path, max_pixels)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def read_bundled_rgb(name: str) -> np.ndarray:
    """A photo shipped in ``sredge.data`` (e.g. ``"astronaut.jpg"``) as (H, W, 3) uint8 RGB (see :func:`read_rgb`)."""
    with resources.as_file(resources.files("sredge.data") / name) as path:
        return read_rgb(path)


def to_float(img: np.ndarray) -> np.ndarray:
    """Integer image -> float32 in [0, 1] (uint8 / 255, uint16 / 65535)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of an image, upright (see :func:`read_image`), from its header alone, without decoding it.

    Args:
        path: The image file.
        max_pixels: When given, an image over this many pixels is refused (``--max-pixels``).

    Raises:
        InputError: Missing, or not a PNG, JPEG, WebP, BMP or TIFF file with a readable header, or over
            ``max_pixels``.
    """
    path = Path(path)
    header, data, size = _header(path)
    if header is None:  # a TIFF whose directory lies beyond the first MB
        if size > DEFAULT_MAX_PIXELS * _BYTES_PER_PIXEL + _PREFIX:
            raise InputError(f"{path} is {size / 1e6:.0f} MB and its header is not in the first MB: "
                             "not an image within --max-pixels")
        data = _read_all(path)
        try:
            header = read_header(data)
        except ValueError as exc:  # NeedMoreData included: the file ends inside its header
            raise InputError(f"{path} is truncated or corrupt ({exc})") from None
    if max_pixels is not None:
        check_pixels(str(path), header.width, header.height, max_pixels)
    if header.format == "webp" and len(data) < size:
        data = _webp_exif(path)  # its EXIF chunk follows the image data, often beyond the first MB
    turned = (tiff_orientation(data) if header.format == "tiff" else exif_orientation(data)) >= 5
    return (header.width, header.height) if turned else (header.height, header.width)


def opencv_pixel_limit() -> int:
    """Pixels OpenCV itself decodes at most: ``OPENCV_IO_MAX_IMAGE_PIXELS`` or its default, 2**30."""
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    except ValueError:
        return 1 << 30


def _header(path: Path):
    """(header, bytes read so far, file size): the header from a prefix, or the whole file when it lies further."""
    if not path.is_file():
        raise InputError(f"no such image file: {path}")
    try:
        with uninterruptible(), path.open("rb") as f:  # a stop meanwhile waits for the close (see _read_all)
            size = os.fstat(f.fileno()).st_size
            data = f.read(_PREFIX)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes): not an image")
    try:
        return read_header(data), data, size
    except NeedMoreData:
        if len(data) >= size:
            raise InputError(f"{path} is truncated or corrupt (the file ends inside its header)") from None
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return None, data, size  # the header lies beyond the prefix (TIFF directories are often at the end)


def _webp_exif(path: Path) -> bytes:
    """A WebP file's RIFF header and its EXIF chunk (up to 1 MB of it), found by walking the chunks' sizes:
    the image data between them is not read."""
    try:
        with uninterruptible(), path.open("rb") as f:  # see _read_all
            head, pos = f.read(12), 12
            for _ in range(1 << 16):  # an animation has a chunk a frame
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    break
                length = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"EXIF":
                    return head + chunk + f.read(min(length, _PREFIX))
                pos += 8 + length + (length & 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return head


def _read_checked(path: Path, max_pixels: int) -> bytes:
    """The whole file, once its header is within the limits and its structure complete."""
    header, data, size = _header(path)
    if header is None:
        if size > max_pixels * _BYTES_PER_PIXEL + _PREFIX:
            raise InputError(f"{path} is {size / 1e6:.0f} MB and its header is not in the first MB: "
                             "not an image within --max-pixels")
        data = _read_all(path)
        try:
            header = read_header(data)
        except NeedMoreData:
            raise InputError(f"{path} is truncated or corrupt (the file ends inside its header)") from None
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
    check_pixels(str(path), header.width, header.height, max_pixels)
    cv_limit = opencv_pixel_limit()
    if header.pixels > cv_limit or max(header.width, header.height) > 1 << 20:
        raise InputError(f"{path} is {header.width}x{header.height} pixels, more than OpenCV decodes "
                         f"({cv_limit} pixels, 1048576 per side): set OPENCV_IO_MAX_IMAGE_PIXELS "
                         "(and OPENCV_IO_MAX_IMAGE_WIDTH / _HEIGHT) in the environment")
    if size > header.pixels * _BYTES_PER_PIXEL + (64 << 20):
        raise InputError(f"{path} is {size / 1e6:.0f} MB for a {header.width}x{header.height} image: "
                         "not a plain image file")
    if len(data) < size:
        data = _read_all(path)
    why = damage(data, header)
    if why is not None:
        raise InputError(f"{path} is truncated or corrupt: {why}")
    return data


def _read_all(path: Path) -> bytes:
    """The file's bytes. A stop signal meanwhile is raised once the file is closed: one landing between
    ``open`` and its ``with`` would leave the handle to the garbage collector (a ResourceWarning)."""
    try:
        with uninterruptible(), path.open("rb") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _decoder_messages(said: list[str]) -> Iterator[None]:
    """Append to ``said`` what C libraries (libjpeg, libpng, libtiff, OpenCV's log) write to file descriptor 2
    meanwhile.

    Decoders report damage there as stray lines, encoders their failures; the caller decides what they mean and
    the terminal gets at most one error line. The descriptor is process-wide, so captures are serialised.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said.append(sink.read().decode("utf-8", "replace"))


def _decoder_line(text: str) -> str:
    """The gist of a decoder message: its last non-empty line without OpenCV's log prefix."""
    return _last_line(text).split(") ")[-1] if "global " in text else _last_line(text)


def _encoder_line(text: str) -> str:
    """The first line an encoder wrote, without OpenCV's log prefix ("[ERROR:0@0.1] global file.cpp:12 func")."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return re.sub(r"^\[[^\]]*\]\s+global\s+\S+\s+\S+\s+", "", first)[:160]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""
