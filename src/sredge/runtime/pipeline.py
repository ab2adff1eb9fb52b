"""The video pipeline: decode -> preprocess -> infer -> postprocess -> encode, one thread per stage.

Stages are joined by bounded queues, so decoding and encoding overlap inference and memory
stays flat over any video length. Audio packets travel down the same queues as the frames,
which keeps them interleaved in decode order for the muxer. A sentinel closes each queue.

Stopping: a failure in any stage, Ctrl-C, or the caller's ``stop`` event (which ``sr-run`` sets on
SIGINT, SIGTERM and SIGHUP) sets a stop event: decoding and inference stop,
frames already inferred are still post-processed and encoded, every stage drains its queue to
the sentinel and exits, and the caller's writer finalizes the file with the frames done.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sredge.runtime.stats import LatencyHistogram
from sredge.runtime.upscaler import Upscaler
from sredge.runtime.video_io import Frame

log = logging.getLogger(__name__)

STAGES = ("decode", "preprocess", "infer", "postprocess", "encode")
SIDE_STAGE_NICENESS = 10
"""Niceness added to the decode/pre/post/encode threads (and the encoder threads they start).

Inference runs on a thread pool that meets at a barrier after every layer: a core taken away
from one of its threads stalls them all. Lower-priority side stages run in the pool's idle
gaps instead of pre-empting it. Raising niceness needs no privileges; where it is not
supported it is skipped."""


def _enter_stage(side: bool) -> None:
    """Set up the calling stage thread: give it its Python name at the OS level, and lower its priority
    by :data:`SIDE_STAGE_NICENESS` when it is a ``side`` stage (all but inference).

    The OS name (at most 15 bytes) is what ``top -H``, /proc and debuggers show; threads the stage starts
    later (the encoder's, OpenCV's) inherit it and the priority on Linux, so a busy or stuck thread can be
    traced to its stage. Where either is unsupported or refused, the thread runs unnamed or at normal
    priority."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            name = threading.current_thread().name.encode()[:15]
            ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # 15: PR_SET_NAME
        except (OSError, AttributeError):
            pass
    if side:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SIDE_STAGE_NICENESS)
        except (AttributeError, OSError):  # not Linux, or refused: run at normal priority
            pass


_END = object()  # sentinel: no more items on this queue
THROUGHPUT_QUEUE = 4
"""Frames each inter-stage queue holds by default: decoding and encoding run ahead of and behind
inference, which keeps the inference thread busy through their jitter."""
LATENCY_QUEUE = 1
"""``--latency-mode``: one frame per queue, the fewest frames in flight between camera and output."""


@dataclass
class _Item:
    frame: Frame
    t_start: float
    data: Any = None


@dataclass
class PipelineResult:
    """What a run did, for reports and the frames-in == frames-out check."""

    frames_in: int = 0
    frames_out: int = 0
    wall_s: float = 0.0
    stages: dict[str, LatencyHistogram] = field(default_factory=lambda: {s: LatencyHistogram() for s in STAGES})
    end_to_end: LatencyHistogram = field(default_factory=LatencyHistogram)
    source_wait: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Per frame, the time spent waiting for a live source before it came (empty for files): left out of
    ``decode`` and ``end_to_end``, which time the work once a frame is there."""
    failure: BaseException | None = None
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    def latency_note(self) -> str:
        """One sentence on why ``end_to_end`` is far longer than ``1 / fps`` (a pipeline, not a bug).

        Little's law: frames in flight = end-to-end latency x throughput; the stages and the queues
        between them hold that many frames at once, so each frame waits behind the others.
        """
        e2e = self.end_to_end.summary().mean_ms / 1e3
        if not self.frames_out or e2e <= 0 or self.fps <= 0:
            return "no frame went through the pipeline"
        return (f"end_to_end is one frame's time from decode to encode ({e2e * 1e3:.0f} ms mean); the five stages "
                f"and their queues hold about {e2e * self.fps:.1f} frames in flight, so it is about that many "
                f"frame times (1 / {self.fps:.2f} fps = {1e3 / self.fps:.0f} ms each): latency, not throughput")


def run_pipeline(
    items: Iterable[Any],
    upscaler: Upscaler,
    write_frame: Callable[[Frame], None],
    write_other: Callable[[Any], None],
    on_frame: Callable[[PipelineResult], None] | None = None,
    queue_size: int = THROUGHPUT_QUEUE,
    stop: threading.Event | None = None,
    waited: Callable[[], float] | None = None,
) -> PipelineResult:
    """Run decode -> preprocess -> infer -> postprocess -> encode over ``items``.

    Args:
        items: Decoded stream in order: :class:`Frame` objects (RGB uint8 HWC, or I420 for a
            network where :func:`~sredge.runtime.upscaler.takes_i420` holds) and any other
            items (audio packets), which pass through untouched to ``write_other``.
        upscaler: Its three stages run in their own threads.
        write_frame: Encoder for upscaled frames (called from the encode thread, in order).
        write_other: Muxer for pass-through items (audio packets), called in stream order.
        on_frame: Called after each encoded frame (progress display).
        queue_size: Bound of each inter-stage queue (frames in flight per stage).
        stop: Set it (e.g. on Ctrl-C) to stop early; the stages drain and return.
        waited: Seconds the source has spent waiting for a live input so far (``VideoReader.waited_s``): each
            frame's share is timed as ``source_wait``, not as decoding, and its end-to-end time starts after it.

    Returns:
        Counts, per-stage and end-to-end latency histograms, and the first failure (not raised:
        the caller finalizes its output first, then reports it).
    """
    res = PipelineResult()
    stop = stop or threading.Event()
    qs = [queue.Queue(maxsize=queue_size) for _ in range(4)]
    lock = threading.Lock()

    def fail(exc: BaseException) -> None:
        with lock:
            if res.failure is None:
                res.failure = exc
        stop.set()

    # Every stage consumes its input until the sentinel, whatever happens, so a blocking put
    # never deadlocks; after a stop or failure items are discarded instead of processed.
    def decode() -> None:
        _enter_stage(side=True)
        try:
            it = iter(items)
            wait = 0.0  # the source's wait since the last frame (audio packets come in between)
            while not stop.is_set():
                w0 = waited() if waited is not None else 0.0
                t0 = time.perf_counter()
                try:
                    obj = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                now_waited = (waited() - w0) if waited is not None else 0.0
                wait += now_waited
                if isinstance(obj, Frame):
                    if waited is not None:
                        res.source_wait.add(wait)
                    start = t0 + now_waited  # the work on this frame began once its data came
                    res.stages["decode"].add(t1 - start)
                    res.frames_in += 1
                    obj = _Item(obj, start)
                    wait = 0.0
                qs[0].put(obj)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, never swallowed
            fail(exc)
        finally:
            qs[0].put(_END)

    def stage(name: str, fn: Callable[[_Item], Any], q_in: queue.Queue, q_out: queue.Queue,
              finish_on_stop: bool) -> None:
        # finish_on_stop: frames already past inference are still delivered (they are done work).
        _enter_stage(side=name != "infer")
        failed = False
        while (obj := q_in.get()) is not _END:
            if failed or (stop.is_set() and not finish_on_stop):
                continue
            try:
                if isinstance(obj, _Item):
                    t0 = time.perf_counter()
                    obj.data = fn(obj)
                    res.stages[name].add(time.perf_counter() - t0)
                q_out.put(obj)
            except BaseException as exc:  # noqa: BLE001
                fail(exc)
                failed = True
        q_out.put(_END)

    def encode() -> None:
        _enter_stage(side=True)
        failed = False
        while (obj := qs[3].get()) is not _END:
            if failed:
                continue
            try:
                if isinstance(obj, _Item):
                    t0 = time.perf_counter()
                    write_frame(obj.data)
                    t1 = time.perf_counter()
                    res.stages["encode"].add(t1 - t0)
                    res.end_to_end.add(t1 - obj.t_start)
                    res.frames_out += 1
                    if on_frame:
                        on_frame(res)
                elif not stop.is_set():
                    write_other(obj)
            except BaseException as exc:  # noqa: BLE001
                fail(exc)
                failed = True

    def pre(item: _Item):
        return upscaler.preprocess_frame(item.frame)

    def infer(item: _Item):
        return (upscaler.infer(item.data.x), item.data)

    def post(item: _Item):
        out, prep = item.data
        return upscaler.postprocess_frame(out, prep, item.frame)

    threads = [
        threading.Thread(target=decode, name="sr-decode", daemon=True),
        threading.Thread(target=stage, args=("preprocess", pre, qs[0], qs[1], False), name="sr-pre", daemon=True),
        threading.Thread(target=stage, args=("infer", infer, qs[1], qs[2], False), name="sr-infer", daemon=True),
        threading.Thread(target=stage, args=("postprocess", post, qs[2], qs[3], True), name="sr-post", daemon=True),
        threading.Thread(target=encode, name="sr-encode", daemon=True),
    ]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        _join(threads)
    except KeyboardInterrupt:
        res.interrupted = True
        stop.set()  # stop decoding and inference; frames already inferred are still written
        _join(threads, ignore_interrupts=True)
    except BaseException:  # another way out of the main thread (a signal turned exception): drain first
        stop.set()
        _join(threads, ignore_interrupts=True)
        raise
    res.wall_s = time.perf_counter() - t_start
    if stop.is_set() and res.failure is None and not res.interrupted:
        res.interrupted = True  # stopped from outside through `stop`
    return res


def _join(threads: list[threading.Thread], ignore_interrupts: bool = False) -> None:
    """Wait for every stage thread. Short joins keep the main thread responsive to Ctrl-C; while
    draining after a stop, a further Ctrl-C is ignored: returning with stages still inside native
    code would abort the process at exit."""
    for t in threads:
        while t.is_alive():
            try:
                t.join(timeout=0.2)
            except KeyboardInterrupt:
                if not ignore_interrupts:
                    raise
                log.debug("already stopping; waiting for the %s thread", t.name)
