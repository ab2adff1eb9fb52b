"""``sr-export``: a checkpoint in, a validated ONNX model out."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from sredge.cli._app import Parser, run
from sredge.errors import CheckFailedError, InputError
from sredge.models.descriptor import COLOR_SPACES
from sredge.models.registry import ARCH_NAMES

PROG = "sr-export"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description=(
            "Export a super-resolution checkpoint to ONNX: detect the architecture, export with dynamic "
            "batch/height/width, embed sredge metadata, and check the ONNX against PyTorch on a real image. "
            "Exits 0 only when the parity check passes."
        ),
        epilog="Exit codes: 0 ok, 1 parity check failed, 2 bad input, 3 internal error. SREDGE_DEBUG=1 shows tracebacks.",
    )
    p.add_argument("checkpoint", type=Path, help=".pth / .pt / .ckpt / .safetensors file")
    p.add_argument("-o", "--output", type=Path, help="output .onnx path (default: next to the checkpoint)")
    p.add_argument("--arch", choices=ARCH_NAMES, metavar="NAME",
                   help=f"architecture, when detection is ambiguous: {', '.join(ARCH_NAMES)}")
    p.add_argument("--scale", type=int, choices=(1, 2, 3, 4, 8), metavar="N",
                   help="upscaling factor; must agree with the weights when they determine it")
    p.add_argument("--color", choices=COLOR_SPACES,
                   help="override the colour space the network was trained on (default: the architecture's)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that store pickled code (whole models); this can run arbitrary "
                        "code: only for files you trust")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, 17 or newer (default 18)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim simplification")
    p.add_argument("--min-psnr", type=float, default=60.0,
                   help="parity threshold: minimum PSNR (dB) of ONNX Runtime vs PyTorch (default 60)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    say = (lambda *a: None) if args.quiet else print

    from sredge.atomic import atomic_path, check_writable

    ckpt: Path = args.checkpoint
    out: Path = args.output or ckpt.with_suffix(".onnx")
    if not ckpt.exists():
        raise InputError(f"no such file: {ckpt}")
    if out.resolve() == ckpt.resolve():
        raise InputError(f"the output {out} would overwrite the checkpoint; choose another -o")
    check_writable(out)

    # Heavy imports only now: --help and input errors above stay fast and torch-free.
    from sredge._lazy import require

    require("torch")
    from sredge.export.onnx_export import ExportOptions, export_onnx
    from sredge.export.parity import check_parity
    from sredge.models.loader import load_model

    loaded = load_model(ckpt, arch=args.arch, scale=args.scale, trust_pickle=args.trust_pickle)
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

    options = ExportOptions(opset=args.opset, simplify=not args.no_simplify)
    # Export and check the temporary file; only a file that passed takes the final name.
    with atomic_path(out) as tmp:
        export_onnx(loaded.module, desc, tmp, options)
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
    size_mb = out.stat().st_size / 1e6
    say(f"wrote      {out} ({size_mb:.2f} MB, opset {args.opset}, dynamic batch/height/width)")
    return 0


def _db(v: float) -> str:
    return "inf dB (identical)" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
