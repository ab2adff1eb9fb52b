"""``sr-run --video``: decode, upscale every frame through the pipeline, encode; and the frames check.

A run that stops early (a signal, a backend error) still finalizes a playable file of the frames
done; the caller reads :class:`VideoRun` for what happened and chooses the exit code.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sredge.errors import CheckFailedError, InputError
from sredge.runtime.pipeline import LATENCY_QUEUE, THROUGHPUT_QUEUE, PipelineResult, run_pipeline
from sredge.runtime.refcheck import ReferenceCheck
from sredge.runtime.upscaler import takes_i420

if TYPE_CHECKING:
    from sredge.runtime.runner import LoadedRuntime
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


def default_encoder_threads() -> int:
    """Encoder threads when the user does not say: a quarter of the cores (at least one), leaving
    the rest to inference; a single x264 thread spends the least CPU per frame."""
    return max(1, (os.cpu_count() or 1) // 4)


def upscale_video(rt: LoadedRuntime, source: str, output: Path | None, crf: int = 18, preset: str = "veryfast",
                  progress=None, display: bool = False, stop: threading.Event | None = None,
                  encoder_threads: int | None = None, reference: LoadedRuntime | None = None,
                  check_every: int = 30, latency_mode: bool = False, encoder: str = "libx264",
                  window: Window | None = None) -> VideoRun:
    """Decode ``source``, upscale every frame, encode H.264 to ``output`` (with the input's audio).

    ``window`` runs only part of the video (``--start/--duration/--frames``, see
    :mod:`sredge.runtime.window`); the output then starts at time 0, audio cut alike.

    ``encoder`` is an FFmpeg encoder name (``--encoder auto`` is resolved before, by
    :func:`sredge.runtime.encoders.resolve_encoder`).

    With ``reference``, every ``check_every``-th frame is also upscaled by that model and the
    Y-PSNR of this run's output against it is recorded (``VideoRun.reference_check``).

    The output is finalized also when the run stops early (Ctrl-C, backend error): a playable
    file of the frames done. Raises nothing for those: the caller inspects the returned run.
    ``progress(result, total_frames_or_None)`` is called after each encoded frame.

    ``latency_mode`` keeps the fewest frames in flight: one-frame queues between the stages
    (:data:`~sredge.runtime.pipeline.LATENCY_QUEUE`) and x264 ``zerolatency`` (no B-frames or
    lookahead holding frames back). The default, throughput mode, lets decoding and encoding run
    a few frames ahead of and behind inference.
    """
    from sredge.runtime.video_io import VideoReader, VideoWriter

    if output is not None and Path(source).exists() and output.resolve() == Path(source).resolve():
        raise InputError(f"the output {output} would overwrite the input; choose another -o")
    # Luma-only networks keep video in YUV 4:2:0 from decoder to encoder (no RGB round trip).
    with VideoReader(source, want_i420=takes_i420(rt.desc) and not display, max_pixels=rt.opts.max_pixels,
                     window=window) as reader:
        info = reader.info
        ups = rt.upscaler(info.height, info.width, fast_8bit=True)
        s = rt.desc.scale
        check = None
        if reference is not None:
            if reference.desc.scale != s:
                raise InputError(f"the reference model upscales x{reference.desc.scale}, the model x{s}")
            check = ReferenceCheck(reference.upscaler(info.height, info.width, fast_8bit=True), check_every, s)
        shown = _Display() if display else None
        threads = default_encoder_threads() if encoder_threads is None else encoder_threads
        writer = (VideoWriter(output, info.width * s, info.height * s, info.time_base, info.fps, crf=crf,
                              preset=preset, audio_from=reader, threads=threads, codec=encoder,
                              tune="zerolatency" if latency_mode else None) if output is not None else None)

        def write_frame(frame):
            if writer is not None:
                writer.write(frame)
            if check is not None:
                check.check(frame)
            if shown is not None:
                shown.show(frame.to_rgb())

        def write_other(packet):
            if writer is not None:
                writer.mux_audio(packet)

        def on_frame(res):
            if progress is not None:
                progress(res, info.frame_count)

        with writer if writer is not None else contextlib.nullcontext():
            result = run_pipeline(check.tap(reader) if check else reader, ups, write_frame, write_other,
                                  on_frame=on_frame, stop=stop,
                                  queue_size=LATENCY_QUEUE if latency_mode else THROUGHPUT_QUEUE)
        if shown is not None:
            shown.close()
        return VideoRun(source, str(output) if output else None, result, _info_dict(info), reader.error,
                        check.summary() if check else None, "latency" if latency_mode else "throughput")


class _Display:
    """A live OpenCV window (needs an OpenCV build with GUI support)."""

    def __init__(self) -> None:
        import cv2

        try:
            cv2.namedWindow("sr-run", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise InputError("--display needs OpenCV with GUI support: pip install opencv-python "
                             "(this environment has the headless build)") from exc

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
