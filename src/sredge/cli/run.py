"""``sr-run``: upscale images or video through tiled inference on ONNX Runtime, TensorRT or PyTorch."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sredge.cli._app import Parser, parse_tile, run
from sredge.cli._limits import add_max_pixels, max_threads, threads_cap_line
from sredge.cli._progress import DEFAULT_EVERY_S, Progress
from sredge.errors import InputError, SredgeError
from sredge.models.descriptor import COLOR_SPACES
from sredge.outputs import Input, Output, check_outputs, claim_outputs, name_too_long
from sredge.runtime.encoders import CODECS, ENCODER_CHOICES

PROG = "sr-run"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Upscale a video (file, camera or stream) or images with a super-resolution model.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad input (or a refused output), 3 internal error, "
               "130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (a video keeps the frames done). "
               "SREDGE_DEBUG=1 shows tracebacks.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="SRC",
                     help="video file (or file:// URL), camera index (0), /dev/videoN, csi://N or v4l2:// URI, or "
                          "stream URL (rtsp, http, udp, srt, ...)")
    src.add_argument("--image", metavar="PATH", help="an image, a folder of images, or a glob pattern (quote it)")
    p.add_argument("-o", "--output", type=_output_path,
                   help="output file (video, single image) or folder (a folder or pattern of images); "
                        "default: NAME_x{scale}.EXT next to a single input, a new folder NAME_x{scale}/ beside an "
                        "input folder")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: refuse)")
    p.add_argument("--skip-existing", action="store_true",
                   help="images of a folder or pattern whose output exists are skipped (the rest of a stopped run: "
                        "each finished image was written whole)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--outscale", type=float, metavar="F",
                      help="output size = input x F, any factor (e.g. 3 from a x4 model, 1.5, 6): the model runs at "
                           "its own scale, then one resize: INTER_AREA to shrink, Lanczos to enlarge past the model "
                           "(adds no detail); sides round to the nearest pixel (video: odd up to even); default "
                           "names carry it (NAME_x1.5.png); default: the model's scale")
    size.add_argument("--target", metavar="WxH",
                      help="exact output size, e.g. 3840x2160, as video2x -w/-h: the picture is stretched when the "
                           "aspect ratio differs; 0 for one side keeps the aspect ratio (3840x0); resized as "
                           "--outscale says; default names carry it (NAME_3840x2160.mp4)")
    p.add_argument("--ext", choices=("png", "jpg", "webp"),
                   help="images: output format (default: each input's own); sets the default names' suffix, and "
                        "-o must agree; jpg/webp store 8 bits (16-bit inputs are reduced), jpg has no alpha "
                        "(an image with transparent pixels is refused; an opaque alpha is dropped)")
    p.add_argument("--quality", type=int, metavar="Q",
                   help="images: JPEG/WebP quality 1-100, lossy (default OpenCV's: 95 JPEG, lossless WebP); refused "
                        "for a PNG output (a folder without --ext: applied to its JPEG/WebP files only)")
    p.add_argument("--compare", type=Path, metavar="PATH",
                   help="also write a before/after picture to PATH (.png/.jpg/.webp): bicubic | sredge, labelled, "
                        "same size; one image: that image; a video: one frame from the middle of the run (the "
                        "first of a live source; a side-by-side video would double the encoding work)")
    p.add_argument("--model", type=Path, help=".onnx, TensorRT .engine/.plan, or a PyTorch checkpoint (.pth, .pt, "
                                              ".safetensors) (default: the bundled model for --scale)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "trt", "torch", "openvino"),
                   help="inference backend (default auto: by model file type; with --max-psnr-drop, on the CPU, the "
                        "fastest installed backend and precision variant of an .onnx within that budget, announced)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="where to run: auto (CUDA if available, else CPU), cpu, cuda, or tensorrt "
                        "(ONNX Runtime's TensorRT provider)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU inference threads, at most 4 per core, or 64 where that is fewer (default 0: the "
                        "backend's own choice, one per physical core for ONNX Runtime)")
    p.add_argument("--fp16", action="store_true", help="float16 inference (torch backend on CUDA)")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"),
                   help="compute precision, never changed silently (openvino: fp32, bf16 on CPUs with it, int8 for "
                        "a Q/DQ ONNX; default: the model's own)")
    p.add_argument("--max-psnr-drop", type=float, default=None, metavar="DB",
                   help="let --backend auto choose among backends and precision variants (e.g. NAME.int8.onnx from "
                        "sr-export --precision int8) whose recorded validation PSNR drop is at most DB, by a timing "
                        "probe (default: off, auto goes by file type)")
    p.add_argument("--tile", default="auto",
                   help="tile edge in pixels, 'auto' (from --memory-budget) or 0 for whole frames (default auto)")
    p.add_argument("--tile-overlap", type=int, default=16, help="context pixels around each tile (default 16)")
    p.add_argument("--blend", action="store_true", help="feather-blend tile overlaps instead of cropping them")
    p.add_argument("--batch", type=int, default=1, help="tiles per inference call (default 1)")
    p.add_argument("--memory-budget", type=int, default=1024, metavar="MB",
                   help="activation memory --tile auto plans for (default 1024)")
    add_max_pixels(p)
    p.add_argument("--scale", type=int, metavar="N",
                   help="scale of a foreign model (any from 2 to 16 for a pre-upsampling one), or which bundled "
                        "model to use")
    p.add_argument("--color", choices=COLOR_SPACES, help="colour space of a foreign model (default rgb / y)")
    p.add_argument("--range", dest="value_range", type=float, choices=(1.0, 255.0), metavar="1|255",
                   help="value range of a foreign model (default 1)")
    p.add_argument("--arch", help="architecture of a checkpoint run by the torch backend")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickled-code checkpoints (torch backend)")
    p.add_argument("--key-map", metavar="JSON|FILE",
                   help="rename a checkpoint's keys before detection (torch backend), as sr-export --key-map")
    p.add_argument("--crf", type=int, default=None,
                   help="video quality, lower is better: 0-51 for h264/hevc (default 18; x264/x265 CRF, NVENC "
                        "constant quality cq), 1-63 for av1 (default 25); ffv1 is lossless and takes none")
    p.add_argument("--preset", default=None,
                   help="x264 preset (default veryfast: half the CPU of medium, similar size for upscaled video); "
                        "NVENC maps it to p1-p7 or takes p1-p7, SVT-AV1 to 0-13 or takes 0-13")
    p.add_argument("--codec", choices=CODECS, default=None,
                   help="video codec: h264 (default), hevc, av1 or ffv1 (lossless); --encoder picks the "
                        "implementation. A 10-bit input is written at 10 bits (x264 High 10, x265 Main 10)")
    p.add_argument("--encoder", default="auto", choices=ENCODER_CHOICES,
                   help="video encoder (default auto: the codec's NVENC encoder when it opens here, else software: "
                        "libx264, libx265, libsvtav1, ffv1; software on Jetson); the one used is said on stderr "
                        "and in --report")
    p.add_argument("--encode-threads", type=int, default=None, metavar="N",
                   help="encoder threads (default: a quarter of the cores, at least 1; 0: the encoder's choice)")
    p.add_argument("--display", action="store_true", help="show the upscaled video in a window")
    p.add_argument("--latency-mode", action="store_true",
                   help="video: fewest frames in flight (one-frame queues, x264 zerolatency) for live sources; "
                        "default: throughput (decode and encode run a few frames ahead and behind)")
    p.add_argument("--report", type=Path, metavar="JSON", help="video: write a run report (frames, fps, latencies)")
    p.add_argument("--reference", type=Path, metavar="MODEL",
                   help="video: also upscale every --check-every-th frame with this model (e.g. the FP32 "
                        "original of an INT8 model) and report the Y-PSNR against it")
    p.add_argument("--check-every", type=int, default=30, metavar="N",
                   help="frames between --reference checks (default 30)")
    p.add_argument("--start", metavar="TIME",
                   help="video file: begin at TIME (seconds, 12.5, or [HH:]MM:SS(.ms)), frame-accurate; "
                        "the output starts at 0")
    p.add_argument("--duration", metavar="TIME", help="video: keep TIME of video from --start (or the beginning)")
    p.add_argument("--frames", type=int, metavar="N",
                   help="video: keep at most N frames (with --duration: whichever ends first)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None,
                        help="video file to a file: continue the unfinished run of -o (refused if there is none); "
                             "by default a run commits its progress to OUT.sredge-partial/ and the same command "
                             "continues after any stop (kill, crash, power loss) instead of starting over")
    resume.add_argument("--no-resume", dest="resume", action="store_false",
                        help="start over: discard an unfinished run of -o and write one plain file (nothing to "
                             "continue after a crash)")
    p.add_argument("--commit-every", type=float, default=None, metavar="SECONDS",
                   help="resumable runs: commit the progress every SECONDS of video (default 4): at most that much "
                        "work is redone after a crash")
    p.add_argument("--progress-every", type=float, default=DEFAULT_EVERY_S, metavar="SECONDS",
                   help="when stderr is not a terminal (logs, nohup), a progress line every SECONDS "
                        f"(default {DEFAULT_EVERY_S:g}; 0: none); a terminal gets the bar")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    return p


class _OutputPath(type(Path())):
    """``-o`` as given: ``folder`` is True when it ends in ``/`` (a folder, which ``Path`` would forget)."""

    folder = False


def _output_path(text: str) -> Path:
    path = _OutputPath(text)
    path.folder = text.endswith(("/", os.sep))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse_extra(parser, args, extra)
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.bundled import default_model
    from sredge.runtime.model import ModelOverrides
    from sredge.runtime.runner import RunOptions

    for flag, value, least in (("--batch", args.batch, 1), ("--tile-overlap", args.tile_overlap, 0),
                               ("--threads", args.threads, 0)):
        if value < least:
            raise InputError(f"{flag} {value}: must be >= {least}")
    if args.threads > max_threads():  # --threads 1000 took a minute for a small JPEG (the image audit)
        raise InputError(threads_cap_line("--threads", args.threads))
    if args.scale is not None and not 1 <= args.scale <= 16:
        raise InputError(f"--scale must be an integer from 1 to 16, not {args.scale}")
    if args.max_psnr_drop is not None and not args.max_psnr_drop >= 0:  # NaN too
        raise InputError(f"--max-psnr-drop must be >= 0, not {args.max_psnr_drop:g}")
    if args.max_psnr_drop is not None and (args.backend != "auto" or args.precision is not None):
        given = f"--backend {args.backend}" if args.backend != "auto" else f"--precision {args.precision}"
        raise InputError(f"--max-psnr-drop lets --backend auto choose the backend and precision; {given} "
                         "already chooses: drop one of them")
    if args.reference is not None:
        if args.image is not None:
            raise InputError("--reference checks video runs; for images compare with sr-bench")
        if not args.reference.exists():
            raise InputError(f"no such reference model: {args.reference}")
    if args.check_every < 1:
        raise InputError("--check-every must be >= 1")
    if args.memory_budget < 64:
        raise InputError(f"--memory-budget {args.memory_budget}: give at least 64 MB")
    if args.encode_threads is not None and args.encode_threads < 0:
        raise InputError(f"--encode-threads {args.encode_threads}: give 0 (the encoder's own choice) or more")
    if not args.progress_every >= 0:  # also NaN
        raise InputError(f"--progress-every must be >= 0 seconds (0: no progress lines), not {args.progress_every:g}")
    if args.image is not None and (args.start, args.duration, args.frames) != (None, None, None):
        raise InputError("--start, --duration and --frames cut a video; drop them for images")
    if args.skip_existing and (args.image is None or args.overwrite):
        raise InputError("--skip-existing leaves out images whose output exists: " + (
            "drop --overwrite, which redoes them" if args.overwrite else "it applies to a folder or pattern of images"))
    if args.report is not None and args.image is not None:
        raise InputError("--report describes a video run; drop it for images (or time them with sr-bench)")
    if args.image is None and (args.ext is not None or args.quality is not None):
        raise InputError("--ext and --quality set image outputs; a video's format comes from -o's suffix (.mp4, .mkv)")
    if args.compare is not None and args.compare.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise InputError(f"--compare {args.compare}: name a .png, .jpg or .webp picture")
    _output_size(args)  # a bad --outscale/--target fails before anything is probed or loaded
    tile = parse_tile(args.tile)
    if isinstance(tile, int):  # once, before the model loads (it was one line per image of a folder)
        from sredge.runtime.tiling import check_tile_overlap

        check_tile_overlap(tile, args.tile_overlap)
    model = args.model or default_model(args.scale)
    is_default = args.model is None
    key_map = _key_map(args)
    opts = RunOptions(
        backend=args.backend,
        max_psnr_drop=args.max_psnr_drop,
        backend_options=BackendOptions(device=args.device, threads=args.threads, fp16=args.fp16,
                                       precision=args.precision),
        tile=tile,
        tile_overlap=args.tile_overlap,
        blend=args.blend,
        batch=args.batch,
        memory_budget_mb=args.memory_budget,
        overrides=ModelOverrides(scale=None if is_default else args.scale, color=args.color,
                                 value_range=args.value_range),
        torch_kwargs={k: v for k, v in (("arch", args.arch), ("trust_pickle", args.trust_pickle),
                                        ("scale", args.scale), ("key_map", key_map)) if v},
        max_pixels=args.max_pixels,
    )
    if not model.exists():
        raise InputError(f"no such model file: {model}")
    reads = _model_reads(model, "--model") + (_model_reads(args.reference, "--reference") if args.reference else [])
    if key_map is not None and key_map.source != "inline":  # read once, at the start: a --report over it lost it
        reads.append(Input(Path(key_map.source), "--key-map"))
    if args.image is not None:
        return _run_images(args, model, opts, reads)
    return _run_video(args, model, opts, reads)


def _model_reads(model: Path, flag: str) -> list[Input]:
    """A model file and the files it is read with (an ONNX's external data, an engine's sidecar), for the output
    policy: ``--report m.onnx.data`` replaced the weights of ``--model m.onnx``."""
    from sredge.runtime.backends.base import companion_files

    return [Input(model, flag)] + [Input(f, flag) for f in companion_files(model)]


def _scale_before_loading(args, model: Path) -> int:
    """The model's scale as far as it is known without loading it: ``--scale``, an ONNX's own metadata, else 2
    (used only to name outputs in the checks made before the model loads)."""
    if args.scale:
        return int(args.scale)
    if Path(model).suffix.lower() == ".onnx":
        from sredge.models.onnx_file import read_descriptor

        try:
            desc = read_descriptor(model)
        except SredgeError:  # the load names the problem
            desc = None
        if desc is not None:
            return desc.scale
    return 2


def _run_images(args, model: Path, opts, reads: list[Input]) -> int:
    """Every image is tried; each bad one is one line on stderr, and then the exit code is 2."""
    from sredge.runtime.images import (
        ImageFormat,
        ImagesResult,
        expand_images,
        image_outputs,
        output_folder,
        upscale_images,
    )
    from sredge.runtime.runner import LoadedRuntime

    say = (lambda *a, **k: None) if args.quiet else print
    choosing = opts.backend == "auto" and opts.max_psnr_drop is not None  # auto probes at the frames' size
    fmt = ImageFormat(_output_size(args), args.ext, args.quality)
    images = expand_images(args.image)
    if args.compare is not None and not images.single:
        raise InputError("--compare shows one image: give --image FILE (or a --video)")
    if args.skip_existing and images.single:
        raise InputError("--skip-existing applies to a folder or pattern of images; for one image, -o or "
                         "--overwrite says what to do with an existing output")
    reads = reads + [Input(f, "--image") for f in images.files] + [Input(d, "--image") for d in images.folders]
    compare = [Output(args.compare, "--compare")] if args.compare is not None else []
    if images.single and getattr(args.output, "folder", False) and not args.output.is_dir():
        raise InputError(f"-o {args.output}/: folder {args.output} does not exist (create it, or name a file)")
    scale = _scale_before_loading(args, model)  # for the names in the messages below (they said _x1)
    if args.output is not None:  # before loading the model: a -o that cannot work fails at once
        if images.single:  # an input (the model, say) named as -o is said first: nothing is lost
            check_outputs(([Output(args.output, "-o")] if not args.output.is_dir() else []) + compare, reads,
                          args.overwrite)
        else:
            check_outputs([Output(output_folder(images, args.output, scale), "-o", folder=True)], reads, True)
    elif compare:
        check_outputs(compare, reads, args.overwrite)
    image_outputs(images, args.output, scale, fmt)  # -o, --ext and --quality agree, before the model loads
    with LoadedRuntime(model, opts, frame_hw=_image_hw(images.files[0]) if choosing else None) as rt:
        _announce(rt, model, args.quiet)
        outputs = image_outputs(images, args.output, rt.desc.scale, fmt)
        files, named = list(images.files), outputs
        too_long: list[tuple[Path, SredgeError]] = []
        if not images.single:  # a name made from an input's: that image fails, the others run (the image audit)
            why = [name_too_long(dst) for dst in outputs]
            too_long = [(src, InputError(f"{src}: cannot write {dst.name}: {w}; rename the input"))
                        for src, dst, w in zip(files, outputs, why) if w is not None]
            files = [src for src, w in zip(files, why) if w is None]
            named = [dst for dst, w in zip(outputs, why) if w is None]
            if not files:
                raise too_long[0][1]
            files, named, skipped = _existing(args, files, named)
            if skipped:
                say(f"skipping {skipped} image(s) whose output exists in {outputs[0].parent}"
                    + ("" if files else ": nothing left to do"))
        result, t0 = ImagesResult(), time.perf_counter()
        if files:
            targets = ([Output(outputs[0], "-o")] if images.single else
                       [Output(outputs[0].parent, "-o", folder=True, files=tuple(p.name for p in named))]) + compare
            with claim_outputs(targets, reads, args.overwrite):
                t0 = time.perf_counter()
                bar = Progress(PROG, enabled=not args.quiet, every_s=args.progress_every, unit="images")
                try:
                    result = upscale_images(rt, files, named, on_image=bar.update, fmt=fmt, compare=args.compare,
                                            notify=lambda line: print(f"{PROG}: note: {line}", file=sys.stderr))
                finally:
                    bar.finish()
    result.failed[:0] = too_long  # each named, also when every other output existed
    for src, exc in result.failed:
        msg = " ".join(str(exc).split())
        print(f"{PROG}: error: {msg if str(src) in msg else f'{src}: {msg}'}", file=sys.stderr)
    written = result.written
    if written:
        say(f"wrote {len(written)} image(s) in {time.perf_counter() - t0:.2f} s"
            + (f": {written[0]}" if len(written) == 1 else f" to {written[0].parent}")
            + (f"; {len(result.failed)} failed" if result.failed else ""))
    if result.compare is not None:
        say(f"before/after: {result.compare}")
    if result.failed:
        codes = {exc.exit_code for _, exc in result.failed}
        return 2 if 2 in codes else min(codes)
    return 0


def _existing(args, files: list[Path], named: list[Path]) -> tuple[list[Path], list[Path], int]:
    """(inputs, outputs, how many were skipped): with --skip-existing the images whose output exists are left out;
    without it (and without --overwrite) outputs that exist are refused in one line that names both ways on."""
    done = [dst.is_file() for dst in named]
    if not any(done) or args.overwrite:
        return files, named, 0
    if not args.skip_existing:
        first = next(dst for dst, d in zip(named, done) if d)
        raise InputError(f"{first} exists ({sum(done)} of the {len(named)} outputs; a stopped run's?): pass "
                         "--skip-existing to do the rest, or --overwrite to do them all again")
    return ([src for src, d in zip(files, done) if not d], [dst for dst, d in zip(named, done) if not d], sum(done))


def _run_video(args, model: Path, opts, reads: list[Input]) -> int:
    """A stop signal (SIGINT, SIGTERM, SIGHUP) finalizes the frames done; the exit code is 128 + its number."""
    from sredge.atomic import WriteError
    from sredge.cli._signals import exit_code, signal_name, stop_on_signals
    from sredge.runtime.model import ModelOverrides
    from sredge.runtime.report import report_dict, write_report
    from sredge.runtime.runner import LoadedRuntime
    from sredge.runtime.video_io import file_url_path
    from sredge.runtime.video_run import check_complete, upscale_video
    from sredge.runtime.window import plan_window

    say = (lambda *a, **k: None) if args.quiet else print
    choosing = opts.backend == "auto" and opts.max_psnr_drop is not None  # auto probes at the frames' size
    source = file_url_path(args.video)  # a file, not a stream: seekable, resumable, never an output
    live = source.isdigit() or source.startswith("/dev/video") or "://" in source  # incl. csi:// and v4l2://
    if not live and not Path(source).exists():
        raise InputError(f"no such video file: {source}")
    _check_camera(source)
    if args.display:  # OpenCV without a GUI (the pip headless wheel) is refused before any model loads
        from sredge.runtime.video_run import require_display

        require_display()
    window = plan_window(args.start, args.duration, args.frames, live)
    if getattr(args.output, "folder", False) or (args.output is not None and args.output.is_dir()):
        # The default name's tag when it is known here (the bundled model's scale, or --scale), before any model loads.
        tag = f"x{args.scale}" if args.scale else "x2" if args.model is None else "sr"
        example = args.output / f"{Path(source).stem if not live else 'recording'}_{tag}.mp4"
        raise InputError(f"-o {args.output}{os.sep}: a video run writes one file, not a folder; give its name, "
                         f"e.g. -o {example}")
    if not live:
        reads = reads + [Input(Path(source), "--video")]
    size = _output_size(args)
    resume = _resume_options(args, live)
    report = [_video_report(args.report, args.output)] if args.report is not None else []
    report += [Output(args.compare, "--compare")] if args.compare is not None else []
    named = _video_output(args.output) if args.output else None  # (it reads the work folder's journal: once)
    check_outputs(([named] if named else []) + report, reads, args.overwrite)
    _check_work_folder(args.output, resume, args.resume, reads, report)
    encoder = _choose_encoder(args) if args.output is not None or not args.display else None
    # A file that is not a readable video is one line, before the model loads (after the container check).
    source_hw = _video_hw(source, args.max_pixels) if not live and Path(source).is_file() else None
    frame_hw = source_hw if choosing else None
    # The reference runs as it is (by file type), never through the auto choice.
    ref_opts = replace(opts, backend="auto", max_psnr_drop=None, overrides=ModelOverrides(scale=opts.overrides.scale),
                       backend_options=replace(opts.backend_options, precision=None, fp16=False))
    keep = _stopped_choice(args.output, source, size, model, resume, args.display) if choosing else None
    with LoadedRuntime(model, opts, frame_hw=frame_hw, auto_keep=keep) as rt, (
            LoadedRuntime(args.reference, ref_opts) if args.reference else contextlib.nullcontext()) as ref:
        output = args.output
        if output is None and not args.display:
            if live:
                raise InputError("a camera or stream needs -o OUT.mp4 (or --display)")
            output = _default_video_output(source, rt.desc.scale, size)

        def banner() -> None:  # once the source is open and a stopped run checked: no line before a refusal
            _announce(rt, model, args.quiet)
            say(f"{PROG}: {rt.desc.summary()} on {rt.backend.describe()}", file=sys.stderr)
            if encoder is not None:
                say(f"{PROG}: {encoder.summary()}", file=sys.stderr)

        if args.report is not None and output is not None:  # -o was the default name: ask again for it
            report[0] = _video_report(args.report, output)
        _check_work_folder(output, resume, args.resume, reads, report)
        video_out = named if output == args.output else _video_output(output) if output else None

        def again() -> list[Output]:  # once locked: another run of -o may have finished it since the check
            fresh = [_video_report(args.report, output)] if args.report is not None and output is not None else report
            return ([_video_output(output)] if output else []) + fresh

        with claim_outputs(([video_out] if video_out else []) + report, reads, args.overwrite, again), \
                stop_on_signals() as stopper:
            if output is not None and args.resume is False:
                from sredge.runtime.segments import WorkFolder

                WorkFolder(output).remove()  # --no-resume: an unfinished run of this output is discarded
            bar = Progress(PROG, enabled=not args.quiet, every_s=args.progress_every)
            vrun = upscale_video(rt, source, output, crf=args.crf, preset=args.preset, progress=bar.update_run,
                                 encoder=encoder.name if encoder is not None else "libx264",
                                 display=args.display, encoder_threads=args.encode_threads, reference=ref,
                                 check_every=args.check_every, latency_mode=args.latency_mode, stop=stopper.event,
                                 window=window, size=size, compare=args.compare is not None,
                                 notify=lambda line: print(f"{PROG}: note: {line}", file=sys.stderr),
                                 resume=resume if output is not None else None, on_open=banner)
            bar.finish()
            if vrun.compare is not None:
                from sredge.imaging.io import write_image

                say(f"before/after: {write_image(args.compare, vrun.compare)}")
            elif args.compare is not None:
                print(f"{PROG}: no before/after picture: the run ended before its middle frame", file=sys.stderr)
            report_failed = None
            if args.report is not None:
                try:
                    write_report(args.report, report_dict(vrun, rt, opts)
                                 | {"encoder": encoder.as_dict() if encoder is not None else None,
                                    "latency_note": vrun.result.latency_note(),
                                    "resumed_from_frame": vrun.resumed_from, "frames_in_output": vrun.frames_in_output,
                                    "work_folder_kept": vrun.work_folder,
                                    "output_kept_as_it_was": vrun.kept_existing,
                                    "output_size": list(vrun.output_hw[::-1]) if vrun.output_hw else None})
                except WriteError as exc:  # the video is done: keep it, and say so on the same line
                    report_failed = exc
    res = vrun.result
    if not args.quiet:
        _summary(vrun)
    if vrun.output is None:
        done = f"{res.frames_out} frames shown"
    elif vrun.kept_existing:
        done = (f"{vrun.output} kept as it was: only a complete run replaces it; "
                + (f"the frames done are kept in {vrun.work_folder}: run the same command to continue"
                   if vrun.work_folder else "this run's frames were discarded (--no-resume)"))
    elif (written := vrun.frames_in_output if vrun.frames_in_output is not None else res.frames_out):
        done = f"{written} frames written to {vrun.output} (playable)"
        if vrun.work_folder:
            done += f"; the same command continues it (the frames done are kept in {vrun.work_folder})"
    else:
        done = "no frame was written"
    if report_failed is not None:
        raise InputError(f"{report_failed}; {done}")
    # A signal once every frame was through the pipeline (during the final join, say) stopped nothing: the run
    # finished its output, and a stop that came after the work is done is ignored (docs/outputs.md).
    if res.interrupted and res.failure is None:
        signum = stopper.signum if stopper.signum is not None else signal.SIGINT
        print(f"{PROG}: interrupted by {signal_name(signum)}; {done}", file=sys.stderr)
        return exit_code(signum)
    if res.failure is not None:
        exc = res.failure
        msg = " ".join(str(exc).split()) or type(exc).__name__
        code = exc.exit_code if isinstance(exc, SredgeError) else 1
        print(f"{PROG}: error: {msg}; {done}", file=sys.stderr)
        return code
    if vrun.decode_error:
        from sredge.runtime.video_io import STOP_JOINED

        if vrun.input_info.get("is_live"):  # a camera or stream ends this way unless --duration/--frames ends it
            raise InputError(f"the live input ended: {vrun.decode_error}; {done}")
        what = "holds more than one recording" if vrun.decode_error_kind == STOP_JOINED else "is truncated or corrupt"
        raise InputError(f"the input {what} ({vrun.decode_error}); {done}")
    check_complete(vrun)
    if vrun.output and vrun.resumed_from:
        say(f"wrote {vrun.output} ({vrun.frames_in_output} frames: {vrun.resumed_from} from the stopped run, "
            f"{res.frames_out} from this one)")
    else:
        say(f"wrote {vrun.output}" if vrun.output else "done")
    return 0


def _key_map(args):
    """``--key-map`` parsed before anything loads (a bad map is exit 2, one line); None when not given."""
    if args.key_map is None:
        return None
    from sredge.models.key_map import parse_key_map

    return parse_key_map(args.key_map)


def _resume_options(args, live: bool):
    """``--resume/--no-resume/--commit-every`` as :class:`~sredge.runtime.video_resume.ResumeOptions`, or None
    (not resumable: ``--no-resume``, or a live source)."""
    from sredge.runtime.video_resume import DEFAULT_COMMIT_EVERY_S, ResumeOptions
    from sredge.runtime.window import MAX_TIME_S

    every = args.commit_every if args.commit_every is not None else DEFAULT_COMMIT_EVERY_S
    if not 0 < every <= MAX_TIME_S:  # also NaN; 1e308 overflowed planning the segments (internal error)
        raise InputError(f"--commit-every must be more than 0 seconds and at most {MAX_TIME_S:g}, not {every:g}")
    if live:
        if args.resume:
            raise InputError("--resume needs a video file: a camera or stream cannot be continued")
        return None
    if args.resume and args.output is None and args.display:
        raise InputError("--resume continues a video file output: give -o")
    if args.resume is False:
        if args.commit_every is not None:
            raise InputError("--commit-every applies to resumable runs; drop it with --no-resume")
        return None
    return ResumeOptions(require=bool(args.resume), restart=args.overwrite, commit_every_s=every)


def _check_work_folder(output: Path | None, resume, resume_flag: bool | None, reads: list[Input],
                       others: list[Output]) -> None:
    """The work folder a resumable run fills, or ``--no-resume`` empties, is sredge's own (see
    :func:`~sredge.runtime.segments.check_work_folder`); a live source's run has none unless ``--no-resume``
    asks to empty it."""
    if output is None or (resume is None and resume_flag is not False):
        return
    from sredge.runtime.segments import check_work_folder

    check_work_folder(output, [(i.path, i.flag) for i in reads] + [(o.path, o.flag) for o in others])


def _default_video_output(source: str, scale: int, size) -> Path:
    """A video file's output when -o is not given: ``NAME_x{scale}.mp4`` (or the ``--outscale/--target`` tag) beside
    it."""
    tag = f"x{scale}" if size.is_model_scale else size.describe()
    return Path(source).with_name(f"{Path(source).stem}_{tag}.mp4")


def _stopped_choice(output: Path | None, source: str, size, model: Path, resume, display: bool
                    ) -> tuple[str, str] | None:
    """(file name, backend) that ``--backend auto`` chose for the unfinished run this one continues, for it to keep:
    a probe may rank the candidates otherwise (noise, another ``--threads``), and every frame of one output must come
    from one network; None when there is nothing to continue."""
    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.video_resume import stopped_choice

    if resume is None or (output is None and display) or model.suffix.lower() != ".onnx":
        return None
    if output is None:
        desc = read_descriptor(model)  # auto chooses among a family sredge exported: its scale is the output's tag
        if desc is None:
            return None
        output = _default_video_output(source, desc.scale, size)
    return stopped_choice(output)


def _video_output(path: Path) -> Output:
    """``-o`` of a video run: the playable file a stopped resumable run left is this run's to replace, whether it
    continues that run or (``--no-resume``) discards it."""
    from sredge.runtime.video_io import partial_name_extra
    from sredge.runtime.video_resume import partial_output_of

    return Output(path, "-o", updated=partial_output_of(path), name_extra=partial_name_extra(path))


def _refuse_extra(parser, args, extra: list[str]) -> None:
    """Arguments no option takes: an unquoted pattern the shell expanded (``--image photos/*.png``) is named
    as such; anything else is argparse's usual error."""
    from sredge.imaging.io import IMAGE_SUFFIXES

    if args.image is not None and all(Path(e).suffix.lower() in IMAGE_SUFFIXES for e in extra):
        raise InputError(f"--image takes one file, folder or pattern, and {len(extra) + 1} images were given (the "
                         f"shell expands an unquoted pattern): quote it, e.g. --image '{Path(args.image).parent}/*"
                         f"{Path(args.image).suffix}', or give the folder")
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def _video_report(path: Path, output: Path | None) -> Output:
    """``--report`` of a video run: the report a stopped resumable run of the same ``-o`` wrote is this run's to
    replace, whether it continues that run (docs/resume.md: the same command continues) or discards it."""
    from sredge.runtime.video_resume import stopped_run_report_of

    ours = output is not None and stopped_run_report_of(path, output)
    return Output(path, "--report", updated=ours)


def _output_size(args):
    """``--outscale`` / ``--target`` as an :class:`~sredge.runtime.resize_plan.OutputSize` (checked)."""
    from sredge.runtime.resize_plan import OutputSize, parse_target

    return OutputSize(args.outscale, parse_target(args.target) if args.target is not None else None)


def _check_camera(source: str) -> None:
    """Before any model loads: a csi:// or v4l2:// URI parsed and OpenCV's GStreamer checked; a camera by number
    or ``/dev/videoN`` whose device node is missing (no camera attached) refused."""
    from sredge.runtime.camera import is_camera_uri, parse_camera_uri

    if is_camera_uri(source):
        from sredge.runtime.camera_capture import check_gstreamer

        check_gstreamer(parse_camera_uri(source))
    elif source.isdigit() or source.startswith("/dev/video"):
        from sredge.runtime.video_io import parse_source

        camera = parse_source(source)  # its device node and name (off Linux: its refusal)
        if not os.path.exists(camera.target):
            raise InputError(f"{camera.label} does not exist: is the camera attached? (ls /dev/video* lists the "
                             "cameras)")


def _choose_encoder(args):
    """``--codec``/``--encoder`` resolved on this machine (probes; see :mod:`sredge.runtime.encoders`), before any
    model loads or frame is decoded; an output container that cannot hold the codec is refused first."""
    from sredge.runtime.encoders import check_container, requested_encoder, resolve_encoder
    from sredge.runtime.video_io import source_bit_depth
    from sredge.runtime.video_run import default_encoder_threads

    codec, _ = requested_encoder(args.codec, args.encoder)
    if args.output is not None:
        check_container(args.output, codec)
    else:
        check_container(Path("default.mp4"), codec)  # the default output NAME_xS.mp4

    threads = default_encoder_threads() if args.encode_threads is None else args.encode_threads
    return resolve_encoder(args.encoder, crf=args.crf, preset=args.preset, threads=threads,
                           tune="zerolatency" if args.latency_mode else None, codec=args.codec,
                           bit_depth=source_bit_depth(args.video))


def _announce(rt, model: Path, quiet: bool) -> None:
    """The auto choice, on stderr. Precision never changes without a line saying so: a run on another
    file than ``--model`` is announced even with ``-q``."""
    if rt.auto is not None and (not quiet or rt.model != model):
        print(f"{PROG}: {rt.auto.summary}", file=sys.stderr)


def _summary(vrun) -> None:
    from sredge.runtime.pipeline import STAGES

    r = vrun.result
    print(f"frames {r.frames_out}/{r.frames_in}, {r.wall_s:.2f} s, {r.fps:.2f} fps end to end")
    print(f"{'stage':<12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    rows = [(name, r.stages[name].summary()) for name in STAGES] + [("end_to_end", r.end_to_end.summary())]
    if r.source_wait.count:  # a live source: the waits for it, which the rows above leave out
        rows.append(("source_wait", r.source_wait.summary()))
    for name, s in rows:
        print(f"{name:<12} {s.p50_ms:9.1f} {s.p95_ms:9.1f} {s.p99_ms:9.1f}")
    print(r.latency_note())
    c = vrun.reference_check
    if c is not None:
        if c["frames_checked"] == 0:
            print("reference check: no frame checked")
        elif c["mean_psnr"] is None:
            print(f"reference check: {c['frames_checked']} frames, identical to the reference")
        else:
            print(f"reference check: {c['frames_checked']} frames (every {c['every']}), Y-PSNR against the "
                  f"reference mean {c['mean_psnr']:.2f} dB, min {c['min_psnr']:.2f} dB (frame {c['worst_frame']})")


def _image_hw(path: Path) -> tuple[int, int]:
    from sredge.imaging.io import image_size

    return image_size(path)  # from the header: nothing is decoded before the limits are checked


def _video_hw(source: str, max_pixels: int) -> tuple[int, int]:
    from sredge.runtime.video_io import VideoReader

    with VideoReader(source, max_pixels=max_pixels) as reader:
        return reader.info.height, reader.info.width


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
