"""Resumable video runs: the journal of what is committed, and where a new run continues (pure).

A resumable ``sr-run --video FILE -o OUT`` keeps a work folder beside its output,
``OUT.sredge-partial/`` (see :mod:`sredge.runtime.segments`), holding closed video-only segments and
``journal.jsonl``, one JSON object per line:

* the header (first line): what the run is - the input's fingerprint (:class:`Fingerprint`), every
  setting that changes the output's pixels (``settings``: ``--model`` sha256, ``--tile``, ``--crf``,
  ``--start`` ...), the video time base and, with a window, the source pts of its first frame;
* one line per committed segment (:class:`Segment`), appended (and fsynced) only after the segment's
  file is closed, renamed and fsynced: the line is the commit;
* ``{"partial": ...}``: the output file a stopped run left (so a later run may replace it; the last such
  line counts), and ``{"final": ...}``: the complete output the final join wrote. Both are appended before
  the file is renamed onto ``OUT`` (its size and mtime survive the rename), so a kill at any moment leaves
  ``OUT`` either absent, as it was, or recorded as this run's;
* ``{"done": N}``: every frame is encoded; only joining the segments into the output remains.

A line cut short by a crash (power loss mid-append) is the last one and is ignored.

Timestamps: the output keeps the source's time base. Output pts = source pts - ``zero_pts`` (the
window's first frame; 0 without a window, where the source's own pts pass through).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from sredge.runtime.window import Window

JOURNAL = "journal.jsonl"
KIND = "sredge-resume"
VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an input file well enough to continue work on it.

    Attributes:
        size: Bytes.
        mtime_ns: Modification time (a file edited in place changes it).
        head: sha256 of its first MiB (hex).
        tail: sha256 of its last MiB (hex).
    """

    size: int
    mtime_ns: int
    head: str
    tail: str


@dataclass(frozen=True)
class Segment:
    """A committed segment: frames ``first`` .. ``first + frames - 1`` of the run, in its own file.

    Attributes:
        file: File name inside the work folder.
        first: Index of its first frame in the run (0-based, counted from the run's first frame).
        frames: Frames it holds.
        pts0: Output pts of its first frame; the file stores pts relative to it (starting at 0).
        last_pts: Output pts of its last frame.
        last_hash: Digest of the last frame's decoded source pixels (to check a resumed seek lands on it).
        size: The file's size in bytes when committed.
        sha256: The file's sha256 when committed ("" in journals written before it was recorded): a run
            continues before a segment whose bytes changed, damage that keeps the size included.
    """

    file: str
    first: int
    frames: int
    pts0: int
    last_pts: int
    last_hash: str
    size: int
    sha256: str = ""


@dataclass
class Journal:
    """A work folder's journal, parsed (see the module docstring)."""

    header: dict
    segments: list[Segment] = field(default_factory=list)
    partial: dict | None = None
    final: dict | None = None
    done: int | None = None

    @property
    def frames(self) -> int:
        """Frames committed (the segments are contiguous from frame 0)."""
        return sum(s.frames for s in self.segments)

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.header["time_base"])

    @property
    def zero_pts(self) -> int:
        return int(self.header.get("zero_pts") or 0)

    def lines(self) -> list[str]:
        """The journal as lines (without newlines), header first."""
        out = [json.dumps(self.header, sort_keys=True)]
        out += [json.dumps({"segment": asdict(s)}, sort_keys=True) for s in self.segments]
        if self.partial is not None:
            out.append(json.dumps({"partial": self.partial}, sort_keys=True))
        if self.done is not None:
            out.append(json.dumps({"done": self.done}))
        if self.final is not None:
            out.append(json.dumps({"final": self.final}, sort_keys=True))
        return out


def new_header(fingerprint: Fingerprint, settings: dict[str, str], time_base: Fraction,
               zero_pts: int | None) -> dict:
    """The first line of a new journal (pure)."""
    return {"journal": KIND, "version": VERSION, "input": asdict(fingerprint), "settings": dict(settings),
            "time_base": str(Fraction(time_base)), "zero_pts": zero_pts}


def parse_journal(text: str) -> Journal | None:
    """Parse a journal (pure). None when it has no valid header (not ours, or cut short before one).

    Segments must follow each other (frame ``first`` = the frames before it); the first one that does
    not, and everything after it, is dropped. A line that is not JSON ends the journal.
    """
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line cut short: the crash came while it was being appended
    if not rows or not isinstance(rows[0], dict) or rows[0].get("journal") != KIND or rows[0].get("version") != VERSION:
        return None
    journal = Journal(rows[0])
    for row in rows[1:]:
        if not isinstance(row, dict):
            break
        if "segment" in row:
            try:
                seg = Segment(**row["segment"])
            except TypeError:
                break
            if seg.first != journal.frames or seg.frames < 1:
                break
            journal.segments.append(seg)
        elif "partial" in row:
            journal.partial = row["partial"]
        elif "final" in row:
            journal.final = row["final"]
        elif "done" in row:
            journal.done = int(row["done"])
    return journal


def mismatch(journal: Journal, fingerprint: Fingerprint, settings: dict[str, str]) -> str | None:
    """Why ``journal`` cannot be continued by a run on this input with these settings (pure); None: it can.

    Returns one phrase, e.g. ``"--tile was 256, now 128"`` or ``"the input changed (size)"``.
    """
    old_fp = journal.header.get("input", {})
    for key, value in asdict(fingerprint).items():
        if old_fp.get(key) != value:
            what = {"size": "its size", "mtime_ns": "its modification time", "head": "its first MiB",
                    "tail": "its last MiB"}[key]
            return f"the input changed since the run began ({what} differs)"
    old = journal.header.get("settings", {})
    for key in [*settings, *(k for k in old if k not in settings)]:  # in the order the options are listed
        if old.get(key) != settings.get(key):
            return f"{key} was {_shown(old.get(key))}, now {_shown(settings.get(key))}"
    return None


def _shown(value: str | None) -> str:
    return "not given" if value in (None, "", "None") else str(value)


def resume_window(user: Window | None, journal: Journal, origin_s: Fraction) -> Window:
    """The part of the source a continuing run reads (pure).

    It starts exactly at the last committed frame (which the run decodes again, checks against its
    digest and drops), and ends where the user's window ends; when nothing is left after that frame
    (or the journal says ``done``), it holds that frame only.

    Args:
        user: The run's ``--start/--duration/--frames`` window, or None for the whole video.
        journal: With at least one segment.
        origin_s: The video stream's start in seconds (:attr:`VideoReader.origin_s`), where window times count.
    """
    last = journal.segments[-1]
    tb = journal.time_base
    at_s = (last.last_pts + journal.zero_pts) * tb  # the last committed frame, in source seconds
    start_s = at_s - origin_s
    start = float(max(start_s, Fraction(0)))
    if journal.done is not None:
        return Window(start, None, 1)
    duration_s = None
    frames = None
    if user is not None and user.frames is not None:
        frames = max(1, user.frames - journal.frames + 1)
    if user is not None and user.duration_s is not None:
        end_s = Fraction(user.start_s).limit_denominator(10**6) + Fraction(user.duration_s).limit_denominator(10**6)
        duration_s = end_s - start_s
        if duration_s <= 0:
            return Window(start, None, 1)
    return Window(start, float(duration_s) if duration_s is not None else None, frames)


def segment_frames(fps: Fraction | None, every_s: float) -> int:
    """Frames per segment for a commit every ``every_s`` seconds (pure; 30 fps assumed when unknown)."""
    rate = float(fps) if fps else 30.0
    return max(1, math.ceil(rate * every_s - 1e-9))


def segment_name(number: int) -> str:
    """File name of the ``number``-th segment (0-based)."""
    return f"seg-{number:06d}.mp4"


def dts_plan(segments_pts: list[list[int]], step: int) -> tuple[list[list[int]], int]:
    """Decode timestamps for segments joined into one stream (pure).

    Each segment is an independent encode (closed GOPs, its own reordering delay), stored with pts
    from 0. Joined, packet ``g`` (in decode order) gets dts = the ``g - R``-th smallest pts, where
    ``R`` is the largest reordering delay of any segment: increasing, and never after its packet's pts.

    Args:
        segments_pts: Per segment, the output pts of its packets in decode order (already shifted).
        step: Ticks per frame, for the dts before the first frame.

    Returns:
        (Per segment, the dts of its packets; R.)
    """
    delay = 0
    order: list[int] = []
    for pts in segments_pts:
        ranks = {p: i for i, p in enumerate(sorted(pts))}
        delay = max([delay] + [k - ranks[p] for k, p in enumerate(pts)])
        order += sorted(pts)
    out: list[list[int]] = []
    g = 0
    for pts in segments_pts:
        dts = []
        for _ in pts:
            dts.append(order[g - delay] if g >= delay else order[0] - (delay - g) * max(1, step))
            g += 1
        out.append(dts)
    return out, delay
