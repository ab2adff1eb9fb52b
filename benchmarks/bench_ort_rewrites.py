"""ONNX Runtime CPU time of each network with and without sredge's PReLU rewrite, on a real frame, as ratios.

    .venv/bin/python benchmarks/bench_ort_rewrites.py [--size 640x360] [--rounds 11] [MODEL.onnx ...]

Without models: the bundled x2/x3/x4, the public FSRCNN x2/x3/x4 and realesr-animevideov3 (exported from
../shared/assets). Each network runs on the bundled photo (resized to --size, its Y or RGB as the model takes it:
ONNX Runtime's PReLU is faster on real images than on noise) through two ONNX Runtime CPU sessions, the graph as
stored and as sredge runs it (``sredge.runtime.ort_rewrites``), timed in interleaved rounds. Prints the PReLUs
rewritten, the parity of the two outputs and the median per-round time ratio (interquartile range).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _family import ASSETS, BIN

EXPORTED = {"fsrcnn_x2": "weights/fsrcnn/fsrcnn_x2.pth", "fsrcnn_x3": "weights/fsrcnn/fsrcnn_x3.pth",
            "fsrcnn_x4": "weights/fsrcnn/fsrcnn_x4.pth", "animevideov3_x4": "weights/srvgg/realesr-animevideov3.pth"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--size", default="640x360", help="LR frame WxH (default 640x360; animevideov3 gets a quarter)")
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()

    from sredge.environment import describe_cpu
    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.backends.base import BackendOptions
    from sredge.runtime.backends.ort import OrtBackend
    from sredge.runtime.bundled import bundled_models
    from sredge.runtime.timing import sample_input, time_interleaved

    w, h = (int(v) for v in args.size.split("x"))
    print(f"{describe_cpu()}; ONNX Runtime CPU, LR {w}x{h}, {args.rounds} interleaved rounds")
    with tempfile.TemporaryDirectory() as tmp:
        models = list(args.models)
        if not models:
            models = [bundled_models()[s] for s in (2, 3, 4)]
            for name, rel in EXPORTED.items():
                out = Path(tmp) / f"{name}.onnx"
                subprocess.run([str(BIN / "sr-export"), str(ASSETS / rel), "-o", str(out), "-q"], check=True)
                models.append(out)
        print(f"{'model':<22} {'PReLUs':>6} {'parity dB':>9} {'stored ms':>9} {'rewritten ms':>12}  ratio (IQR)")
        for path in models:
            desc = read_descriptor(path)
            small = desc.num_params > 500_000 or "anime" in path.name  # a 64-channel x4 network: a quarter frame
            x = sample_input(desc, h // 2 if small else h, w // 2 if small else w)
            cpu = BackendOptions(device="cpu")
            with OrtBackend(path, cpu) as a, OrtBackend(path, cpu, rewrites=False) as b:
                ya, yb = a.run(x), b.run(x)
                mse = float(np.mean((ya.astype(np.float64) - yb) ** 2))
                parity = float("inf") if mse == 0 else 10 * np.log10(desc.value_range ** 2 / mse)
                t = time_interleaved({"a": lambda: a.run(x), "b": lambda: b.run(x)}, warmup=2, rounds=args.rounds)
                ratio = np.asarray(t["a"]) / np.asarray(t["b"])
                print(f"{path.stem:<22} {a.rewritten:>6} {parity:>9.1f} {np.median(t['b']) * 1e3:>9.1f} "
                      f"{np.median(t['a']) * 1e3:>12.1f}  {np.median(ratio):.3f} "
                      f"({np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
