"""What ``sr-run --backend auto`` picks for a real model (FP32 + INT8 siblings), and its video fps vs ``--backend ort``.

    .venv/bin/python benchmarks/bench_auto.py [--model fsrcnn_x3|vdsr_x2] [--frames 60] [--repeats 3] [--budget 0.1]

Exports the model with ``sr-export --precision fp32,int8`` (32 T91 crops, Set5 budget), cuts the first
``--frames`` frames of bottle-detection.mp4 into a clip (PyAV, CRF 10), then runs ``sr-run --video``
on it with ``auto`` and with ``--backend ort`` (FP32 file), alternating, ``--repeats`` times each, and
prints the median end-to-end fps of each (from ``--report``) and their ratio. Needs ../shared/assets.
VDSR x2 runs at the pre-upsampled 1280x720 (several seconds a frame on 2 cores): use few frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _family import ASSETS, BIN, export_family

MODELS = {
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", []),
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "2"]),
}


def cut_clip(src: Path, dst: Path, frames: int) -> int:
    """The first ``frames`` video frames of ``src`` re-encoded losslessly-ish (CRF 10) into ``dst``."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate, options={"crf": "10", "preset": "veryfast"})
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        n = 0
        for frame in inp.decode(vin):
            if n == frames:
                break
            for pkt in vout.encode(frame.reformat(format="yuv420p")):
                out.mux(pkt)
            n += 1
        for pkt in vout.encode():
            out.mux(pkt)
    return n


def sr_run(model: Path, clip: Path, out: Path, extra: list[str]) -> tuple[dict, str]:
    report = out.with_suffix(".json")
    proc = subprocess.run([str(BIN / "sr-run"), "--video", str(clip), "--model", str(model), "-o", str(out),
                           "--report", str(report), "-q", *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sr-run failed: {proc.stderr}")
    return json.loads(report.read_text()), proc.stderr.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="fsrcnn_x3")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=0.1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-auto-"))
    weights, extra = MODELS[args.model]
    ckpt = tmp / f"{args.model}{Path(weights).suffix}"
    ckpt.write_bytes((ASSETS / weights).read_bytes())
    model = export_family(ckpt, extra, args.budget)
    clip = tmp / "clip.mp4"
    n = cut_clip(ASSETS / "video/bottle-detection.mp4", clip, args.frames)
    print(f"{args.model} ({model.name} + {model.stem}.int8.onnx, budget {args.budget:g} dB on Set5), "
          f"{n} frames of bottle-detection.mp4, {args.repeats} alternating repeats")
    fps: dict[str, list[float]] = {"auto": [], "ort": []}
    decision = None
    for i in range(args.repeats):
        for name, extra in (("auto", ["--max-psnr-drop", str(args.budget)]), ("ort", ["--backend", "ort"])):
            rep, err = sr_run(model, clip, tmp / f"{name}{i}.mp4", extra)
            fps[name].append(rep["fps"])
            if name == "auto" and decision is None:
                decision = rep["auto"]
                print(err.splitlines()[0] if err else "(no auto line)")
                for reason in decision["reasons"] + decision["notes"]:
                    print(f"  {reason}")
            print(f"  repeat {i + 1} {name:<4} {rep['fps']:.2f} fps ({rep['backend']})")
    a, o = statistics.median(fps["auto"]), statistics.median(fps["ort"])
    print(f"end-to-end sr-run fps, median: auto {a:.2f}, --backend ort (fp32) {o:.2f}, ratio {a / o:.2f}x "
          f"(per repeat {', '.join(f'{x / y:.2f}' for x, y in zip(fps['auto'], fps['ort']))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
