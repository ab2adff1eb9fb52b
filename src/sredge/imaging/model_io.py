"""Turning images into network inputs and network outputs back into images, per descriptor.

The one place that knows what ``color_space``, ``value_range`` and ``pre_upsample``
mean for the data a network sees.
"""

from __future__ import annotations

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
        networks, YCbCr for ``ycbcr`` networks, RGB otherwise; H' = H * scale when the network expects a
        bicubic-upsampled input (MATLAB kernel), else H' = H.
    """
    if desc.color_space == "y":
        plane = rgb_to_y(rgb)[..., None]
    elif desc.color_space == "ycbcr":
        plane = rgb_to_ycbcr(rgb)
    else:
        plane = np.asarray(rgb, np.float32)
    if desc.pre_upsample:
        plane = imresize(plane, scale=desc.scale)
        if plane.ndim == 2:
            plane = plane[..., None]
    return (np.ascontiguousarray(plane.transpose(2, 0, 1))[None] * desc.value_range).astype(np.float32)


def output_to_image(out: np.ndarray, desc: ModelDescriptor) -> np.ndarray:
    """Network output (1, C, H, W) in [0, value_range] -> (H, W, C) float32 in [0, 1], clipped.

    C is 1 (Y) for luma-only networks and 3 (RGB) otherwise; ``ycbcr`` outputs are converted to RGB.
    """
    plane = np.asarray(out[0], np.float32).transpose(1, 2, 0) / desc.value_range
    if desc.color_space == "ycbcr":
        plane = ycbcr_to_rgb(plane)
    return np.clip(plane, 0.0, 1.0)
