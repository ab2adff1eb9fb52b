"""Make the bundled default models: train with sr-train, export with sr-export, measure, write models.json.

    python tools/bundle_models.py                 # train x2 and x4 (2000 steps, ~8 min each on 2 cores), bundle
    python tools/bundle_models.py --checkpoints DIR   # bundle already-trained DIR/sredge_x{2,4}.pth

The shipped models are the step-2000 checkpoints of ``--steps 6000`` runs (checkpoints are written
every 1000 steps; the runs were stopped there for time). ``sr-train`` is deterministic for a seed with
``--threads 1``, so ``--stop-after 2000`` reproduces them; ``--resume`` continues them to 6000.

Training data: T91 (../shared/assets/calibration/T91); validation and the recorded figures:
Set5 (../shared/assets/benchmarks/Set5), Y channel, crop = scale, through the exported ONNX.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
OUT = ROOT / "src" / "sredge" / "data" / "models"
SCALES = (2, 4)


def train_command(scale: int, out: Path) -> list[str]:
    """The documented, reproducible training command of the bundled x{scale} model."""
    return ["sr-train", "--arch", "srvgg", "--scale", str(scale), "--feats", "32", "--convs", "6",
            "--data", str(ASSETS / "calibration" / "T91"), "--val", str(ASSETS / "benchmarks" / "Set5"),
            "--steps", "6000", "--stop-after", "2000", "--val-every", "1000", "--threads", "1", "--seed", "0",
            "-o", str(out)]


def measure(onnx_path: Path, scale: int) -> dict:
    import onnxruntime as ort

    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.latency import frame_latency_ms
    from sredge.benchmarks.quality import evaluate_bicubic, evaluate_y_psnr
    from sredge.models.onnx_file import read_descriptor

    desc = read_descriptor(onnx_path)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    dataset = load_dataset(ASSETS / "benchmarks" / "Set5", scale)
    sr = evaluate_y_psnr(lambda x: sess.run(None, {"input": x})[0], desc, dataset)
    bic = [s.psnr for s in evaluate_bicubic(dataset)]
    ms = frame_latency_ms(onnx_path, 360, 640, repeats=7)
    return {"scale": scale, "file": onnx_path.name, "variant": desc.variant, "params": desc.num_params,
            "set5_y_psnr": round(float(np.mean(list(sr.values()))), 3),
            "set5_y_psnr_per_image": {k: round(v, 3) for k, v in sr.items()},
            "set5_bicubic": round(float(np.mean(bic)), 3),
            "cpu_ms_640x360": round(ms, 1), "cpu_fps_640x360": round(1e3 / ms, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=Path, help="folder with trained sredge_x{s}.pth (skip training)")
    args = ap.parse_args()
    ckdir = args.checkpoints or (ROOT / "build" / "bundled")
    ckdir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    entries = []
    for s in SCALES:
        ckpt = ckdir / f"sredge_x{s}.pth"
        cmd = train_command(s, ckpt)
        if args.checkpoints is None:
            subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], check=True)
        onnx_path = OUT / f"sredge_x{s}.onnx"
        subprocess.run([str(bin_dir / "sr-export"), str(ckpt), "-o", str(onnx_path), "-q"], check=True)
        m = measure(onnx_path, s)
        # Recorded as run from the project root, the folder the README's commands start in.
        m["train_command"] = " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in cmd)
        m["measured_on"] = f"{date.today().isoformat()}, {platform.machine()} x{os.cpu_count()} cores, ONNX Runtime CPU"
        entries.append(m)
        print(json.dumps(m, indent=2))
    (OUT / "models.json").write_text(json.dumps({"models": entries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
