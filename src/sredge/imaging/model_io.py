"""Turning images into network inputs and network outputs back into images, per descriptor.

The one place that knows what ``color_space``, ``value_range`` and ``pre_upsample``
mean for the data a network sees.
"""

from __future__ import annotations

import cv2
import numpy as np

from sredge.imaging.color import YCBCR_TO_RGB, rgb_to_ycbcr, ycbcr_to_rgb
from sredge.imaging.resize import imresize
from sredge.models.descriptor import ModelDescriptor


def image_to_input_and_chroma(rgb: np.ndarray, desc: ModelDescriptor) -> tuple[np.ndarray, np.ndarray | None]:
    """Prepare one RGB image for a network, and keep the chroma a luma-only network does not see.

    Args:
        rgb: (H, W, 3) float RGB in [0, 1] (the low-resolution image).
        desc: The network's descriptor.

    Returns:
        ``(x, chroma)``: x is (1, C, H', W') float32 in [0, desc.value_range]: the Y channel for
        luma-only networks, YCbCr / BGR for ``ycbcr`` / ``bgr`` networks, RGB otherwise; H' = H * scale
        when the network expects a bicubic-upsampled input (MATLAB kernel), else H' = H. chroma is
        (H, W, 2) CbCr in [0, 1] for luma-only networks (one colour transform gives both), else None.
    """
    chroma = None
    if desc.color_space == "y":
        ycc = rgb_to_ycbcr(rgb)
        plane, chroma = ycc[..., :1], ycc[..., 1:]
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
    x = (np.ascontiguousarray(plane.transpose(2, 0, 1))[None] * desc.value_range).astype(np.float32)
    return x, chroma


def image_to_input(rgb: np.ndarray, desc: ModelDescriptor) -> np.ndarray:
    """The network input of :func:`image_to_input_and_chroma` alone: (1, C, H', W') float32."""
    return image_to_input_and_chroma(rgb, desc)[0]


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


def output_to_rgb(out: np.ndarray, desc: ModelDescriptor, chroma: np.ndarray | None) -> np.ndarray:
    """Network output (1, C, H', W') -> (H', W', 3) float32 RGB in [0, 1].

    For luma-only networks the low-resolution ``chroma`` (from :func:`image_to_input_and_chroma`) is upscaled
    bicubically (OpenCV; chroma detail is below what the eye resolves, so the faster kernel is
    used) and recombined with the network's Y.
    """
    if desc.color_space != "y":
        return output_to_image(out, desc)
    if chroma is None:
        raise ValueError("a luma-only network's output needs the input's chroma")
    y = np.asarray(out[0, 0], np.float32) / desc.value_range  # (H', W'), contiguous
    h, w = y.shape
    cbcr = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_CUBIC)
    # cv2.merge of contiguous planes: numpy's concatenate of a transposed view costs 10x more here.
    return np.clip(ycbcr_to_rgb(cv2.merge([y, cbcr[..., 0], cbcr[..., 1]])), 0.0, 1.0)


def output_to_rgb8(out: np.ndarray, desc: ModelDescriptor, chroma: np.ndarray | None) -> np.ndarray:
    """Network output (1, C, H', W') -> (H', W', 3) uint8 RGB: :func:`output_to_rgb`, rounded, in one pass per channel.

    Each RGB channel is a weighted sum of the float output planes (and, for luma-only networks,
    of the bicubically upscaled ``chroma`` planes) that OpenCV rounds and saturates straight
    into uint8: no float RGB image of the output's size is made. The result equals
    ``round(output_to_rgb(...) * 255)`` up to float summation order (at most 1 level; on 2e-5 to
    2e-3 of the values in ``tests/imaging`` and ``benchmarks/bench_output_path.py``).
    """
    planes = [np.ascontiguousarray(out[0, c], np.float32) for c in range(out.shape[1])]  # views when they can be
    if desc.color_space in ("rgb", "bgr"):
        ordered = planes[::-1] if desc.color_space == "bgr" else planes
        return cv2.merge([_u8_sum([(p, 255.0 / desc.value_range)], 0.0) for p in ordered])
    inverse = YCBCR_TO_RGB * 255.0  # (3, 4): [0, 1] YCbCr -> [0, 255] RGB
    if desc.color_space == "y":
        if chroma is None:
            raise ValueError("a luma-only network's output needs the input's chroma")
        h, w = planes[0].shape
        # chroma is only (H, W): resizing its planes apart costs less than splitting an upscaled pair.
        cb, cr = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in cv2.split(chroma))
        ycc = [(planes[0], 1.0 / desc.value_range), (cb, 1.0), (cr, 1.0)]  # (plane, factor to [0, 1])
    else:  # ycbcr
        ycc = [(p, 1.0 / desc.value_range) for p in planes]
    return cv2.merge([
        _u8_sum([(p, k * inverse[row, col]) for col, (p, k) in enumerate(ycc) if abs(inverse[row, col]) > 1e-4],
                inverse[row, 3])
        for row in range(3)
    ])


def _u8_sum(terms: list[tuple[np.ndarray, float]], offset: float) -> np.ndarray:
    """``sum(weight * plane) + offset`` over 1-3 float32 (H, W) planes, rounded and saturated to uint8."""
    if len(terms) == 3:  # fold the last two into one float plane first
        (a, wa), (b, wb), (c, wc) = terms
        return cv2.addWeighted(a, wa, cv2.addWeighted(b, wb, c, wc, offset), 1.0, 0.0, dtype=cv2.CV_8U)
    (a, wa), (b, wb) = terms if len(terms) == 2 else (terms[0], (terms[0][0], 0.0))
    return cv2.addWeighted(a, wa, b, wb, offset, dtype=cv2.CV_8U)
