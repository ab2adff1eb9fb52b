"""Video reading and writing: real clips, generated clips (audio, rotation, VFR) and damaged files."""

from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.runtime import video_io
from sredge.runtime.video_io import Frame, VideoInfo, VideoReader, VideoWriter, parse_source
from sredge.runtime.window import Window
from tests.conftest import asset, synced_inodes

ONEPIECE = "video/onepiece_demo.mp4"
BOTTLE = "video/bottle-detection.mp4"


# -- helpers -----------------------------------------------------------------------


def _pattern(i: int, w: int, h: int) -> np.ndarray:
    """An asymmetric, moving test picture: gradient background, white block at top-left."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), np.full_like(x, (i * 7) % 256)], -1)
    img = img.astype(np.uint8)
    img[: h // 4, : w // 4] = 255
    return img


def make_clip(
    path: Path,
    *,
    n: int = 25,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio_s: float = 0.0,
    gop: int | None = None,
) -> Path:
    """Write a small H.264 clip (optionally with explicit pts, a display rotation, AAC audio and a key
    frame every ``gop`` frames)."""
    w, h = size
    with av.open(str(path), "w") as c:
        options = {"preset": "ultrafast"} | ({"g": str(gop), "keyint_min": str(gop)} if gop else {})
        v = c.add_stream("libx264", rate=fps, options=options)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if time_base is not None:
            v.time_base = time_base
            v.codec_context.time_base = time_base
        if rotation:
            v.set_display_rotation(rotation)
        a = c.add_stream("aac", rate=44100) if audio_s else None
        if a is not None:
            a.layout = "mono"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(_pattern(i, w, h), format="rgb24")
            f.pts = pts[i] if pts is not None else i
            if time_base is None:
                f.time_base = Fraction(1, fps)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        if a is not None:
            sr, hop = 44100, 1024
            t = np.arange(int(audio_s * sr)) / sr
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), hop):
                af = av.AudioFrame.from_ndarray(tone[None, start : start + hop], format="fltp", layout="mono")
                af.sample_rate, af.pts = sr, start
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


def remux(src: Path, dst: Path, options: dict | None = None) -> Path:
    """Stream-copy the video of ``src`` into another container (no re-encode)."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options=options or {}) as o:
        s = i.streams.video[0]
        out = o.add_stream_from_template(s)
        for p in i.demux(s):
            if p.dts is not None:
                p.stream = out
                o.mux(p)
    return dst


def read_all(source) -> tuple[VideoInfo, list[Frame], list, str | None]:
    with VideoReader(str(source)) as r:
        frames, packets = [], []
        for item in r:
            (frames if isinstance(item, Frame) else packets).append(item)
        assert (r.error is None) == (r.error_kind is None), (r.error, r.error_kind)
        return r.info, frames, packets, r.error


def error_kind(source) -> str | None:
    with VideoReader(str(source)) as r:
        for _ in r:
            pass
        return r.error_kind


def decoded_pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


def copy(reader: VideoReader, writer: VideoWriter) -> None:
    for item in reader:
        if isinstance(item, Frame):
            writer.write(item)
        else:
            writer.mux_audio(item)


# -- sources -----------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cameras are read through v4l2 (Linux)")
def test_parse_source_cameras_and_urls():
    cam = parse_source("0")
    assert (cam.kind, cam.target, cam.format) == ("camera", "/dev/video0", "v4l2")
    assert parse_source("/dev/video3").target == "/dev/video3"
    rtsp = parse_source("rtsp://cam.local:554/stream")
    assert rtsp.kind == "url" and rtsp.options["rtsp_transport"] == "tcp"
    assert int(rtsp.options["timeout"]) <= 10_000_000  # microseconds: an unreachable camera fails fast
    assert "rw_timeout" in parse_source("https://example.com/live.m3u8").options
    with pytest.raises(InputError, match="unsupported stream URL"):
        parse_source("gopher://example.com/x")


def test_parse_source_files(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", n=2)
    assert parse_source(str(clip)).kind == "file"
    assert parse_source(f"file://{clip}").target == str(clip)
    with pytest.raises(InputError, match="not found"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(InputError, match="folder"):
        parse_source(str(tmp_path))


# -- decoding real video ------------------------------------------------------------


def test_round_trip_onepiece_keeps_frames_pts_and_audio(tmp_path):
    src = asset(ONEPIECE)
    out = tmp_path / "out.mp4"
    with VideoReader(str(src)) as r:
        info = r.info
        assert (info.width, info.height, info.frame_count, info.rotation) == (640, 480, 181, 0)
        assert info.fps is not None and abs(float(info.fps) - 23.98) < 0.01
        assert info.codec == "h264" and not info.is_live
        frames = []
        with VideoWriter(out, info.width, info.height, info.time_base, info.fps, preset="ultrafast", audio_from=r) as w:
            for item in r:
                if isinstance(item, Frame):
                    assert item.rgb.shape == (480, 640, 3) and item.rgb.dtype == np.uint8
                    assert item.rgb.flags.c_contiguous and item.index == len(frames)
                    frames.append(item)
                    w.write(item)
                else:
                    w.mux_audio(item)
        assert r.error is None
    assert len(frames) == 181 and w.frames_written == 181
    info2, frames2, packets2, error2 = read_all(out)
    assert error2 is None and info2.time_base == info.time_base
    assert (info2.width, info2.height, info2.frame_count) == (640, 480, 181)
    assert [f.pts for f in frames2] == [f.pts for f in frames]
    diff = np.mean([np.abs(a.rgb.astype(int) - b.rgb).mean() for a, b in zip(frames, frames2, strict=True)])
    assert diff < 3.0  # crf 18: the same pictures, and the same colour matrix both ways
    assert info.has_audio and info2.has_audio and len(packets2) > 300
    assert leftovers(tmp_path) == []


def test_audio_packets_come_in_demux_order():
    with VideoReader(str(asset(ONEPIECE))) as r:
        items = list(r)
        audio_indexes = {s.index for s in r.audio_streams}
    packets = [x for x in items if not isinstance(x, Frame)]
    assert packets and all(isinstance(p, av.Packet) and p.stream_index in audio_indexes for p in packets)
    kinds = ["v" if isinstance(x, Frame) else "a" for x in items]
    first_audio, last_video = kinds.index("a"), len(kinds) - 1 - kinds[::-1].index("v")
    assert first_audio < 10 < last_video - 10  # interleaved, not all audio at one end


def test_second_real_video_streams_without_reading_it_all():
    with VideoReader(str(asset(BOTTLE))) as r:
        assert (r.info.width, r.info.height, r.info.frame_count) == (640, 360, 1189)
        assert abs(float(r.info.fps) - 29.83) < 0.05
        first = []
        for item in r:
            if isinstance(item, Frame):
                first.append(item)
                if len(first) == 5:
                    break
    assert [f.index for f in first] == [0, 1, 2, 3, 4] and first[0].rgb.shape == (360, 640, 3)
    assert r.error is None  # stopping early is not damage


# -- generated clips: audio, VFR, rotation --------------------------------------------


def audio_summary(path: Path) -> tuple[str, float]:
    """(codec, seconds of audio) from the packets of the first audio stream."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        total = sum(p.duration or 0 for p in c.demux(a) if p.size)
        return a.codec_context.name, float(total * a.time_base)


def test_audio_copy_and_variable_frame_rate_survive(tmp_path):
    # Matroska input (1/1000 time base, irregular frame times, AAC) -> MP4 output.
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 240, 280, 500, 540, 580, 620, 900, 940, 980, 1020, 1500, 1540, 1580, 1900, 1940, 1980]
    clip = make_clip(tmp_path / "in.mkv", n=len(pts), pts=pts, time_base=tb, audio_s=2.0)
    out = tmp_path / "out.mp4"
    with VideoReader(str(clip)) as r:
        assert r.info.has_audio and r.info.time_base == tb
        i = r.info
        with VideoWriter(out, i.width, i.height, i.time_base, i.fps, preset="ultrafast", audio_from=r) as w:
            copy(r, w)
    assert w.frames_written == len(pts)
    with av.open(str(out)) as c:
        assert c.streams.video[0].time_base == tb and c.streams.video[0].frames == len(pts)
    assert decoded_pts(out) == pts
    codec_in, seconds_in = audio_summary(clip)
    codec_out, seconds_out = audio_summary(out)
    assert codec_in == codec_out == "aac"
    assert abs(seconds_in - 2.0) < 0.1 and abs(seconds_out - seconds_in) < 0.03


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_is_applied_to_pixels(tmp_path, degrees):
    clip = make_clip(tmp_path / f"rot{degrees}.mp4", n=3, size=(64, 32), rotation=degrees)
    info, frames, _, error = read_all(clip)
    assert error is None and info.rotation == degrees % 360
    assert (info.width, info.height) == ((32, 64) if degrees % 180 else (64, 32))
    assert frames[0].rgb.shape == (info.height, info.width, 3) and frames[0].rgb.flags.c_contiguous
    # OpenCV's FFmpeg backend auto-rotates from the same metadata: an independent check.
    cap = cv2.VideoCapture(str(clip))
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == frames[0].rgb.shape
    assert np.abs(bgr[..., ::-1].astype(int) - frames[0].rgb).mean() < 3
    # And against the source picture turned by hand (counter-clockwise by `rotation`).
    want = np.rot90(_pattern(0, 64, 32), info.rotation // 90)
    assert np.abs(want.astype(int) - frames[0].rgb).mean() < 6


# -- writing -----------------------------------------------------------------------


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path):
    w, h = 33, 17
    img = np.zeros((h, w, 3), np.uint8)
    img[:, -1] = 255  # last column white
    img[-1, :] = 128  # last row grey
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, w, h, Fraction(1, 25), Fraction(25), crf=0, preset="ultrafast") as vw:
        for i in range(3):
            vw.write(Frame(img, i, i))
    info, frames, _, _ = read_all(out)
    assert (info.width, info.height) == (34, 18)
    rgb = frames[0].rgb.astype(int)
    assert rgb[:16, 33].mean() > 240 and rgb[:16, 31].mean() < 15  # column 32 repeated into 33
    assert abs(rgb[17, :32].mean() - 128) < 4  # row 16 repeated into 17


def test_colours_round_trip_through_the_tagged_matrix(tmp_path):
    colours = [
        (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
        (0, 255, 255), (200, 40, 120), (30, 30, 30), (230, 230, 230),
    ]  # fmt: skip
    img = np.zeros((16, 16 * len(colours), 3), np.uint8)
    for k, c in enumerate(colours):
        img[:, 16 * k : 16 * (k + 1)] = c
    out = tmp_path / "c.mp4"
    with VideoWriter(out, img.shape[1], img.shape[0], Fraction(1, 25), Fraction(25), crf=0, preset="ultrafast") as vw:
        vw.write(Frame(img, 0, 0))
    _, frames, _, _ = read_all(out)
    centre = frames[0].rgb[4:12].astype(int)
    for k, c in enumerate(colours):
        assert np.abs(centre[:, 16 * k + 4 : 16 * k + 12] - c).max() <= 4, c
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert frame.colorspace in (5, 6)  # tagged BT.601 (BT470BG / SMPTE170M), which the writer converts with


def test_missing_and_repeated_pts_are_made_increasing(tmp_path):
    out = tmp_path / "p.mp4"
    img = _pattern(0, 32, 32)
    with VideoWriter(out, 32, 32, Fraction(1, 1000), Fraction(25), preset="ultrafast") as vw:
        for p in (None, None, 100, 100, 90, None):
            vw.write(Frame(img, p, 0))
    assert decoded_pts(out) == [0, 40, 100, 101, 102, 142]


@pytest.mark.parametrize("exc", [RuntimeError("backend failed"), KeyboardInterrupt()])
def test_interrupted_writer_leaves_playable_file_of_frames_done(tmp_path, exc):
    out = tmp_path / "stopped.mp4"
    with pytest.raises(type(exc)):
        with VideoWriter(out, 64, 48, Fraction(1, 25), Fraction(25), preset="ultrafast") as vw:
            for i in range(10):
                vw.write(Frame(_pattern(i, 64, 48), i, i))
            raise exc
    assert out.exists() and leftovers(tmp_path) == []
    info, frames, _, error = read_all(out)
    assert len(frames) == 10 and error is None and info.frame_count == 10


def test_a_finished_video_is_flushed_before_and_after_its_rename(tmp_path, monkeypatch):
    """The audit: the writer renamed its temporary file onto the output unflushed, and a resumable run then
    removes its fsynced segments: a power loss could leave an empty output and no segments to join again."""
    synced = synced_inodes(monkeypatch)
    out = tmp_path / "done.mp4"
    with VideoWriter(out, 64, 48, Fraction(1, 25), Fraction(25), preset="ultrafast") as vw:
        for i in range(3):
            vw.write(Frame(_pattern(i, 64, 48), i, i))
    assert out.stat().st_ino in synced and tmp_path.stat().st_ino in synced


def test_no_frames_leaves_nothing(tmp_path):
    out = tmp_path / "none.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 48, Fraction(1, 25), Fraction(25)):
            raise RuntimeError("failed before the first frame")
    with VideoWriter(out, 64, 48, Fraction(1, 25), None):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_options_before_writing(tmp_path):
    args = (64, 48, Fraction(1, 25), Fraction(25))
    with pytest.raises(InputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "out.mp4", *args)
    with pytest.raises(InputError, match="preset"):
        VideoWriter(tmp_path / "o.mp4", *args, preset="warp")
    with pytest.raises(InputError, match="crf"):
        VideoWriter(tmp_path / "o.mp4", *args, crf=70)
    with pytest.raises(InputError, match="not available"):
        VideoWriter(tmp_path / "o.mp4", *args, codec="no_such_encoder")
    with pytest.raises(InputError, match="suffix"):
        with VideoWriter(tmp_path / "o.weird", *args):
            pass
    assert list(tmp_path.iterdir()) == []
    with VideoWriter(tmp_path / "o.mp4", *args, preset="ultrafast") as vw:
        with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
            vw.write(Frame(np.zeros((48, 63, 3), np.uint8), 0, 0))


def test_audio_the_output_container_cannot_hold_fails_before_writing(tmp_path):
    clip = tmp_path / "u8.mkv"
    with av.open(str(clip), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_u8", rate=8000)
        a.layout = "mono"
        for i in range(5):
            c.mux(v.encode(av.VideoFrame.from_ndarray(_pattern(i, 64, 48), format="rgb24")))
        c.mux(v.encode(None))
        af = av.AudioFrame.from_ndarray(np.full((1, 800), 128, np.uint8), format="u8", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    with VideoReader(str(clip)) as r:
        with pytest.raises(InputError, match=r"pcm_u8 audio; write to \.mkv"):
            VideoWriter(tmp_path / "o.mp4", 64, 48, r.info.time_base, r.info.fps, audio_from=r).__enter__()
        i = r.info
        with VideoWriter(tmp_path / "o.mkv", 64, 48, i.time_base, i.fps, preset="ultrafast", audio_from=r) as w:
            copy(r, w)
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()
    assert audio_summary(tmp_path / "o.mkv")[0] == "pcm_u8" and w.frames_written == 5


# -- bad input -----------------------------------------------------------------------


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    cv2.imwrite(str(tmp / "still.png"), np.zeros((16, 16, 3), np.uint8))
    (tmp / "random.mp4").write_bytes(random.Random(0).randbytes(20000))
    (tmp / "notes.txt").write_text("not a video\n" * 50)
    (tmp / "empty.mp4").write_bytes(b"")
    with av.open(str(tmp / "song.m4a"), "w") as c:
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 44100, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    return {
        "missing": (tmp / "nope.mp4", "not found"),
        "folder": (tmp, "folder"),
        "png": (tmp / "still.png", "not a video"),
        "random": (tmp / "random.mp4", "not a video"),
        "text": (tmp / "notes.txt", "not a video"),
        "empty": (tmp / "empty.mp4", "not a video"),
        "audio only": (tmp / "song.m4a", "no video stream"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "png", "random", "text", "empty", "audio only"])
def test_bad_input_is_one_line_input_error(tmp_path, case):
    path, message = _bad_inputs(tmp_path)[case]
    with pytest.raises(InputError, match=message) as err:
        with VideoReader(str(path)):
            pass
    assert "\n" not in str(err.value) and path.name in str(err.value)


def test_mp4_cut_before_its_index_does_not_open(tmp_path):
    data = asset(ONEPIECE).read_bytes()  # its moov index is at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged or cut-short"):
        with VideoReader(str(cut)):
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    clip = make_clip(tmp_path / "locked.mp4", n=2)
    clip.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        with VideoReader(str(clip)):
            pass


def test_absent_camera_says_it_did_not_open():
    if os.path.exists("/dev/video7"):
        pytest.skip("/dev/video7 exists on this machine")
    with pytest.raises(InputError, match=r"camera 7 \(/dev/video7\) did not open"):
        with VideoReader("7"):
            pass


def test_unreachable_rtsp_fails_fast():
    start = time.monotonic()
    with pytest.raises(InputError, match=r"could not open stream rtsp://127\.0\.0\.1:9/x"):
        with VideoReader("rtsp://127.0.0.1:9/x"):
            pass
    assert time.monotonic() - start < 8


# -- damaged files ------------------------------------------------------------------


@pytest.mark.parametrize("container", ["faststart.mp4", "fragmented.mp4", "video.mkv", "video.ts"])
def test_truncated_file_yields_frames_before_the_cut_then_stops(tmp_path, container):
    options = {"faststart.mp4": {"movflags": "faststart"}, "fragmented.mp4": {"movflags": "frag_keyframe+empty_moov"}}
    whole = remux(asset(ONEPIECE), tmp_path / container, options.get(container))
    data = whole.read_bytes()
    cut = tmp_path / f"cut_{container}"
    cut.write_bytes(data[: len(data) // 2])
    _, frames, _, error = read_all(cut)
    assert 0 < len(frames) < 181
    assert error is not None and error.startswith(f"stopped at frame {len(frames)}:"), error
    assert "\n" not in error
    # The frames before the cut are the original's.
    _, original, _, _ = read_all(whole)
    assert [f.pts for f in frames] == [f.pts for f in original[: len(frames)]]


def test_a_matroska_file_cut_near_its_end_is_truncated(tmp_path):
    """The review: Matroska declares no frame count, and the time check allowed 1 s + 5 % (three minutes of a
    one-hour file): onepiece cut to 90 % (156 of 181 frames, 1 s short) passed as complete. The video track's
    DURATION tag (its end time, which FFmpeg's and mkvmerge's muxers write) is now held to half a second."""
    whole = tmp_path / "m.mkv"
    with av.open(str(asset(ONEPIECE))) as i, av.open(str(whole), "w") as o:  # video and audio
        out = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = out[p.stream.index]
                o.mux(p)
    _, frames, _, error = read_all(whole)
    assert len(frames) == 181 and error is None, error  # the whole file is complete
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:int(len(data) * 0.9)])
    _, frames, _, error = read_all(cut)
    assert 150 < len(frames) < 181 and error is not None and "the file ends early" in error, (len(frames), error)
    # A window of the whole file is not judged against the file's end.
    with VideoReader(str(whole), window=Window(1.0, 2.0, None)) as r:
        assert sum(isinstance(x, Frame) for x in r) == 48 and r.error is None, r.error
    # Variable frame rate: a last frame held 3 s ends where the tag says, though its start is 3 s before.
    held = tmp_path / "held.mkv"
    with av.open(str(held), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        packets = []
        for i, t in enumerate([*range(0, 800, 40), 800]):
            f = av.VideoFrame.from_ndarray(_pattern(i, 64, 48), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            packets += s.encode(f)
        for p in [*packets, *s.encode(None)]:
            if p.pts == 800:
                p.duration = 3000
            c.mux(p)
    _, frames, _, error = read_all(held)
    assert len(frames) == 21 and error is None, error


def test_ts_cut_mid_packet_stops_before_its_last_picture(tmp_path):
    # MPEG-TS video packets declare no length: the file's size (not whole 188-byte packets) is the
    # sign, independent of whether the decoder flags the cut-short picture.
    whole = remux(asset(ONEPIECE), tmp_path / "video.ts")
    data = whole.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2 + 100])
    assert cut.stat().st_size % 188 != 0
    _, frames, _, error = read_all(cut)
    assert 0 < len(frames) < 181
    assert error == f"stopped at frame {len(frames)}: " + error.split(": ", 1)[1]
    assert "ends in the middle of a packet" in error
    _, original, _, _ = read_all(whole)
    assert [f.pts for f in frames] == [f.pts for f in original[: len(frames)]]
    assert np.array_equal(frames[-1].rgb, original[len(frames) - 1].rgb)


def test_ts_files_joined_with_cat_give_the_first_recording_whole_and_name_the_join(tmp_path):
    """The review: two MPEG-TS recordings joined with cat stopped two frames before the join as damage
    (the continuity counters break there, so FFmpeg flags a whole packet). The first recording now
    comes out whole and the reader names the join, where the timestamps begin again."""
    one = tmp_path / "one.ts"
    with av.open(str(asset(ONEPIECE))) as i, av.open(str(one), "w") as o:  # video and audio, stream-copied
        out = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = out[p.stream.index]
                o.mux(p)
    size = one.stat().st_size
    joined = tmp_path / "joined.ts"
    joined.write_bytes(one.read_bytes() * 2)
    _, original, original_audio, error = read_all(one)
    assert error is None and len(original) == 181 and len(original_audio) > 300, error
    _, frames, audio, error = read_all(joined)
    assert len(frames) == 181, (len(frames), error)
    assert [f.pts for f in frames] == [f.pts for f in original]
    assert np.array_equal(frames[-1].rgb, original[-1].rgb)
    assert error is not None and error.startswith(f"stopped at frame 181: {video_io.JOINED} at byte "), error
    assert error_kind(joined) == video_io.STOP_JOINED
    at = int(error.split(" at byte ", 1)[1].split(",")[0])
    assert size <= at < size + 188 * 16 and "joined end to end" in error and "\n" not in error, error
    # the first recording's audio up to its video's end (its last few packets follow the join)
    assert len(original_audio) - 40 < len(audio) <= len(original_audio), (len(audio), len(original_audio))
    # Damage that is not a join still stops there: the same bytes with the second recording's start
    # overwritten are damage, not a join.
    data = bytearray(joined.read_bytes())
    rng = random.Random(2)
    data[one.stat().st_size - 30000: one.stat().st_size - 27000] = rng.randbytes(3000)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    _, frames, _, error = read_all(damaged)
    assert len(frames) < 181 and error is not None and video_io.JOINED not in error, (len(frames), error)
    assert error_kind(damaged) == video_io.STOP_DAMAGED


def test_corrupt_bytes_mid_file_stop_decoding_with_error(tmp_path):
    whole = remux(asset(ONEPIECE), tmp_path / "fs.mp4", {"movflags": "faststart"})
    data = bytearray(whole.read_bytes())
    rng = random.Random(1)
    mid = len(data) // 2
    data[mid : mid + 3000] = rng.randbytes(3000)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    info, frames, _, error = read_all(bad)
    assert info.frame_count == 181 and 0 < len(frames) < 181
    assert error is not None and "corrupt" in error and f"frame {len(frames)}" in error


# -- live network streams (a local TCP server sending MPEG-TS) ----------------------------


def _serve_once(data: bytes, hold: threading.Event | None = None) -> str:
    """Serve ``data`` to one TCP client; keep the connection open until ``hold`` is set."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def run():
        with srv:
            conn, _ = srv.accept()
            with conn:
                conn.sendall(data)
                if hold is not None:
                    hold.wait(30)

    threading.Thread(target=run, daemon=True).start()
    return f"tcp://127.0.0.1:{port}"


def test_network_stream_is_live_and_ends_when_the_sender_closes(tmp_path):
    data = make_clip(tmp_path / "s.ts", n=30).read_bytes()
    info, frames, _, error = read_all(_serve_once(data))
    assert info.is_live and info.frame_count is None and (info.width, info.height) == (64, 48)
    assert len(frames) == 30 and error is None


def test_stalled_network_stream_stops_with_error(tmp_path, monkeypatch):
    monkeypatch.setattr(video_io, "NETWORK_READ_TIMEOUT_S", 1.0)
    data = make_clip(tmp_path / "s.ts", n=60).read_bytes()
    hold = threading.Event()
    try:
        start = time.monotonic()
        info, frames, _, error = read_all(_serve_once(data[: len(data) // 2], hold))
        assert time.monotonic() - start < 8
    finally:
        hold.set()
    assert info.is_live and 0 < len(frames) < 60
    assert error is not None and "stream lost" in error


def test_a_live_stream_whose_timestamps_start_over_keeps_going_forward(tmp_path):
    # A sender that loops its file or restarts its encoder: the timestamps begin again mid-stream. Frames
    # after the jump once all got the last pts + 1 tick (played at once) and the audio failed the muxer.
    clip = make_clip(tmp_path / "s.ts", n=24, audio_s=1.0)
    out = tmp_path / "out.mp4"
    with VideoReader(_serve_once(clip.read_bytes() * 3)) as r, VideoWriter(out, 64, 48, r.info.time_base,
                                                                            r.info.fps, audio_from=r) as w:
        assert r.info.is_live
        copy(r, w)
    pts = decoded_pts(out)
    step = pts[1] - pts[0]
    gaps = [b - a for a, b in zip(pts, pts[1:])]
    # Each join costs the frame before it (MPEG-TS flags it damaged); the next loop starts where its audio ended.
    assert len(pts) == 70 and min(gaps) == step and max(gaps) < 4 * step
    with av.open(str(clip)) as c:
        loop_s = float(c.streams.audio[0].duration * c.streams.audio[0].time_base)
    with av.open(str(out)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(3 * loop_s, abs=0.05)
        assert float((pts[-1] + step) * video.time_base) == pytest.approx(3 * loop_s, abs=0.15)


def test_duration_of_a_live_stream_whose_timestamps_start_over_ends(tmp_path):
    # --duration 1.5 of a 1 s recording sent in a loop: once, every loop's frames before 1.5 s were kept
    # (a sender looping forever: a run that never ends).
    clip = make_clip(tmp_path / "s.ts", n=25)
    with VideoReader(_serve_once(clip.read_bytes() * 4), window=Window(duration_s=1.5)) as r:
        pts = [item.pts for item in r if isinstance(item, Frame)]
    step = pts[1] - pts[0]
    assert pts == sorted(set(pts)) and float(pts[-1] * r.info.time_base) == pytest.approx(1.48)
    assert len(pts) == 37 and all(b - a <= 2 * step for a, b in zip(pts, pts[1:]))  # less the frame lost at the join


def test_i420_passthrough_decision():
    from sredge.runtime.video_io import i420_passthrough_ok

    assert i420_passthrough_ok(640, 360, 0, 2, 0)  # unspecified matrix and range: BT.601 limited assumed
    assert i420_passthrough_ok(640, 360, 0, 5, 1) and i420_passthrough_ok(640, 360, 0, 6, 1)
    assert not i420_passthrough_ok(640, 360, 0, 1, 1)  # BT.709: its Y is not the BT.601 Y
    assert not i420_passthrough_ok(640, 360, 0, 2, 2)  # full range
    assert not i420_passthrough_ok(640, 360, 1, 2, 0)  # rotated
    assert not i420_passthrough_ok(641, 360, 0, 2, 0) and not i420_passthrough_ok(640, 361, 0, 2, 0)


def test_i420_frames_are_the_source_samples_and_convert_like_the_rgb_path():
    import cv2

    src = str(asset("video/bottle-detection.mp4"))
    with VideoReader(src, want_i420=True) as yuv, VideoReader(src) as rgb:
        f_yuv = next(f for f in yuv if isinstance(f, Frame))
        f_rgb = next(f for f in rgb if isinstance(f, Frame))
    assert yuv.i420 and not rgb.i420
    assert f_yuv.rgb is None and f_yuv.i420.shape == (360 * 3 // 2, 640)
    # The RGB path's frame is the BT.601 conversion of the same samples (within rounding).
    diff = np.abs(f_yuv.to_rgb().astype(int) - f_rgb.rgb)
    assert diff.mean() < 2.0 and diff.max() <= 4, (diff.mean(), diff.max())  # chroma interpolation differs
    # Y is the source's own: the RGB round trip changes it by rounding, and clips the samples (and colours)
    # outside 16..235 that real video has (this clip's Y spans 13..251).
    y_src = f_yuv.i420[:360].astype(int)
    y_from_rgb = cv2.cvtColor(f_rgb.rgb, cv2.COLOR_RGB2YUV_I420)[:360].astype(int)
    nominal = (y_src >= 16) & (y_src <= 235)
    assert np.percentile(np.abs(y_from_rgb - y_src)[nominal], 99) <= 2  # RGB clipping of saturated colours aside
    assert y_src.min() < 16 or y_src.max() > 235


# -- --start on files without an index -----------------------------------------------------------


def _ts_clip(path: Path, gop: int, n: int = 100, size: tuple[int, int] = (96, 64)) -> Path:
    """x264 at its default preset, a key frame every ``gop`` frames (``gop_size``), each frame told apart by a
    moving column: the audit's clip, on which FFmpeg's timestamp search in MPEG-TS lands past the first key frame."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        w, h = size
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = gop
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, i % w] = 255
            img[(i // 10) * 6:(i // 10) * 6 + 6, :, 1] = 255
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("name,gop,start_s,first", [
    ("sparse.ts", 80, 0.1, 3),    # a TS seek for the stream's start landed on the second key frame (80)
    ("sparse.ts", 80, 1.0, 25),
    ("every25.ts", 25, 0.1, 3),   # ... or on the next one (25): 17 frames lost, exit 0
    ("one_key.ts", 1000, 0.1, 3),  # landed inside the only group of pictures: no frame, "past the end"
    ("sparse.mkv", 80, 0.1, 3),
])
def test_a_window_start_keeps_every_frame_after_it(tmp_path, name, gop, start_s, first):
    """The audit: --start on MPEG-TS input silently dropped the frames up to the next key frame (exit 0,
    frames in == frames out), and a resumed TS run was refused ('frame 70 does not decode as it did')."""
    src = _ts_clip(tmp_path / name, gop)
    _, whole, _, _ = read_all(src)
    with VideoReader(str(src), window=Window(start_s, None, None)) as r:
        frames = [item for item in r if isinstance(item, Frame)]
    assert len(frames) == 100 - first
    assert np.array_equal(frames[0].rgb, whole[first].rgb) and np.array_equal(frames[-1].rgb, whole[-1].rgb)
