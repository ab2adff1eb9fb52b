"""Part of a video (--start/--duration/--frames): parsing and checks (pure), the reader's cut on real clips."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from sredge.errors import InputError
from sredge.runtime.video_io import Frame, VideoReader
from sredge.runtime.window import Window, expected_frames, parse_time, plan_window
from tests.runtime.test_video_io import make_clip, read_all, remux


def test_parse_time():
    assert parse_time("12.5") == 12.5
    assert parse_time("0") == 0.0
    assert parse_time("01:02") == 62.0
    assert parse_time("1:02:03.25") == 3723.25
    assert parse_time(" 00:00:00.040 ") == pytest.approx(0.04)
    for bad in ("-1", "abc", "1:60", "1:75:00", "nan", "inf", "", "1::2"):
        with pytest.raises(InputError):
            parse_time(bad)
    assert parse_time("1e9", "--duration") == 1e9
    with pytest.raises(InputError, match="--duration 1e308: at most 1e"):  # the video audit: an internal error
        parse_time("1e308", "--duration")


def test_plan_window_refuses_what_cannot_work():
    assert plan_window(None, None, None, live=False).is_whole
    assert plan_window("1:00", "2.5", 10, live=False) == Window(60.0, 2.5, 10)
    assert plan_window(None, "5", 100, live=True) == Window(0.0, 5.0, 100)  # live: duration/frames fine
    for args, what in [(("3", None, None, True), "--start needs a video file"),
                       ((None, "0", None, False), "--duration 0 keeps no frame"),
                       ((None, None, 0, False), "--frames 0 keeps no frame"),
                       (("-2", None, None, False), "--start -2")]:
        with pytest.raises(InputError, match=what):
            plan_window(*args)


def test_expected_frames():
    fps = Fraction(25)
    assert expected_frames(Window(0.52, 0.4), 36, fps) == 10
    assert expected_frames(Window(0.52, None, 5), 36, fps) == 5
    assert expected_frames(Window(1.0), 36, fps) == 11
    assert expected_frames(Window(0.0, None, 50), 36, fps) == 36
    assert expected_frames(Window(1.0), None, None) is None


def _cut(clip, window):
    with VideoReader(str(clip), window=window) as r:
        frames, packets = [], []
        for item in r:
            (frames if isinstance(item, Frame) else packets).append(item)
        return r, frames, packets


@pytest.mark.parametrize("window, first, count", [
    (Window(0.52, 0.4), 13, 10),       # starts mid-GOP (key frames every 8): seek to 8, drop 8..12
    (Window(0.5, None, 5), 13, 5),     # between frames 12 (0.48 s) and 13 (0.52 s): the first at or after
    (Window(0.96), 24, 12),            # exactly on a key frame, to the end
    (Window(0.0, 10.0, 1000), 0, 36),  # longer than the clip: all of it, no error
])
def test_reader_cut_is_frame_accurate_and_retimed(tmp_path, window, first, count):
    clip = make_clip(tmp_path / "c.mp4", n=36, fps=25, audio_s=1.5, gop=8)
    _, whole, _, _ = read_all(clip)
    r, frames, packets = _cut(clip, window)
    assert r.error is None
    assert len(frames) == count == r.info.frame_count
    assert [f.index for f in frames] == list(range(count))
    for f, src in zip(frames, whole[first:first + count]):  # same decoded pictures, pts shifted to 0
        assert (f.rgb == src.rgb).all()
        assert f.pts == src.pts - whole[first].pts
    # Audio: the packets that start inside the window (to the end of the video's frames when the window
    # ends there, else to the end of the audio: 1.5 s), shifted alike; its length within one AAC frame.
    t0 = whole[first].pts * float(r.info.time_base)
    span = count / 25 if first + count < 36 else 1.5 - t0
    starts = [p.pts * float(p.time_base) for p in packets]
    one = 1024 / 44100
    audio_s = sum(p.duration for p in packets) * float(packets[0].time_base)
    assert 0 <= starts[0] < one and max(starts) < span and abs(audio_s - span) <= one


@pytest.mark.parametrize("container", ["mkv", "ts", "mov"])
def test_other_containers_cut_at_the_same_frames(tmp_path, container):
    """MPEG-TS has no index: its seek can land past the start, and the reader steps back."""
    clip = remux(make_clip(tmp_path / "c.mp4", n=36, fps=25, gop=8), tmp_path / f"c.{container}")
    _, whole, _, _ = read_all(clip)
    r, frames, _ = _cut(clip, Window(0.52, 0.4))
    assert r.error is None and len(frames) == 10
    assert all((f.rgb == src.rgb).all() for f, src in zip(frames, whole[13:23]))


def test_a_window_without_frames_is_one_line(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", n=10, fps=25)
    with pytest.raises(InputError, match=r"--start 5 s is at or past the end of .* \(0\.400 s long\)"):
        with VideoReader(str(clip), window=Window(5.0, 1.0)):
            pass
    # The last frame starts at 0.36 s: 0.38 s is inside the clip, after its last frame (was "past the end")
    with pytest.raises(InputError, match=r"--start 0.38 s is after the last frame's start in .* \(0\.400 s long\)"):
        with VideoReader(str(clip), window=Window(0.38, None)):
            pass
    with pytest.raises(InputError, match=r"no frame from 0.1 s to 0.11 s; give a longer --duration"):
        with VideoReader(str(clip), window=Window(0.1, 0.01)):  # frames at 0.08 and 0.12 s
            pass


def test_a_short_window_stops_reading_early(tmp_path):
    """--frames on a long file without audio reads no further than the window's last frame."""
    clip = make_clip(tmp_path / "c.mp4", n=100, fps=25, gop=10)
    with VideoReader(str(clip), window=Window(0.4, None, 3)) as r:
        assert len(list(r)) == 3
        assert r._count < 20  # frames decoded: from the key frame at 0.4 s, plus the decoder's delay


def test_reader_without_window_is_unchanged(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", n=12, fps=25, audio_s=0.5, gop=4)
    info, frames, packets, err = read_all(clip)
    with av.open(str(clip)) as c:
        n_audio = sum(1 for p in c.demux(audio=0) if p.size)
    assert err is None and len(frames) == info.frame_count == 12 and len(packets) == n_audio
