"""ONNX Runtime on the CPU: the file as it is against sredge's OrtBackend (PReLU as Max, layout choice).

    .venv/bin/python benchmarks/bench_ort_graph.py [--size 640x360] [--rounds 7] [--models fsrcnn_x3,anime_x4]

Each model is exported from its real checkpoint in ../shared/assets with ``sr-export``; then a plain
``onnxruntime.InferenceSession`` on the file (ORT_ENABLE_ALL, what any ONNX Runtime user gets) and
sredge's ``OrtBackend`` run one frame of ../shared/assets/video/bottle-detection.mp4 (cut to ``--size``), interleaved round by round
(:func:`sredge.benchmarks.latency.time_interleaved`), so machine load hits both alike. Prints the
median of each and the ratio, and checks the outputs agree (the rewrite is exact; the layout choice
changes only the convolution kernels' summation order).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _family import ASSETS, BIN

MODELS = {
    "fsrcnn_x2": ("weights/fsrcnn/fsrcnn_x2.pth", []),
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", []),
    "fsrcnn_x4": ("weights/fsrcnn/fsrcnn_x4.pth", []),
    "espcn_x3": ("weights/espcn/espcn_x3.pt", []),
    "anime_x4": ("weights/srvgg/realesr-animevideov3.pth", []),
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "2"]),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--size", default="640x360", help="LR frame WxH (VDSR runs at this size after its bicubic)")
    p.add_argument("--rounds", type=int, default=11)
    args = p.parse_args(argv)
    import onnxruntime as ort

    from sredge.benchmarks.latency import time_interleaved
    from sredge.runtime.backends import BackendOptions, open_backend
    from sredge.runtime.video_io import Frame, VideoReader

    w, h = (int(v) for v in args.size.split("x"))
    with VideoReader(str(ASSETS / "video/bottle-detection.mp4")) as reader:
        first = next(item for item in reader if isinstance(item, Frame))
    photo = first.rgb[:h, :w].astype(np.float32) / 255
    print(f"{'model':10s} {'plain ms':>9s} {'sredge ms':>9s} {'speedup':>8s}  sredge graph")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rel, extra = MODELS[name]
            onnx_path = Path(tmp) / f"{name}.onnx"
            subprocess.run([str(BIN / "sr-export"), str(ASSETS / rel), *extra, "-o", str(onnx_path),
                            "--bench-size", "off", "-q"], check=True)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 2
            so.log_severity_level = 3
            plain = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
            c = plain.get_inputs()[0].shape[1]
            x = photo.transpose(2, 0, 1)[None] if c == 3 else photo.mean(axis=2)[None, None]
            x = np.ascontiguousarray(x, np.float32)
            feed = {plain.get_inputs()[0].name: x}
            with open_backend("ort", onnx_path, BackendOptions(device="cpu", threads=2)) as be:
                diff = float(np.abs(plain.run(None, feed)[0] - be.run(x)).max())
                times = time_interleaved({"plain": lambda: plain.run(None, feed), "sredge": lambda: be.run(x)},
                                         warmup=2, rounds=args.rounds)
                a, b = (1000 * float(np.median(times[k])) for k in ("plain", "sredge"))
                graph = be.describe().split("graph: ")[-1] if "graph: " in be.describe() else "as the file"
            print(f"{name:10s} {a:9.1f} {b:9.1f} {a / b:7.2f}x  {graph} (max |diff| {diff:.1e})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
