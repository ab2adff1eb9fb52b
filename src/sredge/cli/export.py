"""``sr-export``: a checkpoint in, a validated ONNX model out."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sredge.cli._app import Parser, parse_frame_size, run
from sredge.cli._limits import add_max_pixels
from sredge.data.samples import folder_arg
from sredge.errors import CheckFailedError, InputError
from sredge.limits import DEFAULT_MAX_PIXELS
from sredge.models.descriptor import COLOR_SPACES
from sredge.models.registry import ARCH_NAMES

if TYPE_CHECKING:
    import numpy as np

    from sredge.benchmarks.datasets import Dataset
    from sredge.calibration.sets import CalibrationOptions

log = logging.getLogger(__name__)
PROG = "sr-export"


CALIB_TILE = 64
"""``--calib-tile``'s default: LR crop side (pixels) cut from --calib folders and videos."""

BENCH_SIZE = "640x360"
"""``--bench-size``'s default: the frame the precision table's latency column times."""


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description=(
            "Export a super-resolution checkpoint to ONNX: detect the architecture, export with dynamic "
            "batch/height/width, embed sredge metadata, and check the ONNX against PyTorch on a real image. "
            "Exits 0 only when the parity check passes."
        ),
        epilog="Exit codes: 0 ok, 1 a check failed (parity, FP16 range, INT8 over --max-psnr-drop), 2 bad input, "
               "3 internal error, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (nothing half-written is left). "
               "SREDGE_DEBUG=1 shows tracebacks.",
    )
    p.add_argument("checkpoint", type=Path, help=".pth / .pt / .ckpt / .safetensors file")
    p.add_argument("-o", "--output", type=Path,
                   help="output NAME.onnx (default: next to the checkpoint); NAME.fp16.onnx / NAME.int8.onnx "
                        "beside it")
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (default: refuse)")
    p.add_argument("--arch", choices=ARCH_NAMES, metavar="NAME",
                   help=f"architecture, when detection is ambiguous: {', '.join(ARCH_NAMES)}")
    p.add_argument("--scale", type=int, metavar="N",
                   help="upscaling factor; must agree with the weights when they determine it; the architecture's "
                        "scales (most: 2, 3, 4, 8), any from 2 to 16 for pre-upsampling networks (SRCNN, VDSR)")
    p.add_argument("--color", choices=COLOR_SPACES,
                   help="override the colour space the network was trained on (default: the architecture's)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that store pickled code (whole models); this can run arbitrary "
                        "code: only for files you trust")
    p.add_argument("--key-map", metavar="JSON|FILE",
                   help="rename checkpoint keys before detection: a JSON object of regex -> replacement, "
                        "inline or in a file, applied in order, e.g. '{\"^Conv(\\\\d)\\\\.\": \"conv_\\\\1.\"}'")
    p.add_argument("--opset", type=int, default=18,
                   help="ONNX opset, 17 up to the installed onnx's newest (default 18)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim simplification")
    p.add_argument("--min-psnr", type=float, default=60.0,
                   help="parity threshold: minimum PSNR (dB) of ONNX Runtime vs PyTorch (default 60)")
    g = p.add_argument_group("reduced precision (FP16, INT8)")
    g.add_argument("--precision", default="fp32", metavar="LIST",
                   help="comma-separated: fp32, fp16, int8 (default fp32); NAME.fp16.onnx / NAME.int8.onnx "
                        "are written beside NAME.onnx, then a table of PSNR drop and CPU latency")
    g.add_argument("--calib", action="append", type=folder_arg, metavar="SRC",
                   help="calibration source: a folder of images ('sample': the bundled photos), a video, or a "
                        ".npz from sr-calibrate build "
                        "(repeatable; needed for int8; fp16 checks its range on it, else on the bundled photo)")
    g.add_argument("--calib-tile", type=int, default=None, metavar="PX",
                   help=f"LR crop size when --calib is a folder or video, at least 16 (default {CALIB_TILE}; "
                        "a .npz keeps the tile it was cut with)")
    g.add_argument("--calib-crops", type=int, default=64, metavar="N",
                   help="crops used for calibration, spread over the set (default 64); a video gives one per "
                        "frame of 64, a folder as many per image as reach min(16, N) with them (at least one)")
    g.add_argument("--int8-flavour", choices=("cpu", "trt"),
                   help="cpu: ONNX Runtime (uint8 activations, int8 per-channel weights; default); "
                        "trt: TensorRT (symmetric int8)")
    g.add_argument("--int8-weight-bits", type=int, choices=(7, 8),
                   help="the weights' integers, 8 (|q| <= 127) or 7 (|q| <= 64: exact in OpenVINO on x86 CPUs without "
                        "VNNI too; still INT8 for TensorRT) (default: cpu 7, which it takes only; trt 8)")
    g.add_argument("--calib-method", choices=("minmax", "entropy", "percentile"),
                   help="activation range estimate (default minmax)")
    g.add_argument("--max-psnr-drop", type=float, metavar="DB",
                   help="INT8 budget: largest validation Y-PSNR drop vs FP32; beyond it the most sensitive "
                        "layers stay in float (and are named) (default: none, every layer INT8; a drop over "
                        "1 dB is warned about)")
    g.add_argument("--fp16-io", action="store_true", help="FP16 file takes and returns float16 (default float32)")
    g.add_argument("--val", type=folder_arg, metavar="DIR",
                   help="validation set for the PSNR figures: HR/ + LR_bicubic/X{s}/ (Set5) or a folder of HR "
                        "images ('sample': the bundled photos; default: the bundled photo)")
    g.add_argument("--bench-size", default=None, metavar="WxH",
                   help=f"frame size of the CPU latency column of the fp16/int8 table (default {BENCH_SIZE}); "
                        "'off' skips timing")
    add_max_pixels(g)  # for the images and video frames of --calib and --val
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return p


def _check_precision_flags(args) -> tuple[str, ...]:
    """Reject flags that would silently do nothing; returns the precisions."""
    from sredge.calibration.derive import parse_precisions

    precisions = parse_precisions(args.precision)
    wants_int8, wants_fp16 = "int8" in precisions, "fp16" in precisions
    for flag, value, needs in (("--int8-flavour", args.int8_flavour, wants_int8),
                               ("--int8-weight-bits", args.int8_weight_bits, wants_int8),
                               ("--calib-method", args.calib_method, wants_int8),
                               ("--max-psnr-drop", args.max_psnr_drop, wants_int8),
                               ("--fp16-io", args.fp16_io or None, wants_fp16),
                               ("--calib", args.calib, wants_int8 or wants_fp16),
                               ("--val", args.val, wants_int8 or wants_fp16),
                               ("--bench-size", None if args.bench_size in (None, "off") else args.bench_size,
                                wants_int8 or wants_fp16)):
        if value is not None and not needs:
            raise InputError(f"{flag} has no effect without --precision {'int8' if flag != '--fp16-io' else 'fp16'}"
                             + ("" if flag not in ("--calib", "--val", "--bench-size") else " or fp16"))
    if wants_int8:  # before anything is written: the cpu flavour refuses 8-bit weights
        from sredge.calibration.quantize import Int8Options

        Int8Options(flavour=args.int8_flavour or "cpu", weight_bits=args.int8_weight_bits)
    if args.calib_tile is not None and not any(Path(c).suffix.lower() != ".npz" for c in args.calib or ()):
        raise InputError("--calib-tile has no effect " + ("with a saved set (.npz): it keeps the tile it was cut "
                                                          "with (sr-calibrate build --tile makes another)"
                                                          if args.calib else "without --calib (a folder or video)"))
    if wants_int8 and not args.calib:
        raise InputError("--precision int8 needs calibration data: --calib FOLDER|VIDEO|SET.npz, frames like the "
                         "ones you will upscale (or --calib sample, the bundled photos, to try it)")
    if args.max_psnr_drop is not None and not args.max_psnr_drop >= 0:  # NaN too
        raise InputError(f"--max-psnr-drop must be >= 0, not {args.max_psnr_drop}")
    if not math.isfinite(args.min_psnr):  # NaN or inf: no parity can be judged against it
        raise InputError(f"--min-psnr must be a finite number of dB, not {args.min_psnr}")
    if args.calib_crops < 1:
        raise InputError(f"--calib-crops must be at least 1, not {args.calib_crops}")
    if args.max_pixels != DEFAULT_MAX_PIXELS and not (args.calib or args.val):
        raise InputError("--max-pixels has no effect without --calib or --val (the images it limits)")
    return precisions


def _onnx_name(out: Path) -> Path:
    """The ``.onnx`` name to suggest for ``-o out``: ``toy.onnx.bak`` -> ``toy.onnx``, ``m.pt`` -> ``m.onnx``."""
    stem = Path(out.stem)
    return out.with_name(stem.name) if stem.suffix.lower() == ".onnx" else out.with_suffix(".onnx")


def _check_output(out: Path) -> None:
    """The FP32 file is NAME.onnx, so that NAME.fp16.onnx and NAME.int8.onnx sit beside it (and sr-run
    knows it by its suffix)."""
    if out.suffix.lower() != ".onnx":
        raise InputError(f"-o {out}: an ONNX model is written as NAME.onnx (its FP16/INT8 variants as "
                         f"NAME.fp16.onnx, NAME.int8.onnx): use -o {_onnx_name(out)}")
    infix = Path(out.stem).suffix.lower()
    if infix in (".fp16", ".int8"):  # sr-run would take the FP32 model for a variant of NAME.onnx
        raise InputError(f"-o {out} names a {infix[1:].upper()} file, but -o is the FP32 model (its variants are "
                         f"named from it): use -o {out.with_name(Path(out.stem).stem + out.suffix)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    say = (lambda *a: None) if args.quiet else print

    from sredge.outputs import claim_outputs

    ckpt: Path = args.checkpoint
    if not ckpt.exists():
        raise InputError(f"no such file: {ckpt}")
    if ckpt.is_dir():  # before -o is named from it ('.' has no name to name it by)
        raise InputError(f"{ckpt} is a folder, not a checkpoint: give the checkpoint file (.pth, .pt, .safetensors)")
    if not ckpt.is_file():  # a FIFO or a device would block the reader or never end
        raise InputError(f"{ckpt} is not a regular file: give the checkpoint file (.pth, .pt, .safetensors)")
    out: Path = args.output or ckpt.with_suffix(".onnx")
    if args.scale is not None and not 1 <= args.scale <= 16:
        raise InputError(f"--scale must be an integer from 1 to 16, not {args.scale}")
    precisions = _check_precision_flags(args)
    from sredge.export.onnx_export import check_opset  # torch-free: only onnx is imported

    check_opset(args.opset)
    if args.key_map is not None:
        from sredge.models.key_map import parse_key_map

        args.key_map = parse_key_map(args.key_map)  # a bad map fails before anything loads
    bench = parse_frame_size(BENCH_SIZE if args.bench_size is None else args.bench_size, "--bench-size", off="off")
    if bench is not None and bench[0] * bench[1] > DEFAULT_MAX_PIXELS:  # timed after the files are written
        raise InputError(f"--bench-size {args.bench_size}: at most {DEFAULT_MAX_PIXELS:,} pixels (a frame to time, "
                         "not a poster); 640x360 is the default")
    # The output policy first (an input named as an output, a folder, an existing file), then the name's
    # suffix, then what --calib and --val hold: all before the checkpoint is read.
    with claim_outputs(*_paths(args, out, precisions), overwrite=args.overwrite):
        _check_output(out)
        _check_sources(args)
        return _export(args, out, precisions, bench, say)


def _check_sources(args) -> None:
    """Calibration and validation inputs that cannot work fail now, from listings and headers, before the
    checkpoint is read. What only decoding finds is found by :func:`_read_sources`, still before any file."""
    from sredge.calibration.sets import check_calibration_sources

    if args.calib:
        check_calibration_sources(args.calib, _calib_options(args), args.max_pixels)
    if args.val is not None and not args.val.is_dir():
        raise InputError(f"--val {args.val}: " + ("no such folder" if not args.val.exists() else "not a folder")
                         + " (give a benchmark folder, e.g. the path of Set5, or 'sample')")


def _calib_options(args) -> CalibrationOptions:
    from sredge.calibration.sets import CalibrationOptions

    # Fewer crops than the set's usual minimum are enough when the user asks for fewer (--calib-crops).
    return CalibrationOptions(tile=CALIB_TILE if args.calib_tile is None else args.calib_tile,
                              min_crops=min(CalibrationOptions.min_crops, args.calib_crops))


@dataclasses.dataclass(frozen=True)
class _Sources:
    """What the FP16/INT8 files are derived with, read before the FP32 file is written."""

    calib: np.ndarray
    """(N, C, H, W) float32 network inputs: the --calib crops, or the bundled photo (FP16 range check)."""
    calib_line: str
    """How they were made, for the ``calibrate`` line."""
    dataset: Dataset
    """The validation :class:`~sredge.benchmarks.datasets.Dataset` (--val, or the bundled photo)."""


def _read_sources(args, desc) -> _Sources:
    """Decode the calibration set and check the validation set's headers (its images are decoded when the
    FP32 file is scored, also before it takes its name): an input error leaves no file behind."""
    from sredge.benchmarks.datasets import load_dataset
    from sredge.calibration.derive import check_validation, default_validation
    from sredge.calibration.sets import calibration_set_from, model_inputs
    from sredge.export.parity import parity_inputs

    if args.calib:
        cset = calibration_set_from(args.calib, _calib_options(args), args.max_pixels)
        calib = model_inputs(cset, desc, limit=args.calib_crops)
        line = f"{cset.describe()}; using {len(calib)}"
    else:
        calib, line = parity_inputs(desc)[0], "FP16 range check on the bundled photo (no --calib)"
    if args.val is not None:
        dataset = load_dataset(args.val, desc.scale, args.max_pixels)
        check_validation(dataset)
    else:
        dataset = default_validation(desc.scale)
    return _Sources(calib, line, dataset)


def _paths(args, out: Path, precisions: tuple[str, ...]) -> tuple[list, list]:
    """(every file the export writes, every file and folder it reads), for the output policy."""
    from sredge.calibration.derive import derived_path
    from sredge.outputs import Input, Output

    outputs = [Output(out, "-o")] + [Output(derived_path(out, p), f"--precision {p}") for p in precisions
                                     if p != "fp32"]
    inputs = [Input(args.checkpoint, "the checkpoint")] + [Input(c, "--calib") for c in args.calib or ()]
    inputs += [Input(args.val, "--val")] if args.val is not None else []
    if args.key_map is not None and args.key_map.source != "inline":
        inputs.append(Input(Path(args.key_map.source), "--key-map"))
    return outputs, inputs


def _export(args, out: Path, precisions: tuple[str, ...], bench, say) -> int:
    """Load, export, check parity, derive FP16/INT8 files: the claimed outputs are written atomically."""
    from sredge.atomic import atomic_path

    ckpt: Path = args.checkpoint
    # Heavy imports only now: --help and input errors above stay fast and torch-free.
    from sredge._lazy import require

    require("torch")
    from sredge.export.onnx_export import ExportOptions, export_onnx_proto
    from sredge.export.parity import check_parity
    from sredge.models.loader import load_model

    loaded = load_model(ckpt, arch=args.arch, scale=args.scale, trust_pickle=args.trust_pickle,
                        key_map=args.key_map)
    desc = loaded.descriptor
    if args.color:
        if (args.color == "y") != (desc.in_channels == 1):
            raise InputError(f"--color {args.color} does not fit a {desc.in_channels}-channel network")
        desc = dataclasses.replace(desc, color_space=args.color)
    say(f"detected   {desc.arch} ({desc.variant}), scale x{desc.scale} (from {loaded.scale_source})")
    say(f"channels   {desc.in_channels} -> {desc.out_channels}, colour {desc.color_space}, "
        f"values in [0, {desc.value_range:g}]"
        + (", expects a bicubic-upsampled input" if desc.pre_upsample else "")
        + (f", size multiple {desc.size_multiple}" if desc.size_multiple > 1 else ""))
    say(f"parameters {desc.num_params:,}")
    derived = precisions != ("fp32",)
    sources = _read_sources(args, desc) if derived else None

    options = ExportOptions(opset=args.opset, simplify=not args.no_simplify)
    # Export and check the temporary file; only a file that passed takes the final name.
    with atomic_path(out) as tmp:
        # written straight into the temporary file (export_onnx's own atomic write would nest a second
        # temporary name, 28 bytes longer than -o's)
        tmp.write_bytes(export_onnx_proto(loaded.module, desc, options).SerializeToString())
        report = check_parity(loaded.module, desc, tmp, threshold_db=args.min_psnr)
        say("parity     ONNX Runtime (CPU) vs PyTorch on a real image:")
        for c in report.cases:
            say(f"           {c.batch} x {c.height}x{c.width}: max abs error {c.max_abs_error:.3g}, "
                f"PSNR {_db(c.psnr_db)}")
        if not report.passed:
            raise CheckFailedError(
                f"parity check failed: PSNR {_db(report.worst_psnr_db)} < {args.min_psnr:g} dB "
                f"(max abs error {report.max_abs_error:.3g}); no ONNX file was written"
            )
        if derived:  # the reference score decodes every validation image: a bad one leaves no FP32 file
            from sredge.calibration.sensitivity import Validator

            validator = Validator(sources.dataset, desc)
            ref_db = validator.mean_db(tmp)
    size_mb = out.stat().st_size / 1e6
    say(f"wrote      {out} ({size_mb:.2f} MB, opset {args.opset}, dynamic batch/height/width)")
    if derived:
        _derive(args, out, desc, precisions, bench, say, loaded.module, sources, validator, ref_db)
    return 0


def _half_db(module, desc, dataset) -> tuple[float | None, str]:
    """(mean Y-PSNR of the network computed in float16 by PyTorch on the CPU, how it was computed);
    (None, why) when PyTorch cannot run this network in float16 here (the file is then scored by ONNX Runtime)."""
    import copy

    import numpy as np

    from sredge.benchmarks.quality import evaluate_y_psnr
    from sredge.calibration.fp16 import torch_half_runner

    try:
        scores = evaluate_y_psnr(torch_half_runner(copy.deepcopy(module)), desc, dataset)
    except RuntimeError as exc:  # an op without a CPU float16 kernel
        first = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else type(exc).__name__
        return None, f"PSNR by ONNX Runtime with float32 arithmetic (PyTorch float16 failed: {first})"
    return float(np.mean(list(scores.values()))), "PSNR computed in float16 by PyTorch"


def _derive(args, out: Path, desc, precisions: tuple[str, ...], bench, say, module, sources: _Sources,
            validator, ref_db: float) -> None:
    """Write NAME.fp16.onnx / NAME.int8.onnx and print the table (see sredge.calibration.derive).

    ``validator`` scores on ``sources.dataset``; ``ref_db`` is the FP32 file's score. The FP16 row's Y-PSNR
    is computed in float16 by PyTorch (``module``), since ONNX Runtime on the CPU computes an FP16 file in
    float32."""
    from sredge.calibration.derive import make_fp16
    from sredge.calibration.fp16 import Fp16Options

    calib, dataset = sources.calib, sources.dataset
    say(f"calibrate  {sources.calib_line}")
    rows = [("fp32", out, ref_db, "")]
    try:
        if "fp16" in precisions:
            how = ""

            def half_db() -> float | None:  # after make_fp16's range check: an overflow is named by its layers
                nonlocal how
                db, how = _half_db(module, desc, dataset)
                return db

            f16 = make_fp16(out, desc, calib, validator, Fp16Options(fp16_io=args.fp16_io), reference_db=ref_db,
                            half_db=half_db)
            name, peak = f16.ranges.peak
            rows.append(("fp16", f16.path, f16.psnr_db,
                         f"{how}; largest activation {peak:.3g} ({name}), fp16 max 65504"))
        if "int8" in precisions:
            rows.append(_int8_row(args, out, desc, calib, validator, ref_db))
    except CheckFailedError as exc:  # the files before it passed their checks and stay: say so, and how to rerun
        _table(rows, ref_db, dataset, desc, None, say)
        kept = ", ".join(path.name for _, path, _, _ in rows)
        from sredge.calibration.derive import derived_path

        done = {prec for prec, *_ in rows}
        old = [path.name for path in (derived_path(out, p) for p in precisions if p not in done) if path.is_file()]
        left = f"; {' and '.join(old)} beside it: an earlier run's, not this one's" if old else ""
        raise CheckFailedError(f"{exc} ({kept} written: add --overwrite to rerun{left})") from exc
    _table(rows, ref_db, dataset, desc, bench, say)
    int8 = next((r for r in rows if r[0] == "int8"), None)
    if int8 is not None and args.max_psnr_drop is None and ref_db - int8[2] > LARGE_DROP_DB:
        log.warning("INT8 drops %.2f dB on %s: give --max-psnr-drop to keep the layers that cost most in float, "
                    "try another --calib-method, or fine-tune for INT8 with sr-train --qat", ref_db - int8[2],
                    dataset.name)


LARGE_DROP_DB = 1.0
"""An INT8 drop (dB) beyond which sr-export, given no budget, warns."""


def _int8_row(args, out: Path, desc, calib, validator, ref_db: float) -> tuple:
    """Write NAME.int8.onnx: its table row ``(precision, path, Y-PSNR, note)``.

    Raises:
        CheckFailedError: The budget could not be met (see :func:`~sredge.calibration.derive.make_int8`).
    """
    from sredge.calibration.derive import DeriveOptions, make_int8
    from sredge.calibration.quantize import Int8Options

    options = DeriveOptions(
        int8=Int8Options(flavour=args.int8_flavour or "cpu", method=args.calib_method or "minmax",
                         weight_bits=args.int8_weight_bits),
        max_psnr_drop=args.max_psnr_drop,
    )
    path, res = make_int8(out, desc, calib, validator, ref_db, options)
    note = (f"int8-{options.int8.flavour}, {options.int8.method}"
            + (", 7-bit weights" if options.int8.flavour == "trt" and options.int8.weight_qmax < 127 else ""))
    if res.kept_float:
        import onnx

        from sredge.calibration.sensitivity import layer_labels

        labels = layer_labels(onnx.load(str(out), load_external_data=False))
        note += (f"; plain INT8 dropped {res.plain_drop_db:.3f} dB, kept in float: "
                 + ", ".join(labels.get(n, n) for n in res.kept_float))
    return "int8", path, res.int8_db, note


def _table(rows: list[tuple], ref_db: float, dataset, desc, bench, say) -> None:
    """The precision table: each written file's validation Y-PSNR, drop and (with ``bench``) CPU latency."""
    timed = _latency({precision: path for precision, path, _, _ in rows}, bench) if bench else {}
    say(f"quality    validation Y-PSNR on {dataset.name} ({len(dataset.samples)} images, x{desc.scale}); "
        + (f"CPU latency of a {bench[0]}x{bench[1]} frame (ONNX Runtime, median of {LATENCY_ROUNDS} interleaved "
           "rounds; speedup: median per-round ratio to fp32 (interquartile range))" if bench else "latency off"))
    say(f"           {'precision':<9} {'file':<28} {'Y-PSNR':>9} {'drop':>7} {'CPU ms':>8} "
        f"{'speedup (IQR)':<31}  notes")
    for precision, path, db, note in rows:
        got = timed.get(precision)
        ms = got.stats.median_ms if got else None
        speed = got.speedup.describe() if got and precision != "fp32" else "-"
        drop = ("-" if precision == "fp32"
                else f"{max(ref_db - db, 0.0) if abs(ref_db - db) < 5e-4 else ref_db - db:.3f}")
        say(f"           {precision:<9} {path.name:<28} {db:>6.2f} dB {drop:>7} "
            f"{(f'{ms:.1f}' if ms else '-'):>8} {speed:<31}  {note}")


LATENCY_ROUNDS = 10
"""Interleaved timing rounds of the precision table (all precisions timed against each other)."""


def _latency(paths: dict[str, Path], bench: tuple[int, int]) -> dict:
    from sredge.benchmarks.latency import compare_latency

    return compare_latency(paths, "fp32", height=bench[1], width=bench[0], rounds=LATENCY_ROUNDS)


def _db(v: float) -> str:
    return "inf dB (identical)" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
