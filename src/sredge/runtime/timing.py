"""Wall-clock timing of calls and a real sample frame to time them on.

The runtime needs these to choose a backend (``--backend auto`` times its candidates); the
benchmarks build their latency statistics on top of them. They live here, below both, so the
runtime never imports the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np


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
