"""Long quantization-aware fine-tunes in a fixed time: how far do more steps and bigger batches take QAT?

Runs several ``sr-train --qat`` variants of one model side by side (on a GPU: ``--device cuda``), first a
short probe of each to measure its speed, then each with as many steps as fit ``--budget`` seconds (the
cosine schedule is planned for that many, so every run finishes). Writes the INT8 files and a JSON
summary to ``--out``; judge the files with ``sr-bench FP32 INT8 --dataset Set5/Set14``::

    python benchmarks/qat_long.py --model ../shared/assets/weights/fsrcnn/fsrcnn_x2.pth \\
        --data ../shared/assets/calibration/T91 --device cuda --budget 270 --out qat-long
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sredge.models.onnx_file import read_descriptor

VARIANTS = {
    # name: sr-train flags besides the common ones
    "fp32-target-b16-lr3e-4": ["--batch", "16", "--lr", "3e-4"],
    "fp32-target-b64-lr3e-4": ["--batch", "64", "--lr", "3e-4"],
    "gt-target-b64-lr3e-4": ["--batch", "64", "--lr", "3e-4", "--qat-target", "ground-truth"],
    "fp32-target-b64-lr1e-3": ["--batch", "64", "--lr", "1e-3"],
    # the bundled model of the same scale as the target (on the CPU, FSRCNN x2's best: 0.223 dB at 36,000 steps)
    "bundled-target-b64-lr3e-4": ["--batch", "64", "--lr", "3e-4", "--qat-target", "BUNDLED"],
}
RATE = re.compile(r"([0-9.]+) steps/s")
RESULT = re.compile(r"QAT INT8 ([0-9.]+) dB \(drop -?[0-9.]+ dB; best at step (\d+)\)")


def sr_train(args: list[str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.train", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="FP32 checkpoint or ONNX to fine-tune")
    p.add_argument("--data", required=True, help="HR training images")
    p.add_argument("--val", default="sample", help="validation folder (default: the bundled sample photos)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget", type=float, default=270, help="seconds of training per variant (default 270)")
    p.add_argument("--val-every", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2, help="CPU threads per run (default 2)")
    p.add_argument("--probe-steps", type=int, default=300, help="steps of each speed probe (default 300)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--scale", type=int, default=2, help="the model's scale: the bundled model of this scale is the "
                   "target of the bundled-target variant (default 2)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    names = args.variants.split(",")
    from sredge.runtime.bundled import default_model

    for flags in VARIANTS.values():
        flags[:] = [str(default_model(args.scale)) if f == "BUNDLED" else f for f in flags]
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--qat", args.model, "--flavour", "trt", "--data", args.data, "--val", args.val, "--patch", "24",
              "--device", args.device, "--threads", str(args.threads), "--overwrite"]

    probes = Path(tempfile.mkdtemp(prefix="qat-probe-"))

    def probe(name: str) -> float:
        code, text, _ = sr_train([*common, *VARIANTS[name], "--steps", str(args.probe_steps), "--val-every",
                                  str(args.probe_steps), "-o", str(probes / f"{name}.int8.onnx")])
        rates = RATE.findall(text)
        if code != 0 or not rates:
            raise RuntimeError(f"probe {name} failed ({code}): {text[-2000:]}")
        return float(rates[-1])

    def run(name: str, steps: int) -> dict:
        out = args.out / f"{name}.int8.onnx"
        code, text, seconds = sr_train([*common, *VARIANTS[name], "--steps", str(steps), "--val-every",
                                        str(args.val_every), "-o", str(out)])
        found = RESULT.search(text)
        row = {"variant": name, "flags": VARIANTS[name], "steps": steps, "seconds": round(seconds, 1), "exit": code,
               "file": out.name if code == 0 else None}
        if found:
            row.update(val_int8_db=float(found[1]), best_step=int(found[2]))
        if code == 0:  # the drop as the file records it (4 decimals; the printed line has 2)
            row["val_drop_db"] = read_descriptor(out).psnr_drop_db
        if code != 0:
            row["tail"] = text[-1500:]
        return row

    with ThreadPoolExecutor(len(names)) as pool:  # side by side, as the long runs will be
        rates = dict(zip(names, pool.map(probe, names)))
        plan = {n: max(args.val_every, int(rates[n] * args.budget) // args.val_every * args.val_every) for n in names}
        print(json.dumps({"probe_steps_per_s": rates, "steps": plan}), flush=True)
        rows = list(pool.map(lambda n: run(n, plan[n]), names))
    summary = {"model": args.model, "device": args.device, "budget_s": args.budget, "probe_steps_per_s": rates,
               "common": common, "runs": rows}
    (args.out / "qat_long.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
