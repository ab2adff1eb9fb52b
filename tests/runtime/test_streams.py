"""Every stream and tag kept where the output can hold it: the plan (pure) and real clips made here with PyAV.

The source clip is a Matroska file with H.264 video, AAC audio, a SubRip subtitle, a font attachment,
two chapters and title / language / creation-time tags; it goes through the real VideoReader and
VideoWriter (and ``sr-run`` once) into MKV, MP4 and back.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.runtime.streams import (
    StreamFacts,
    ass_to_mov_text,
    copyable_tags,
    mov_text_to_srt,
    output_format,
    plan_carry,
    shift_chapters,
    srt_to_mov_text,
)
from sredge.runtime.video_io import Frame, VideoReader, VideoWriter

FONT = b"\x00\x01\x00\x00" + bytes(range(256)) * 4  # bytes standing in for a TrueType font
SUBTITLE = "Hello <i>there</i>"


def make_rich_mkv(path, n: int = 25, size=(64, 48)) -> None:
    """H.264 + AAC + SubRip + a font attachment + two chapters + tags, 1 s at 25 fps."""
    w, h = size
    with av.open(str(path), "w") as c:
        c.metadata["title"] = "A test clip"
        c.metadata["creation_time"] = "2020-01-02T03:04:05.000000Z"
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.metadata["language"] = "fra"
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        a.metadata["language"] = "eng"
        s = c.add_mux_stream("subrip")
        s.time_base = Fraction(1, 1000)
        s.metadata["language"] = "deu"
        c.add_attachment("font.ttf", "application/x-truetype-font", FONT)
        c.set_chapters([
            {"id": 1, "start": 0, "end": 400, "time_base": Fraction(1, 1000), "metadata": {"title": "Intro"}},
            {"id": 2, "start": 400, "end": 1000, "time_base": Fraction(1, 1000), "metadata": {"title": "Main"}},
        ])
        c.start_encoding()
        y, x = np.mgrid[0:h, 0:w]
        for i in range(n):
            img = np.stack([x * 4 % 256, y * 5 % 256, np.full_like(x, i * 9 % 256)], -1).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
            if i == 5:
                p = av.Packet(SUBTITLE.encode())
                p.stream, p.pts, p.dts, p.duration, p.time_base = s, 200, 200, 300, Fraction(1, 1000)
                c.mux(p)
        c.mux(v.encode(None))
        tone = (0.2 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)
        for k in range(0, 48000, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, k
            c.mux(a.encode(af))
        c.mux(a.encode(None))


def copy_through(src, dst, **writer_kwargs) -> list[str]:
    """Decode ``src`` and write it to ``dst`` with the real reader and writer; returns the writer's notices."""
    with VideoReader(str(src)) as r:
        i = r.info
        with VideoWriter(dst, i.width, i.height, i.time_base, i.fps, preset="ultrafast", audio_from=r,
                         **writer_kwargs) as w:
            for item in r:
                if isinstance(item, Frame):
                    w.write(item)
                else:
                    w.mux_audio(item)
    return w.notices


def streams_of(path) -> list[tuple[str, str | None, dict]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context else None, dict(s.metadata)) for s in c.streams]


def subtitle_texts(path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as c:
        s = c.streams.subtitles[0]
        return [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(s) if p.size > 2]


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    path = tmp_path_factory.mktemp("rich") / "rich.mkv"
    make_rich_mkv(path)
    return path


# -- the plan (pure) ------------------------------------------------------------------

STREAMS = (StreamFacts(0, "video", "h264"), StreamFacts(1, "audio", "aac", "eng"),
           StreamFacts(2, "subtitle", "subrip", "deu"), StreamFacts(3, "attachment", "", None, "font.ttf"),
           StreamFacts(4, "data", ""), StreamFacts(5, "chapters", ""))
MKV = frozenset({"h264", "aac", "subrip", "ass"})
MP4 = frozenset({"h264", "aac", "mov_text"})


def test_matroska_carries_audio_subtitles_and_attachments():
    plan = plan_carry(STREAMS, 0, "matroska", ".mkv", MKV.__contains__)
    assert [(c.index, c.action) for c in plan] == [(1, "copy"), (2, "copy"), (3, "attach"), (4, "drop")]
    notices = [c.notice for c in plan if c.notice]
    assert notices == ["data stream #4 (unknown codec) is not carried: sr-run does not copy data streams"]


def test_mp4_converts_subrip_and_names_each_dropped_stream():
    plan = {c.index: c for c in plan_carry(STREAMS, 0, "mp4", ".mp4", MP4.__contains__)}
    assert plan[1].action == "copy" and plan[1].notice is None
    assert plan[2].action == "to_mov_text" and "mov_text" in plan[2].notice and "\n" not in plan[2].notice
    assert plan[3].action == "drop" and plan[3].notice.startswith("attachment stream #3 (font.ttf) is not carried")
    assert ".mkv" in plan[3].notice
    assert 5 not in plan  # MP4's chapter track: carried as chapters, no notice


def test_webm_drops_subrip_with_a_notice_and_refuses_aac():
    webm = frozenset({"av1", "vp9", "opus", "webvtt"})
    no_audio = [s for s in STREAMS if s.kind != "audio"]
    plan = {c.index: c for c in plan_carry(no_audio, 0, "webm", ".webm", webm.__contains__)}
    assert plan[2].action == "drop" and "cannot hold subrip subtitles" in plan[2].notice
    with pytest.raises(InputError, match=r"\.webm files cannot hold the input's aac audio; write to \.mkv"):
        plan_carry(STREAMS, 0, "webm", ".webm", webm.__contains__)


def test_tags_of_the_old_file_are_not_copied():
    tags = {"title": "t", "language": "eng", "creation_time": "2020", "encoder": "Lavf", "DURATION": "00:00:01",
            "major_brand": "isom", "_STATISTICS_TAGS": "BPS", "NUMBER_OF_FRAMES": "25", "BPS": "1"}
    assert copyable_tags(tags) == {"title": "t", "language": "eng", "creation_time": "2020"}


def test_chapters_follow_the_cut():
    ms = Fraction(1, 1000)
    chapters = [{"id": 1, "start": 0, "end": 400, "time_base": ms, "metadata": {"title": "a"}},
                {"id": 2, "start": 400, "end": 1000, "time_base": ms, "metadata": {"title": "b"}}]
    assert shift_chapters(chapters, Fraction(0), None) == chapters
    cut = shift_chapters(chapters, Fraction(1, 2), Fraction(9, 10))
    assert [(c["id"], c["start"], c["end"]) for c in cut] == [(2, 0, 400)]
    cut = shift_chapters(chapters, Fraction(3, 10), None)
    assert [(c["id"], c["start"], c["end"]) for c in cut] == [(1, 0, 100), (2, 100, 700)]


def test_text_subtitles_rewrap_both_ways():
    sample = srt_to_mov_text(b"Hello <i>there</i>\nsecond line")
    assert sample == b"\x00\x17Hello there\nsecond line"  # 23 bytes of text
    assert mov_text_to_srt(sample) == b"Hello there\nsecond line"
    assert mov_text_to_srt(b"\x00\x00") == b"" and mov_text_to_srt(b"") == b""


def test_ass_becomes_plain_mov_text():
    assert ass_to_mov_text(b"0,0,Default,,0,0,0,,{\\i1}Hello, world{\\i0}\\Nline two") == (
        b"\x00\x15Hello, world\nline two")  # 21 bytes: the commas of the text are kept
    plan = plan_carry([StreamFacts(1, "subtitle", "ass", "jpn")], 0, "mp4", ".mp4", MP4.__contains__)
    assert plan[0].action == "ass_to_mov_text" and "ASS styles" in plan[0].notice


def test_anime_style_mkv_ass_and_font_to_mp4(tmp_path):
    src, out = tmp_path / "ass.mkv", tmp_path / "ass.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = c.add_mux_stream("ass")
        s.time_base = Fraction(1, 1000)
        c.add_attachment("font.ttf", "application/x-truetype-font", FONT)
        c.start_encoding()
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
            if i == 2:
                p = av.Packet(b"0,0,Default,,0,0,0,,{\\i1}Hi{\\i0}\\Nthere")
                p.stream, p.pts, p.dts, p.duration, p.time_base = s, 100, 100, 200, Fraction(1, 1000)
                c.mux(p)
        c.mux(v.encode(None))
    notices = copy_through(src, out)
    assert len(notices) == 2 and "carried as mov_text" in notices[0] and "font.ttf" in notices[1]
    assert subtitle_texts(out) == [(0.1, b"\x00\x08Hi\nthere")]


def test_output_format_writes_nothing(tmp_path):
    fmt, codecs = output_format(tmp_path / "x.webm")
    assert fmt == "webm" and "av1" in codecs and "h264" not in codecs
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="suffix like .mp4"):
        output_format(tmp_path / "x.unknownsuffix")


# -- real clips -----------------------------------------------------------------------


def test_mkv_keeps_subtitle_attachment_chapters_and_tags(rich, tmp_path):
    out = tmp_path / "out.mkv"
    assert copy_through(rich, out) == []
    kinds = streams_of(out)
    assert [(t, c) for t, c, _ in kinds] == [("video", "h264"), ("audio", "aac"), ("subtitle", "srt"),
                                             ("attachment", None)]
    assert kinds[0][2]["language"] == "fra" and kinds[1][2]["language"] == "eng"
    assert kinds[2][2]["language"] == "deu"
    with av.open(str(out)) as c:
        assert c.metadata["title"] == "A test clip"
        assert c.metadata["creation_time"].startswith("2020-01-02T03:04:05")
        att = c.streams[3]
        assert att.metadata["filename"] == "font.ttf" and bytes(att.data) == FONT
        assert [(ch["metadata"]["title"], float(ch["start"] * ch["time_base"])) for ch in c.chapters()] == [
            ("Intro", 0.0), ("Main", 0.4)]
    assert subtitle_texts(out) == [(0.2, SUBTITLE.encode())]


def test_mp4_carries_mov_text_and_says_what_it_drops(rich, tmp_path):
    out = tmp_path / "out.mp4"
    notices = copy_through(rich, out)
    assert len(notices) == 2
    assert notices[0].startswith("subtitle stream #2 (srt, deu) carried as mov_text")  # Matroska's SubRip is "srt"
    assert notices[1].startswith("attachment stream #3 (font.ttf) is not carried")
    kinds = streams_of(out)
    assert [(t, c) for t, c, _ in kinds][:3] == [("video", "h264"), ("audio", "aac"), ("subtitle", "mov_text")]
    assert kinds[2][2]["language"] == "deu"
    assert subtitle_texts(out) == [(0.2, b"\x00\x0bHello there")]
    with av.open(str(out)) as c:
        assert c.metadata["title"] == "A test clip"
        assert c.metadata["creation_time"].startswith("2020-01-02T03:04:05")
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Main"]
    back = tmp_path / "back.mkv"  # and MP4 -> MKV: mov_text back to SubRip, the chapter track not a "data stream"
    notices = copy_through(out, back)
    assert notices == ["subtitle stream #2 (mov_text, deu) carried as SubRip, the text subtitles .mkv files hold"]
    assert [t for t, _, _ in streams_of(back)] == ["video", "audio", "subtitle"]
    assert [text for _, text in subtitle_texts(back)] == [b"Hello there"]


def test_sr_run_keeps_streams_and_prints_one_line_per_dropped_stream(cli, exported, rich, tmp_path):
    out = tmp_path / "up.mp4"
    res = cli("run", "--video", rich, "--model", exported("fsrcnn_x2"), "-o", out, "-q", "--preset", "ultrafast")
    assert res.code == 0, res.err
    lines = [ln for ln in res.err.splitlines() if ln.startswith("sr-run: note: ")]
    assert len(lines) == 2 and "font.ttf" in lines[1] and "not carried" in lines[1], res.err
    assert [(t, c) for t, c, _ in streams_of(out)][:3] == [("video", "h264"), ("audio", "aac"),
                                                          ("subtitle", "mov_text")]
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (128, 96)
        assert c.metadata["title"] == "A test clip" and c.streams.video[0].metadata["language"] == "fra"
