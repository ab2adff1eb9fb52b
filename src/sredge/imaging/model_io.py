"""Turning images into network inputs and network outputs back into images, per descriptor.

The one place that knows what ``color_space``, ``value_range`` and ``pre_upsample``
mean for the data a network sees.
"""

from __future__ import annotations

import cv2
import numpy as np

from sredge.imaging.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from sredge.imaging.resize import imresize
from sredge.models.descriptor import ModelDescriptor


def image_to_input(rgb: np.ndarray, desc: ModelDescriptor) -> np.ndarray:
    """Prepare one RGB image for a network.

    Args:
        rgb: (H, W, 3) float RGB in [0, 1] (the low-resolution image).
        desc: The network's descriptor.

    Returns:
        (1, C, H', W') float32 in [0, desc.value_range]: the Y channel for luma-only
        networks, YCbCr / BGR for ``ycbcr`` / ``bgr`` networks, RGB otherwise; H' = H * scale when the network expects a
        bicubic-upsampled input (MATLAB kernel), else H' = H.
    """
    if desc.color_space == "y":
        plane = rgb_to_y(rgb)[..., None]
    elif desc.color_space == "ycbcr":
        plane = rgb_to_ycbcr(rgb)
    elif desc.color_space == "bgr":
        plane = np.asarray(rgb, np.float32)[..., ::-1]
    else:
        plane = np.asarray(rgb, np.float32)
    if desc.pre_upsample:
        plane = imresize(plane, scale=desc.scale)
        if plane.ndim == 2:
            plane = plane[..., None]
    return (np.ascontiguousarray(plane.transpose(2, 0, 1))[None] * desc.value_range).astype(np.float32)


def output_to_image(out: np.ndarray, desc: ModelDescriptor) -> np.ndarray:
    """Network output (1, C, H, W) in [0, value_range] -> (H, W, C) float32 in [0, 1], clipped.

    C is 1 (Y) for luma-only networks and 3 (RGB) otherwise; ``ycbcr``/``bgr`` outputs are converted to RGB.
    """
    plane = np.asarray(out[0], np.float32).transpose(1, 2, 0) / desc.value_range
    if desc.color_space == "ycbcr":
        plane = ycbcr_to_rgb(plane)
    elif desc.color_space == "bgr":
        plane = plane[..., ::-1]
    return np.clip(plane, 0.0, 1.0)


def chroma_of(rgb: np.ndarray, desc: ModelDescriptor) -> np.ndarray | None:
    """The chroma a luma-only network does not see: (H, W, 2) CbCr in [0, 1]; None for other networks."""
    if desc.color_space != "y":
        return None
    return rgb_to_ycbcr(rgb)[..., 1:]


def output_to_rgb(out: np.ndarray, desc: ModelDescriptor, chroma: np.ndarray | None) -> np.ndarray:
    """Network output (1, C, H', W') -> (H', W', 3) float32 RGB in [0, 1].

    For luma-only networks the low-resolution ``chroma`` (from :func:`chroma_of`) is upscaled
    bicubically (OpenCV; chroma detail is below what the eye resolves, so the faster kernel is
    used) and recombined with the network's Y.
    """
    img = output_to_image(out, desc)
    if desc.color_space != "y":
        return img
    if chroma is None:
        raise ValueError("a luma-only network's output needs the input's chroma")
    h, w = img.shape[:2]
    cbcr = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(ycbcr_to_rgb(np.concatenate([img, cbcr], axis=2)), 0.0, 1.0)
