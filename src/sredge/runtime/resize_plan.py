"""Output sizes other than the model's scale (``sr-run --outscale F`` / ``--target WxH``).

The model always runs at its own scale first; the result is then resized once with a
high-quality filter: shrinking (e.g. a x4 model to reach x3) with OpenCV's ``INTER_AREA``, which
averages every source pixel and does not alias; enlarging past the model with Lanczos
(``INTER_LANCZOS4``), which adds no detail but keeps edges sharper than bicubic. Planning is pure
(:func:`plan_output_size`); resizing pixels is :func:`resize_image` / :func:`resize_frame`.

``--target`` is an exact size, as video2x's ``-w``/``-h``: the picture is stretched to it when the
aspect ratio differs. A side given as 0 (``3840x0``) follows the input's aspect ratio instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sredge.errors import InputError

MAX_OUTSCALE = 16.0
"""Largest ``--outscale`` admitted: past that a request is a typo, not a picture."""


@dataclass(frozen=True)
class OutputSize:
    """What the user asked the output size to be; both None: the model's own scale."""

    outscale: float | None = None
    """``--outscale``: output = input x this (any positive factor up to :data:`MAX_OUTSCALE`)."""
    target: tuple[int, int] | None = None
    """``--target``: (width, height) of the output; one side 0 follows the input's aspect ratio."""

    def __post_init__(self) -> None:
        if self.outscale is not None and self.target is not None:
            raise InputError("--outscale and --target both set the output size; give one of them")
        if self.outscale is not None and not 0 < self.outscale <= MAX_OUTSCALE:  # also NaN
            raise InputError(f"--outscale must be > 0 and <= {MAX_OUTSCALE:g}, not {self.outscale:g}")
        if self.target is not None:
            w, h = self.target
            if w < 0 or h < 0 or (w == 0 and h == 0):
                raise InputError(f"--target {w}x{h}: give WIDTHxHEIGHT with positive sides (one may be 0 to "
                                 "keep the aspect ratio)")

    @property
    def is_model_scale(self) -> bool:
        """Nothing asked for: the output is the model's output."""
        return self.outscale is None and self.target is None

    def describe(self) -> str:
        """``"x3"``, ``"3840x2160"`` or ``"model scale"``, for messages and file names."""
        if self.outscale is not None:
            return f"x{self.outscale:g}"
        if self.target is not None:
            return f"{self.target[0]}x{self.target[1]}"
        return "model scale"


def parse_target(text: str) -> tuple[int, int]:
    """``"3840x2160"`` -> ``(3840, 2160)``; ``"3840x0"`` keeps one side free (pure).

    Raises:
        InputError: Not ``WIDTHxHEIGHT`` with whole numbers.
    """
    try:
        w, h = (int(v) for v in text.strip().lower().split("x"))
    except ValueError:
        raise InputError(f"--target {text!r}: give WIDTHxHEIGHT such as 3840x2160 (or 3840x0 to keep the "
                         "aspect ratio)") from None
    return w, h


@dataclass(frozen=True)
class ResizePlan:
    """The sizes one input goes through: the model's output, then the final output."""

    model_hw: tuple[int, int]
    """(height, width) of the model's output (input x model scale)."""
    out_hw: tuple[int, int]
    """(height, width) written."""
    interpolation: str
    """``"none"`` (out = model output), ``"area"`` (shrink) or ``"lanczos"`` (enlarge past the model); a
    mixed case (one side shrinks, the other grows: a stretched ``--target``) is ``"lanczos"``."""

    @property
    def resizes(self) -> bool:
        return self.interpolation != "none"


def _even(n: int) -> int:
    """An odd size one pixel larger (4:2:0 video needs even sides), at least 2."""
    return max(2, n + n % 2)


def plan_output_size(in_hw: tuple[int, int], model_scale: int, size: OutputSize, even: bool = False) -> ResizePlan:
    """Where the model's output is resized to, and with which filter (pure).

    Args:
        in_hw: (height, width) of the input image or video frame.
        model_scale: The model's upscaling factor.
        size: ``--outscale`` / ``--target``.
        even: Round every odd side of an asked-for size up to even (video stored as 4:2:0).

    Returns:
        The plan; its ``out_hw`` is ``round(side x outscale)`` (at least 1), the ``--target`` size,
        or the model's output size when nothing is asked.
    """
    h, w = in_hw
    model_hw = (h * model_scale, w * model_scale)
    if size.outscale is not None:
        out = (max(1, round(h * size.outscale)), max(1, round(w * size.outscale)))
    elif size.target is not None:
        tw, th = size.target
        if tw == 0:
            tw = max(1, round(w * th / h))
        elif th == 0:
            th = max(1, round(h * tw / w))
        out = (th, tw)
    else:
        out = model_hw
    if even and not size.is_model_scale:  # the model's own size is left as it is (the writer pads odd sides)
        out = (_even(out[0]), _even(out[1]))
    if out == model_hw:
        return ResizePlan(model_hw, out, "none")
    grows = out[0] > model_hw[0] or out[1] > model_hw[1]
    return ResizePlan(model_hw, out, "lanczos" if grows else "area")


def _cv2_flag(interpolation: str) -> int:
    import cv2

    return {"area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}[interpolation]


def resize_image(img: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Resize the model's output to ``plan.out_hw``.

    Args:
        img: (H, W), (H, W, 3) or (H, W, 4) uint8 or uint16 of size ``plan.model_hw`` (any layout
            OpenCV resizes; alpha is resized like the colours).

    Returns:
        The same layout and sample type at ``plan.out_hw`` (Lanczos overshoot saturates at the type's range);
        ``img`` itself when the plan does not resize.
    """
    if not plan.resizes:
        return img
    import cv2

    oh, ow = plan.out_hw
    out = cv2.resize(img, (ow, oh), interpolation=_cv2_flag(plan.interpolation))
    return out[..., None] if img.ndim == 3 and out.ndim == 2 else out


def resize_i420(i420: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Resize a planar YUV 4:2:0 frame: each plane on its own (chroma at half size).

    Args:
        i420: ``(H * 3 // 2, W)`` uint8 (Y, then U, then V) of size ``plan.model_hw``, even sides.

    Returns:
        ``(h * 3 // 2, w)`` uint8 at ``plan.out_hw`` (which must have even sides: plan with ``even=True``).
    """
    if not plan.resizes:
        return i420
    import cv2

    (h, w), (oh, ow) = plan.model_hw, plan.out_hw
    if oh % 2 or ow % 2:
        raise ValueError(f"an I420 frame needs an even output size, got {ow}x{oh}")
    flag = _cv2_flag(plan.interpolation)
    y = i420[:h]
    chroma = i420[h:].reshape(2, h // 2, w // 2)
    out = np.empty((oh * 3 // 2, ow), np.uint8)
    out[:oh] = cv2.resize(y, (ow, oh), interpolation=flag)
    planes = out[oh:].reshape(2, oh // 2, ow // 2)
    for k in range(2):
        planes[k] = cv2.resize(np.ascontiguousarray(chroma[k]), (ow // 2, oh // 2), interpolation=flag)
    return out


def resize_frame(frame, plan: ResizePlan):
    """A :class:`~sredge.runtime.video_io.Frame` (RGB or I420) resized by ``plan``, same pts and index."""
    if not plan.resizes:
        return frame
    from sredge.runtime.video_io import Frame

    if frame.i420 is not None:
        return Frame(None, frame.pts, frame.index, i420=resize_i420(frame.i420, plan))
    return Frame(resize_image(frame.rgb, plan), frame.pts, frame.index)
