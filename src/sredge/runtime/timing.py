"""Wall-clock timing of calls and a real sample frame to time them on.

The runtime needs these to choose a backend (``--backend auto`` times its candidates); the
benchmarks build their latency statistics on top of them. They live here, below both, so the
runtime never imports the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

INCONCLUSIVE_SPREAD = 0.25
"""A speed ratio whose interquartile range over the rounds is wider than this fraction of its median
says nothing firm (see :attr:`Ratio.conclusive`)."""
MIN_ROUNDS = 3
"""Fewer timed rounds than this give no spread to judge: the ratio is inconclusive."""


def time_calls(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; the wall times in seconds."""
    return time_interleaved({"fn": fn}, warmup, repeats)["fn"]


def time_interleaved(fns: Mapping[str, Callable[[], object]], warmup: int, rounds: int,
                     budget_s: float | None = None) -> dict[str, list[float]]:
    """Time several calls against each other: each warmed up ``warmup`` times, then ``rounds`` rounds
    that call every one in turn, so machine load hits them alike. Wall times in seconds.

    With two or more calls, each timed call follows an untimed call of itself (its "settling" call): a
    call right after another one runs beside that one's winding down (ONNX Runtime's worker threads keep
    spinning for some milliseconds after a run, on the cores the next call needs), which cost whichever
    came second 8-13 % on a 2-core machine. What is timed is a call in a stream of its own calls, as a
    video run makes them.

    Args:
        fns: Name -> call.
        warmup: Untimed calls of each before timing (ONNX Runtime needs two to grow its arena).
        rounds: Timed rounds at most.
        budget_s: Stop after the round in which the rounds' total, settling calls included, passed this (so
            at least one round is timed when ``rounds`` >= 1); None: all ``rounds``.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    settle = len(fns) > 1
    start = time.perf_counter()
    for _ in range(rounds):
        for name, fn in fns.items():
            if settle:
                fn()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return times


@dataclass(frozen=True)
class Ratio:
    """How many times faster one call ran than a baseline, over interleaved rounds.

    Each round times the baseline and the candidate back to back (:func:`time_interleaved`), so
    the per-round ratio ``baseline / candidate`` cancels whatever load the machine had in that round;
    the median of those ratios is the figure, their interquartile range its spread.
    """

    median: float
    """Median over rounds of baseline time / candidate time (> 1: the candidate is faster)."""
    low: float
    """25th percentile of the per-round ratios."""
    high: float
    """75th percentile of the per-round ratios."""
    rounds: int

    @property
    def conclusive(self) -> bool:
        """The spread is narrow (:data:`INCONCLUSIVE_SPREAD`) and on one side of 1.0, over enough rounds."""
        return (self.rounds >= MIN_ROUNDS and not self.low <= 1.0 <= self.high
                and self.high - self.low <= INCONCLUSIVE_SPREAD * self.median)

    def describe(self) -> str:
        """``"1.56x (1.48-1.63)"``, with ``", inconclusive"`` inside the brackets when it is not conclusive."""
        return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f}{'' if self.conclusive else ', inconclusive'})"

    def as_dict(self) -> dict:
        """For reports: ``{"median", "low", "high", "rounds", "conclusive"}`` (ratios rounded to 4 places)."""
        return {"median": round(self.median, 4), "low": round(self.low, 4), "high": round(self.high, 4),
                "rounds": self.rounds, "conclusive": self.conclusive}


def speed_ratio(baseline_s: list[float], candidate_s: list[float]) -> Ratio:
    """The :class:`Ratio` of two lists of per-round wall times from one :func:`time_interleaved` run (pure).

    Raises:
        ValueError: The lists are empty or of different lengths (not from the same rounds).
    """
    if not baseline_s or len(baseline_s) != len(candidate_s):
        raise ValueError("need the same non-zero number of rounds for both")
    per_round = np.asarray(baseline_s, np.float64) / np.maximum(np.asarray(candidate_s, np.float64), 1e-12)
    lo, med, hi = np.percentile(per_round, [25, 50, 75])
    return Ratio(float(med), float(lo), float(hi), len(per_round))


def time_ratios(fns: Mapping[str, Callable[[], object]], baseline: str, warmup: int, rounds: int,
                budget_s: float | None = None) -> tuple[dict[str, list[float]], dict[str, Ratio]]:
    """Time calls against each other (:func:`time_interleaved`) and each one's speed ratio to ``baseline``.

    This is the one way sredge compares speeds: sr-export's precision table, sr-bench's speed column
    and relative latency all come from it.

    Args:
        fns: Name -> call; ``baseline`` must be one of them.
        baseline: The name the others are compared with (its own ratio is against itself: 1.0).
        warmup, rounds, budget_s: See :func:`time_interleaved`.

    Returns:
        (name -> wall times in seconds per round, name -> :class:`Ratio` of baseline time over its time).
    """
    if baseline not in fns:
        raise ValueError(f"baseline {baseline!r} is not among the calls")
    times = time_interleaved(fns, warmup, rounds, budget_s)
    return times, {name: speed_ratio(times[baseline], t) for name, t in times.items()}


def sample_frame(height: int, width: int, source: np.ndarray | None = None) -> np.ndarray:
    """A (height, width, 3) uint8 RGB frame with real image content.

    Args:
        source: An RGB uint8 image to resize from (e.g. a benchmark image); None uses the
            bundled photo. Content matters: ONNX Runtime's PReLU is data-dependent, and the bundled
            x3 network took 135 ms on uniform noise against 101 ms on this photo (640x360, 2 cores).
    """
    import cv2

    if source is None:
        from sredge.imaging.io import read_bundled_rgb

        source = read_bundled_rgb("astronaut.jpg")
    return cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)


def sample_input(desc, height: int, width: int) -> np.ndarray:
    """(1, C, H', W') float32: :func:`sample_frame` as ``desc``'s network input (its colour space and value range;
    H' = height * scale for a pre-upsampling network), for timing a bare network on real content.

    Args:
        desc: The network's :class:`~sredge.models.descriptor.ModelDescriptor`.
    """
    from sredge.imaging.model_io import image_to_input

    return image_to_input(sample_frame(height, width).astype(np.float32) / 255.0, desc)
