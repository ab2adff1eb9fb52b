"""FP16 quality, computed in half: Set5/Set14 Y-PSNR of each real checkpoint run by PyTorch in float32 and float16.

ONNX Runtime on x86 casts float16 back to float32 around its kernels, so the half-precision figure
comes from PyTorch's CPU float16 convolutions (float16 tensors between layers, as on a GPU). The
float16 model is put in channels-last layout: PyTorch's contiguous float16 convolution path takes
about 60 s for one 128x128 VDSR pass on this CPU, channels-last (oneDNN) about 1 s.

    python benchmarks/bench_fp16.py --models fsrcnn_x3,vdsr_x2,vdsr_x3,vdsr_x4
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
from _family import ASSETS, CHECKPOINTS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(CHECKPOINTS), help="comma-separated, from: " + ", ".join(CHECKPOINTS))
    p.add_argument("--datasets", default="Set5,Set14")
    args = p.parse_args(argv)
    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_y_psnr
    from sredge.calibration.fp16 import torch_half_runner, torch_runner
    from sredge.models.loader import load_model

    print(f"{'model':10s} {'dataset':7s} {'fp32 dB':>9s} {'fp16 dB':>9s} {'drop':>7s} {'seconds':>8s}")
    worst = 0.0
    for name in args.models.split(","):
        rel, kwargs = CHECKPOINTS[name]
        loaded = load_model(ASSETS / rel, **kwargs)
        desc = loaded.descriptor
        run32 = torch_runner(loaded.module)
        run16 = torch_half_runner(copy.deepcopy(loaded.module))
        for ds in args.datasets.split(","):
            data = load_dataset(ASSETS / "benchmarks" / ds, desc.scale)
            t = time.perf_counter()
            a = float(np.mean(list(evaluate_y_psnr(run32, desc, data).values())))
            b = float(np.mean(list(evaluate_y_psnr(run16, desc, data).values())))
            worst = max(worst, abs(a - b))
            print(f"{name:10s} {ds:7s} {a:9.4f} {b:9.4f} {a - b:7.4f} {time.perf_counter() - t:8.1f}", flush=True)
    print(f"largest |drop| {worst:.4f} dB (goal <= 0.02)")
    return 0 if worst <= 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
