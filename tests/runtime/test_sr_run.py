"""sr-run end to end on real models, real video and real images; bad input; stopping mid-video."""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnx
import pytest

from sredge.imaging.io import read_image
from sredge.runtime.backends.ort import OrtBackend
from sredge.runtime.pipeline import SIDE_STAGE_NICENESS, run_pipeline
from sredge.runtime.upscaler import Upscaler
from sredge.runtime.video_io import Frame, VideoReader, VideoWriter
from tests.conftest import asset
from tests.robustness.conftest import NotReady, partial_size, start, stop_when


def _probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(video=0)]
        audio = [s.codec_context.name for s in c.streams.audio]
        return v, frames, audio, Fraction(v.average_rate) if v.average_rate else None


def _one_line(res, code):
    assert res.code == code, (res.code, res.err)
    lines = [ln for ln in res.err.strip().splitlines() if ln.startswith("sr-run: error")]
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return lines[0]


@pytest.mark.slow
def test_onepiece_demo_fsrcnn_x2(cli, exported, tmp_path):
    """The issue's acceptance run: 181 frames of 1280x960 at the source fps, decodable by PyAV."""
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    res = cli("run", "--video", asset("video/onepiece_demo.mp4"), "--model", exported("fsrcnn_x2"),
              "-o", out, "--report", report, "--preset", "ultrafast")
    assert res.code == 0, res.err
    v, frames, _, rate = _probe(out)
    assert len(frames) == 181
    assert (frames[0].width, frames[0].height) == (1280, 960)
    src_rate = _probe(asset("video/onepiece_demo.mp4"))[3]
    assert abs(float(rate) - float(src_rate)) < 0.01
    rep = json.loads(report.read_text())
    assert rep["frames_in"] == rep["frames_out"] == 181
    for stage in ("decode", "preprocess", "infer", "postprocess", "encode", "end_to_end"):
        lat = rep["latency_ms"][stage]
        assert lat["count"] == 181 and 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
    assert "p50" in res.out and "end_to_end" in res.out  # summary table


def _clip_with_audio(path, n=12, w=64, h=48):
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = c.add_stream("aac", rate=22050)
        base = read_image(asset("realworld/OST_009.png"))
        for i in range(n):
            img = np.ascontiguousarray(base[i * 4:i * 4 + h, :w])
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        t = np.arange(22050) / 22050.0
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i:i + 1024], format="fltp", layout="mono")
            frame.sample_rate = 22050
            for p in aus.encode(frame):
                c.mux(p)
        for s in (vs, aus):
            for p in s.encode(None):
                c.mux(p)


def test_audio_is_copied_through_and_timestamps_kept(cli, exported, tmp_path):
    src = tmp_path / "clip.mp4"
    _clip_with_audio(src)
    res = cli("run", "--video", src, "--model", exported("espcn_x3"), "-q")
    assert res.code == 0, res.err
    out = tmp_path / "clip_x3.mp4"  # derived name
    _, frames, audio, _ = _probe(out)
    _, src_frames, src_audio, _ = _probe(src)
    assert audio == src_audio == ["aac"]
    assert len(frames) == len(src_frames) == 12
    assert [f.pts * f.time_base for f in frames] == [f.pts * f.time_base for f in src_frames]
    assert (frames[0].width, frames[0].height) == (192, 144)


def test_backend_error_mid_video_leaves_a_playable_file(exported, tmp_path):
    out = tmp_path / "partial.mp4"
    with OrtBackend(exported("espcn_x3")) as be, VideoReader(str(asset("video/onepiece_demo.mp4"))) as rd:
        calls = {"n": 0}

        def failing_run(x):  # the real ONNX Runtime session, with a fault injected after 5 frames
            calls["n"] += 1
            if calls["n"] > 5:
                raise RuntimeError("device lost")
            return be.run(x)

        ups = Upscaler(failing_run, be.descriptor())
        info = rd.info
        with VideoWriter(out, info.width * 3, info.height * 3, info.time_base, info.fps, preset="ultrafast") as wr:
            res = run_pipeline(rd, ups, wr.write, wr.mux_audio)
    assert isinstance(res.failure, RuntimeError)
    _, frames, _, _ = _probe(out)
    assert len(frames) == res.frames_out == 5


@pytest.mark.skipif(not Path("/proc/thread-self/comm").exists(), reason="thread names are read from Linux's /proc")
def test_pipeline_stages_are_named_and_side_stages_yield_to_inference(exported):
    seen = {}

    def record(stage):
        seen[stage] = (Path("/proc/thread-self/comm").read_text().strip(),
                       os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    stop = threading.Event()
    with OrtBackend(exported("espcn_x3")) as be, VideoReader(str(asset("video/onepiece_demo.mp4"))) as rd:
        def run(x):  # the real ONNX Runtime session, called from the inference stage
            record("infer")
            return be.run(x)

        def write(frame):
            record("encode")
            stop.set()  # one frame is enough

        base = os.getpriority(os.PRIO_PROCESS, 0)
        res = run_pipeline(rd, Upscaler(run, be.descriptor()), write, lambda packet: None, stop=stop)
    assert res.failure is None and res.frames_out >= 1
    assert seen["infer"] == ("sr-infer", base)  # what top -H and /proc show
    assert seen["encode"] == ("sr-encode", min(19, base + SIDE_STAGE_NICENESS))


def test_ctrl_c_finalizes_a_playable_file(exported, tmp_path):
    # The child runs with the user's thread settings (no OMP_NUM_THREADS=1), so a stall of theirs shows here.
    # In full-suite runs on the 2-core CI VMs, a child here sometimes stalls before its first frames reach
    # the file: its threads wait in the kernel for the process's memory-map lock (mmap, mprotect, a page
    # fault), no thread of it is where that lock is held, and ONNX Runtime's caller spins on its worker
    # (docs/development.md). Over 100 runs of the command alone never stalled. Until that is understood,
    # a stalled child is described (see stop_when) in a warning and another is started; a third stall
    # fails, as does any wrong outcome.
    attempts = 3
    for attempt in range(1, attempts + 1):
        work = tmp_path / f"attempt{attempt}"
        work.mkdir()
        out = work / "stopped.mp4"
        proc = start("run", "--video", asset("video/bottle-detection.mp4"), "--model", exported("espcn_x3"),
                     "-o", out, "--preset", "ultrafast", "-q", env_changes={"OMP_NUM_THREADS": None})
        try:
            # Stop once encoded frames reached the partial file (a fixed sleep raced a loaded machine's start-up).
            err = stop_when(proc, lambda: partial_size(work) > 4_000, signal.SIGINT)
            break
        except NotReady as exc:
            if attempt == attempts:
                raise
            warnings.warn(f"sr-run stalled before its first frames reached the file (attempt {attempt} of "
                          f"{attempts}); started again. {exc}", stacklevel=1)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "playable" in err
    _, frames, _, _ = _probe(out)
    assert 0 < len(frames) < 1189
    assert not [p for p in work.iterdir() if p.name.startswith(".")]  # no temporary left


def test_images_file_folder_glob(cli, exported, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("0014.jpg", "wolf_gray.jpg", "children-alpha.png"):
        (src / name).write_bytes(asset(f"realworld/{name}").read_bytes())
    res = cli("run", "--image", src / "0014.jpg", "--model", exported("espcn_x3"), "-q")
    assert res.code == 0, res.err
    assert read_image(src / "0014_x3.jpg").shape == (537, 537, 3)
    out_dir = tmp_path / "out"
    res = cli("run", "--image", src, "--model", exported("espcn_x3"), "-o", out_dir, "-q")
    assert res.code == 0, res.err
    assert read_image(out_dir / "wolf_gray_x3.jpg").ndim == 2
    assert read_image(out_dir / "children-alpha_x3.png").shape[2] == 4
    res = cli("run", "--image", str(src / "*.png"), "--model", exported("espcn_x3"), "-o", tmp_path / "g", "-q")
    assert res.code == 0 and (tmp_path / "g" / "children-alpha_x3.png").is_file()


def _foreign(src, dst, fixed=None):
    """A copy of an sredge export without its metadata (and optionally with a fixed input shape)."""
    m = onnx.load(str(src))
    del m.metadata_props[:]
    if fixed:
        for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, fixed):
            d.Clear()
            d.dim_value = v
        for d in m.graph.output[0].type.tensor_type.shape.dim:
            d.Clear()
    onnx.save(m, str(dst))
    return dst


def test_foreign_onnx_with_flags_matches_sredge_export(cli, exported, tmp_path):
    src = asset("realworld/0030.jpg")
    foreign = _foreign(exported("espcn_x3"), tmp_path / "foreign.onnx")
    assert cli("run", "--image", src, "--model", exported("espcn_x3"), "-o", tmp_path / "ref.png", "-q").code == 0
    res = cli("run", "--image", src, "--model", foreign, "--color", "ycbcr", "-o", tmp_path / "f.png", "-q")
    assert res.code == 0, res.err  # scale measured by a probe run
    assert np.array_equal(read_image(tmp_path / "f.png"), read_image(tmp_path / "ref.png"))


def test_fixed_shape_foreign_model_is_tiled_at_its_shape(cli, exported, tmp_path):
    src = asset("realworld/0030.jpg")  # 220 x 220
    fixed = _foreign(exported("fsrcnn_x2"), tmp_path / "fixed.onnx", fixed=(1, 1, 64, 64))
    ref = cli("run", "--image", src, "--model", exported("fsrcnn_x2"), "--tile", "0", "-o", tmp_path / "r.png", "-q")
    assert ref.code == 0, ref.err
    res = cli("run", "--image", src, "--model", fixed, "--scale", "2", "--color", "y", "-o", tmp_path / "t.png", "-q")
    assert res.code == 0, res.err
    a, b = read_image(tmp_path / "t.png").astype(int), read_image(tmp_path / "r.png").astype(int)
    assert np.abs(a - b).max() <= 1


def test_metadata_contradiction_is_refused(cli, exported, tmp_path):
    line = _one_line(cli("run", "--image", asset("realworld/0030.jpg"), "--model", exported("espcn_x3"),
                         "--scale", "2", "-o", tmp_path / "x.png"), 2)
    assert "--scale 2 contradicts" in line


def _tiny_onnx(path, channels):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, None, None])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    g = helper.make_graph([node], "g", [x], [y], initializer=[scales])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


@pytest.mark.parametrize(
    "make_args,expect",
    [
        (lambda t, e: ["--video", t / "missing.mp4", "--model", e], "no such video file"),
        (lambda t, e: ["--video", asset("realworld/0014.jpg"), "--model", e, "-o", t / "o.mp4"], "not a video"),
        (lambda t, e: ["--video", "7", "--model", e, "-o", t / "o.mp4"], "camera"),
        (lambda t, e: ["--image", t / "missing.png", "--model", e], "no such file"),
        (lambda t, e: ["--image", asset("realworld/0014.jpg"), "--model", e, "-o", t / "no" / "dir" / "o.png"],
         "cannot write"),
        (lambda t, e: ["--image", asset("realworld/0014.jpg"), "--model", _tiny_onnx(t / "c2.onnx", 2)],
         "channels"),
        (lambda t, e: ["--image", asset("realworld/0014.jpg"), "--model", t / "nomodel.onnx"], "no such model"),
        (lambda t, e: ["--image", asset("realworld/0014.jpg"), "--model", e, "--backend", "torch"], "--backend torch"),
    ],
    ids=["missing-video", "image-as-video", "camera", "missing-image", "unwritable", "channels", "missing-model",
         "backend-mismatch"],
)
def test_bad_input_one_line_exit_2(cli, exported, tmp_path, make_args, expect):
    line = _one_line(cli("run", *make_args(tmp_path, exported("espcn_x3"))), 2)
    assert expect in line


def test_a_stream_that_does_not_open_is_the_only_line(cli, tmp_path):
    """The model's and encoder's lines came before this error (the previous session's note); they are now
    said once the source is open."""
    res = cli("run", "--video", "rtsp://127.0.0.1:9/x", "-o", tmp_path / "o.mp4")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert res.err.startswith("sr-run: error: could not open stream rtsp://127.0.0.1:9/x")
    assert not (tmp_path / "o.mp4").exists()


def test_output_would_overwrite_input(cli, exported, tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(asset("realworld/0030.jpg").read_bytes())
    line = _one_line(cli("run", "--image", src, "--model", exported("espcn_x3"), "-o", src), 2)
    assert "overwrite" in line


def test_a_file_url_is_the_file_it_names(cli, tmp_path):
    """``--video file:///PATH`` ran as a stream: -o PATH --overwrite replaced the input, --start was refused."""
    src = tmp_path / "clip.mp4"
    src.write_bytes(asset("video/onepiece_demo.mp4").read_bytes())
    url = f"file://{src}"
    line = _one_line(cli("run", "--video", url, "-o", src, "--overwrite", "--frames", "2", "--threads", "1"), 2)
    assert "clip.mp4" in line and src.read_bytes() == asset("video/onepiece_demo.mp4").read_bytes()
    res = cli("run", "--video", url, "--start", "1", "--frames", "2", "--threads", "1", "-q")
    assert res.code == 0, res.err
    assert len(_probe(tmp_path / "clip_x2.mp4")[1]) == 2  # the default name beside the file


def test_a_stalled_stream_ends_the_run_with_a_playable_file_and_says_so(cli, tmp_path, monkeypatch):
    """A sender that stops sending: exit 2 naming the stall and how long was waited (it once read 'the input is
    truncated or corrupt (... stream lost: timed out)'), and the frames received written, playable."""
    from sredge.runtime import video_io
    from tests.runtime.test_video_io import _serve_once, make_clip

    monkeypatch.setattr(video_io, "NETWORK_READ_TIMEOUT_S", 1.0)
    data = make_clip(tmp_path / "s.ts", n=50).read_bytes()
    hold = threading.Event()
    try:
        out = tmp_path / "rec.mp4"
        line = _one_line(cli("run", "--video", _serve_once(data[: len(data) // 2], hold), "-o", out, "--threads", "1",
                             "--latency-mode", "-q"), 2)
    finally:
        hold.set()
    assert "the live input ended" in line and "nothing came for 1 s" in line and "truncated" not in line, line
    frames = len(_probe(out)[1])
    assert 0 < frames < 50 and f"{frames} frames written to {out} (playable)" in line


def test_a_live_sources_waits_are_not_decode_time_or_latency(cli, tmp_path):
    """A stream that sends in bursts: the time spent waiting for it was timed as the decode stage and counted in
    every frame's end-to-end latency, so a report showed a fast model as slow. The waits are now
    ``source_wait``; a file has none."""
    import socket
    import time

    from tests.runtime.test_video_io import make_clip

    data = make_clip(tmp_path / "s.ts", n=40).read_bytes()
    srv = socket.create_server(("127.0.0.1", 0))

    def send_in_bursts():
        with srv:
            conn, _ = srv.accept()
            with conn:
                step = 188 * 8  # whole MPEG-TS packets
                for i in range(0, len(data), step):
                    conn.sendall(data[i:i + step])
                    time.sleep(0.2)

    threading.Thread(target=send_in_bursts, daemon=True).start()
    report = tmp_path / "live.json"
    res = cli("run", "--video", f"tcp://127.0.0.1:{srv.getsockname()[1]}", "-o", tmp_path / "live.mp4",
              "--report", report, "--threads", "1")
    assert res.code == 0, res.err
    lat = json.loads(report.read_text())["latency_ms"]
    wait, decode = lat["source_wait"], lat["decode"]
    assert wait["count"] == decode["count"] == 40 and wait["max_ms"] >= 100, lat
    assert decode["max_ms"] < wait["max_ms"] / 2 and lat["end_to_end"]["p50_ms"] < wait["max_ms"], lat
    assert "source_wait" in res.out  # the summary table's row
    clip = make_clip(tmp_path / "f.mp4", n=5)
    res = cli("run", "--video", clip, "-o", tmp_path / "f_x2.mp4", "--report", tmp_path / "file.json", "-q")
    assert res.code == 0 and json.loads((tmp_path / "file.json").read_text())["latency_ms"]["source_wait"]["count"] == 0


def test_truncated_video_processes_what_decodes_and_exits_2(cli, exported, tmp_path):
    # An MPEG-TS copy cut in half: decodable up to the cut.
    ts = tmp_path / "full.ts"
    with VideoReader(str(asset("video/onepiece_demo.mp4"))) as rd:
        info = rd.info
        with av.open(str(ts), "w", format="mpegts") as c:
            s = c.add_stream("libx264", rate=24)
            s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
            for item in rd:
                if isinstance(item, Frame):
                    small = np.ascontiguousarray(item.rgb[::4, ::4])
                    for p in s.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                        c.mux(p)
            for p in s.encode(None):
                c.mux(p)
    cut = tmp_path / "cut.ts"
    data = ts.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "cut_x3.mp4"
    res = cli("run", "--video", cut, "--model", exported("espcn_x3"), "-o", out, "-q")
    assert "truncated or corrupt" in _one_line(res, 2)
    _, frames, _, _ = _probe(out)
    assert 0 < len(frames) < info.frame_count
    # The same recording twice, joined with cat: the first one whole, and the message says what happened.
    joined = tmp_path / "joined.ts"
    joined.write_bytes(data * 2)
    out = tmp_path / "joined_x3.mp4"
    line = _one_line(cli("run", "--video", joined, "--model", exported("espcn_x3"), "-o", out, "-q"), 2)
    assert "holds more than one recording" in line and "joined end to end" in line, line
    _, frames, _, _ = _probe(out)
    assert len(frames) == info.frame_count


def test_a_damaged_audio_packet_is_said_once(tmp_path):
    """The input audit: a cut-short MP4 whose cut lands in an audio packet said "dropped a damaged audio packet"
    twice: the resumable run reads the source again for its audio when it makes the playable file."""
    from tests.robustness.conftest import sr

    whole = tmp_path / "fs.mp4"
    with av.open(str(asset("video/onepiece_demo.mp4"))) as i, av.open(str(whole), "w",
                                                                     options={"movflags": "faststart"}) as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = out[p.stream.index]
                o.mux(p)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * 0.3)])
    with av.open(str(cut)) as c:  # the cut lands in an audio packet
        assert [p.stream.type for p in c.demux() if p.size and p.is_corrupt] == ["audio"]
    res = sr("run", "--video", cut, "-o", tmp_path / "o.mp4", "-q", "--preset", "ultrafast", "--threads", "1")
    assert res.code == 2 and res.err.count("dropped a damaged audio packet") == 1, res.err


def _perturbed(src, dst, rel=0.02):
    """A real, slightly different model: the sredge export with noise added to its weights."""
    from onnx import numpy_helper

    m = onnx.load(str(src))
    rng = np.random.default_rng(0)
    for init in m.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim == 4:
            init.CopyFrom(numpy_helper.from_array((w + rng.normal(0, rel * w.std(), w.shape)).astype(w.dtype),
                                                  init.name))
    onnx.save(m, str(dst))
    return dst


def test_reference_check_every_nth_frame(cli, exported, tmp_path):
    src = tmp_path / "clip.mp4"
    _clip_with_audio(src, n=12)
    model = exported("fsrcnn_x2")
    changed = _perturbed(model, tmp_path / "changed.onnx")
    report = tmp_path / "run.json"
    res = cli("run", "--video", src, "--model", changed, "--reference", model, "--check-every", "5",
              "-o", tmp_path / "out.mp4", "--report", report)
    assert res.code == 0, res.err
    check = json.loads(report.read_text())["reference_check"]
    assert check["every"] == 5 and [f for f, _ in check["frames"]] == [0, 5, 10]
    assert 20 < check["min_psnr"] <= check["mean_psnr"] < 70  # different, but close to the reference
    assert "reference check: 3 frames (every 5)" in res.out
    same = cli("run", "--video", src, "--model", model, "--reference", model, "--check-every", "4",
               "-o", tmp_path / "same.mp4", "--report", report, "--overwrite")  # the report of the run before
    assert same.code == 0, same.err
    check = json.loads(report.read_text())["reference_check"]
    assert check["frames_checked"] == 3 and check["mean_psnr"] is None  # identical frames: infinite PSNR
    bad = cli("run", "--video", src, "--model", model, "--reference", tmp_path / "none.onnx")
    assert "no such reference model" in _one_line(bad, 2)


def test_the_report_records_the_tile_the_run_used(cli, exported, tmp_path):
    """--report said "tile": "auto" (the option), not the tile edge the run used."""
    src = tmp_path / "clip.mp4"
    _clip_with_audio(src, n=4)
    model = exported("fsrcnn_x2")
    report = tmp_path / "run.json"
    for argv, tile, tiles, requested in ((["--tile", "48"], 48, 2, 48),  # 64x48: two 48x48 windows
                                         ([], None, 1, "auto")):  # auto: the whole 64x48 frame
        res = cli("run", "--video", src, "--model", model, "-o", tmp_path / "out.mp4", "--report", report,
                  "--overwrite", *argv)
        assert res.code == 0, res.err
        tiling = json.loads(report.read_text())["tiling"]
        got = (tiling["tile"], tiling["tiles"], tiling["requested"], tiling["fixed_hw"])
        assert got == (tile, tiles, requested, None), (argv, tiling)
        assert tiling["tile_hw"] == ([48, 48] if tile else [48, 64]), tiling


def test_luma_model_video_stays_i420_and_matches_the_rgb_path(exported):
    """FSRCNN (Y only) on real video: the YUV 4:2:0 path gives the RGB path's frames (within 8-bit rounding)."""
    from sredge.imaging.metrics import psnr
    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.upscaler import takes_i420

    model = exported("fsrcnn_x2")
    desc = read_descriptor(model)
    assert takes_i420(desc)
    outputs = {}
    with OrtBackend(model) as be:
        for want in (True, False):
            frames = []
            with VideoReader(str(asset("video/bottle-detection.mp4")), want_i420=want) as rd:
                assert rd.i420 is want

                def first_six(items):
                    n = 0
                    for it in items:
                        if isinstance(it, Frame):
                            if n == 6:
                                return
                            n += 1
                        yield it

                res = run_pipeline(first_six(rd), Upscaler(be.run, desc), frames.append,
                                   lambda _p: None)
            assert res.failure is None and res.frames_out == 6
            assert all((f.i420 is not None) is want for f in frames)
            outputs[want] = [f.to_rgb() for f in frames]
    for a, b in zip(outputs[True], outputs[False]):
        assert a.shape == b.shape == (720, 1280, 3)
        assert psnr(a.astype(float), b.astype(float), 255.0) > 38


def _pict_types(path):
    """Each decoded frame's picture type as FFmpeg numbers it: 1 I, 2 P, 3 B."""
    with av.open(str(path)) as c:
        return [int(f.pict_type) for f in c.decode(video=0)]


def test_latency_mode_has_no_b_frames_and_says_so(cli, exported, tmp_path):
    """--latency-mode: one-frame queues and x264 zerolatency. The default (throughput) x264 stream
    holds frames back for B-frames; the latency-mode stream has none, with the same frames and audio."""
    src = tmp_path / "clip.mp4"
    _clip_with_audio(src, n=24)
    model = exported("fsrcnn_x2")
    runs = {}
    for mode, extra in (("throughput", []), ("latency", ["--latency-mode"])):
        report = tmp_path / f"{mode}.json"
        res = cli("run", "--video", src, "--model", model, "-o", tmp_path / f"{mode}.mp4", "--report", report,
                  "-q", *extra)
        assert res.code == 0, res.err
        runs[mode] = json.loads(report.read_text())
        assert runs[mode]["mode"] == mode and runs[mode]["frames_out"] == 24
    assert 3 in _pict_types(tmp_path / "throughput.mp4")
    assert 3 not in _pict_types(tmp_path / "latency.mp4") and 2 in _pict_types(tmp_path / "latency.mp4")
    _, frames, audio, _ = _probe(tmp_path / "latency.mp4")
    assert len(frames) == 24 and audio == ["aac"]


def _decoded(path):
    """(RGB frames, pts in seconds, audio seconds by packet durations, first audio packet's start in seconds)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), float(f.pts * v.time_base)) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        packets = [p for p in c.demux(a) if p.size]
        audio_s = float(sum(p.duration for p in packets) * a.time_base)
        first_audio = float(packets[0].pts * a.time_base)
    return [f for f, _ in frames], [t for _, t in frames], audio_s, first_audio


@pytest.mark.parametrize("cut, first, count", [
    (["--start", "0.52", "--duration", "00:00.4"], 13, 10),  # mid-GOP start (key frames every 8)
    (["--start", "0:00.5", "--frames", "5"], 13, 5),        # between two frames: the first at or after
    (["--frames", "7"], 0, 7),
])
def test_part_of_a_video_matches_the_source_frames_and_audio(cli, exported, tmp_path, cut, first, count):
    """--start/--duration/--frames: the source frames of the window, timestamps from 0, audio cut alike."""
    import cv2

    from sredge.imaging.metrics import psnr
    from tests.runtime.test_video_io import make_clip

    src = make_clip(tmp_path / "clip.mp4", n=36, fps=25, audio_s=1.5, gop=8)
    out = tmp_path / "cut.mp4"
    res = cli("run", "--video", src, "--model", exported("espcn_x3"), "-o", out, "--preset", "ultrafast",
              "--encoder", "libx264", "-q", *cut)
    assert res.code == 0, res.err
    src_frames, src_t, _, _ = _decoded(src)
    frames, t, audio_s, first_audio = _decoded(out)
    assert len(frames) == count
    assert t == pytest.approx([x - src_t[first] for x in src_t[first:first + count]], abs=1e-4)
    for k, f in enumerate(frames):  # each output frame, scaled back down, is its own source frame
        small = cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA).astype(float)
        scores = [psnr(small, s.astype(float), 255.0) for s in src_frames]
        assert int(np.argmax(scores)) == first + k and scores[first + k] > 30, (k, scores)
    one = 1024 / 44100  # one AAC frame
    assert 0 <= first_audio < one and abs(audio_s - count / 25) <= one


def test_part_of_a_video_refuses_impossible_values(cli, exported, tmp_path):
    src = tmp_path / "clip.mp4"
    _clip_with_audio(src)  # 12 frames, 1 s
    model = exported("espcn_x3")
    for cut, what in [(["--start=-1"], "--start -1 must be a time of 0 or more"),
                      (["--start", "5"], "--start 5 s is at or past the end"),
                      (["--start", "1:75"], "below 60"),
                      (["--duration", "0"], "--duration 0 keeps no frame: give more than 0 seconds"),
                      (["--duration=-1"], "--duration -1 must be more than 0 seconds"),  # not "0 or more"
                      (["--frames", "0"], "--frames 0 keeps no frame"),
                      # the video audit: internal errors (overflows), one leaving a work folder behind
                      (["--duration", "1e308"], "--duration 1e308: at most 1e+09 seconds"),
                      (["--start", "1e20"], "--start 1e20: at most 1e+09 seconds"),
                      (["--commit-every", "1e308"], "--commit-every must be more than 0 seconds and at most")]:
        res = cli("run", "--video", src, "--model", model, "-o", tmp_path / "o.mp4", *cut)
        assert what in _one_line(res, 2), res.err
    assert not (tmp_path / "o.mp4").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    res = cli("run", "--video", "rtsp://127.0.0.1:9/cam", "--model", model, "-o", tmp_path / "o.mp4",
              "--start", "3")
    assert "--start needs a video file" in _one_line(res, 2)
    res = cli("run", "--image", asset("realworld/0014.jpg"), "--model", model, "--frames", "3")
    assert "cut a video" in _one_line(res, 2)


def test_a_trailing_slash_names_a_folder(cli, tmp_path):
    """``-o newdir/`` for one image: the folder it names does not exist (not 'cannot tell the image format');
    an existing one is written into; a folder of images creates its ``-o DIR/``."""
    from sredge.data.samples import sample_folder

    photo = sorted(sample_folder().iterdir())[0]
    res = cli("run", "--image", photo, "-o", f"{tmp_path}/newdir/", "-q")
    assert res.code == 2 and f"folder {tmp_path}/newdir does not exist" in res.err, res.err
    assert not (tmp_path / "newdir").exists()
    (tmp_path / "there").mkdir()
    assert cli("run", "--image", photo, "-o", f"{tmp_path}/there/", "-q").code == 0
    assert [p.name for p in (tmp_path / "there").iterdir()] == [f"{photo.stem}_x2{photo.suffix}"]


def test_precision_options_name_what_runs(cli, tmp_path):
    """--precision fp32 on an INT8 file is refused by ONNX Runtime as OpenVINO refuses it (it runs the file as
    typed: the result would be INT8 under an fp32 label); a NaN budget is refused like a negative one; the
    --reference of an OpenVINO INT8 run runs as itself, not with the run's --precision."""
    from sredge.runtime.bundled import default_model

    fp32 = default_model(2)
    int8 = fp32.with_name("sredge_x2.int8.onnx")
    photo = asset("benchmarks/Set5/LR_bicubic/X2/butterflyx2.png")
    res = cli("run", "--image", photo, "--model", int8, "--backend", "ort", "--precision", "fp32",
              "-o", tmp_path / "a.png", "-q")
    assert res.code == 2 and "this ONNX is int8" in res.err and not (tmp_path / "a.png").exists()
    assert cli("run", "--image", photo, "--model", fp32, "--backend", "ort", "--precision", "fp32",
               "-o", tmp_path / "b.png", "-q").code == 0
    res = cli("run", "--image", photo, "--max-psnr-drop", "nan", "-o", tmp_path / "c.png", "-q")
    assert res.code == 2 and "--max-psnr-drop must be >= 0" in res.err
    for given in (["--backend", "ort"], ["--precision", "int8"]):  # the budget would be ignored: said, not silent
        res = cli("run", "--image", photo, "--max-psnr-drop", "0.1", *given, "-o", tmp_path / "d.png", "-q")
        assert res.code == 2 and "--max-psnr-drop lets --backend auto choose" in res.err, res.err
    pytest.importorskip("openvino", reason="the --reference case runs INT8 on OpenVINO (pip install '.[openvino]')")
    from sredge.demo import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    res = cli("run", "--video", clip, "--model", int8, "--backend", "openvino", "--precision", "int8",
              "--reference", fp32, "--check-every", "2", "-o", tmp_path / "r.mp4", "--report", tmp_path / "r.json")
    assert res.code == 0, res.err
    check = json.loads((tmp_path / "r.json").read_text())["reference_check"]
    assert check["frames_checked"] == 2 and 40 < check["min_psnr"] < 80  # INT8 against its FP32 original


def test_a_file_that_is_not_a_video_is_the_only_line(cli, tmp_path):
    """The audit: an empty or non-video --video file printed the model's and the encoder's lines before its
    error; the file is now read before the model loads."""
    empty, text = tmp_path / "e.mp4", tmp_path / "notes.mp4"
    empty.write_bytes(b"")
    text.write_text("not a video\n")
    for bad in (empty, text):
        res = cli("run", "--video", bad, "-o", tmp_path / "o.mp4")
        assert res.code == 2 and res.err.strip().splitlines() == [
            f"sr-run: error: {bad} is not a video FFmpeg can read (unknown format, or a damaged or cut-short file)"
        ], res.err
        assert not (tmp_path / "o.mp4").exists()


def test_a_folder_as_a_videos_output_is_one_line_naming_a_file(cli, tmp_path):
    """The audit: -o nodir/ said "cannot tell the video format from the name nodir"."""
    clip = tmp_path / "clip.mp4"
    _clip_with_audio(clip, n=2)
    (tmp_path / "there").mkdir()
    for given in (f"{tmp_path / 'missing'}/", str(tmp_path / "there")):
        res = cli("run", "--video", clip, "-o", given)
        assert res.code == 2 and res.err.strip().splitlines() == [
            f"sr-run: error: -o {given.rstrip('/')}/: a video run writes one file, not a folder; give its name, "
            f"e.g. -o {given.rstrip('/')}/clip_x2.mp4"], res.err  # the bundled x2's default name


def test_display_problem_names_why_no_window_can_open():
    """The previous session's note: an OpenCV with a GUI but no desktop session (ssh, a service) failed in
    namedWindow (or Qt aborted the process) and was called "the headless build"."""
    from sredge.runtime.video_run import display_problem

    gui = "  GUI:                           GTK3\n    GTK+:                        YES (ver 3.24)\n"
    headless = "  GUI:                           NONE\n"
    assert "headless build" in display_problem(headless, {"DISPLAY": ":0"}, "linux")
    why = display_problem(gui, {}, "linux")
    assert "neither DISPLAY nor WAYLAND_DISPLAY is set" in why and "-o OUT.mp4" in why
    assert display_problem(gui, {"DISPLAY": ":0"}, "linux") is None
    assert display_problem(gui, {"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem(gui, {"DISPLAY": ""}, "linux") is not None
    assert display_problem(gui, {}, "win32") is None and display_problem(gui, {}, "darwin") is None


def test_the_library_takes_its_paths_as_strings(tmp_path):
    """The library audit: ``LoadedRuntime("m.onnx", ...)`` and ``upscale_video(rt, src, "out.mp4")`` were
    AttributeErrors ('str' object has no attribute 'name' / 'resolve'), the CLI always passing Paths."""
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_run import upscale_video

    src, out = tmp_path / "clip.mp4", tmp_path / "clip_x2.mp4"
    _clip_with_audio(src, n=3)
    for opts in (RunOptions(), RunOptions(max_psnr_drop=0.1)):
        with LoadedRuntime(str(default_model(2)), opts) as rt:
            assert rt.upscaler(48, 64).upscale(np.zeros((48, 64, 3), np.uint8)).shape == (96, 128, 3)
    with LoadedRuntime(str(default_model(2)), RunOptions()) as rt:
        run = upscale_video(rt, str(src), str(out), preset="ultrafast")
    assert run.result.failure is None and run.result.frames_out == 3 and run.output == str(out)
    assert len(_decoded(out)[0]) == 3
