"""Before/after pictures (``sr-run --compare PATH``): bicubic | sredge, labelled, side by side.

The "before" panel is the input enlarged to the output's size by MATLAB-compatible bicubic
(:func:`sredge.imaging.resize.imresize`, the baseline SR papers show), the "after" panel is what
sr-run wrote (after ``--outscale``/``--target``), so both panels have the same size and the same
pixel grid. The picture is 8-bit RGB for viewing: grey is shown as grey, transparency over white, 16-bit
samples are reduced to 8 bits.
"""

from __future__ import annotations

import numpy as np

_FONT_SCALE_PER_PX = 1 / 1400
"""Label size relative to a panel's width (0.45 at 630 px, readable on a 4K panel too)."""
_GAP = 4
"""White pixels between panels."""


def to_8bit(img: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 with rounding (65535 -> 255); uint8 is returned as is."""
    if img.dtype == np.uint8:
        return img
    return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def display_rgb(img: np.ndarray) -> np.ndarray:
    """Any image sr-run reads or writes -> (H, W, 3) uint8 RGB for viewing.

    Args:
        img: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16. RGBA is shown over white, as a
            viewer on a white page shows it (the colour hidden under transparent pixels is not shown).
    """
    img = to_8bit(img)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.float32) / 255.0
        return np.clip(np.rint(img[..., :3] * alpha + 255.0 * (1.0 - alpha)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., :3])


def _font_scale(height: int, width: int) -> float:
    """The label's OpenCV font scale for a panel: by its width, but no more than a panel twice as wide as high
    would get (a 20-row strip 34,000 wide had a label bar 40 times its height)."""
    return max(0.45, min(width, 2 * height) * _FONT_SCALE_PER_PX)


def before_after_size(height: int, width: int, label: str) -> tuple[int, int]:
    """(height, width) of :func:`before_after`'s picture for an output of ``height`` x ``width`` (pure, cheap:
    checked against the format's limits before the model runs)."""
    import cv2

    scale = _font_scale(height, width)
    bars = []
    for text in ("bicubic", label):
        (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        bars.append(th + base + 10)
    return max(bars) + height, 2 * width + _GAP


def labelled_row(panels: list[tuple[str, np.ndarray]], zoom: int = 1) -> np.ndarray:
    """Same-height RGB images joined left to right, each under a white label bar.

    Args:
        panels: (label, (H, W, 3) uint8 RGB) pairs, all of one height.
        zoom: Enlarge every panel this many times (nearest neighbour: pixels stay visible).

    Returns:
        (bar + H * zoom, sum of widths + gaps, 3) uint8 RGB.
    """
    import cv2

    out = []
    for label, img in panels:
        big = img if zoom == 1 else cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        width = big.shape[1]
        scale = _font_scale(big.shape[0], width)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        bar_h = th + base + 10
        header = np.full((bar_h, width, 3), 255, np.uint8)
        # Keep the label within its panel: cut characters until it fits.
        text = label
        while text and tw > width - 8:
            text = text[:-1]
            tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
        cv2.putText(header, text, (4, th + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30),
                    max(1, round(scale)), cv2.LINE_AA)
        out.append((header, big))
    bar = max(h.shape[0] for h, _ in out)
    columns = []
    for header, big in out:
        pad = np.full((bar - header.shape[0], big.shape[1], 3), 255, np.uint8)
        columns.append(np.concatenate([pad, header, big], axis=0))
        columns.append(np.full((columns[-1].shape[0], _GAP, 3), 255, np.uint8))
    return np.concatenate(columns[:-1], axis=1)


def before_after(lr: np.ndarray, sr: np.ndarray, label: str) -> np.ndarray:
    """The ``--compare`` picture: bicubic of ``lr`` at ``sr``'s size | ``sr``.

    Args:
        lr: The input image or frame (any layout :func:`display_rgb` takes).
        sr: What sr-run wrote for it (any such layout), (H, W) its size.
        label: The right panel's label, e.g. ``"sredge fsrcnn x3"``.

    Returns:
        (bar + H, 2 W + gap, 3) uint8 RGB.
    """
    from sredge.imaging.resize import imresize

    after = display_rgb(sr)
    before = imresize(display_rgb(lr), size=after.shape[:2])
    return labelled_row([("bicubic", before), (label, after)])


def compare_label(desc, size=None) -> str:
    """The "after" label: ``sredge fsrcnn_x3`` (the model's name), and the size asked for when it is not
    the model's (``sredge realesr_x4 -> x3``).

    Args:
        desc: The model's :class:`~sredge.models.descriptor.ModelDescriptor`.
        size: ``--outscale``/``--target`` (:class:`~sredge.runtime.resize_plan.OutputSize`), or None.
    """
    name = desc.variant or f"{desc.arch} x{desc.scale}"
    return f"sredge {name}" + ("" if size is None or size.is_model_scale else f" -> {size.describe()}")
