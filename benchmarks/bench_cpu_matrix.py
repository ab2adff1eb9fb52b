"""Every CPU backend x precision for VDSR x2, FSRCNN x3 and EDSR-baseline x4: sr-bench rows of Set5 Y-PSNR and latency.

    .venv/bin/python benchmarks/bench_cpu_matrix.py [--size 160x90] [--repeats 3]
        [--models vdsr_x2,fsrcnn_x3,edsr_baseline_x4]

For each model, ``sr-export --precision fp32,int8`` (32 T91 crops of 48x48, Set5 budget 0.1 dB) writes
the FP32 file and the INT8 file that stays within the budget; then one ``sr-bench`` run per model
measures both files on ONNX Runtime and on OpenVINO (fp32, int8; bf16 where the CPU has it) against
Set5 at the model's scale, latency on one ``--size`` LR frame cut from Set5's first image. VDSR and
FSRCNN are the real checkpoints from ../shared/assets; EDSR-baseline has no public checkpoint there,
so it is the zoo variant with its initial (seeded random) weights, saved as a checkpoint first: its
latency is real, its PSNR is not a trained model's (the drop against its own FP32 still is).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _family import ASSETS, BIN, export_family

MODELS = {
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "2"]),
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", []),
    "edsr_baseline_x4": (None, []),
}


def _edsr_checkpoint(path: Path) -> None:
    import torch

    from sredge.models.registry import get_arch, list_variants

    arch, hp = list_variants()["edsr_baseline_x4"]
    torch.manual_seed(0)
    torch.save(get_arch(arch).build(**hp).state_dict(), path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--size", default="160x90", help="LR frame for latency (default 160x90)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=0.1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    for name in args.models.split(","):
        weights, extra = MODELS[name]
        ckpt = tmp / f"{name}.pth"
        if weights is None:
            _edsr_checkpoint(ckpt)
        else:
            ckpt.write_bytes((ASSETS / weights).read_bytes())
        fp32 = export_family(ckpt, extra, args.budget, check=False)  # INT8 over budget is not written: FP32 only
        files = [str(f) for f in (fp32, fp32.with_name(f"{name}.int8.onnx")) if f.is_file()]
        print(f"\n== {name}", flush=True)
        subprocess.run([str(BIN / "sr-bench"), *files, "--dataset", str(ASSETS / "benchmarks/Set5"),
                        "--backend", "ort,openvino", "--size", args.size, "--repeats", str(args.repeats),
                        "--tile", "0", "-q"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
