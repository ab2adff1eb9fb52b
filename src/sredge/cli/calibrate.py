"""``sr-calibrate``: build a reusable calibration set (``build``) and inspect one (``show``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from sredge.cli._app import Parser, run
from sredge.cli._limits import add_max_pixels
from sredge.data.samples import folder_arg
from sredge.errors import InputError

PROG = "sr-calibrate"


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description=(
            "Calibration sets for INT8: LR crops at the deployment tile size from image folders and videos "
            "(frames spread over the whole clip), deterministic for a seed, saved as .npz to reuse on a "
            "machine that has no copy of the sources (sr-export --calib SET.npz)."
        ),
        epilog="Exit codes: 0 ok, 2 bad input (including too few crops), 3 internal error, 130/143/129 stopped by "
               "SIGINT/SIGTERM/SIGHUP (nothing half-written is left).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,show}")
    b = sub.add_parser("build", help="cut a calibration set and save it as .npz")
    b.add_argument("--from", dest="sources", action="append", required=True, type=folder_arg, metavar="SRC",
                   help="a folder of images or a video (repeatable); 'sample': the bundled photos")
    b.add_argument("-o", "--output", type=Path, required=True, help="output .npz")
    b.add_argument("--overwrite", action="store_true", help="replace -o when it exists (default: refuse)")
    b.add_argument("--tile", type=int, default=128, help="LR crop size in pixels, at least 16 (default 128)")
    b.add_argument("--frames", type=int, default=64, help="frames per video, spread over the clip (default 64)")
    b.add_argument("--crops-per-image", type=int, default=None,
                   help="crops per image of a folder (default: as many as reach --min-crops, at least 1)")
    b.add_argument("--downscale", type=int, default=1,
                   help="shrink images by this factor first (MATLAB bicubic), for HR photos (default 1)")
    b.add_argument("--min-crops", type=int, default=16, help="fewer crops than this is an error (default 16)")
    b.add_argument("--seed", type=int, default=0, help="seed of the crop positions (default 0)")
    add_max_pixels(b)
    s = sub.add_parser("show", help="print what a calibration set holds")
    s.add_argument("set", type=Path, help=".npz from sr-calibrate build")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.calibration.sets import (
        CalibrationOptions,
        build_calibration_set,
        load_calibration_set,
        save_calibration_set,
    )

    if args.command == "show":
        cset = load_calibration_set(args.set)
        print(f"{args.set}: {cset.describe()}")
        o = cset.options
        print(f"options: tile {o.tile}, frames {o.frames}, crops per image {o.crops_per_image}, "
              f"downscale {o.downscale}")
        return 0
    if args.output.suffix.lower() != ".npz":
        raise InputError(f"-o {args.output}: a calibration set is saved as .npz")
    from sredge.outputs import Input, Output, claim_outputs

    options = CalibrationOptions(tile=args.tile, frames=args.frames, crops_per_image=args.crops_per_image,
                                 downscale=args.downscale, min_crops=args.min_crops, seed=args.seed)
    with claim_outputs([Output(args.output, "-o")], [Input(s, "--from") for s in args.sources], args.overwrite):
        cset = build_calibration_set(args.sources, options, max_pixels=args.max_pixels)
        save_calibration_set(cset, args.output)
    print(f"wrote {args.output}: {cset.describe()} ({args.output.stat().st_size / 1e6:.2f} MB)")
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
