"""Report images drawn with OpenCV (no plotting library needed): bar charts and side-by-side crops.

Every function returns an (H, W, 3) uint8 RGB image; writing it is the caller's job.
"""

from __future__ import annotations

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PALETTE = [(76, 114, 176), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179),
            (147, 120, 96), (218, 139, 195), (140, 140, 140), (204, 185, 116), (100, 181, 205)]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, color=(30, 30, 30)) -> None:
    cv2.putText(img, text, org, _FONT, scale, color, 1, cv2.LINE_AA)


def _text_width(text: str, scale: float = 0.45) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def bar_chart(labels: list[str], values: list[float], title: str, unit: str, width: int = 760) -> np.ndarray:
    """Horizontal bars, one per label, each annotated with its value (e.g. median latency per model)."""
    row, top, pad = 26, 36, 10
    label_w = max([_text_width(s) for s in labels] + [40]) + 2 * pad
    img = np.full((top + row * len(labels) + pad, width, 3), 255, np.uint8)
    _text(img, title, (pad, 22), 0.55)
    finite = [v for v in values if np.isfinite(v)]
    vmax = max(finite) if finite else 1.0
    bar_space = width - label_w - 110
    for i, (label, v) in enumerate(zip(labels, values)):
        y = top + i * row
        _text(img, label, (pad, y + 17))
        if not np.isfinite(v):
            _text(img, "n/a", (label_w, y + 17))
            continue
        length = max(1, int(bar_space * v / vmax)) if vmax > 0 else 1
        cv2.rectangle(img, (label_w, y + 4), (label_w + length, y + row - 4), _PALETTE[i % len(_PALETTE)], -1)
        _text(img, f"{v:.3g} {unit}", (label_w + length + 6, y + 17))
    return img


def grouped_bars(groups: list[str], series: dict[str, list[float]], title: str, unit: str,
                 height: int = 320) -> np.ndarray:
    """Vertical bars grouped per x label (e.g. PSNR gain per image), one colour per series, with a legend.

    The y axis always includes zero and every bar starts there, so bar lengths are proportional to the
    values (an axis starting just below the smallest value would turn 0.1 dB into a bar several times
    longer than its neighbour). To show small differences, plot differences (e.g. the gain over bicubic).
    """
    names = list(series)
    group_w = max(18 * len(names) + 24, max([_text_width(g) for g in groups] + [0]) + 12)
    left, right, top, bottom = 56, 20, 40, 60
    width = left + right + group_w * len(groups)
    legend_w = sum(_text_width(n) + 34 for n in names)
    width = max(width, legend_w + left + right, _text_width(f"{title} [{unit}]", 0.55) + 20)
    img = np.full((height, width, 3), 255, np.uint8)
    _text(img, f"{title} [{unit}]", (10, 22), 0.55)
    allv = [v for vals in series.values() for v in vals if np.isfinite(v)]
    if not allv:
        return img
    lo, hi = min(min(allv), 0.0), max(max(allv), 0.0)
    span = max(hi - lo, 1e-6)
    lo, hi = (lo - 0.05 * span if lo < 0 else 0.0), (hi + 0.05 * span if hi > 0 else 0.0)
    plot_h = height - top - bottom

    def ypix(v: float) -> int:
        return round(top + plot_h * (1 - (v - lo) / (hi - lo)))

    cv2.line(img, (left, top), (left, top + plot_h), (0, 0, 0), 1)
    ticks = sorted({0.0, lo, hi} | ({lo / 2} if lo < 0 else set()) | ({hi / 2} if hi > 0 else set()))
    for v in ticks:
        _text(img, f"{v:.2f}", (4, ypix(v) + 4), 0.38)
    bar_w = max(6, (group_w - 24) // max(len(names), 1))
    zero = ypix(0.0)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + 12
        for k, name in enumerate(names):
            v = series[name][g]
            if np.isfinite(v) and ypix(v) != zero:
                y0, y1 = sorted((ypix(v), zero))
                cv2.rectangle(img, (x0 + k * bar_w, y0), (x0 + (k + 1) * bar_w - 2, y1 - 1),
                              _PALETTE[k % len(_PALETTE)], -1)
        _text(img, group, (x0, top + plot_h + 16), 0.4)
    cv2.line(img, (left, zero), (width - right, zero), (0, 0, 0), 1)
    x = left
    for k, name in enumerate(names):
        cv2.rectangle(img, (x, height - 24), (x + 14, height - 12), _PALETTE[k % len(_PALETTE)], -1)
        _text(img, name, (x + 18, height - 13), 0.4)
        x += _text_width(name, 0.4) + 34
    return img


def detail_window(hr: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(y, x, side)`` of the square window of the HR image with the most fine detail (pure).

    Detail is the local energy of the Laplacian of the grey image, where SR methods differ most.
    """
    h, w = hr.shape[:2]
    side = int(min(size, h, w))
    grey = hr.mean(axis=2).astype(np.float32) if hr.ndim == 3 else hr.astype(np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    integral = cv2.integral(energy)  # (h+1, w+1)
    sums = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side])
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x), side


def side_by_side(panels: list[tuple[str, np.ndarray]], zoom: int = 2) -> np.ndarray:
    """Label and join same-size RGB crops left to right, enlarged ``zoom`` times (nearest neighbour)
    (:func:`sredge.runtime.compare.labelled_row`, which ``sr-run --compare`` draws with too)."""
    from sredge.runtime.compare import labelled_row

    return labelled_row(panels, zoom)
