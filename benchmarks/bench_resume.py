"""Cost of resumable video runs: throughput with segments + journal (fsynced) vs one plain output file.

Goal (issue 15): committing costs <= 3% of throughput. Both modes run the same ``upscale_video`` call on
the same loaded model, interleaved (A B, B A, ...) so that drift on a shared machine hits both alike;
the time counted is the whole call, the final join of the segments included. Reports the ratio
(resumable fps / plain fps) per pair, its median and spread, the CPU-time ratio (steadier where other
work shares the cores), and the output sizes (each segment starts with a key frame).

    python benchmarks/bench_resume.py                          # bundled x2 model, bottle-detection.mp4
    python benchmarks/bench_resume.py --frames 600 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _family import ASSETS

from sredge.environment import cpu_model_and_flags


def cpu() -> dict:
    """CPU model and the vector extensions that matter for inference speed."""
    model, flags = cpu_model_and_flags()
    return {"model": model, "cores": os.cpu_count(), "flags": flags}


def components(rt, video: Path, tmp: Path, frames: int | None, every: float, preset: str, repeats: int) -> dict:
    """The work committing adds, timed alone (steadier than whole runs on a busy machine): the same
    decoded and resized frames encoded into one file vs into committed segments (digests, key frames,
    closes, fsyncs, journal lines included), and the final join; best of ``repeats`` each, ms per frame."""
    import cv2

    from sredge.runtime.resume import Journal, new_header
    from sredge.runtime.segments import (
        SegmentedWriter,
        WorkFolder,
        fingerprint,
        frame_digest,
        join_segments,
    )
    from sredge.runtime.video_io import Frame, VideoReader, VideoWriter
    from sredge.runtime.video_resume import segment_frames
    from sredge.runtime.video_run import default_encoder_threads
    from sredge.runtime.window import Window

    window = Window(0.0, None, frames) if frames else None
    s = rt.desc.scale

    def encode(segmented: bool) -> tuple[float, float, int]:
        out = tmp / ("seg.mp4" if segmented else "one.mp4")
        with VideoReader(str(video), want_i420=True, window=window) as reader:
            info = reader.info
            w, h = info.width * s, info.height * s

            def make(path, audio_from=None):
                return VideoWriter(path, w, h, info.time_base, info.fps, preset=preset, codec="libx264",
                                   threads=default_encoder_threads(), audio_from=audio_from)

            work = WorkFolder(out)
            if segmented:
                journal = Journal(new_header(fingerprint(video), {}, info.time_base, reader.zero_pts))
                work.begin(journal)
                digests: dict[int, str] = {}
                writer = SegmentedWriter(work, journal, make, segment_frames(info.fps, every), digests)
            else:
                writer = make(out, reader)
            n, spent = 0, 0.0
            with writer:
                for item in reader:
                    if not isinstance(item, Frame):
                        continue
                    big = cv2.resize(item.to_rgb(), (w, h), interpolation=cv2.INTER_LINEAR)  # a stand-in upscale
                    t0 = time.perf_counter()
                    if segmented:
                        digests[item.index] = frame_digest(item)
                    writer.write(Frame(big, item.pts, item.index))
                    spent += time.perf_counter() - t0
                    n += 1
                t0 = time.perf_counter()
            spent += time.perf_counter() - t0  # the last flush, close (and commit)
            join = 0.0
            if segmented:
                t0 = time.perf_counter()
                join_segments(work, journal, str(video), window, make, rt.opts.max_pixels, partial=False)
                join = time.perf_counter() - t0
                work.remove()
            out.unlink(missing_ok=True)
        return spent, join, n

    best = {"plain": float("inf"), "segmented": float("inf"), "join": float("inf")}
    for _ in range(max(1, repeats)):
        for segmented in (False, True):
            spent, join, n = encode(segmented)
            key = "segmented" if segmented else "plain"
            best[key] = min(best[key], spent / n)
            if segmented:
                best["join"] = min(best["join"], join / n)
    return {"frames": n, "encode_plain_ms_per_frame": round(1000 * best["plain"], 3),
            "encode_segmented_ms_per_frame": round(1000 * best["segmented"], 3),
            "join_ms_per_frame": round(1000 * best["join"], 3)}


def _cpu_s() -> float:
    """CPU seconds this process used (all threads): on a shared machine a steadier cost than wall time."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="model (default: the bundled x2)")
    ap.add_argument("--video", type=Path, default=ASSETS / "video" / "bottle-detection.mp4")
    ap.add_argument("--frames", type=int, default=None, help="first N frames only (default: all)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved pairs of whole runs (default 3; 0: the components only, against one plain run)")
    ap.add_argument("--commit-every", type=float, default=None, help="seconds per segment (default: sr-run's)")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not args.video.is_file():
        print(f"bench_resume: no video at {args.video} (set SREDGE_ASSETS)", file=sys.stderr)
        return 2

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import DEFAULT_COMMIT_EVERY_S, ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from sredge.runtime.window import Window

    model = args.model or default_model(2)
    every = args.commit_every if args.commit_every is not None else DEFAULT_COMMIT_EVERY_S
    window = Window(0.0, None, args.frames) if args.frames else None
    runs: dict[str, list[dict]] = {"plain": [], "resumable": []}
    with LoadedRuntime(model, RunOptions()) as rt, tempfile.TemporaryDirectory(prefix="bench_resume_") as tmp:
        def once(mode: str, k: int) -> dict:
            out = Path(tmp) / f"{mode}{k}.mp4"
            resume = ResumeOptions(commit_every_s=every) if mode == "resumable" else None
            t0, c0 = time.perf_counter(), _cpu_s()
            run = upscale_video(rt, str(args.video), out, preset=args.preset, encoder="libx264", window=window,
                                resume=resume)
            wall, cpu_s = time.perf_counter() - t0, _cpu_s() - c0
            n = run.frames_in_output if run.frames_in_output is not None else run.result.frames_out
            row = {"frames": n, "wall_s": wall, "fps": n / wall, "cpu_s": cpu_s, "bytes": out.stat().st_size}
            out.unlink()
            print(f"{mode:9s} #{k}: {n} frames in {wall:.2f} s = {row['fps']:.2f} fps, CPU {cpu_s:.1f} s, "
                  f"{row['bytes']} bytes",
                  file=sys.stderr)
            return row

        warm = once("plain", -1)  # warm-up (file cache, thread pools); the reference when --repeats 0
        for k in range(args.repeats):
            order = ("plain", "resumable") if k % 2 == 0 else ("resumable", "plain")
            for mode in order:
                runs[mode].append(once(mode, k))
        parts = components(rt, args.video, Path(tmp), args.frames, every, args.preset, max(1, args.repeats))
    ratios = [r["fps"] / p["fps"] for r, p in zip(runs["resumable"], runs["plain"], strict=True)]
    cpu_ratios = [r["cpu_s"] / p["cpu_s"] for r, p in zip(runs["resumable"], runs["plain"], strict=True)]

    def rounded(values, f=statistics.median, scale=1.0, minus=0.0, digits=4):
        return round(scale * (f(values) - minus), digits) if values else None

    summary = {
        "video": str(args.video), "model": str(model), "frames": warm["frames"],
        "commit_every_s": every, "preset": args.preset, "cpu": cpu(),
        "plain_fps": [round(r["fps"], 3) for r in runs["plain"]],
        "resumable_fps": [round(r["fps"], 3) for r in runs["resumable"]],
        "ratio_per_pair": [round(x, 4) for x in ratios],
        "ratio_median": rounded(ratios),
        "overhead_pct_median": rounded(ratios, scale=-100, minus=1, digits=2),
        "ratio_min": rounded(ratios, min), "ratio_max": rounded(ratios, max),
        "cpu_time_ratio_per_pair": [round(x, 4) for x in cpu_ratios],
        "cpu_time_overhead_pct_median": rounded(cpu_ratios, scale=100, minus=1, digits=2),
        "size_ratio": round(runs["resumable"][0]["bytes"] / warm["bytes"], 4) if runs["resumable"] else None,
        "goal": "overhead <= 3%",
        "components": parts,
    }
    plain_s_per_frame = statistics.median(r["wall_s"] / r["frames"] for r in runs["plain"] or [warm])
    added = parts["encode_segmented_ms_per_frame"] - parts["encode_plain_ms_per_frame"] + parts["join_ms_per_frame"]
    summary["components_overhead_pct"] = round(100 * added / 1000 / plain_s_per_frame, 2)
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
