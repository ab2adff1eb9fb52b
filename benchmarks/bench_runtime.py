"""Runtime throughput on this machine: end-to-end video fps vs model-only fps, tiled vs untiled.

Goals (issue: runtime): end-to-end / model-only >= 0.9 and tiled / untiled >= 0.85 at default
settings. All figures come from one run, as ratios, since shared machines are noisy.

    python benchmarks/bench_runtime.py                      # FSRCNN x2 on bottle-detection.mp4
    python benchmarks/bench_runtime.py --model m.onnx --video clip.mp4 --frames 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _family import ASSETS


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _frames(reader, n):
    from sredge.runtime.video_io import Frame

    count = 0
    for item in reader:
        if isinstance(item, Frame):
            if count == n:
                return
            count += 1
        yield item


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="ONNX model (default: FSRCNN x2 exported from the shared assets)")
    ap.add_argument("--video", type=Path, default=ASSETS / "video" / "bottle-detection.mp4")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported")
    ap.add_argument("--tile", type=int, default=512, help="tile edge for the tiled run (default 512)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--preset", default=None, help="x264 preset for the end-to-end run (default: sr-run's)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.pipeline import run_pipeline
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.tiling import TileConfig
    from sredge.runtime.upscaler import Upscaler, takes_i420
    from sredge.runtime.video_io import Frame, VideoReader, VideoWriter

    tmp = Path(tempfile.mkdtemp(prefix="sredge-bench-"))
    model = args.model
    if model is None:
        from sredge.export.onnx_export import export_onnx
        from sredge.models.loader import load_model

        loaded = load_model(ASSETS / "weights" / "fsrcnn" / "fsrcnn_x2.pth")
        model = export_onnx(loaded.module, loaded.descriptor, tmp / "fsrcnn_x2.onnx")

    opts = RunOptions(backend_options=BackendOptions(device="cpu", threads=args.threads))
    with LoadedRuntime(model, opts) as rt, VideoReader(str(args.video)) as reader:
        info = reader.info
        frames = [it.rgb for it in _frames(reader, args.frames) if isinstance(it, Frame)]
    n = len(frames)
    with LoadedRuntime(model, opts) as rt:
        whole = Upscaler(rt.backend.run, rt.desc, TileConfig())
        tiled = Upscaler(rt.backend.run, rt.desc, TileConfig(tile=args.tile, overlap=opts.tile_overlap))
        inputs = [whole.preprocess(f).x for f in frames]
        whole.infer(inputs[0])  # warm-up
        tiled.infer(inputs[0])

        def model_only(ups):
            t = time.perf_counter()
            for x in inputs:
                ups.infer(x)
            return n / (time.perf_counter() - t)

        ups = rt.upscaler(info.height, info.width)  # what sr-run uses for video
        from sredge.runtime.video_run import default_encoder_threads

        extra = {"threads": default_encoder_threads()} | ({"preset": args.preset} if args.preset else {})

        i420 = takes_i420(rt.desc)  # as sr-run: luma-only models keep video in YUV 4:2:0

        def end_to_end():
            rss = []
            with VideoReader(str(args.video), want_i420=i420) as reader:
                with VideoWriter(tmp / "out.mp4", info.width * rt.desc.scale, info.height * rt.desc.scale,
                                 info.time_base, info.fps, audio_from=reader, **extra) as writer:
                    res = run_pipeline(_frames(reader, n), ups, writer.write, writer.mux_audio,
                                       on_frame=lambda r: rss.append(_rss_mb()))
            return res, rss

        # Interleaved repeats (model, tiled, end-to-end, ...): machine drift hits all three alike.
        model_runs, tiled_runs, e2e_runs = [], [], []
        for _ in range(args.repeats):
            model_runs.append(model_only(whole))
            tiled_runs.append(model_only(tiled))
            res, rss = end_to_end()
            e2e_runs.append(res.fps)
        backend = rt.backend.describe()

    med = lambda v: float(np.median(v))  # noqa: E731
    fps_model, fps_tiled, fps_e2e = med(model_runs), med(tiled_runs), med(e2e_runs)
    q = max(len(rss) // 4, 1)
    fig = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "model": str(model), "backend": backend, "video": str(args.video), "frames": n,
        "frame_size": [info.width, info.height],
        "repeats": args.repeats,
        "fps_model_only": round(fps_model, 3),
        "fps_model_only_runs": [round(v, 3) for v in model_runs],
        "fps_end_to_end": round(fps_e2e, 3),
        "fps_end_to_end_runs": [round(v, 3) for v in e2e_runs],
        "ratio_end_to_end_vs_model": round(fps_e2e / fps_model, 3),
        "end_to_end_yuv420_path": i420,
        "tile": args.tile, "overlap": opts.tile_overlap,
        "fps_tiled_model_only": round(fps_tiled, 3),
        "ratio_tiled_vs_untiled": round(fps_tiled / fps_model, 3),
        "rss_mb_after_first_quarter": round(float(np.median(rss[:q])), 1) if rss else None,
        "rss_mb_last_quarter": round(float(np.median(rss[-q:])), 1) if rss else None,
        "frames_in_out": [res.frames_in, res.frames_out],
        "pipeline_stage_mean_ms": {k: round(h.summary().mean_ms, 2) for k, h in res.stages.items()},
        "preset": args.preset,
    }
    print(json.dumps(fig, indent=2))
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
