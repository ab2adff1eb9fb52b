"""``sr-bench``: quality (Y-PSNR / Y-SSIM) and latency of models on a benchmark, and a regression gate."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

from sredge.cli._app import Parser, parse_frame_size, parse_tile, run
from sredge.cli._limits import add_max_pixels, max_threads, threads_cap_line
from sredge.data.samples import folder_arg
from sredge.errors import CheckFailedError, InputError
from sredge.models.descriptor import COLOR_SPACES

PROG = "sr-bench"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Measure SR models on a benchmark dataset (Y-PSNR, Y-SSIM, latency), write a report, "
                    "and gate on a saved baseline.",
        epilog="Exit codes: 0 ok (within budget), 1 a regression beyond the budget, 2 bad input, "
               "3 internal error, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (nothing half-written is left). "
               "SREDGE_DEBUG=1 shows tracebacks.",
    )
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL", help=".onnx, .engine/.plan or .pth files")
    p.add_argument("--dataset", type=folder_arg, required=True,
                   help="benchmark folder: HR/ + LR_bicubic/X{s}/ (used as is), or HR images only "
                        "(LR made with MATLAB-compatible bicubic); 'sample': the bundled photos")
    p.add_argument("--scale", type=int, metavar="N", help="upscaling factor (default: the first model's)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write report.json, report.md, latency.png, psnr.png and crops/ into DIR")
    p.add_argument("--json", type=Path, metavar="FILE", help="write only the report JSON to FILE")
    p.add_argument("--save-baseline", type=Path, metavar="FILE", help="save this run as the baseline for --baseline")
    p.add_argument("--baseline", type=Path, metavar="FILE", help="compare with a saved baseline; exit 1 on regression")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --json/--save-baseline files and a --report folder's report that exist "
                        "(default: refuse)")
    p.add_argument("--max-psnr-drop", type=float, default=0.05, metavar="DB",
                   help="allowed Y-PSNR drop per image and on the mean, dB (default 0.05)")
    p.add_argument("--max-ssim-drop", type=float, metavar="X", help="allowed Y-SSIM drop (default: not gated)")
    p.add_argument("--max-slowdown", type=float, metavar="RATIO",
                   help="allowed median-latency ratio new/old, each normalised by the run's reference "
                        "workload, e.g. 1.10 (default: latency not gated)")
    p.add_argument("--backend", default="auto",
                   help="backend(s), comma-separated: auto, ort, trt, torch, openvino (default auto: by model "
                        "file type)")  # sredge.runtime.backends.BACKENDS, not imported here: it needs numpy
    p.add_argument("--precision", default=None,
                   help="precision(s) to run in, comma-separated: fp32, bf16, int8 (OpenVINO; other backends "
                        "refuse what they cannot honour); default: each model's own")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="device for ONNX Runtime / PyTorch (default cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="inference threads, at most 4 per core, or 64 where that is fewer (default 0: the backend's "
                        "own choice, one per physical core for ONNX Runtime)")
    p.add_argument("--tile", default="auto",
                   help="tile setting(s), comma-separated: auto, 0 (whole image) or pixels, e.g. 0,128 (default auto)")
    p.add_argument("--tile-overlap", type=int, default=16, help="context pixels around each tile (default 16)")
    p.add_argument("--size", default="256x256", metavar="WxH",
                   help="LR frame size for latency (default 256x256); 0 skips latency")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (default 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per row (default 10)")
    p.add_argument("--no-quality", action="store_true", help="latency only")
    p.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline row")
    p.add_argument("--rgb", action="store_true", help="also report RGB PSNR")
    p.add_argument("--color", choices=COLOR_SPACES, help="colour space of a foreign model")
    p.add_argument("--range", dest="value_range", type=float, choices=(1.0, 255.0), metavar="1|255",
                   help="value range of a foreign model")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow pickled-code checkpoints (torch backend); this can run arbitrary code: only for "
                        "files you trust")
    add_max_pixels(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def _check_numbers(args) -> None:
    """Refuse impossible counts and budgets before any work (NaN would silently turn a gate off).

    Raises:
        InputError: The first bad option, named with its value and what it must be.
    """
    for flag, value, least in (("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                               ("--threads", args.threads, 0), ("--tile-overlap", args.tile_overlap, 0)):
        if value < least:
            raise InputError(f"{flag} {value}: must be >= {least}")
    if args.threads > max_threads():
        raise InputError(threads_cap_line("--threads", args.threads))
    if args.scale is not None and not 1 <= args.scale <= 16:  # as sr-run and sr-export take it
        raise InputError(f"--scale must be an integer from 1 to 16, not {args.scale}")
    for flag, value, zero_ok in (("--max-psnr-drop", args.max_psnr_drop, True),
                                 ("--max-ssim-drop", args.max_ssim_drop, True),
                                 ("--max-slowdown", args.max_slowdown, False)):
        if value is not None and not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
            raise InputError(f"{flag} {value:g}: give a finite number {'>= 0' if zero_ok else '> 0'}")


def _read_baseline(path: Path) -> dict:
    from sredge.benchmarks.report import read_report_json

    try:
        data = read_report_json(path.read_text())
    except FileNotFoundError:
        raise InputError(f"baseline {path} does not exist (save one with --save-baseline)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"baseline {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or "rows" not in data or "dataset" not in data:
        raise InputError(f"{path} is not an sr-bench report (save a baseline with --save-baseline)")
    from sredge.benchmarks.gate import check_baseline

    try:
        check_baseline(data)
    except InputError as exc:
        raise InputError(f"baseline {path} {exc}") from None
    return data


def _paths(args) -> tuple[list, list]:
    """(every file and folder the run writes, every file and folder it reads), for the output policy."""
    from sredge.outputs import Input, Output

    outputs = [Output(path, flag) for path, flag in ((args.json, "--json"), (args.save_baseline, "--save-baseline"))
               if path is not None]
    if args.report is not None:
        outputs.append(Output(args.report, "--report", folder=True,
                              files=("report.json", "report.md", "latency.png", "psnr.png")))
        crops = args.report / "crops"  # one picture per dataset image: names known only once it is read
        if crops.is_symlink():
            raise InputError(f"{crops} is a link: sr-bench writes its crops only into a folder of its own; "
                             "remove the link or choose another --report")
        if not args.overwrite and crops.is_dir() and any(crops.iterdir()):
            raise InputError(f"{crops} exists; pass --overwrite to replace its pictures, or choose another --report")
        outputs.append(Output(crops, "--report", folder=True))
    from sredge.runtime.backends.base import companion_files

    # a model's external-data files and an engine's sidecar are read with it: --json m.onnx.data replaced weights
    inputs = [Input(f, "MODEL") for m in args.models for f in (m, *companion_files(m))]
    inputs += [Input(args.dataset, "--dataset")]
    inputs += [Input(args.baseline, "--baseline")] if args.baseline is not None else []
    return outputs, inputs


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.outputs import claim_outputs

    _check_numbers(args)
    if args.no_quality and args.baseline is not None and args.max_slowdown is None:
        raise InputError("--no-quality with --baseline gates nothing; add --max-slowdown or drop --no-quality")
    size = parse_frame_size(args.size, "--size", off="0")
    if size is not None and size[0] * size[1] > args.max_pixels:
        from sredge.limits import megapixels

        raise InputError(f"--size {size[0]}x{size[1]} is {megapixels(size[0] * size[1])}, over --max-pixels "
                         f"{megapixels(args.max_pixels)}: give a smaller --size, or raise --max-pixels if you mean it")
    latency_hw = (size[1], size[0]) if size else None
    if args.no_quality and latency_hw is None:
        raise InputError("--no-quality with --size 0 measures nothing")
    baseline = _read_baseline(args.baseline) if args.baseline is not None else None
    with claim_outputs(*_paths(args), overwrite=args.overwrite):
        if baseline is not None:
            from sredge.benchmarks.gate import check_measurable

            check_measurable(baseline, _budget(args), latency_hw)  # before measuring
        return _bench(args, baseline, latency_hw)


def _bench(args, baseline: dict | None, latency_hw: tuple[int, int] | None) -> int:
    """Measure, print, write the claimed outputs, and gate."""
    from sredge.atomic import write_bytes_atomic
    from sredge.benchmarks.bench import BenchOptions, run_bench
    from sredge.benchmarks.gate import compare, gate_notes, pair_rows
    from sredge.benchmarks.report import format_table, report_json, write_report_dir
    from sredge.runtime.backends import BACKENDS
    from sredge.runtime.model import ModelOverrides

    backends = tuple(b.strip() for b in args.backend.split(",") if b.strip())
    precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip()) if args.precision else (None,)
    bad = [p for p in precisions if p not in (None, "fp32", "bf16", "int8")]
    if bad:
        raise InputError(f"--precision {bad[0]}: choose fp32, bf16 or int8")
    bad = [b for b in backends if b not in ("auto", *BACKENDS)]
    if bad:
        raise InputError(f"--backend {bad[0]}: choose auto, {', '.join(BACKENDS)}")
    opts = BenchOptions(
        dataset=args.dataset, scale=args.scale, backends=backends or ("auto",), precisions=precisions or (None,),
        tiles=tuple(parse_tile(t) for t in args.tile.split(",")),
        tile_overlap=args.tile_overlap, device=args.device, threads=args.threads, quality=not args.no_quality,
        rgb=args.rgb, bicubic=not args.no_bicubic, latency_hw=latency_hw, warmup=args.warmup,
        repeats=args.repeats, crops=args.report is not None,
        overrides=ModelOverrides(color=args.color, value_range=args.value_range), max_pixels=args.max_pixels,
        trust_pickle=args.trust_pickle,
    )
    say = (lambda _m: None) if args.quiet else (lambda m: print(f"{PROG}: {m}", file=sys.stderr, flush=True))
    result = run_bench(list(args.models), opts, progress=say)
    report = result.report
    budget = _budget(args)
    # Judged before printing anything that looks like a pass (an incomparable baseline is exit 2 here).
    regressions = compare(baseline, report, budget) if baseline is not None else []
    for note in gate_notes(baseline, report, pair_rows(baseline, report), budget) if baseline is not None else []:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    print(format_table(report))
    data = report_json(report)
    if args.report is not None:
        written = write_report_dir(args.report, report, result.crops)
        print(f"report: {args.report / 'report.md'} ({len(written)} files)")
    if args.json is not None:
        write_bytes_atomic(args.json, data)
    # A run that fails the gate is not saved as a baseline: a job that rolls baselines forward would adopt the
    # regression, and the next run would pass against it.
    if args.save_baseline is not None and not regressions:
        write_bytes_atomic(args.save_baseline, data)
        print(f"baseline saved: {args.save_baseline}")
    if baseline is None:
        return 0
    limits = f"Y-PSNR drop <= {budget.max_psnr_drop} dB" if budget.max_psnr_drop is not None else "quality not gated"
    limits += f", Y-SSIM drop <= {budget.max_ssim_drop}" if budget.max_ssim_drop is not None else ""
    limits += f", slowdown <= x{budget.max_slowdown}" if budget.max_slowdown is not None else ""
    if not regressions:
        print(f"gate: within budget against {args.baseline} ({limits})")
        return 0
    for r in regressions:
        print(f"REGRESSION {r.describe()}", file=sys.stderr)
    unsaved = f"; {args.save_baseline} not written: a run that fails the gate is no baseline" if args.save_baseline \
        else ""
    raise CheckFailedError(f"{len(regressions)} regression(s) beyond the budget ({limits}) against {args.baseline}"
                           + unsaved)


def _budget(args):
    """The gate's :class:`~sredge.benchmarks.gate.Budget`: quality is not gated in a ``--no-quality`` run."""
    from sredge.benchmarks.gate import Budget

    return Budget(max_psnr_drop=None if args.no_quality else args.max_psnr_drop,
                  max_ssim_drop=None if args.no_quality else args.max_ssim_drop, max_slowdown=args.max_slowdown)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
