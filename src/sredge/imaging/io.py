"""Reading and writing image files with OpenCV, in RGB order."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image keeping its layout and sample type.

    Returns:
        (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16 as stored.

    Raises:
        InputError: The file is missing or is not an image OpenCV can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such image file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path} is not an image OpenCV can read")
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    return img


def write_image(path: str | Path, img: np.ndarray) -> Path:
    """Write (H, W) / (H, W, 3) RGB / (H, W, 4) RGBA uint8 or uint16 atomically; format from the suffix.

    Raises:
        InputError: Unwritable location, or a format that cannot hold the image (e.g. 16-bit JPEG).
    """
    path = check_writable(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"cannot tell the image format of {path}: use a suffix such as .png ({', '.join(IMAGE_SUFFIXES)})")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if img.dtype == np.uint16 and path.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".webp"):
        raise InputError(f"{path.suffix} cannot store 16-bit samples; write .png or .tif")
    ok, buf = cv2.imencode(path.suffix, img)
    if not ok:
        raise InputError(f"OpenCV cannot encode {path.suffix!r} images")
    return write_bytes_atomic(path, buf.tobytes())


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB.

    Returns:
        (H, W, 3) uint8 (or uint16 for 16-bit files) in R, G, B order; greyscale files
        are replicated to three channels and alpha is dropped.

    Raises:
        InputError: The file is missing or is not an image OpenCV can decode.
    """
    img = read_image(path)
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
