"""Resumable video runs, end to end: ``sr-run --video`` killed (SIGKILL) again and again, continued each time.

The clip is a real photo panned 2 px per frame (down) (so every frame is told apart by its content), with an
AAC track; the model is the bundled x2 network. Every run is a child process, as a user starts it.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np

from sredge.imaging.color import rgb_to_y
from sredge.imaging.io import read_image
from sredge.imaging.metrics import psnr
from tests.conftest import asset
from tests.robustness.conftest import BUNDLED_X2, SIGNAL_CODES, sr, start, wait_for

W, H, FPS, N = 160, 112, 25, 150
AUDIO_S = N / FPS
COMMIT_S = "0.24"  # 6 frames per segment: 25 segments
ONE_AAC_FRAME_S = 1024 / 44100


def _clip(path: Path) -> Path:
    """``N`` frames of a real photo panned 2 px per frame (down), 25 fps, a key frame every second, AAC audio."""
    photo = read_image(asset("realworld/OST_009.png"))
    assert photo.shape[0] >= H + 2 * N and photo.shape[1] >= W, photo.shape
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": "25", "keyint_min": "25"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        for i in range(N):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[2 * i:2 * i + H, :W, :3]), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, FPS)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        t = np.arange(int(AUDIO_S * 44100)) / 44100
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = 44100, s
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    return path


def _decoded(path: Path):
    """(RGB frames, their times in seconds, audio seconds by packet durations)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), f.pts * v.time_base) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        audio_s = float(sum(p.duration for p in c.demux(a) if p.size) * a.time_base)
    return [f for f, _ in frames], [t for _, t in frames], audio_s


def _segments(work: Path) -> int:
    try:
        lines = (work / "journal.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for ln in lines if ln.startswith('{"segment"'))


def _mean_y_psnr(frames: list[np.ndarray], reference: list[np.ndarray]) -> float:
    return float(np.mean([psnr(rgb_to_y(a.astype(np.float32) / 255), rgb_to_y(b.astype(np.float32) / 255))
                          for a, b in zip(frames, reference, strict=True)]))


def test_killed_again_and_again_the_run_continues_and_ends_whole(tmp_path):
    rng = random.Random(15)
    src = _clip(tmp_path / "in.mp4")
    model = shutil.copy(BUNDLED_X2, tmp_path / "m.onnx")
    out = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.sredge-partial"
    args = ["--video", src, "--model", model, "-o", out, "--preset", "ultrafast", "--encoder", "libx264",
            "--commit-every", COMMIT_S, "-q"]

    stops = []
    for k, sig in enumerate([signal.SIGKILL] * 3 + [signal.SIGINT] + [signal.SIGKILL] * 2):
        before = _segments(work)
        target = before + rng.choice([1, 1, 2])
        proc = start("run", *args)
        try:
            reached = wait_for(lambda t=target: _segments(work) >= t, timeout=120, proc=proc, step=0.005)
            assert reached, f"stop {k}: the run ended before {target} segments: {proc.communicate()}"
            time.sleep(rng.uniform(0, 0.15))  # land anywhere inside the next segment
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL, err
        else:  # a clean stop: a playable file of the frames done, the work kept for the next run
            assert proc.returncode == SIGNAL_CODES[sig], err
            assert "frames written to" in err and "(playable)" in err, err
            frames, _, _ = _decoded(out)
            assert 0 < len(frames) < N
        assert _segments(work) > before, f"stop {k} committed nothing"
        stops.append((sig, _segments(work)))
    assert sum(1 for s, _ in stops if s == signal.SIGKILL) >= 5

    res = sr("run", *args)  # the same command again finishes the video
    assert res.code == 0, res.err
    assert f"note: continuing the stopped run of {out}: its first " in res.err, res.err  # said, even with -q
    assert not work.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "m.onnx", "out.mp4"]

    whole = tmp_path / "whole.mp4"  # the same command, never interrupted
    res = sr("run", *args[:5], whole, *args[6:])
    assert res.code == 0, res.err
    assert not (tmp_path / "whole.mp4.sredge-partial").exists()
    exact = tmp_path / "exact.mp4"  # lossless: the model's own output, to measure both against
    res = sr("run", "--video", src, "--model", model, "-o", exact, "--crf", "0", "--preset", "ultrafast",
             "--encoder", "libx264", "--no-resume", "-q")
    assert res.code == 0, res.err

    src_frames, src_t, src_audio = _decoded(src)
    frames, t, audio = _decoded(out)
    assert len(frames) == len(src_frames) == N
    assert all(b > a for a, b in pairwise(t)), "timestamps must increase"
    assert t == src_t
    assert abs(audio - src_audio) <= ONE_AAC_FRAME_S
    small_src = [f.astype(np.float32) for f in src_frames]
    for k, f in enumerate(frames):  # each source frame exactly once, in order: by content
        small = cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32)
        lo, hi = max(0, k - 12), min(N, k + 13)  # neighbours are the frames a duplicate or a gap would bring
        scores = [psnr(small, small_src[j], 255.0) for j in range(lo, hi)]
        assert lo + int(np.argmax(scores)) == k, (k, [round(s, 1) for s in scores])
    reference, _, _ = _decoded(exact)
    whole_frames, _, _ = _decoded(whole)
    resumed_db, whole_db = _mean_y_psnr(frames, reference), _mean_y_psnr(whole_frames, reference)
    assert abs(resumed_db - whole_db) <= 0.5, (resumed_db, whole_db)
    print(json.dumps({"stops": [(signal.Signals(s).name, n) for s, n in stops], "y_psnr_resumed": resumed_db,
                      "y_psnr_uninterrupted": whole_db}))


def test_a_different_model_or_option_is_refused_with_the_reason(tmp_path):
    src = _clip(tmp_path / "in.mp4")
    model = shutil.copy(BUNDLED_X2, tmp_path / "m.onnx")
    out = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.sredge-partial"
    args = ["--video", src, "-o", out, "--preset", "ultrafast", "--encoder", "libx264", "--commit-every", COMMIT_S,
            "-q"]
    res = sr("run", *args, "--model", model, "--resume")  # nothing to continue yet
    assert res.code == 2 and res.err.startswith("sr-run: error: --resume: ") and "no unfinished run" in res.err
    assert not out.exists() and not work.exists()
    proc = start("run", *args, "--model", model)
    try:
        assert wait_for(lambda: _segments(work) >= 1, timeout=120, proc=proc), proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = (work / "journal.jsonl").read_bytes()
    x4 = shutil.copy(BUNDLED_X2.with_name("sredge_x4.onnx"), tmp_path / "m4.onnx")
    for change, expect in [(["--model", model, "--tile", "64"], "--tile was auto (--memory-budget 1024), now 64"),
                           (["--model", model, "--crf", "23"], "--crf was not given, now 23"),
                           (["--model", model, "--duration", "2"], "--duration was not given, now 2.0"),
                           (["--model", x4], "--model was m.onnx (sha256 ")]:
        res = sr("run", *args, *change)
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        assert res.code == 2 and len(lines) == 1, res.err
        assert lines[0].startswith(f"sr-run: error: cannot resume {out}: ") and expect in lines[0], lines[0]
        assert lines[0].endswith(f"or --overwrite to start over (discards {work})"), lines[0]
        assert (work / "journal.jsonl").read_bytes() == journal and not out.exists()  # nothing touched
    # without -q too: the model's and encoder's lines no longer come before the refusal
    res = sr("run", *args[:-1], "--model", model, "--tile", "64")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    res = sr("run", *args[:6], "--model", model, "--frames", "3", "--no-resume", "-q")  # start over, plainly
    assert res.code == 0, res.err
    assert not work.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "m.onnx", "m4.onnx", "out.mp4"]
