"""Progress on stderr for ``sr-run``: a bar on a terminal, a plain line every few seconds elsewhere.

A terminal gets the bar redrawn in place (carriage returns, at most four times a second). When
stderr is a file, a pipe or a journal (nohup, services), carriage returns would pile up in one
endless line, so a whole line is written every ``every_s`` seconds instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DEFAULT_EVERY_S = 10.0
"""Seconds between plain progress lines when stderr is not a terminal (``--progress-every``)."""
_BAR_EVERY_S = 0.25


def progress_line(done: int, total: int | None, elapsed_s: float, unit: str = "frames") -> str:
    """One progress record, e.g. ``"120/300 frames (40%), 12.0 fps, ETA 15 s"`` (pure).

    Args:
        done: Items finished so far.
        total: Items expected, or None when unknown (a live stream).
        elapsed_s: Seconds since the run started.
        unit: What is counted (``"frames"``, ``"images"``).
    """
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    per = "fps" if unit == "frames" else f"{unit}/s"
    if total:
        eta = (total - done) / rate if rate > 0 else 0.0
        return f"{done}/{total} {unit} ({100 * done / total:.0f}%), {rate:.1f} {per}, ETA {eta:.0f} s"
    return f"{done} {unit}, {rate:.1f} {per}"


class Progress:
    """Progress display on a stream (stderr by default); see the module docstring.

    Args:
        prog: Program name that starts each line.
        enabled: False: silent (``-q``).
        every_s: Seconds between plain lines when the stream is not a terminal; 0 turns them off.
        unit: What is counted.
        stream: Where to write (stderr).
    """

    def __init__(self, prog: str, enabled: bool, every_s: float = DEFAULT_EVERY_S, unit: str = "frames",
                 stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.prog, self.unit = prog, unit
        self.tty = bool(self.stream.isatty())
        self.every_s = _BAR_EVERY_S if self.tty else every_s
        self.enabled = enabled and self.every_s > 0
        self._start = time.perf_counter()
        self._last = self._start if not self.tty else 0.0  # plain lines: the first after every_s
        self._shown = False

    def update(self, done: int, total: int | None) -> None:
        """Record ``done`` of ``total``; writes when the interval has passed."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        line = progress_line(done, total, now - self._start, self.unit)
        if self.tty:
            self.stream.write(f"\r{self.prog}: {line}   ")
            self._shown = True
        else:
            self.stream.write(f"{self.prog}: {line}\n")
        self.stream.flush()

    def update_run(self, res, total: int | None) -> None:
        """The video pipeline's callback: ``res`` is a :class:`~sredge.runtime.pipeline.PipelineResult`."""
        self.update(res.frames_out, total)

    def finish(self) -> None:
        """End the bar's line on a terminal."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
