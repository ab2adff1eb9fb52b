"""Resumable video runs on disk: the work folder, the segment writer, and the final join.

Layout (see :mod:`sredge.runtime.resume` for the journal): ``OUT.sredge-partial/`` beside the output
holds ``journal.jsonl`` and ``seg-NNNNNN.mp4``, each a closed, complete, video-only MP4 of a fixed
number of frames (the last one of a stopped run may be shorter). A segment is written to a hidden
temporary file, closed, renamed, fsynced with its folder, and only then is its journal line appended
and fsynced: after any stop (SIGKILL and power loss included) the journal names only whole segments.
A temporary segment a crash left is removed by the next run.

The final output is made by :func:`join_segments`: the segments' video packets are stream-copied
(no re-encoding) with continuous timestamps, and the source's audio and other streams come from the
source through the same :class:`~sredge.runtime.video_io.VideoWriter` passthrough as a plain run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path

import av
import av.error
from av.bitstream import BitStreamFilterContext

from sredge.atomic import WriteError, fsync_file, fsync_folder, write_bytes_atomic
from sredge.errors import InputError
from sredge.runtime.resume import (
    JOURNAL,
    Fingerprint,
    Journal,
    Segment,
    dts_plan,
    parse_journal,
    segment_name,
)
from sredge.runtime.video_io import Frame, VideoReader, VideoWriter
from sredge.runtime.window import Window

log = logging.getLogger(__name__)

WORK_SUFFIX = ".sredge-partial"
_MIB = 1 << 20
_OURS = re.compile(r"journal\.jsonl|seg-\d{6}\.mp4|\.seg-\d{6}\.mp4\.[0-9a-f]+\.partial\.mp4"
                   r"|\.journal\.jsonl\.[A-Za-z0-9_]+\.tmp")
"""Names sredge writes in a work folder: the journal, segments, and their temporary files."""


def work_folder(output: Path) -> Path:
    """The work folder of a resumable run writing ``output``: ``OUTPUT.sredge-partial`` beside it."""
    output = Path(output)
    return output.with_name(output.name + WORK_SUFFIX)


def stale_temporaries(output: Path) -> list[Path]:
    """Temporary files a killed run writing ``output`` left beside it (``.NAME.<8 hex>.partial.SUFFIX``)."""
    output = Path(output)
    pattern = re.compile(re.escape(f".{output.name}.") + r"[0-9a-f]{8}" + re.escape(f".partial{output.suffix}"))
    folder = output.parent if str(output.parent) else Path(".")
    try:
        return sorted(f for f in folder.iterdir() if pattern.fullmatch(f.name) and f.is_file() and not f.is_symlink())
    except OSError:
        return []


def check_work_folder(output: Path, others: Sequence[tuple[Path, str]]) -> None:
    """Refuse a run whose work folder (``OUTPUT.sredge-partial``) is not sredge's own to fill and empty.

    The folder may be missing, or hold only what sredge writes there; no path the run reads or writes
    may be inside it, nor be a temporary file that the run removes as a killed run's leftover.

    Args:
        output: The run's ``-o``.
        others: ``(path, flag)`` of every other path the run reads or writes.

    Raises:
        InputError: Naming the folder or file and what to do (exit code 2).
    """
    from sredge.outputs import resolve

    work = work_folder(output)
    if work.is_symlink() or (work.exists() and not work.is_dir()):
        raise InputError(f"{work} is {'a symbolic link' if work.is_symlink() else 'not a folder'}: sredge keeps "
                         f"the work of a resumable run of -o {output} in a folder of that name and empties it; "
                         "move it away, or choose another -o")
    if work.is_dir():
        foreign = sorted(f.name for f in work.iterdir()
                         if f.is_symlink() or not f.is_file() or not _OURS.fullmatch(f.name))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise InputError(f"{work} holds files sredge did not write ({shown}); it is the work folder of -o "
                             f"{output}, which sredge empties: move them away, or choose another -o")
    real_work = resolve(work)
    stale = {resolve(f) for f in stale_temporaries(output)}
    for path, flag in others:
        real = resolve(path)
        if real == real_work or real.is_relative_to(real_work):
            raise InputError(f"{path} ({flag}) is inside {work}, the work folder of -o {output}, which the run "
                             "empties: copy it elsewhere first, or choose another -o")
        if real in stale:
            raise InputError(f"{path} ({flag}) has the name of a temporary file a stopped run of -o {output} "
                             "left, which the run removes: rename it, or choose another -o")


def fingerprint(path: str | Path) -> Fingerprint:
    """Size, modification time and digests of the first and last MiB of a file (reads at most 2 MiB)."""
    path = Path(path)
    st = path.stat()
    with open(path, "rb") as fh:
        head = hashlib.sha256(fh.read(_MIB)).hexdigest()
        fh.seek(max(0, st.st_size - _MIB))
        tail = hashlib.sha256(fh.read(_MIB)).hexdigest()
    return Fingerprint(st.st_size, st.st_mtime_ns, head, tail)


def file_sha256(path: str | Path) -> str:
    """sha256 of a whole file (hex), read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * _MIB):
            h.update(block)
    return h.hexdigest()


def frame_digest(frame: Frame) -> str:
    """Digest of a decoded frame's pixels (its I420 or RGB samples), to recognise it after a seek."""
    data = frame.i420 if frame.i420 is not None else frame.rgb
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()


class WorkFolder:
    """The work folder of one output (all side effects of resuming live here).

    Attributes:
        output: The run's final output file.
        path: The work folder.
    """

    def __init__(self, output: Path):
        self.output = Path(output)
        self.path = work_folder(self.output)

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    def exists(self) -> bool:
        return self.journal_path.is_file()

    def load(self, warn: bool = True, verify: bool = False) -> Journal | None:
        """The journal with only the segments whose files are whole (None: no usable journal).

        ``warn``: say (once per run: the run's own load) which segment is missing or damaged.
        ``verify``: also check each segment's sha256 (reads them all: the run's own load, once).

        Raises:
            InputError: The journal cannot be read.
        """
        try:
            text = self.journal_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(f"cannot read {self.journal_path}: {exc.strerror or exc}") from exc
        journal = parse_journal(text)
        if journal is None:
            return None
        for k, seg in enumerate(journal.segments):
            f = self.path / seg.file
            if not f.is_file() or f.stat().st_size != seg.size or (verify and seg.sha256
                                                                     and file_sha256(f) != seg.sha256):
                log.log(logging.WARNING if warn else logging.DEBUG,
                        "%s: segment %s is missing or damaged; continuing before it", self.path, seg.file)
                del journal.segments[k:]
                journal.done = None
                break
        return journal

    def begin(self, journal: Journal) -> None:
        """Make the folder (if needed) and write the journal whole, atomically; remove files it does not name.

        Raises:
            WriteError: The folder or the journal cannot be written (disk full, read-only).
            InputError: The folder's name is a symbolic link (see :func:`check_work_folder`).
        """
        if self.path.is_symlink():
            raise InputError(f"{self.path} is a symbolic link, not a work folder sredge made; move it away")
        try:
            self.path.mkdir(exist_ok=True)
            write_bytes_atomic(self.journal_path, ("\n".join(journal.lines()) + "\n").encode())
            fsync_folder(self.path)
        except OSError as exc:
            raise _write_error(self.output, exc) from exc
        except WriteError as exc:
            raise WriteError(self.output, exc.reason) from exc
        keep = {JOURNAL} | {s.file for s in journal.segments}
        for f in self._own_files():
            if f.name not in keep:
                f.unlink(missing_ok=True)  # a temporary segment a crash left, or one committed after the journal's end
        for stale in stale_temporaries(self.output):
            stale.unlink(missing_ok=True)  # a final join a crash cut short (the output's lock is ours)

    def _own_files(self) -> list[Path]:
        """The files in the folder that sredge wrote (never another file, a link or a folder)."""
        if self.path.is_symlink() or not self.path.is_dir():
            return []
        return [f for f in self.path.iterdir() if _OURS.fullmatch(f.name) and f.is_file() and not f.is_symlink()]

    def append(self, row: dict) -> None:
        """Append one journal line and fsync it (the commit point).

        Raises:
            WriteError: Disk full or refused.
        """
        import json

        try:
            with open(self.journal_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise _write_error(self.output, exc) from exc

    def commit(self, seg: Segment) -> None:
        """Make a closed segment file durable, then record it."""
        try:
            fsync_file(self.path / seg.file)
            fsync_folder(self.path)
        except OSError as exc:
            raise _write_error(self.output, exc) from exc
        self.append({"segment": asdict(seg)})

    def remove(self) -> None:
        """Delete the work folder (the run is finished, or starts over) and the temporary files killed runs of
        the output left beside it. Only what sredge wrote is deleted: a folder holding anything else is kept."""
        for f in self._own_files():
            f.unlink(missing_ok=True)
        if not self.path.is_symlink():
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only when empty
        for stale in stale_temporaries(self.output):
            stale.unlink(missing_ok=True)


def _write_error(output: Path, exc: OSError) -> InputError:
    from sredge.atomic import write_error

    # The work folder is what could not be written (a read-only one said "cannot write OUT" before).
    return write_error(work_folder(output), exc) or InputError(f"cannot write {work_folder(output)}: "
                                                               f"{exc.strerror or exc}")


class SegmentedWriter:
    """Stands in for a :class:`VideoWriter` in the pipeline: encodes frames into segments and commits each.

    Use as a context manager (closing commits the open segment, also when the block raised, so a
    stopped run keeps every frame it encoded). Frames' ``pts`` are output pts; ``index`` is the frame's
    index in the run; ``digests`` maps an index to :func:`frame_digest` of its source frame (filled by
    the decode side, consumed here).

    Attributes:
        frames_written: Frames committed or in the open segment, counted over the whole run
            (the frames of earlier runs included).
    """

    def __init__(self, work: WorkFolder, journal: Journal, make_writer: Callable[[Path], VideoWriter],
                 frames_per_segment: int, digests: dict[int, str]):
        self.work, self.journal, self.make_writer = work, journal, make_writer
        self.frames_per_segment = max(1, int(frames_per_segment))
        self.digests = digests
        self.frames_written = journal.frames
        self.notices: list[str] = []  # the streams the output does not carry are said by the final join
        self._writer: VideoWriter | None = None
        self._seg: dict | None = None
        self._last_pts: int | None = journal.segments[-1].last_pts if journal.segments else None

    def __enter__(self) -> SegmentedWriter:
        self._open()  # bad encoder options fail here, before any work
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        name = segment_name(len(self.journal.segments))
        writer = self.make_writer(self.work.path / name)
        try:
            writer.__enter__()
        except WriteError as exc:
            raise WriteError(self.work.output, exc.reason) from exc
        self._writer = writer
        self._seg = {"file": name, "first": self.journal.frames, "frames": 0, "pts0": None, "last_pts": None,
                     "last_hash": ""}

    def write(self, frame: Frame) -> None:
        """Encode one output frame (``pts`` in output units) into the open segment; commit it when full."""
        if self._writer is None:
            self._open()
        seg = self._seg
        pts = frame.pts
        if pts is None:  # a stream without timestamps: continue at the frame rate (as VideoWriter does)
            w = self._writer
            step = max(1, round(1 / (w.fps * w.time_base))) if w.fps else 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        self._last_pts = pts
        if seg["pts0"] is None:
            seg["pts0"] = pts
        local = pts - seg["pts0"]
        try:
            self._writer.write(Frame(frame.rgb, local, frame.index, i420=frame.i420))
        except WriteError as exc:
            raise WriteError(self.work.output, exc.reason) from exc
        seg["frames"] += 1
        seg["last_pts"] = pts
        seg["last_hash"] = self.digests.pop(frame.index, "")
        self.frames_written += 1
        if seg["frames"] >= self.frames_per_segment:
            self._commit()

    def mux_audio(self, packet) -> None:
        """Audio is not kept in segments: the final join copies it from the source."""

    def _commit(self) -> None:
        writer, seg = self._writer, self._seg
        self._writer, self._seg = None, None
        try:
            writer.close()
        except WriteError as exc:
            raise WriteError(self.work.output, exc.reason) from exc
        if not seg["frames"]:
            return
        path = self.work.path / seg["file"]
        committed = Segment(size=path.stat().st_size, sha256=file_sha256(path), **seg)
        self.work.commit(committed)
        self.journal.segments.append(committed)

    def close(self) -> None:
        """Commit the open segment (if it holds a frame)."""
        if self._writer is not None:
            self._commit()


def _segment_packets(path: Path) -> list:
    with av.open(str(path)) as c:
        return [(p.pts, p.dts) for p in c.demux(c.streams.video[0]) if p.size]


def join_segments(work: WorkFolder, journal: Journal, source: str, window: Window | None,
                  make_writer: Callable[[Path, VideoReader], VideoWriter], max_pixels: int,
                  partial: bool, before_replace: Callable[[Path], None] | None = None) -> int:
    """Join the committed segments into ``work.output`` (atomically), with the source's audio.

    Video packets are stream-copied with their output pts; decode timestamps are planned anew across
    the joins (:func:`sredge.runtime.resume.dts_plan`). Everything else in the output (audio, and what
    else the writer carries from its ``audio_from`` reader) comes from a second pass over the source
    through the same window, so it is cut and timed as in a run that never stopped.

    Args:
        work: The work folder.
        journal: Its journal (segments contiguous from frame 0).
        source: The input file.
        window: The run's ``--start/--duration/--frames`` window, or None.
        make_writer: ``make_writer(output, reader)`` -> an unopened VideoWriter with the run's settings
            and ``audio_from=reader``.
        max_pixels: ``--max-pixels`` for the source reader.
        partial: The run stopped early: the output holds the committed frames only (audio cut alike, the
            timestamps then start at 0 as with ``--frames``).

    Returns:
        Frames written.
    """
    segs = journal.segments
    packets = [_segment_packets(work.path / s.file) for s in segs]
    pts = [[p + s.pts0 for p, _ in pk] for s, pk in zip(segs, packets, strict=True)]
    step = _step(pts)
    dts, _ = dts_plan(pts, step)
    n = journal.frames
    if partial:
        base = window or Window()
        frames = n if base.frames is None else min(base.frames, n)
        window = Window(base.start_s, base.duration_s, frames)
    with VideoReader(source, want_i420=True, max_pixels=max_pixels, window=window, warn_damage=False) as reader:
        shift = (journal.zero_pts - reader.zero_pts) if reader.zero_pts is not None else journal.zero_pts
        video = _video_packets(work, segs, pts, dts, shift)
        with make_writer(work.output, reader) as writer:
            writer.before_replace = before_replace
            try:
                for item in reader:
                    if isinstance(item, Frame):
                        pkt = next(video, None)
                        if pkt is not None:
                            writer.mux_encoded(*pkt)
                    else:
                        writer.mux_audio(item)
                for pkt in video:
                    writer.mux_encoded(*pkt)
            except av.error.FFmpegError as exc:  # a segment damaged in place (its size kept)
                writer.discard()  # never a cut-short file at the output's name
                raise InputError(f"cannot join the frames done of {work.output}: {work.path} holds a damaged "
                                 f"segment ({exc}); --overwrite starts over") from exc
            except BaseException:
                writer.discard()
                raise
            written = writer.frames_written
    return written


def _step(pts: list[list[int]]) -> int:
    flat = sorted(p for seg in pts for p in seg)
    gaps = [b - a for a, b in pairwise(flat) if b > a]
    return min(gaps) if gaps else 1


def _video_packets(work: WorkFolder, segs: list[Segment], pts: list[list[int]], dts: list[list[int]],
                   shift: int) -> Iterator:
    for seg, seg_pts, seg_dts in zip(segs, pts, dts, strict=True):
        with av.open(str(work.path / seg.file)) as c:
            stream = c.streams.video[0]
            # MP4 stores H.264/HEVC length-prefixed; an encoder's stream (the writer's) takes Annex B.
            name = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}.get(stream.codec_context.name)
            bsf = BitStreamFilterContext(name, stream) if name else None
            k = 0
            for p in c.demux(stream):
                if not p.size:
                    continue
                for q in bsf.filter(p) if bsf is not None else [p]:
                    q.pts, q.dts = seg_pts[k] + shift, seg_dts[k] + shift
                    yield q, (stream.codec_context.extradata or b"") if k == 0 else None
                    k += 1

