"""Reading and writing image files with OpenCV, in RGB order."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sredge.errors import InputError


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB.

    Returns:
        (H, W, 3) uint8 (or uint16 for 16-bit files) in R, G, B order; greyscale files
        are replicated to three channels and alpha is dropped.

    Raises:
        InputError: The file is missing or is not an image OpenCV can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such image file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path} is not an image OpenCV can read")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def to_float(img: np.ndarray) -> np.ndarray:
    """Integer image -> float32 in [0, 1] (uint8 / 255, uint16 / 65535)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)
