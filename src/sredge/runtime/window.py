"""Part of a video (``sr-run --start/--duration/--frames``): parsing, checking, and cutting a decoded stream.

Times are seconds from the start of the video stream (its ``start_time``). The window holds the
frames whose presentation time ``t`` satisfies ``start <= t < start + duration``, and at most
``frames`` of them: with both ``--duration`` and ``--frames``, whichever ends first.

Audio is stream-copied, so it is cut at packet granularity (AAC: 1024 samples, about 21-23 ms):
an audio packet is kept when it *starts* inside ``[first kept frame, end of the window)``. The output
timestamps start at 0 (the first kept frame) and the audio is shifted by the same amount, so the two
stay in sync; the audio may begin up to one audio packet after the picture.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from sredge.errors import InputError

_EPS_S = 1e-6  # float seconds from the command line against exact pts: a microsecond of slack
AUDIO_LAG_S = 5
"""After the window's video has ended, keep reading for its audio at most until the video is this many
seconds past the end (muxers interleave audio within a second or so of the video; a shorter audio
track must not make the rest of a long file be decoded)."""


MAX_TIME_S = 1e9
"""The longest time a video option takes, in seconds (over 30 years): beyond it, counts of frames overflow."""


def parse_time(text: str, option: str = "--start") -> float:
    """Seconds from ``12.5``, ``MM:SS(.ms)`` or ``HH:MM:SS(.ms)`` (pure).

    Raises:
        InputError: Not a time, negative, or minutes/seconds fields of 60 or more.
    """
    s = str(text).strip()
    m = re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", s)
    if m:
        h, mm, ss = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if (m.group(1) is not None and mm >= 60) or ss >= 60:
            raise InputError(f"{option} {text}: minutes and seconds must be below 60 (HH:MM:SS.ms)")
        return h * 3600 + mm * 60 + ss
    try:
        value = float(s)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a time: give seconds (12.5) or HH:MM:SS(.ms)") from None
    if not math.isfinite(value) or value < 0:
        least = "more than 0 seconds" if option == "--duration" else "a time of 0 or more seconds"
        raise InputError(f"{option} {text} must be {least}")
    if value > MAX_TIME_S:  # --duration 1e308 overflowed counting its frames (an internal error)
        raise InputError(f"{option} {text}: at most {MAX_TIME_S:g} seconds (over 30 years of video)")
    return value


@dataclass(frozen=True)
class Window:
    """Which part of a video to run (see the module docstring).

    Attributes:
        start_s: Seconds from the start of the video stream; the first kept frame is the first at or after it.
        duration_s: Seconds of video to keep from ``start_s``, or None: to the end.
        frames: Most frames to keep, or None: no limit.
    """

    start_s: float = 0.0
    duration_s: float | None = None
    frames: int | None = None

    @property
    def is_whole(self) -> bool:
        """The window is the whole video (nothing to cut)."""
        return self.start_s == 0 and self.duration_s is None and self.frames is None


def plan_window(start: str | None, duration: str | None, frames: int | None, live: bool) -> Window:
    """Check and parse the command line's window (pure).

    Raises:
        InputError: A malformed or negative time, ``--duration 0``, ``--frames`` below 1, or
            ``--start`` on a live source (a camera or stream cannot seek).
    """
    start_s = parse_time(start, "--start") if start is not None else 0.0
    duration_s = parse_time(duration, "--duration") if duration is not None else None
    if live and start is not None:
        raise InputError("--start needs a video file: a camera or stream cannot seek (use --duration or --frames)")
    if duration_s is not None and duration_s <= 0:
        raise InputError(f"--duration {duration} keeps no frame: give more than 0 seconds")
    if frames is not None and frames < 1:
        raise InputError(f"--frames {frames} keeps no frame: give 1 or more")
    return Window(start_s, duration_s, frames)


def expected_frames(window: Window, declared: int | None, fps: Fraction | None) -> int | None:
    """About how many frames the window holds, for progress (pure; None when unknown)."""
    guesses = []
    if window.frames is not None:
        guesses.append(window.frames)
    if fps:
        if window.duration_s is not None:
            guesses.append(math.ceil(window.duration_s * fps - _EPS_S))
        if declared:
            guesses.append(max(0, declared - math.ceil(window.start_s * fps - _EPS_S)))
    elif declared and window.start_s == 0:
        guesses.append(declared)
    return min(guesses) if guesses else None


def cut(items: Iterable, window: Window, time_base: Fraction, origin_s: Fraction, fps: Fraction | None,
        is_frame, has_audio: bool = True) -> Iterator:
    """Keep the window's frames and audio packets, with timestamps shifted to start at 0.

    Args:
        items: Frames (``pts`` in ``time_base`` units, ``index``) and audio packets (``pts``,
            ``dts``, ``duration`` in their own ``time_base``), in demux order.
        window: What to keep.
        time_base: Seconds per frame pts unit.
        origin_s: The video stream's start time in seconds (where ``window.start_s`` counts from).
        fps: Frame rate, for the end of the last frame when the window ends by ``frames``
            (and for frames without a pts).
        is_frame: Tells frames from packets.
        has_audio: ``items`` holds audio packets; when False, reading stops with the window's last frame.

    Yields frames renumbered from 0 and packets retimed, in order; audio is held back until the
    video has passed it, so no packet beyond the window's end is yielded. Stops reading ``items``
    once the window's video has ended and an audio packet at or beyond the end has been seen, the
    video is :data:`AUDIO_LAG_S` past the end, or ``items`` ends.
    """
    # Absolute times (pts * time_base) throughout, video and audio alike.
    start = origin_s + Fraction(window.start_s).limit_denominator(10**6) - Fraction(_EPS_S).limit_denominator(10**7)
    end = None if window.duration_s is None else start + Fraction(window.duration_s).limit_denominator(10**6)
    step = Fraction(1) / fps if fps else Fraction(0)
    first_s: Fraction | None = None  # time of the first kept frame: output time 0
    first_pts = 0
    passed_s = Fraction(-1)  # audio that starts before this time may be released
    held: deque = deque()
    kept = 0
    last_t = None

    def audio_start(p) -> Fraction | None:
        return None if p.pts is None else p.pts * Fraction(p.time_base)

    def retime(p):
        shift = round(first_s / Fraction(p.time_base))
        p.pts -= shift
        if p.dts is not None:
            p.dts -= shift
        return p

    def release(until: Fraction, final: bool) -> Iterator:
        while held:
            t = audio_start(held[0])
            if t is not None and t >= until and not final:
                return
            p = held.popleft()
            if t is not None and first_s <= t < until:
                yield retime(p)

    it = iter(items)
    video_done = False
    for obj in it:
        if not is_frame(obj):
            t = audio_start(obj)
            if t is None or t < start:
                continue
            if video_done:
                if t >= end:
                    break
                if t >= first_s:
                    yield retime(obj)
                continue
            held.append(obj)
            if first_s is not None:
                yield from release(passed_s, False)
            continue
        if obj.pts is not None:
            t = obj.pts * time_base
        else:
            t = origin_s if last_t is None else last_t + step
        last_t = t
        if video_done:
            if t >= end + AUDIO_LAG_S:
                break
            continue
        if t < start:
            continue
        if end is not None and t >= end:
            video_done = True
        else:
            if first_s is None:
                first_s, first_pts = t, obj.pts or 0
            obj.index = kept
            if obj.pts is not None:
                obj.pts -= first_pts
            kept += 1
            yield obj
            passed_s = t + step
            if window.frames is not None and kept >= window.frames:
                end = t + step if end is None else min(end, t + step)
                video_done = True
        if video_done:
            if first_s is None:
                return
            yield from release(end, True)
            if not has_audio:
                return
        else:
            yield from release(passed_s, False)
    if first_s is not None and held:
        yield from release(end if end is not None else Fraction(10**12), True)
