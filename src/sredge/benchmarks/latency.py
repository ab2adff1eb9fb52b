"""Timing a model the way sr-run runs it (ONNX Runtime CPU, whole frame, colour handling included)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def frame_latency_ms(model: str | Path, height: int = 360, width: int = 640, repeats: int = 5) -> float:
    """Median wall time (ms) to upscale one ``height`` x ``width`` RGB frame after a warm-up run."""
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with LoadedRuntime(Path(model), RunOptions(backend_options=BackendOptions(device="cpu"), tile=None)) as rt:
        ups = rt.upscaler(height, width)
        ups.upscale(frame)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            ups.upscale(frame)
            times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)
