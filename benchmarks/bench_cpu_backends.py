"""CPU backends on this machine: median latency of ONNX Runtime vs OpenVINO f32 (and bf16 where the CPU has it).

One model, one fixed input size, every backend timed in the same run with interleaved rounds
(shared machines are noisy), reported as medians and as ratios to ONNX Runtime.

    python benchmarks/bench_cpu_backends.py                              # EDSR-baseline x4 (zoo variant), 128x128
    python benchmarks/bench_cpu_backends.py --variant realesr_animevideov3 --size 128
    python benchmarks/bench_cpu_backends.py --model m.onnx --size 256 --runs 20 --json out.json

Latency does not depend on the weights' values, so a zoo variant is exported with its
initial weights when no ``--model`` is given (needs sredge[export]).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _export_variant(name: str, folder: Path) -> Path:
    import torch

    from sredge.export.onnx_export import export_onnx
    from sredge.models.loader import describe
    from sredge.models.registry import get_arch, list_variants

    arch, hp = list_variants()[name]
    spec = get_arch(arch)
    torch.manual_seed(0)
    module = spec.build(**hp).eval()
    n = sum(p.numel() for p in module.parameters())
    return export_onnx(module, describe(spec, hp, n), folder / f"{name}.onnx")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="ONNX model (default: --variant exported from the zoo)")
    ap.add_argument("--variant", default="edsr_baseline_x4",
                    help="zoo variant when no --model (default edsr_baseline_x4)")
    ap.add_argument("--size", type=int, default=128, help="input height and width (default 128)")
    ap.add_argument("--runs", type=int, default=10, help="timed rounds per backend (default 10)")
    ap.add_argument("--threads", type=int, default=0, help="inference threads for every backend (0: default)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    import openvino as ov

    from sredge.errors import InputError
    from sredge.runtime.backends import BackendOptions, open_backend
    from sredge.runtime.timing import sample_frame, sample_input

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or _export_variant(args.variant, Path(tmp))
        configs = {"ort fp32": ("ort", None), "openvino f32": ("openvino", "fp32"),
                   "openvino bf16": ("openvino", "bf16")}
        backends, skipped = {}, {}
        for label, (kind, precision) in configs.items():
            be = open_backend(kind, model, BackendOptions(device="cpu", threads=args.threads, precision=precision))
            try:
                be.__enter__()
            except InputError as exc:
                skipped[label] = str(exc)
                continue
            backends[label] = be
        try:
            c = next(iter(backends.values())).input_spec().channels
            desc = next(iter(backends.values())).descriptor()
            # real content (ONNX Runtime's PReLU is data-dependent); a foreign model: the photo's RGB or its mean
            frame = sample_frame(args.size, args.size).astype(np.float32) / 255.0
            planes = frame if c == 3 else frame.mean(axis=2, keepdims=True)
            x = (sample_input(desc, args.size, args.size) if desc is not None else
                 np.ascontiguousarray(planes.transpose(2, 0, 1)[None]))
            ref = None
            for label, be in backends.items():  # warm-up: compile, allocate; check outputs agree
                y = be.run(x)
                ref = y if ref is None else ref
                print(f"{label:<14} {be.describe()}; max |diff| vs ort {np.abs(y - ref).max():.2e}", file=sys.stderr)
            times: dict[str, list[float]] = {label: [] for label in backends}
            for _ in range(args.runs):
                for label, be in backends.items():
                    t0 = time.perf_counter()
                    be.run(x)
                    times[label].append((time.perf_counter() - t0) * 1e3)
        finally:
            for be in backends.values():
                be.__exit__(None, None, None)

    med = {label: statistics.median(t) for label, t in times.items()}
    base = med["ort fp32"]
    print(f"model {model.name if args.model else args.variant}, input 1x{c}x{args.size}x{args.size}, "
          f"{args.runs} interleaved rounds, threads {args.threads or 'default'}")
    print(f"{'backend':<14} {'median ms':>10} {'vs ort':>8}")
    for label, m in med.items():
        print(f"{label:<14} {m:10.1f} {base / m:7.2f}x")
    for label, why in skipped.items():
        print(f"{label:<14} {'-':>10} {'-':>8}  ({why})")
    if args.json:
        report = {"model": str(args.model or args.variant), "input": [1, c, args.size, args.size], "runs": args.runs,
                  "median_ms": med, "speedup_vs_ort": {k: base / v for k, v in med.items()}, "skipped": skipped,
                  "openvino": ov.__version__, "machine": platform.processor() or platform.machine()}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
