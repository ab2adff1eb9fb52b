"""Live deployment check: every Nth video frame is also upscaled by a reference model and compared.

``sr-run --model m.int8.onnx --reference m.onnx --check-every 30`` records the Y-PSNR of the
deployed model's output against the reference's (crop = scale) for frames 0, 30, 60, ...
The sampled input frames are held only until their output is encoded (at most the
pipeline's frames in flight), and the reference runs in the encode thread, so a check
costs one reference inference per N frames and no extra memory over the video's length.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sredge.imaging.io import to_float
from sredge.imaging.metrics import y_psnr
from sredge.runtime.upscaler import Upscaler
from sredge.runtime.video_io import Frame


@dataclass
class ReferenceCheck:
    """Compares sampled frames of a run with a reference model's output."""

    reference: Upscaler
    """The reference model, planned for the video's frame size (8-bit RGB path, as the run)."""
    every: int
    """Check frames whose index is a multiple of this."""
    scale: int
    results: list[tuple[int, float]] = field(default_factory=list)
    """(frame index, Y-PSNR dB of the run's output against the reference's), in frame order."""
    _pending: dict[int, Frame] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")

    def tap(self, items: Iterable[Any]) -> Iterator[Any]:
        """Pass a decoded stream through, keeping a copy of each frame that will be checked."""
        for obj in items:
            if isinstance(obj, Frame) and obj.index % self.every == 0:
                with self._lock:
                    self._pending[obj.index] = Frame(None if obj.rgb is None else obj.rgb.copy(), obj.pts, obj.index,
                                                     None if obj.i420 is None else obj.i420.copy())
            yield obj

    def check(self, out: Frame) -> None:
        """Called with each upscaled frame (in the encode thread): compare it when it was sampled."""
        with self._lock:
            src = self._pending.pop(out.index, None)
        if src is None:
            return
        # The reference takes the same path as the run (I420 stays I420), so equal models compare equal.
        ref = self.reference.upscale_frame(src).to_rgb()
        self.results.append((out.index, y_psnr(to_float(out.to_rgb()), to_float(ref), crop=self.scale)))

    def summary(self) -> dict:
        """``{"every", "frames_checked", "mean_psnr", "min_psnr", "worst_frame", "frames": [[index, psnr], ...]}``."""
        psnrs = [p for _, p in self.results]
        finite = [p for p in psnrs if np.isfinite(p)]
        worst = min(self.results, key=lambda r: r[1]) if self.results else None
        return {
            "every": self.every,
            "frames_checked": len(self.results),
            # identical frames have infinite PSNR; the mean is over the others (None: all identical)
            "mean_psnr": round(float(np.mean(finite)), 4) if finite else None,
            "min_psnr": round(worst[1], 4) if worst and np.isfinite(worst[1]) else None,
            "worst_frame": worst[0] if worst else None,
            "frames": [[i, round(p, 4) if np.isfinite(p) else None] for i, p in self.results],
        }
