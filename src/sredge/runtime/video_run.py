"""``sr-run --video``: decode, upscale every frame through the pipeline, encode; and the frames check.

A run that stops early (a signal, a backend error) still finalizes a playable file of the frames
done; the caller reads :class:`VideoRun` for what happened and chooses the exit code. A file run to a
file can be resumable (``resume``): progress is committed as segments and a later call continues it
(:mod:`sredge.runtime.video_resume`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sredge.errors import CheckFailedError, InputError
from sredge.runtime.pipeline import LATENCY_QUEUE, THROUGHPUT_QUEUE, PipelineResult, run_pipeline
from sredge.runtime.refcheck import ReferenceCheck
from sredge.runtime.resize_plan import OutputSize, plan_output_size, resize_frame
from sredge.runtime.upscaler import takes_i420
from sredge.runtime.video_io import Frame

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sredge.runtime.runner import LoadedRuntime
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.window import Window


@dataclass
class VideoRun:
    """The outcome of one video run, for the report and the exit code."""

    source: str
    output: str | None
    result: PipelineResult
    input_info: dict
    decode_error: str | None
    reference_check: dict | None = None
    """Summary of the ``--reference`` comparison (see :meth:`ReferenceCheck.summary`), when asked for."""
    mode: str = "throughput"
    """``"throughput"`` or ``"latency"`` (``--latency-mode``)."""
    compare: np.ndarray | None = None
    """The ``--compare`` picture (bicubic | output of one frame, (H, W, 3) uint8 RGB), when asked for and
    that frame was reached; the caller writes it."""
    output_hw: tuple[int, int] | None = None
    """(height, width) of the frames written (after ``--outscale``/``--target``)."""
    notices: tuple[str, ...] = ()
    """One line per source stream the output does not carry, or carries changed (see :mod:`sredge.runtime.streams`)."""
    resumed_from: int = 0
    """Frames an earlier, stopped run had committed, which this run continued after (resumable runs)."""
    frames_in_output: int | None = None
    """Frames in the output file (a resumable run: the earlier runs' frames included); None: ``result.frames_out``."""
    work_folder: str | None = None
    """The work folder kept for the next run to continue (a resumable run that stopped), else None."""
    decode_error_kind: str | None = None
    """With ``decode_error``: why the input ended early (:data:`~sredge.runtime.video_io.STOP_JOINED` or
    :data:`~sredge.runtime.video_io.STOP_DAMAGED`)."""
    kept_existing: bool = False
    """The run (of a video file) stopped and ``output`` was a file from before it (``--overwrite``), kept as it
    was: only a complete run replaces an existing output. A resumable run's frames are in ``work_folder``;
    a camera's or stream's recording always replaces the file."""


def _b_frames(output: Path | None) -> bool:
    """Whether the encoder may reorder frames for ``output``: its pieces (a resumable run's segments) are
    written in another container (see :data:`sredge.runtime.video_io.NO_B_FRAMES`)."""
    from sredge.runtime.streams import output_format
    from sredge.runtime.video_io import NO_B_FRAMES

    return output is None or output_format(output)[0] not in NO_B_FRAMES


def default_encoder_threads() -> int:
    """Encoder threads when the user does not say: a quarter of the cores (at least one), leaving
    the rest to inference; a single x264 thread spends the least CPU per frame."""
    return max(1, (os.cpu_count() or 1) // 4)


def upscale_video(rt: LoadedRuntime, source: str, output: str | Path | None, crf: int | None = None,
                  preset: str | None = None, progress=None, display: bool = False, stop: threading.Event | None = None,
                  encoder_threads: int | None = None, reference: LoadedRuntime | None = None,
                  check_every: int = 30, latency_mode: bool = False, encoder: str = "libx264",
                  window: Window | None = None, size: OutputSize | None = None, compare: bool = False,
                  notify: Callable[[str], None] | None = None, resume: ResumeOptions | None = None,
                  on_open: Callable[[], None] | None = None) -> VideoRun:
    """Decode ``source``, upscale every frame, encode H.264 to ``output`` (with the input's audio).

    ``window`` runs only part of the video (``--start/--duration/--frames``, see
    :mod:`sredge.runtime.window`); the output then starts at time 0, audio cut alike.

    ``encoder`` is an FFmpeg encoder name (``--encoder auto`` is resolved before, by
    :func:`sredge.runtime.encoders.resolve_encoder`).

    With ``reference``, every ``check_every``-th frame is also upscaled by that model and the
    Y-PSNR of this run's output against it is recorded (``VideoRun.reference_check``), at the
    model's scale (before any ``size`` resize).

    ``size`` (``--outscale``/``--target``) resizes every upscaled frame before it is encoded
    (:mod:`sredge.runtime.resize_plan`, even sides for 4:2:0). ``compare`` keeps a before/after picture
    of the middle frame (the first of a stream of unknown length) in ``VideoRun.compare``.

    The output carries the source's other streams, tags and chapters where its container can hold
    them (:mod:`sredge.runtime.streams`); ``notify(line)`` gets one line per stream it does not carry
    (or carries changed) before the first frame, and ``VideoRun.notices`` keeps them.

    The output is finalized also when the run stops early (Ctrl-C, backend error): a playable
    file of the frames done. Raises nothing for those: the caller inspects the returned run.

    ``resume`` (a file input to a file output) commits the progress as it goes and continues an
    unfinished run of the same output and settings (:mod:`sredge.runtime.video_resume`); None: one
    plain output file, nothing to continue after a crash.
    ``progress(result, total_frames_or_None)`` is called after each encoded frame. ``on_open()`` is called
    once the source is open and an unfinished run is checked, before anything else is said or written:
    a caller's banner lines then never come before a refusal (a stream that does not open, a run that
    cannot be resumed).

    ``latency_mode`` keeps the fewest frames in flight: one-frame queues between the stages
    (:data:`~sredge.runtime.pipeline.LATENCY_QUEUE`) and x264 ``zerolatency`` (no B-frames or
    lookahead holding frames back). The default, throughput mode, lets decoding and encoding run
    a few frames ahead of and behind inference.
    """
    from sredge.runtime.video_io import VideoReader, VideoWriter, output_notices

    output = Path(output) if output is not None else None
    if output is not None and Path(source).exists() and output.resolve() == Path(source).resolve():
        raise InputError(f"the output {output} would overwrite the input; choose another -o")
    session = None
    from sredge.runtime.video_resume import partial_output_of

    # A file source's existing output (--overwrite) is replaced by a complete run only; the playable file an
    # earlier stop of this resumable run left is this run's own. A camera or stream has no complete run: a
    # stop is how it ends, and its recording replaces the file.
    existing = (output is not None and Path(source).is_file() and output.is_file()
                and not (resume is not None and partial_output_of(output)))
    if resume is not None and output is not None:
        from sredge.runtime.video_resume import ResumableRun, pixel_settings

        settings = pixel_settings(rt, crf=crf, preset=preset, encoder=encoder, latency_mode=latency_mode,
                                  window=window, size=size)
        session = ResumableRun(resume, source, output, window, settings, rt.opts.max_pixels, keep_existing=existing)
    # Luma-only networks keep video in YUV 4:2:0 from decoder to encoder (no RGB round trip).
    with VideoReader(source, want_i420=takes_i420(rt.desc) and not display, max_pixels=rt.opts.max_pixels,
                     window=session.read_window if session is not None else window) as reader:
        if on_open is not None:
            on_open()
        info = reader.info
        ups = rt.upscaler(info.height, info.width)
        s = rt.desc.scale
        check = None
        if reference is not None:
            if reference.desc.scale != s:
                raise InputError(f"the reference model upscales x{reference.desc.scale}, the model x{s}")
            check = ReferenceCheck(reference.upscaler(info.height, info.width), check_every, s)
        shown = _Display() if display else None
        threads = default_encoder_threads() if encoder_threads is None else encoder_threads
        plan = plan_output_size((info.height, info.width), s, size or OutputSize(), even=True)
        oh, ow = plan.out_hw
        picker = _ComparePicker((info.frame_count or 0) // 2, size, rt.desc) if compare else None

        b_frames = _b_frames(output)

        def make_writer(path, audio_from=None):
            return VideoWriter(path, ow, oh, info.time_base, info.fps, crf=crf, preset=preset, audio_from=audio_from,
                               threads=threads, codec=encoder, tune="zerolatency" if latency_mode else None,
                               bit_depth=info.bit_depth, colour=info.colour,  # kept by every segment too
                               b_frames=b_frames)

        # What the output will not carry (streams, HDR metadata), said before any frame, whichever writer.
        notices = tuple(output_notices(reader, output, encoder)) if output is not None else ()
        asked = plan_output_size((info.height, info.width), s, size or OutputSize()).out_hw
        if output is not None and (oh + oh % 2, ow + ow % 2) != asked:
            notices += (f"the output is {ow + ow % 2}x{oh + oh % 2}, not {asked[1]}x{asked[0]}: 4:2:0 video needs "
                        "even sides, so an odd side gets one more row or column",)
        for line in notices if notify is not None else ():
            notify(line)
        if session is not None:
            session.begin(reader)
            if session.resumed_from and notify is not None:
                notify(f"continuing the stopped run of {output}: its first {session.resumed_from} frames are done, "
                       f"this run starts at frame {session.resumed_from}")
            writer = session.writer(make_writer, info.fps)
        else:
            writer = make_writer(output, reader) if output is not None else None

        def write_frame(frame):
            if check is not None:
                check.check(frame)  # at the model's scale
            frame = resize_frame(frame, plan)
            if writer is not None:
                writer.write(frame)
            if picker is not None:
                picker.take_output(frame)
            if shown is not None:
                shown.show(frame.to_rgb())

        def write_other(packet):
            if writer is not None:
                writer.mux_audio(packet)

        # A continued run reads from its last committed frame again (to check it) and drops it: one fewer.
        total = (info.frame_count - 1 if session is not None and session.resumed_from and info.frame_count
                 else info.frame_count)

        def on_frame(res):
            if progress is not None:
                progress(res, total)

        with writer if writer is not None else contextlib.nullcontext():
            items = session.items(reader) if session is not None else reader
            items = check.tap(items) if check else items
            result = run_pipeline(picker.tap(items) if picker else items, ups, write_frame, write_other,
                                  on_frame=on_frame, stop=stop,
                                  queue_size=LATENCY_QUEUE if latency_mode else THROUGHPUT_QUEUE,
                                  waited=(lambda: reader.waited_s) if info.is_live else None)
            stopped = result.interrupted or result.failure is not None
            if existing and stopped and session is None and writer is not None:
                writer.discard()  # --no-resume: nothing to continue, and the earlier file stays
        if shown is not None:
            shown.close()
        in_output, kept = None, None
        if session is not None:
            in_output = session.finish(result, make_writer)
            kept = str(session.work.path) if session.work.exists() else None
        return VideoRun(source, str(output) if output else None, result, _info_dict(info), reader.error,
                        check.summary() if check else None, "latency" if latency_mode else "throughput",
                        picker.picture if picker else None, plan.out_hw,
                        notices=notices,
                        resumed_from=session.resumed_from if session is not None else 0,
                        frames_in_output=in_output, work_folder=kept, kept_existing=existing and stopped,
                        decode_error_kind=reader.error_kind)


class _ComparePicker:
    """Keeps the ``nth`` decoded frame (counted from the run's first) until its output arrives, then
    makes the before/after picture of the pair (in the encode thread; once per run)."""

    def __init__(self, nth: int, size: OutputSize | None, desc) -> None:
        self.nth, self.size, self.desc = nth, size, desc
        self.source: Frame | None = None
        self.picture: np.ndarray | None = None

    def tap(self, items):
        count = 0
        for obj in items:
            if isinstance(obj, Frame):
                if count == self.nth:
                    self.source = Frame(None if obj.rgb is None else obj.rgb.copy(), obj.pts, obj.index,
                                        None if obj.i420 is None else obj.i420.copy())
                count += 1
            yield obj

    def take_output(self, frame: Frame) -> None:
        src = self.source
        if self.picture is None and src is not None and frame.index == src.index:
            from sredge.runtime.compare import before_after, compare_label

            self.picture = before_after(src.to_rgb(), frame.to_rgb(), compare_label(self.desc, self.size))
            self.source = None


_NO_GUI = ("OpenCV here has no GUI (the headless build): pip uninstall opencv-python-headless, then pip install "
           "opencv-python (the two share one cv2 module, so both installed break each other)")


def display_problem(build_info: str, environ: Mapping[str, str], platform: str) -> str | None:
    """Why ``--display`` cannot open a window here, or None (pure).

    Args:
        build_info: ``cv2.getBuildInformation()``: its ``GUI:`` line names the GUI backend (NONE in the
            headless wheel).
        environ: The environment: on Linux and the BSDs a window needs an X11 or Wayland session
            (``DISPLAY`` or ``WAYLAND_DISPLAY``); OpenCV's Qt backend aborts the process without one.
        platform: ``sys.platform``.
    """
    gui = build_info[build_info.find("GUI:"):].splitlines()[0] if "GUI:" in build_info else ""
    if gui.split(":", 1)[-1].strip().upper() == "NONE":
        return _NO_GUI
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (environ.get("DISPLAY")
                                                                               or environ.get("WAYLAND_DISPLAY")):
        return ("no desktop session: neither DISPLAY nor WAYLAND_DISPLAY is set (over ssh, ssh -X gives one); "
                "-o OUT.mp4 writes the video instead")
    return None


def require_display() -> None:
    """Refuse ``--display`` where no window can open (:func:`display_problem`), before any work.

    Raises:
        InputError: No GUI backend in this OpenCV, or no desktop session.
    """
    import sys

    import cv2

    why = display_problem(cv2.getBuildInformation(), os.environ, sys.platform)
    if why is not None:
        raise InputError(f"--display needs a window: {why}")


class _Display:
    """A live OpenCV window (needs an OpenCV build with GUI support)."""

    def __init__(self) -> None:
        import cv2

        require_display()
        try:
            cv2.namedWindow("sr-run", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            why = " ".join(str(exc).split())
            raise InputError(f"--display: OpenCV could not open a window ({why}); -o OUT.mp4 writes the video "
                             "instead") from exc

    def show(self, rgb) -> None:
        import cv2

        cv2.imshow("sr-run", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


def _info_dict(info) -> dict:
    d = asdict(info)
    for k in ("fps", "time_base"):
        d[k] = float(d[k]) if d[k] is not None else None
    return d


def check_complete(run: VideoRun) -> None:
    """Frames in == frames out for a run that was not stopped.

    Raises:
        CheckFailedError: Frames were lost between decode and encode.
    """
    r = run.result
    if not r.interrupted and r.failure is None and r.frames_in != r.frames_out:
        raise CheckFailedError(f"decoded {r.frames_in} frames but wrote {r.frames_out}")
