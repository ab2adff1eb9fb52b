"""``sr-build``: build a TensorRT engine from an ONNX on the GPU (or Jetson) that will run it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from sredge.cli._app import Parser, run
from sredge.errors import InputError

PROG = "sr-build"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Build a TensorRT engine (with its .json sidecar) from an ONNX, on the machine that will run "
                    "it. An engine already built for the same ONNX, options, TensorRT and GPU is reused.",
        epilog="Exit codes: 0 ok, 1 TensorRT failed to build, 2 bad input or TensorRT not installed, "
               "3 internal error, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (nothing half-written is left). "
               "SREDGE_DEBUG=1 shows tracebacks.",
    )
    p.add_argument("onnx", type=Path, help="the ONNX model (float32, FP16, or a Q/DQ INT8 ONNX)")
    p.add_argument("-o", "--output", type=Path, help="engine file (default: the ONNX's name with .engine)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="tile edge the engine is tuned for, network-input pixels (default 256)")
    p.add_argument("--max-tile", type=int, metavar="N", help="largest tile edge the engine accepts (default --tile)")
    p.add_argument("--min-tile", type=int, default=16, metavar="N",
                   help="smallest tile edge the engine accepts (default 16)")
    p.add_argument("--batch", default="1", metavar="MIN:OPT:MAX",
                   help="batch range of the profile, or N for 1..N tuned for N (default 1)")
    p.add_argument("--fp16", action="store_true",
                   help="allow FP16 kernels for a float32 ONNX (TensorRT 10; TensorRT 11 needs an FP16 ONNX)")
    p.add_argument("--int8", action="store_true",
                   help="INT8: from a Q/DQ ONNX's scales, or by calibrating a float32 ONNX with --calib (TensorRT 10)")
    p.add_argument("--calib", type=Path, metavar="DIR", help="images to calibrate --int8 on (a float32 ONNX)")
    p.add_argument("--calib-cache", type=Path, metavar="FILE",
                   help="calibration cache: written after --calib, or read instead of calibrating")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for float32 layers (off: float32 stays exact)")
    p.add_argument("--dla-core", type=int, metavar="N", help="run on DLA core N (Jetson), FP16/INT8 only")
    p.add_argument("--no-gpu-fallback", action="store_true",
                   help="with --dla-core: fail the build instead of running unsupported layers on the GPU")
    p.add_argument("--workspace", type=int, metavar="MB",
                   help="builder workspace limit in MiB (default: TensorRT's, the device's memory)")
    p.add_argument("--timing-cache", type=Path, metavar="FILE",
                   help="persistent timing cache (default: one per TensorRT and GPU under ~/.cache/sredge)")
    p.add_argument("--force", action="store_true", help="rebuild even when the engine is up to date")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a file at the engine's name that sr-build did not make (default: refuse)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.export.engine_plan import BuildOptions, parse_batch
    from sredge.outputs import claim_outputs

    if args.onnx.suffix.lower() != ".onnx":
        raise InputError(f"{args.onnx}: sr-build takes an .onnx model (export checkpoints with sr-export first)")
    if not args.onnx.is_file():
        raise InputError(f"no such ONNX file: {args.onnx}")
    output = args.output or args.onnx.with_suffix(".engine")
    if output.suffix.lower() not in (".engine", ".plan"):
        raise InputError(f"-o {output}: name the engine NAME.engine or NAME.plan (sr-run chooses TensorRT by it)")
    opts = BuildOptions(
        tile=args.tile,
        max_tile=args.max_tile,
        min_tile=args.min_tile,
        batch=parse_batch(args.batch),
        fp16=args.fp16,
        int8=args.int8,
        tf32=args.tf32,
        dla_core=args.dla_core,
        gpu_fallback=not args.no_gpu_fallback,
        workspace_mb=args.workspace,
    )
    from sredge.export.engine_build import build_engine

    # Checked again once locked: an engine another sr-build finished meanwhile is this one's to reuse.
    with claim_outputs(*_paths(args, output), overwrite=args.overwrite, again=lambda: _paths(args, output)[0]):
        result = build_engine(args.onnx, output, opts, calib_dir=args.calib, calib_cache=args.calib_cache,
                              timing_cache=args.timing_cache, force=args.force, overwrite=args.overwrite)
    if not args.quiet:
        prof = result.plan.profile
        print(f"precision  {result.plan.precision.summary}")
        print(f"profile    {result.plan.input_name}: min {prof.min}, opt {prof.opt}, max {prof.max}")
        if result.plan.dla is not None:
            fb = "with" if result.plan.dla.gpu_fallback else "without"
            placed = ""
            if result.dla_layers is not None:
                on_dla, total = result.dla_layers
                placed = f": {on_dla} of {total} layers on the DLA, {total - on_dla} on the GPU"
            print(f"device     DLA core {result.plan.dla.core}, {fb} GPU fallback{placed}")
        if result.built:
            print(f"wrote      {result.engine} (+ .json sidecar) in {result.seconds:.1f} s, key {result.key[:12]}")
            print(f"timing     {result.timing_cache}")
        else:
            print(f"up to date {result.engine}, key {result.key[:12]} (--force rebuilds)")
    return 0


def _paths(args, engine: Path) -> tuple[list, list]:
    """(every file the build writes, every file and folder it reads), for the output policy.

    An engine that sr-build made (its ``.json`` sidecar beside it) is the cache this command reuses or
    rebuilds by design; any other file at that name needs ``--overwrite``. The calibration cache is
    read when there is no ``--calib``, else written (in place only over a calibration cache); the timing
    cache is updated in place (a file TensorRT cannot read is kept unless ``--overwrite``: see
    :func:`~sredge.export.engine_build.attach_timing_cache`).
    """
    from sredge.export.engine_build import is_calibration_cache
    from sredge.outputs import Input, Output
    from sredge.runtime.backends.base import companion_files

    sidecar = engine.with_name(engine.name + ".json")
    ours = engine.is_file() and _built_by_sr_build(engine)
    outputs = [Output(engine, "-o", updated=ours), Output(sidecar, "the engine's sidecar", updated=ours)]
    inputs = [Input(args.onnx, "the ONNX")] + [Input(f, "the ONNX's external data") for f in companion_files(args.onnx)]
    if args.calib is not None:
        inputs.append(Input(args.calib, "--calib"))
        if args.calib_cache is not None:  # a cache sr-build wrote is remade in place; any other file is not
            outputs.append(Output(args.calib_cache, "--calib-cache", updated=is_calibration_cache(args.calib_cache)))
    elif args.calib_cache is not None:
        inputs.append(Input(args.calib_cache, "--calib-cache"))
    if args.timing_cache is not None:
        outputs.append(Output(args.timing_cache, "--timing-cache", updated=True))
    return outputs, inputs


def _built_by_sr_build(engine: Path) -> bool:
    """Whether ``engine``'s ``.json`` sidecar is the one sr-build writes (a damaged or foreign file is not)."""
    from sredge.runtime.backends.trt import read_engine_sidecar_extra

    try:
        return read_engine_sidecar_extra(engine).get("built_by") == "sr-build"
    except InputError:
        return False


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
