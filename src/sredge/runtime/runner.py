"""``sr-run`` as library functions: choose the model and backend, plan tiles, upscale images or video."""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import CheckFailedError, InputError
from sredge.imaging.io import IMAGE_SUFFIXES, read_image, write_image
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends import BACKENDS, Backend, BackendOptions, model_kind, open_backend
from sredge.runtime.backends.base import InputSpec

if TYPE_CHECKING:
    from sredge.runtime.auto import AutoDecision
from sredge.runtime.model import ModelOverrides, probe_scale, resolve_descriptor
from sredge.runtime.pipeline import LATENCY_QUEUE, STAGES, THROUGHPUT_QUEUE, PipelineResult, run_pipeline
from sredge.runtime.refcheck import ReferenceCheck
from sredge.runtime.tiling import TileConfig, auto_tile, plan_tiles
from sredge.runtime.upscaler import Upscaler, takes_i420

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RunOptions:
    """Everything ``sr-run`` lets a user choose about how a model runs."""

    backend: str = "auto"
    """``auto`` (by model file type; with ``max_psnr_drop``, an .onnx on the CPU runs the fastest variant within
    it, see :mod:`sredge.runtime.auto`), ``ort``, ``trt``, ``torch`` or ``openvino`` (an .onnx on the CPU)."""
    max_psnr_drop: float | None = None
    """Quality budget (dB) for ``backend="auto"`` on the CPU: the backends installed and the model's precision
    variants (``NAME.int8.onnx`` ...) whose recorded PSNR drop is within it are timed and the fastest runs.
    None (the library default): ``auto`` goes by file type only. ``sr-run`` passes ``--max-psnr-drop`` (0.1)."""
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    tile: int | str | None = "auto"
    """Tile edge in input pixels, ``"auto"`` (from ``memory_budget_mb``) or None (whole frame)."""
    tile_overlap: int = 16
    """Context pixels around each tile (>= the network's receptive field for seamless tiles)."""
    blend: bool = False
    """Feather-blend tile overlaps instead of cropping them."""
    batch: int = 1
    """Tiles per inference call."""
    memory_budget_mb: int = 1024
    """Activation memory ``--tile auto`` plans for."""
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    """``--scale`` / ``--color`` / ``--range`` for foreign models."""
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    """``arch`` / ``trust_pickle`` for checkpoints run by the torch backend."""


FILE_KIND = {"openvino": "ort"}
"""Backends that run another backend's file type (OpenVINO runs .onnx files)."""


def choose_backend(requested: str, model: Path) -> str:
    """Backend for a model file: by its type for ``auto``, else the requested one if it can run it (pure)."""
    try:
        kind = model_kind(model)
    except ValueError as exc:
        raise InputError(f"{model}: {exc}") from exc
    if requested == "auto":
        return kind
    if requested not in BACKENDS:
        raise InputError(f"unknown backend {requested!r}; choose one of auto, {', '.join(BACKENDS)}")
    runs = FILE_KIND.get(requested, requested)  # the model file type the backend runs
    if runs != kind:
        need = {"ort": "an .onnx model", "trt": "a TensorRT .engine/.plan", "torch": "a .pth/.pt checkpoint"}
        hint = " (export it with sr-export)" if runs == "ort" and kind == "torch" else ""
        raise InputError(f"--backend {requested} needs {need[runs]}, not {model.name}{hint}")
    return requested


def _ort_on_cpu(options: BackendOptions) -> bool:
    import onnxruntime

    from sredge.runtime.auto import auto_on_cpu

    return auto_on_cpu(options.device, onnxruntime.get_available_providers())


def tile_config(opts: RunOptions, spec: InputSpec, desc: ModelDescriptor, height: int, width: int) -> TileConfig:
    """The tiling for an image of ``height`` x ``width`` (LR pixels) under these options (pure).

    Fixed-shape models are always tiled at their shape; engine profiles bound the tile.
    """
    net_scale = 1 if desc.pre_upsample else desc.scale
    in_h, in_w = (height * desc.scale, width * desc.scale) if desc.pre_upsample else (height, width)
    if spec.fixed_hw:
        return TileConfig(fixed_hw=spec.fixed_hw, overlap=opts.tile_overlap, blend=opts.blend,
                          batch=_batch(opts.batch, spec))
    if opts.tile == "auto":
        tile = auto_tile(in_h, in_w, desc.out_channels, net_scale, opts.memory_budget_mb << 20)
    else:
        tile = opts.tile  # type: ignore[assignment]
    if spec.max_hw is not None:
        cap = min(spec.max_hw)
        if tile is None and (in_h > spec.max_hw[0] or in_w > spec.max_hw[1]):
            tile = cap
        elif tile is not None and tile > cap:
            raise InputError(f"--tile {tile} exceeds the engine's largest tile {cap}; rebuild with a larger --max-tile")
    return TileConfig(tile=tile, overlap=opts.tile_overlap, blend=opts.blend, batch=_batch(opts.batch, spec),
                      multiple=max(desc.size_multiple, 1))


def _batch(batch: int, spec: InputSpec) -> int:
    if spec.max_batch is not None and batch > spec.max_batch:
        if spec.max_batch == 1 and batch > 1:
            log.warning("the model has a fixed batch of 1; running tiles one at a time")
            return 1
        raise InputError(f"--batch {batch} exceeds the model's largest batch {spec.max_batch}")
    return batch


def probe_hw(opts: RunOptions, desc: ModelDescriptor, height: int, width: int) -> tuple[int, int]:
    """(height, width) of the network input a dynamic-shape model runs at for ``height`` x ``width``
    LR frames under these options: the tile shape, or the whole (pre-upsampled) frame (pure).

    ``auto`` times its candidates at this shape, so the choice is made for the work the run will do.
    """
    spec = InputSpec(channels=desc.in_channels, height=None, width=None)
    cfg = tile_config(opts, spec, desc, height, width)
    in_h, in_w = (height * desc.scale, width * desc.scale) if desc.pre_upsample else (height, width)
    plan = plan_tiles(in_h, in_w, cfg)
    return plan.tile_h, plan.tile_w


class LoadedRuntime:
    """An activated backend with its resolved descriptor (use as a context manager)."""

    def __init__(self, model: Path, opts: RunOptions, frame_hw: tuple[int, int] | None = None):
        """Args:
            model: The model file.
            opts: Run options.
            frame_hw: (height, width) of the LR frames to come, when known: ``--backend auto`` probes its
                candidates at the shape the run will use (:func:`probe_hw`); None: a 128x128 probe.
        """
        self.model = model
        self.opts = opts
        self.kind = choose_backend(opts.backend, model)
        self.auto: AutoDecision | None = None
        """What ``--backend auto`` chose and why, when it chose among variants (else None)."""
        options = opts.backend_options
        if (opts.backend == "auto" and opts.max_psnr_drop is not None and self.kind == "ort"
                and not options.fp16 and options.precision is None and _ort_on_cpu(options)):
            # An explicit --precision/--fp16 keeps today's by-file-type behaviour: the user chose the arithmetic.
            from sredge.runtime.auto import candidate_options, decide

            if opts.max_psnr_drop < 0:
                raise InputError(f"--max-psnr-drop must be >= 0, not {opts.max_psnr_drop:g}")
            if not model.is_file():
                raise InputError(f"no such model file: {model}")
            self.auto = decide(model, options, opts.max_psnr_drop, probe=_probe_at(model, opts, frame_hw))
            chosen = self.auto.chosen
            self.model, self.kind, options = chosen.file, chosen.backend, candidate_options(chosen, options)
        self.backend: Backend = open_backend(self.kind, self.model, options, **(
            opts.torch_kwargs if self.kind == "torch" else {}))
        self.desc: ModelDescriptor | None = None
        self.spec: InputSpec | None = None

    def __enter__(self) -> LoadedRuntime:
        self.backend.__enter__()
        try:
            self.spec = self.backend.input_spec()
            self.desc = resolve_descriptor(self.backend.descriptor(), self.spec, self.opts.overrides,
                                           lambda: probe_scale(self.backend.run, self.spec))
        except BaseException:
            self.backend.__exit__(None, None, None)
            raise
        log.info("model %s: %s; backend %s", self.model, self.desc.summary(), self.backend.describe())
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.__exit__(*exc)

    def upscaler(self, height: int, width: int, fast_8bit: bool = False) -> Upscaler:
        """An upscaler whose tiling is planned for ``height`` x ``width`` inputs (see :class:`Upscaler`)."""
        return Upscaler(self.backend.run, self.desc, tile_config(self.opts, self.spec, self.desc, height, width),
                        fast_8bit=fast_8bit)


def _probe_at(model: Path, opts: RunOptions, frame_hw: tuple[int, int] | None) -> dict | None:
    from sredge.export.metadata import read_descriptor

    desc = read_descriptor(model) if frame_hw is not None else None
    if desc is None:
        return None
    return {"hw": probe_hw(opts, desc, *frame_hw)}


# ---------------------------------------------------------------- images

def expand_images(spec: str) -> list[Path]:
    """A file, a folder (its images, sorted) or a glob pattern -> image paths.

    Raises:
        InputError: Nothing matches, or a named file is not an image type.
    """
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
        return files
    if p.exists():
        return [p]
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no images match {spec}")
        return files
    raise InputError(f"no such file: {spec}")


def image_outputs(inputs: list[Path], output: Path | None, scale: int, single_input: bool) -> list[Path]:
    """Where each upscaled image goes (pure). A single file input: ``-o`` is the file (or an existing
    folder to write into); a folder or glob input: ``-o`` is a folder.

    Default: ``NAME_x{scale}.EXT`` next to each input.
    """
    if output is None:
        return [p.with_name(f"{p.stem}_x{scale}{p.suffix}") for p in inputs]
    if single_input and not output.is_dir():
        return [output]
    return [output / f"{p.stem}_x{scale}{p.suffix}" for p in inputs]


def upscale_images(rt: LoadedRuntime, inputs: list[Path], outputs: list[Path]) -> list[Path]:
    """Upscale each image and write it atomically; returns the written paths."""
    written = []
    for src, dst in zip(inputs, outputs):
        if dst.resolve() == src.resolve():
            raise InputError(f"the output {dst} would overwrite the input; choose another -o")
        check_writable(dst)
        img = read_image(src)
        out = rt.upscaler(img.shape[0], img.shape[1]).upscale(img)
        written.append(write_image(dst, out))
        log.info("wrote %s", dst)
    return written


# ---------------------------------------------------------------- video

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
                  check_every: int = 30, latency_mode: bool = False) -> VideoRun:
    """Decode ``source``, upscale every frame, encode H.264 to ``output`` (with the input's audio).

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
    with VideoReader(source, want_i420=takes_i420(rt.desc) and not display) as reader:
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
                              preset=preset, audio_from=reader, threads=threads,
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


def report_dict(run: VideoRun, rt: LoadedRuntime, opts: RunOptions) -> dict:
    """The machine-readable run report (``--report run.json``)."""
    from sredge.environment import software_and_machine

    software, machine = software_and_machine(opts.backend_options.threads)
    r = run.result
    return {
        "source": run.source,
        "output": run.output,
        "frames_in": r.frames_in,
        "frames_out": r.frames_out,
        "wall_s": round(r.wall_s, 4),
        "fps": round(r.fps, 3),
        "interrupted": r.interrupted,
        "mode": run.mode,
        "error": _error_text(r.failure) if r.failure else run.decode_error,
        "latency_ms": {name: asdict(r.stages[name].summary()) for name in STAGES}
        | {"end_to_end": asdict(r.end_to_end.summary())},
        "input": run.input_info,
        "model": {"path": str(rt.model), **asdict(rt.desc)},
        "backend": rt.backend.describe(),
        "auto": rt.auto.as_dict() if rt.auto is not None else None,
        "reference_check": run.reference_check,
        "tiling": {"tile": opts.tile, "overlap": opts.tile_overlap, "blend": opts.blend, "batch": opts.batch},
        "software": software,
        "machine": machine,
    }


def write_report(path: Path, report: dict) -> None:
    """Write the report JSON atomically."""
    write_bytes_atomic(path, (json.dumps(report, indent=2) + "\n").encode())


def _error_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
