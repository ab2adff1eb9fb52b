"""Timing a model the way ``sr-run`` runs it: colour handling, tiling and the model, one frame at a time.

These machines are noisy, so a latency is only compared with a latency measured in the
same run: every benchmark also times a fixed *reference workload* (the bundled x2 model
on a 128x128 frame, ONNX Runtime CPU), and regressions are judged on the ratio
``model / reference``, which a busier or slower machine changes far less than the raw time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.runtime.timing import sample_frame, time_calls

REFERENCE_HW = (128, 128)
"""LR size of the reference workload's frame."""


@dataclass(frozen=True)
class LatencyStats:
    """Wall times of repeated upscales of one frame, after warm-up."""

    runs: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    fps: float
    """Frames per second at the median latency."""
    mpix_per_s: float
    """Output megapixels per second at the median latency."""


def summarize(seconds: list[float], out_pixels: int) -> LatencyStats:
    """Statistics of timed runs (seconds) producing ``out_pixels`` output pixels each (pure)."""
    if not seconds:
        raise ValueError("no timed runs")
    t = np.asarray(seconds, np.float64) * 1e3
    med = float(np.median(t))
    return LatencyStats(
        runs=len(t),
        median_ms=med,
        p95_ms=float(np.percentile(t, 95)),
        p99_ms=float(np.percentile(t, 99)),
        min_ms=float(t.min()),
        fps=1e3 / med,
        mpix_per_s=out_pixels / 1e6 / (med / 1e3),
    )


def frame_latency_ms(model: str | Path, height: int = 360, width: int = 640, repeats: int = 5,
                     threads: int = 0) -> float:
    """Median wall time (ms) to upscale one ``height`` x ``width`` frame, whole frame, ORT CPU."""
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    frame = sample_frame(height, width)
    with LoadedRuntime(Path(model), RunOptions(backend_options=BackendOptions(device="cpu", threads=threads),
                                               tile=None)) as rt:
        ups = rt.upscaler(height, width)
        times = time_calls(lambda: ups.upscale(frame), warmup=1, repeats=repeats)
    return float(np.median(times) * 1e3)


def reference_ms(threads: int = 0, repeats: int = 7) -> float:
    """Median time (ms) of the reference workload: the bundled x2 model on a 128x128 frame."""
    from sredge.runtime.bundled import default_model

    return frame_latency_ms(default_model(2), *REFERENCE_HW, repeats=repeats, threads=threads)
