"""Timing a model the way ``sr-run`` runs it: colour handling, tiling and the model, one frame at a time.

These machines are noisy, so a latency is only compared with a latency measured in the
same run: every benchmark also times a fixed *reference workload* (the bundled x2 model
on a 128x128 frame, ONNX Runtime CPU), and regressions are judged on the ratio
``model / reference``, which a busier or slower machine changes far less than the raw time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def time_calls(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; the wall times in seconds."""
    return time_interleaved({"fn": fn}, warmup, repeats)["fn"]


def time_interleaved(fns: Mapping[str, Callable[[], object]], warmup: int, rounds: int,
                     budget_s: float | None = None) -> dict[str, list[float]]:
    """Time several calls against each other: each warmed up ``warmup`` times, then ``rounds`` rounds
    that call every one once in turn, so machine load hits them alike. Wall times in seconds.

    Args:
        fns: Name -> call.
        warmup: Untimed calls of each before timing (ONNX Runtime needs two to grow its arena).
        rounds: Timed rounds at most.
        budget_s: Stop after the round in which the timed rounds' total passed this (so at least one
            round is timed when ``rounds`` >= 1); None: all ``rounds``.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    spent = 0.0
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            spent += times[name][-1]
        if budget_s is not None and spent > budget_s:
            break
    return times


def sample_frame(height: int, width: int, source: np.ndarray | None = None) -> np.ndarray:
    """A (height, width, 3) uint8 RGB frame with real image content.

    Args:
        source: An RGB uint8 image to resize from (e.g. a benchmark image); None uses the
            bundled photo. Content matters little for dense networks but keeps the
            comparison honest for anything data-dependent.
    """
    import cv2

    if source is None:
        from sredge.imaging.io import read_bundled_rgb

        source = read_bundled_rgb("astronaut.jpg")
    return cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)


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
