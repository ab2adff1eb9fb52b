"""``sr-models``: the bundled default models, with their scale, size, Set5 PSNR and CPU speed."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sredge.cli._app import Parser, run

PROG = "sr-models"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="List the models bundled with sredge (used when sr-run gets no --model).",
               epilog="Exit codes: 0 ok, 2 bad input, 3 internal error, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP "
                      "(nothing half-written is left). SREDGE_DEBUG=1 shows tracebacks.")
    p.add_argument("--measure", action="store_true",
                   help="time each model on this machine (ONNX Runtime CPU, one 640x360 frame, median of 5)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.benchmarks.latency import frame_latency_ms
    from sredge.runtime.bundled import bundled_models, manifest

    files = bundled_models()
    figures = {m["scale"]: m for m in manifest()}
    if not files:
        print("no bundled models in this installation")
        return 0
    print(f"{'scale':<6} {'file':<18} {'arch':<14} {'params':>8} {'size':>8} {'Set5 Y-PSNR':>12} "
          f"{'(bicubic)':>10} {'640x360 CPU':>12}  INT8 file (Set5 drop)")
    for scale, path in sorted(files.items()):
        m = figures.get(scale, {})
        ms = frame_latency_ms(path) if args.measure else m.get("cpu_ms_640x360")
        speed = f"{ms:.0f} ms" if ms else "?"
        psnr = f"{m['set5_y_psnr']:.2f} dB" if "set5_y_psnr" in m else "?"
        bic = f"{m['set5_bicubic']:.2f}" if "set5_bicubic" in m else ""
        int8 = path.with_name(f"{path.stem}.int8.onnx")
        q = m.get("int8", {})
        int8_note = f"{int8.name} ({q['set5_drop']:.2f} dB)" if int8.is_file() and "set5_drop" in q else \
            (int8.name if int8.is_file() else "-")
        print(f"x{scale:<5} {path.name:<18} {m.get('variant', '?'):<14} {m.get('params', 0):>8,} "
              f"{path.stat().st_size / 1e3:>6.0f}kB {psnr:>12} {bic:>10} {speed:>12}  {int8_note}")
    if not args.measure and figures:
        print(f"(speed measured on: {next(iter(figures.values())).get('measured_on', '?')}; --measure to time here)")
    if any(path.with_name(f"{path.stem}.int8.onnx").is_file() for path in files.values()):
        try:
            import openvino  # noqa: F401

            pick = ""
        except ImportError:  # ONNX Runtime runs them slower than FP32: sr-run picks them on OpenVINO only
            pick = ' (it picks them on OpenVINO: pip install "sredge[openvino]")'
        print(f"INT8 files: sr-run --model FILE, or --max-psnr-drop DB to let sr-run pick one within that budget{pick}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
