"""``sr-run``: upscale images or video through tiled inference on ONNX Runtime, TensorRT or PyTorch."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sredge.cli._app import EXIT_INTERRUPTED, Parser, parse_tile, run
from sredge.errors import InputError, SredgeError
from sredge.models.descriptor import COLOR_SPACES

PROG = "sr-run"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Upscale a video (file, camera or stream) or images with a super-resolution model.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error, 130 interrupted. "
               "SREDGE_DEBUG=1 shows tracebacks.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="SRC", help="video file, camera index (0) or /dev/videoN, or rtsp/http URL")
    src.add_argument("--image", metavar="PATH", help="an image, a folder of images, or a glob pattern (quote it)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (video, single image) or folder (several images); "
                        "default: NAME_x{scale}.EXT next to the input")
    p.add_argument("--model", type=Path, help=".onnx, TensorRT .engine/.plan, or a .pth checkpoint "
                                              "(default: the bundled model for --scale)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "trt", "torch", "openvino"),
                   help="inference backend (default auto: by model file type; with --max-psnr-drop, on the CPU, the "
                        "fastest installed backend and precision variant of an .onnx within that budget, announced)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="where to run: auto (CUDA if available, else CPU), cpu, cuda, or tensorrt "
                        "(ONNX Runtime's TensorRT provider)")
    p.add_argument("--threads", type=int, default=0, help="CPU inference threads (default: all cores)")
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
    p.add_argument("--scale", type=int, choices=(1, 2, 3, 4, 8), metavar="N",
                   help="scale of a foreign model, or which bundled model to use")
    p.add_argument("--color", choices=COLOR_SPACES, help="colour space of a foreign model (default rgb / y)")
    p.add_argument("--range", dest="value_range", type=float, choices=(1.0, 255.0), metavar="1|255",
                   help="value range of a foreign model (default 1)")
    p.add_argument("--arch", help="architecture of a checkpoint run by the torch backend")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickled-code checkpoints (torch backend)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0-51, lower is better (default 18)")
    p.add_argument("--preset", default="veryfast",
                   help="x264 preset (default veryfast: half the CPU of medium, similar size for upscaled video)")
    p.add_argument("--encode-threads", type=int, default=None, metavar="N",
                   help="encoder threads (default: a quarter of the cores, at least 1; 0: the encoder's choice)")
    p.add_argument("--display", action="store_true", help="show the upscaled video in a window")
    p.add_argument("--latency-mode", action="store_true",
                   help="video: fewest frames in flight (one-frame queues, x264 zerolatency) for live sources; "
                        "default: throughput (decode and encode run a few frames ahead and behind)")
    p.add_argument("--report", type=Path, metavar="JSON", help="write a run report (frames, fps, latencies)")
    p.add_argument("--reference", type=Path, metavar="MODEL",
                   help="video: also upscale every --check-every-th frame with this model (e.g. the FP32 "
                        "original of an INT8 model) and report the Y-PSNR against it")
    p.add_argument("--check-every", type=int, default=30, metavar="N",
                   help="frames between --reference checks (default 30)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.bundled import default_model
    from sredge.runtime.model import ModelOverrides
    from sredge.runtime.runner import (
        LoadedRuntime,
        RunOptions,
        check_complete,
        expand_images,
        image_outputs,
        report_dict,
        upscale_images,
        upscale_video,
        write_report,
    )

    if args.batch < 1 or args.tile_overlap < 0 or args.threads < 0:
        raise InputError("--batch must be >= 1, --tile-overlap and --threads >= 0")
    if args.max_psnr_drop is not None and args.max_psnr_drop < 0:
        raise InputError(f"--max-psnr-drop must be >= 0, not {args.max_psnr_drop:g}")
    if args.reference is not None:
        if args.image is not None:
            raise InputError("--reference checks video runs; for images compare with sr-bench")
        if not args.reference.exists():
            raise InputError(f"no such reference model: {args.reference}")
    if args.check_every < 1:
        raise InputError("--check-every must be >= 1")
    if args.report is not None:
        from sredge.atomic import check_writable

        check_writable(args.report)
    model = args.model or default_model(args.scale)
    is_default = args.model is None
    opts = RunOptions(
        backend=args.backend,
        max_psnr_drop=args.max_psnr_drop,
        backend_options=BackendOptions(device=args.device, threads=args.threads, fp16=args.fp16,
                                       precision=args.precision),
        tile=parse_tile(args.tile),
        tile_overlap=args.tile_overlap,
        blend=args.blend,
        batch=args.batch,
        memory_budget_mb=args.memory_budget,
        overrides=ModelOverrides(scale=None if is_default else args.scale, color=args.color,
                                 value_range=args.value_range),
        torch_kwargs={k: v for k, v in (("arch", args.arch), ("trust_pickle", args.trust_pickle),
                                        ("scale", args.scale)) if v},
    )
    if not model.exists():
        raise InputError(f"no such model file: {model}")
    say = (lambda *a, **k: None) if args.quiet else print
    choosing = opts.backend == "auto" and opts.max_psnr_drop is not None  # auto probes at the frames' size

    if args.image is not None:
        inputs = expand_images(args.image)
        single = Path(args.image).is_file()  # a folder or a glob writes into a folder, whatever it matched
        with LoadedRuntime(model, opts, frame_hw=_image_hw(inputs[0]) if choosing else None) as rt:
            _announce(rt, model, args.quiet)
            outputs = image_outputs(inputs, args.output, rt.desc.scale, single_input=single)
            if not single and args.output is not None and not args.output.is_dir():
                if not args.output.parent.is_dir():
                    raise InputError(f"cannot write to {args.output}: folder {args.output.parent} does not exist")
                args.output.mkdir()
            t0 = time.perf_counter()
            written = upscale_images(rt, inputs, outputs)
        say(f"wrote {len(written)} image(s) in {time.perf_counter() - t0:.2f} s"
            + (f": {written[0]}" if len(written) == 1 else f" to {written[0].parent}"))
        return 0

    source = args.video
    live = source.isdigit() or source.startswith("/dev/video") or "://" in source
    if not live and not Path(source).exists():
        raise InputError(f"no such video file: {source}")
    # The reference runs as it is (by file type), never through the auto choice.
    ref_opts = replace(opts, backend="auto", max_psnr_drop=None, overrides=ModelOverrides(scale=opts.overrides.scale))
    frame_hw = _video_hw(source) if choosing and not live else None
    with LoadedRuntime(model, opts, frame_hw=frame_hw) as rt, (LoadedRuntime(args.reference, ref_opts) if args.reference
                                            else contextlib.nullcontext()) as ref:
        output = args.output
        if output is None and not args.display:
            if live:
                raise InputError("a camera or stream needs -o OUT.mp4 (or --display)")
            output = Path(source).with_name(f"{Path(source).stem}_x{rt.desc.scale}.mp4")
        _announce(rt, model, args.quiet)
        say(f"{PROG}: {rt.desc.summary()} on {rt.backend.describe()}", file=sys.stderr)
        bar = _Progress(enabled=not args.quiet and sys.stderr.isatty())
        vrun = upscale_video(rt, source, output, crf=args.crf, preset=args.preset, progress=bar.update,
                             display=args.display, encoder_threads=args.encode_threads, reference=ref,
                             check_every=args.check_every, latency_mode=args.latency_mode)
        bar.finish()
        if args.report is not None:
            write_report(args.report, report_dict(vrun, rt, opts))
    res = vrun.result
    if not args.quiet:
        _summary(vrun)
    done = f"{res.frames_out} frames written to {vrun.output}" if vrun.output else f"{res.frames_out} frames shown"
    if res.interrupted and res.failure is None:
        print(f"{PROG}: interrupted; {done} (playable)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if res.failure is not None:
        exc = res.failure
        msg = " ".join(str(exc).split()) or type(exc).__name__
        code = exc.exit_code if isinstance(exc, SredgeError) else 1
        print(f"{PROG}: error: {msg}; {done} (playable)", file=sys.stderr)
        return code
    if vrun.decode_error:
        raise InputError(f"the input is truncated or corrupt ({vrun.decode_error}); {done}")
    check_complete(vrun)
    say(f"wrote {vrun.output}" if vrun.output else "done")
    return 0


def _announce(rt, model: Path, quiet: bool) -> None:
    """The auto choice, on stderr. Precision never changes without a line saying so: a run on another
    file than ``--model`` is announced even with ``-q``."""
    if rt.auto is not None and (not quiet or rt.model != model):
        print(f"{PROG}: {rt.auto.summary}", file=sys.stderr)


class _Progress:
    """A one-line progress display on stderr: frames (of total), fps, ETA. Silent when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._start = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def update(self, res, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        self._last = now
        done = res.frames_out
        fps = done / max(now - self._start, 1e-9)
        if total:
            eta = (total - done) / fps if fps > 0 else 0.0
            line = f"{done}/{total} frames ({100 * done / total:.0f}%), {fps:.1f} fps, ETA {eta:.0f} s"
        else:
            line = f"{done} frames, {fps:.1f} fps"
        sys.stderr.write(f"\r{PROG}: {line}   ")
        sys.stderr.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            sys.stderr.write("\n")


def _summary(vrun) -> None:
    from sredge.runtime.pipeline import STAGES

    r = vrun.result
    print(f"frames {r.frames_out}/{r.frames_in}, {r.wall_s:.2f} s, {r.fps:.2f} fps end to end")
    print(f"{'stage':<12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    rows = [(name, r.stages[name].summary()) for name in STAGES] + [("end_to_end", r.end_to_end.summary())]
    for name, s in rows:
        print(f"{name:<12} {s.p50_ms:9.1f} {s.p95_ms:9.1f} {s.p99_ms:9.1f}")
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
    from sredge.imaging.io import read_image

    return read_image(path).shape[:2]


def _video_hw(source: str) -> tuple[int, int]:
    from sredge.runtime.video_io import VideoReader

    with VideoReader(source) as reader:
        return reader.info.height, reader.info.width


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
