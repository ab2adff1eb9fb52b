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


class StepProgress:
    """``sr-train``'s progress line: ``PROG: step 120/2000, loss 0.0213, val 32.41 dB, 4.8 steps/s, ETA 392 s``.

    Redrawn in place on a terminal (at most twice a second), a whole line every 30 s elsewhere; the
    last step (of the run, or ``stop``'s) is always shown, and the time remaining is to it.

    Args:
        prog: Program name that starts the line.
        total: Steps of the run.
        enabled: False: silent (``-q``).
        label: What a step is called (``"step"``, ``"QAT step"``).
        stream: Where to write (stderr).
        stop: The step this process stops at when it is before ``total`` (``--stop-after``); None: ``total``.
    """

    def __init__(self, prog: str, total: int, enabled: bool, label: str = "step", stream: TextIO | None = None,
                 stop: int | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.prog, self.total, self.enabled, self.label = prog, total, enabled, label
        self.end = total if stop is None else min(stop, total)
        self.tty = enabled and bool(self.stream.isatty())
        self._last = 0.0

    def update(self, step: int, loss: float, val_db: float | None, steps_per_s: float) -> None:
        """Record one step; writes when the interval has passed or at the last step. ``steps_per_s`` 0: not
        known yet (the line leaves out the speed and the time remaining)."""
        now = time.perf_counter()
        if not self.enabled or (now - self._last < (0.5 if self.tty else 30) and step != self.end):
            return
        self._last = now
        val = f", val {val_db:.2f} dB" if val_db is not None else ""
        line = f"{self.prog}: {self.label} {step}/{self.total}, loss {loss:.4f}{val}"
        if steps_per_s > 0:
            eta = (self.end - step) / steps_per_s
            line += f", {steps_per_s:.1f} steps/s, ETA {eta:.0f} s" + (f" (to step {self.end})"
                                                                        if self.end < self.total else "")
        self.stream.write(("\r" + line + "   ") if self.tty else line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the redrawn line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
