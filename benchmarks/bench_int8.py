"""INT8 (CPU flavour, Q/DQ) vs FP32 CPU latency per real model, measured in one run as ratios.

    .venv/bin/python benchmarks/bench_int8.py [--size 640x360] [--repeats 5] [--budget 0.1]

For each model: export FP32, calibrate on 32 T91 crops (48x48, seed 0), quantize plain INT8 and,
with --budget, the INT8 model that keeps Set5 within the budget (sensitivity pass); time the bare
networks with ONNX Runtime CPU on one frame-sized input (LR 640x360 by default; the pre-upsampled
VDSR gets its x3 input), FP32 and INT8 interleaved so machine load hits both alike; median.
Needs ../shared/assets (real checkpoints, T91, Set5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _family import ASSETS, CHECKPOINTS

MODELS = {k: CHECKPOINTS[k] for k in ("fsrcnn_x2", "fsrcnn_x3", "fsrcnn_x4", "espcn_x3", "vdsr_x3")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=None, help="also time the within-budget INT8 (Set5 drop, dB)")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    import onnxruntime as ort

    from sredge.benchmarks.datasets import load_dataset
    from sredge.calibration.quantize import Int8Options, calibrate, quantize_int8
    from sredge.calibration.sensitivity import Validator, quantize_within_budget
    from sredge.calibration.sets import CalibrationOptions, build_calibration_set, model_inputs
    from sredge.export.onnx_export import export_onnx
    from sredge.models.loader import load_model
    from sredge.runtime.timing import sample_input

    w, h = (int(v) for v in args.size.split("x"))
    cset = build_calibration_set([ASSETS / "calibration/T91"], CalibrationOptions(tile=48))
    print(f"ONNX Runtime {ort.__version__} CPU, LR {w}x{h}, median of {args.repeats}; "
          f"INT8 = cpu flavour (u8 activations, s8 per-channel 7-bit weights), minmax")
    print(f"{'model':<10} {'fp32 ms':>9} {'int8 ms':>9} {'speedup':>8} {'Set5 drop':>10}  notes")
    tmp = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    for name in args.models.split(","):
        rel, kw = MODELS[name]
        loaded = load_model(ASSETS / rel, **kw)
        desc = loaded.descriptor
        fp32 = export_onnx(loaded.module, desc, tmp / f"{name}.onnx")
        ranges = calibrate(fp32, model_inputs(cset, desc, limit=32), Int8Options())
        variants = {"plain": quantize_int8(fp32, ranges, desc)}
        notes = ""
        val = Validator(load_dataset(ASSETS / "benchmarks/Set5", desc.scale), desc)
        ref = val.mean_db(fp32)
        drops = {"plain": ref - val.mean_db(variants["plain"])}
        if args.budget is not None:
            res = quantize_within_budget(fp32, ranges, val.mean_db, ref, args.budget, desc)
            variants["budget"], drops["budget"] = res.model, res.drop_db
            notes = f"budget {args.budget} dB: {len(res.kept_float)} conv layers kept float"
        so = ort.SessionOptions()
        so.log_severity_level = 3
        x = sample_input(desc, h, w)  # real content: ONNX Runtime's PReLU is slower on noise
        sessions = {"fp32": ort.InferenceSession(str(fp32), so, providers=["CPUExecutionProvider"])}
        for k, m in variants.items():
            sessions[k] = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        times = {k: [] for k in sessions}
        for sess in sessions.values():
            sess.run(None, {"input": x})
        for _ in range(args.repeats):  # interleaved
            for k, sess in sessions.items():
                t = time.perf_counter()
                sess.run(None, {"input": x})
                times[k].append(time.perf_counter() - t)
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        for k in variants:
            print(f"{name:<10} {med['fp32']:>9.1f} {med[k]:>9.1f} {med['fp32'] / med[k]:>7.2f}x "
                  f"{drops[k]:>9.3f}  {k}{'; ' + notes if k == 'budget' else ''}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
