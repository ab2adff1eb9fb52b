"""Timing a model the way ``sr-run`` runs it: colour handling, tiling and the model, one frame at a time.

These machines are noisy, so a latency is only compared with a latency measured in the
same run: every benchmark also times a fixed *reference workload* (the bundled x2 model
on a 128x128 frame, ONNX Runtime CPU, its graph as stored), and regressions are judged on the ratio
``model / reference``, which a busier or slower machine changes far less than the raw time.

Speeds are only compared between calls timed against each other in interleaved rounds
(:func:`sredge.runtime.timing.time_ratios`), and every ratio comes with its spread over the rounds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.runtime.timing import Ratio, sample_frame, time_ratios

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


@dataclass(frozen=True)
class Compared:
    """One model's latency, timed against the others in interleaved rounds."""

    stats: LatencyStats
    speedup: Ratio
    """Baseline time / this model's time, per round (the baseline's own is 1.0)."""


def compare_latency(models: Mapping[str, str | Path], baseline: str, height: int = 360, width: int = 640,
                    warmup: int = 2, rounds: int = 10, threads: int = 0,
                    ort_rewrites: bool = True) -> dict[str, Compared]:
    """Time whole-frame upscales of several model files on ONNX Runtime's CPU against each other.

    All models are opened at once, warmed up, then timed in interleaved rounds on one real
    ``height`` x ``width`` frame (:func:`sredge.runtime.timing.time_ratios`).

    Args:
        models: Name -> model file (e.g. ``{"fp32": "m.onnx", "int8": "m.int8.onnx"}``).
        baseline: The name the speed-ups are relative to.
        rounds: Timed rounds; fewer than 3 leave every speed-up inconclusive.
        ort_rewrites: Run :mod:`sredge.runtime.ort_rewrites` as ``sr-run`` does; False: the graphs as stored.

    Returns:
        Name -> latency statistics and speed-up over ``baseline``.
    """
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    frame = sample_frame(height, width)
    opts = RunOptions(backend_options=BackendOptions(device="cpu", threads=threads), tile=None)
    with contextlib.ExitStack() as stack:
        calls = {}
        scales = {}
        for name, path in models.items():
            rt = stack.enter_context(LoadedRuntime(Path(path), opts, ort_rewrites=ort_rewrites))
            ups = rt.upscaler(height, width)
            calls[name] = lambda ups=ups: ups.upscale(frame)
            scales[name] = rt.desc.scale
        times, ratios = time_ratios(calls, baseline, warmup, rounds)
    return {name: Compared(summarize(times[name], height * width * scales[name] ** 2), ratios[name])
            for name in models}


def frame_latency_ms(model: str | Path, height: int = 360, width: int = 640, repeats: int = 5,
                     threads: int = 0, ort_rewrites: bool = True) -> float:
    """Median wall time (ms) to upscale one ``height`` x ``width`` frame, whole frame, ORT CPU."""
    got = compare_latency({"model": model}, "model", height, width, warmup=1, rounds=repeats, threads=threads,
                          ort_rewrites=ort_rewrites)
    return got["model"].stats.median_ms


def reference_ms(threads: int = 0, repeats: int = 7) -> float:
    """Median time (ms) of the reference workload: the bundled x2 model on a 128x128 frame, its graph as stored
    (the same workload in every sredge version)."""
    from sredge.runtime.bundled import default_model

    return frame_latency_ms(default_model(2), *REFERENCE_HW, repeats=repeats, threads=threads, ort_rewrites=False)
