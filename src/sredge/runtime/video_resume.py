"""One resumable video run: continue or begin the work folder's journal, feed the pipeline, finish.

``sr-run --video FILE -o OUT`` is resumable by default: progress is committed as closed segments
(:mod:`sredge.runtime.segments`, journal in :mod:`sredge.runtime.resume`). After any stop, the same
command continues after the last committed frame instead of starting over, and refuses (naming the
difference) when the input or a setting that changes the output's pixels is not the same.

What a user finds after a stop:

* Ctrl-C, SIGTERM, SIGHUP, a backend error: ``OUT`` is a playable file of the frames done (as with a
  plain run), and ``OUT.sredge-partial/`` keeps the work; running the same command again continues and
  replaces ``OUT`` with the whole video.
* SIGKILL, power loss: no ``OUT`` (or the one an earlier stop left), ``OUT.sredge-partial/`` holds
  every committed segment; the same command continues.
* A finished run: ``OUT`` only; the work folder is removed.

Live sources (cameras, streams) are never resumable: there is nothing to seek back to.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sredge.atomic import NO_SPACE, WriteError
from sredge.errors import InputError
from sredge.runtime.resume import (
    Journal,
    mismatch,
    new_header,
    resume_window,
    segment_frames,
)
from sredge.runtime.segments import (
    SegmentedWriter,
    WorkFolder,
    file_sha256,
    fingerprint,
    frame_digest,
    join_segments,
)
from sredge.runtime.video_io import Frame, VideoReader

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sredge.runtime.pipeline import PipelineResult
    from sredge.runtime.resize_plan import OutputSize
    from sredge.runtime.runner import LoadedRuntime
    from sredge.runtime.video_io import VideoWriter
    from sredge.runtime.window import Window

log = logging.getLogger(__name__)

DEFAULT_COMMIT_EVERY_S = 4.0
"""Seconds of video per committed segment: at most this much work is lost to a crash."""


@dataclass(frozen=True)
class ResumeOptions:
    """How a video file run to a file commits its progress and continues an unfinished one."""

    require: bool = False
    """``--resume``: there must be an unfinished run of this output to continue (else refuse)."""
    restart: bool = False
    """``--overwrite``: an unfinished run whose input or settings differ is discarded, not refused."""
    commit_every_s: float = DEFAULT_COMMIT_EVERY_S
    """Seconds of video per segment (``--commit-every``); does not change the pixels."""


def pixel_settings(rt: LoadedRuntime, *, crf: int | None, preset: str, encoder: str, latency_mode: bool,
                   window: Window | None, size: OutputSize | None) -> dict[str, str]:
    """Every setting that changes the output's pixels, by the option that sets it (for the journal)."""
    from sredge.runtime.encoders import DEFAULT_CRF, ENCODERS

    o, b = rt.opts, rt.opts.backend_options
    ov = o.overrides
    w = window
    enc = ENCODERS.get(encoder)
    if enc is not None and crf is not None and crf == DEFAULT_CRF.get(enc.family, 18):
        crf = None  # --crf given as its default is the run without it (the journal says "not given")
    return {
        "--model": f"{Path(rt.model).name} (sha256 {file_sha256(rt.model)[:16]})",
        "--backend": rt.kind, "--device": b.device, "--precision": str(b.precision), "--fp16": str(b.fp16),
        "--tile": f"auto (--memory-budget {o.memory_budget_mb})" if o.tile == "auto" else str(o.tile),
        "--tile-overlap": str(o.tile_overlap), "--blend": str(o.blend), "--batch": str(o.batch),
        "--scale": str(rt.desc.scale), "--color": str(ov.color), "--range": str(ov.value_range),
        "--crf": str(crf), "--preset": preset, "--encoder": encoder, "--latency-mode": str(latency_mode),
        "--start": str(w.start_s if w else 0.0), "--duration": str(w.duration_s if w else None),
        "--frames": str(w.frames if w else None),
        "--outscale/--target": size.describe() if size is not None else "model scale",
    }


def stopped_choice(output: Path) -> tuple[str, str] | None:
    """(model file name, backend) that the unfinished run of ``output`` journaled (see :func:`pixel_settings`),
    for ``--backend auto`` to keep; None when there is none to continue.

    Raises:
        InputError: The journal cannot be read.
    """
    journal = WorkFolder(output).load(warn=False)
    settings = journal.header.get("settings") if journal is not None and journal.segments else None
    model, backend = (settings.get("--model"), settings.get("--backend")) if isinstance(settings, dict) else (0, 0)
    if not (isinstance(model, str) and isinstance(backend, str)):
        return None
    return model.rsplit(" (sha256 ", 1)[0], backend


class ResumableRun:
    """The resumable side of one ``upscale_video`` call (see the module docstring).

    Attributes:
        work: The output's work folder.
        journal: The journal being continued, or None until :meth:`begin` starts a new one.
        resumed_from: Frames an earlier run committed (0: a new run).
        read_window: The window to open the source with (the user's, or the rest after the committed frames).
    """

    def __init__(self, opts: ResumeOptions, source: str, output: Path, window: Window | None,
                 settings: dict[str, str], max_pixels: int, keep_existing: bool = False):
        """Load and check the work folder; nothing is written yet.

        ``keep_existing``: ``output`` is a file from before this run (``--overwrite``): a stop keeps it as it
        was (the frames done stay in the work folder), only a complete run replaces it.

        Raises:
            InputError: An unfinished run of ``output`` differs from this one (and ``restart`` is off), or
                ``require`` is set and there is none.
        """
        self.opts, self.source, self.output, self.window = opts, source, Path(output), window
        self.settings, self.max_pixels, self.keep_existing = settings, max_pixels, keep_existing
        self.work = WorkFolder(self.output)
        self.fingerprint = fingerprint(source)
        journal = self.work.load(verify=True)
        if journal is not None:
            why = mismatch(journal, self.fingerprint, settings)
            if why is not None:
                if not opts.restart:
                    back = ("put the original input back" if why.startswith("the input changed")
                            else "give the original option")
                    raise InputError(f"cannot resume {self.output}: {why}; {back} to continue, "
                                     f"or --overwrite to start over (discards {self.work.path})")
                log.warning("starting %s over (%s)", self.output, why)
                self.work.remove()
                journal = None
        if journal is None and opts.require:
            raise InputError(f"--resume: {self.output} has no unfinished run to continue (no {self.work.journal_path})")
        if journal is not None and not journal.segments:
            journal = None  # stopped before its first commit: begin anew
        self.journal: Journal | None = journal
        self.resumed_from = journal.frames if journal is not None else 0
        self.read_window = window
        if journal is not None:
            with VideoReader(source, max_pixels=max_pixels) as probe:
                origin = probe.origin_s
            self.read_window = resume_window(window, journal, origin)
        self.digests: dict[int, str] = {}
        self._writer: SegmentedWriter | None = None
        self._refused: str | None = None
        self._lock = threading.Lock()

    def begin(self, reader: VideoReader) -> None:
        """Write the journal (a new one, or the continued one cleaned of a crash's leftovers).

        Raises:
            InputError: The source's time base changed; WriteError: the work folder cannot be written.
        """
        info = reader.info
        fresh = self.journal is None
        if fresh:
            self.journal = Journal(new_header(self.fingerprint, self.settings, info.time_base, reader.zero_pts))
        elif self.journal.time_base != info.time_base:
            raise InputError(f"cannot resume {self.output}: the input's time base reads as {info.time_base}, "
                             f"not {self.journal.time_base}; --overwrite to start over")
        try:
            self.work.begin(self.journal)
        except BaseException:
            if fresh:
                self.work.remove()
            raise

    def writer(self, make_writer: Callable[[Path], VideoWriter], fps) -> SegmentedWriter:
        """The pipeline's writer: segments of ``commit_every_s`` seconds, each committed when full."""
        self._writer = SegmentedWriter(self.work, self.journal, make_writer,
                                       segment_frames(fps, self.opts.commit_every_s), self.digests)
        return self._writer

    def items(self, reader: Iterable) -> Iterator:
        """The reader's items for the pipeline: frames renumbered and retimed to the whole run's output,
        each frame's digest noted; a continued run's first frame (the last one committed) is checked and
        dropped. Raises InputError (from the decode thread) when that frame is not the one committed."""
        last = self.journal.segments[-1] if self.resumed_from else None
        offset, base = 0, 0
        for obj in reader:
            if isinstance(obj, Frame):
                if last is not None:
                    if frame_digest(obj) != last.last_hash:
                        self._refused = "seek"
                        raise InputError(f"cannot resume {self.output}: the input's frame {self.resumed_from} "
                                         "does not decode as it did; --no-resume to start over")
                    offset = last.last_pts - (obj.pts or 0)
                    base = self.resumed_from - 1 - obj.index
                    last = None
                    continue
                if obj.pts is not None:
                    obj.pts += offset
                obj.index += base
                self.digests[obj.index] = frame_digest(obj)
            yield obj

    def finish(self, result: PipelineResult, make_writer: Callable[[Path, VideoReader], VideoWriter]) -> int:
        """After the pipeline (the segment writer closed): join the segments into the output.

        A run that reached the end of its input is joined whole and its work folder removed; a stopped
        one is joined as far as it got (a playable output; not over an output from before the run, see
        ``keep_existing``) and its work folder kept for the next run.

        Returns:
            Frames in the output (0: nothing written).

        Raises:
            InputError: Joining failed (e.g. disk full); the work folder is kept, the next run joins again.
        """
        journal = self.journal
        if self._refused is not None:
            return 0
        complete = not result.interrupted and result.failure is None
        n = journal.frames
        if complete:
            if n:
                self.work.append({"done": n})
                journal.done = n
                written = self._join(journal, make_writer, partial=False)
            else:
                written = 0
            self.work.remove()
            return written
        if not n:
            self.work.remove()
            return 0
        if self.keep_existing:
            return 0  # the earlier output stays; the committed frames wait in the work folder
        return self._join(journal, make_writer, partial=True)

    def _join(self, journal, make_writer: Callable[[Path, VideoReader], VideoWriter], partial: bool) -> int:
        """:func:`join_segments`; an output that cannot be written (a full disk, say) says that the frames done are
        kept and how to join them (the line named only the output: the work folder stayed unmentioned)."""
        n = journal.frames
        try:
            return join_segments(self.work, journal, self.source, self.window, make_writer, self.max_pixels,
                                 partial=partial, before_replace=self._record("partial" if partial else "final", n))
        except WriteError as exc:
            how = "free some space, then " if exc.reason == NO_SPACE else ""
            raise InputError(f"{exc}; the {n} frames done are kept in {self.work.path}: {how}the same command "
                             "joins them") from exc

    def _record(self, kind: str, frames: int) -> Callable[[Path], None]:
        """Journal the joined file (``partial`` or ``final``) from its temporary file, before it is renamed onto
        the output: a kill right after the rename then finds the output recorded as this run's, which the same
        command may replace, never an unknown file it must refuse."""

        def record(tmp: Path) -> None:
            st = tmp.stat()  # size and mtime survive the rename
            self.work.append({kind: {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": frames}})

        return record


def stopped_run_report_of(report: Path, output: Path) -> bool:
    """Whether ``report`` is the ``--report`` a stopped resumable run of ``output`` wrote (so continuing that run
    may replace it): an sr-run report of ``output`` that names its work folder, which still exists."""
    work = WorkFolder(output)
    if not work.exists():
        return False
    try:
        data = json.loads(Path(report).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(data, dict) and data.get("output") == str(output)
            and data.get("work_folder_kept") == str(work.path))


def partial_output_of(output: Path) -> bool:
    """Whether ``output`` is this resumable run's own file (so the same command may replace it): the playable file
    a stopped run left, or the complete one a final join wrote before a kill left its work folder behind."""
    work = WorkFolder(output)
    try:
        if not work.exists():
            return False
        journal = work.load(warn=False)  # the run's own load says it
        st = Path(output).stat()
    except (OSError, InputError):
        return False
    records = (journal.partial, journal.final) if journal is not None else ()
    return any(bool(p) and p.get("size") == st.st_size and p.get("mtime_ns") == st.st_mtime_ns for p in records)
