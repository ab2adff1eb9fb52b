"""Encoder choice: candidate order, option mapping, the choice given probes, and real PyAV probes.

The real probes run against the FFmpeg inside PyAV: libx264 must open here; h264_nvenc is
compiled into PyAV's wheels but opens only with an NVIDIA GPU that has NVENC and its driver,
so on a machine without one ``auto`` must fall back to libx264 and say so.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.runtime.encoders import (
    CODECS,
    ENCODER_CHOICES,
    ENCODERS,
    NVENC_PRESETS,
    X264_PRESETS,
    EncoderChoice,
    auto_candidates,
    check_container,
    choose_encoder,
    container_problem,
    encoder_options,
    encoder_pix_fmt,
    is_jetson,
    probe_encoder,
    requested_encoder,
    resolve_encoder,
)
from sredge.runtime.video_io import Frame, VideoWriter

NVENC_WHY = probe_encoder("h264_nvenc", encoder_options("h264_nvenc"))
"""None where NVENC opens on this machine, else why not."""


# -- candidates and options (pure) ----------------------------------------------


def test_auto_candidates_per_platform():
    assert auto_candidates(jetson=False, crf=18) == ("h264_nvenc", "libx264")
    assert auto_candidates(jetson=True, crf=18) == ("libx264",)  # Orin Nano has no NVENC; pip FFmpeg reaches none
    assert auto_candidates(jetson=False, crf=0) == ("libx264",)  # lossless is x264's
    for jetson in (False, True):
        for crf in (0, 18, 51):
            assert auto_candidates(jetson, crf)[-1] == "libx264"


def test_choices_and_table():
    assert ENCODER_CHOICES == ("auto", "libx264", "h264_nvenc", "libx265", "hevc_nvenc", "libsvtav1", "av1_nvenc",
                               "ffv1")
    assert {n: (e.codec, e.hardware) for n, e in ENCODERS.items()} == {
        "libx264": ("h264", False), "h264_nvenc": ("h264", True),
        "libx265": ("hevc", False), "hevc_nvenc": ("hevc", True),
        "libsvtav1": ("av1", False), "av1_nvenc": ("av1", True), "ffv1": ("ffv1", False)}
    assert CODECS == ("h264", "hevc", "av1", "ffv1")


def test_auto_candidates_per_codec():
    assert auto_candidates(False, None, "hevc") == ("hevc_nvenc", "libx265")
    assert auto_candidates(False, None, "av1") == ("av1_nvenc", "libsvtav1")
    assert auto_candidates(False, None, "ffv1") == ("ffv1",)  # no hardware FFV1
    assert auto_candidates(True, None, "hevc") == ("libx265",)
    assert auto_candidates(False, 0, "hevc") == ("libx265",)


@pytest.mark.parametrize(("codec", "encoder", "expect"), [
    (None, "auto", ("h264", "auto")), ("hevc", "auto", ("hevc", "auto")), (None, "libx265", ("hevc", "libx265")),
    ("av1", "libsvtav1", ("av1", "libsvtav1")), ("ffv1", "ffv1", ("ffv1", "ffv1")),
])
def test_codec_picks_the_family_encoder_the_implementation(codec, encoder, expect):
    assert requested_encoder(codec, encoder) == expect


def test_a_codec_and_an_encoder_that_disagree_are_refused():
    with pytest.raises(InputError) as err:
        requested_encoder("hevc", "libx264")
    assert str(err.value) == ("--encoder libx264 writes h264, not --codec hevc: drop one, or use --encoder auto or "
                              "libx265 or hevc_nvenc with --codec hevc")
    with pytest.raises(InputError, match="unknown codec 'vp9'"):
        requested_encoder("vp9", "auto")


def test_container_problem():
    mp4 = {"h264", "hevc", "av1", "ffv1", "aac"}
    webm = {"av1", "vp9", "opus"}
    assert all(container_problem("mp4", ".mp4", c, mp4) is None for c in CODECS)
    assert container_problem("webm", ".webm", "h264", webm) == (
        ".webm files cannot hold h264 video: use --codec av1, or -o NAME.mp4 or NAME.mkv")
    assert container_problem("mov", ".mov", "ffv1", {"h264", "hevc"}) == (
        ".mov files cannot hold ffv1 video: use --codec h264 or hevc, or -o NAME.mkv")
    assert container_problem("mpegts", "", "av1", set()) == (
        "the mpegts format cannot hold av1 video: use -o NAME.mp4 or NAME.mkv")


def test_check_container_against_this_ffmpeg(tmp_path):
    check_container(tmp_path / "x.webm", "av1")
    check_container(tmp_path / "x.mkv", "ffv1")
    with pytest.raises(InputError, match=r"cannot write .+/x\.webm: \.webm files cannot hold hevc video"):
        check_container(tmp_path / "x.webm", "hevc")  # the path as given (the input audit: the folder was dropped)
    # The video audit: FFmpeg lists AV1 for MOV, whose muxer refuses it only when writing starts (after the
    # whole upscale); the check says so first, and the combinations it lets through do open.
    with pytest.raises(InputError, match=r"\.mov files cannot hold av1 video: use --codec h264 or hevc"):
        check_container(tmp_path / "x.mov", "av1")
    for name, codec in (("x.mp4", "libsvtav1"), ("x.mov", "libx264")):
        with av.open(str(tmp_path / name), "w") as c:
            s = c.add_stream(codec, rate=25)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            c.start_encoding()
        (tmp_path / name).unlink()
    assert list(tmp_path.iterdir()) == []  # nothing written by the check


def test_svtav1_and_ffv1_options():
    assert encoder_options("libsvtav1") == {"crf": "25", "preset": "10"}
    assert encoder_options("libsvtav1", crf=40, preset="slow") == {"crf": "40", "preset": "5"}
    assert encoder_options("libsvtav1", crf=63, preset="13") == {"crf": "63", "preset": "13"}
    assert encoder_options("libsvtav1", tune="zerolatency")["svtav1-params"] == "pred-struct=1"
    assert encoder_options("ffv1") == {"level": "3", "slicecrc": "1"}
    assert encoder_options("ffv1", threads=2, tune="zerolatency") == {"level": "3", "slicecrc": "1", "threads": "2"}
    assert encoder_options("libx264") == {"crf": "18", "preset": "veryfast"}  # defaults when not given


@pytest.mark.parametrize(("name", "kwargs", "words"), [
    ("ffv1", {"crf": 18}, "ffv1 is lossless: it takes no --crf or --preset"),
    ("ffv1", {"preset": "fast"}, "ffv1 is lossless"),
    ("libsvtav1", {"crf": 0}, "--crf 0 (lossless) is not available with libsvtav1"),
    ("libsvtav1", {"crf": 64}, "crf must be between 1 and 63"),
    ("libsvtav1", {"preset": "p4"}, "unknown libsvtav1 preset 'p4'"),
    ("libsvtav1", {"tune": "film"}, "unknown libsvtav1 tune 'film'"),
])
def test_bad_av1_and_ffv1_options(name, kwargs, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        encoder_options(name, **kwargs)


def test_ten_bit_pixel_formats():
    assert encoder_pix_fmt("libx264", 8) == "yuv420p"
    assert {encoder_pix_fmt(n, 10) for n in ("libx264", "libx265", "libsvtav1", "ffv1")} == {"yuv420p10le"}
    assert {encoder_pix_fmt(n, 10) for n in ("h264_nvenc", "hevc_nvenc", "av1_nvenc")} == {"p010le"}
    with pytest.raises(InputError, match="mpeg4 cannot write 10-bit video"):
        encoder_pix_fmt("mpeg4", 10)


def test_x264_options():
    assert encoder_options("libx264") == {"crf": "18", "preset": "veryfast"}
    assert encoder_options("libx264", crf=23, preset="slow", threads=2, tune="zerolatency") == {
        "crf": "23", "preset": "slow", "threads": "2", "tune": "zerolatency"}


def test_x265_options_silence_its_banner():
    assert encoder_options("libx265", crf=28, preset="medium") == {
        "crf": "28", "preset": "medium", "x265-params": "log-level=error"}


@pytest.mark.parametrize(("preset", "nv"), [
    ("ultrafast", "p1"), ("superfast", "p2"), ("veryfast", "p3"), ("faster", "p3"), ("fast", "p4"),
    ("medium", "p4"), ("slow", "p5"), ("slower", "p6"), ("veryslow", "p7"), ("placebo", "p7"),
    *[(p, p) for p in NVENC_PRESETS],
])
def test_nvenc_preset_mapping(preset, nv):
    for name in ("h264_nvenc", "hevc_nvenc"):
        assert encoder_options(name, crf=20, preset=preset) == {"rc": "vbr", "cq": "20", "preset": nv}


def test_every_x264_preset_has_an_nvenc_preset():
    assert {encoder_options("h264_nvenc", preset=p)["preset"] for p in X264_PRESETS} <= set(NVENC_PRESETS)


def test_nvenc_latency_and_threads():
    opts = encoder_options("h264_nvenc", crf=18, threads=4, tune="zerolatency")
    assert opts == {"rc": "vbr", "cq": "18", "preset": "p3", "tune": "ull", "zerolatency": "1", "bf": "0"}
    assert encoder_options("hevc_nvenc", tune="hq")["tune"] == "hq"


@pytest.mark.parametrize(("name", "kwargs", "words"), [
    ("libx264", {"preset": "warp"}, "unknown libx264 preset 'warp'"),
    ("libx265", {"preset": "p3"}, "unknown libx265 preset 'p3'"),
    ("h264_nvenc", {"preset": "p8"}, "unknown h264_nvenc preset 'p8'"),
    ("h264_nvenc", {"crf": 0}, "--crf 0 (lossless) is not available with h264_nvenc"),
    ("h264_nvenc", {"tune": "film"}, "unknown h264_nvenc tune 'film'"),
    ("libx264", {"crf": 52}, "crf must be between 0 and 51"),
    ("libx264", {"crf": -1}, "crf must be between 0 and 51"),
])
def test_bad_options_are_input_errors(name, kwargs, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        encoder_options(name, **kwargs)


def test_unknown_encoder_gets_crf_and_preset_as_before():
    assert encoder_options("libvpx-vp9", crf=30, preset="good") == {"crf": "30", "preset": "good"}


# -- the choice given probes (pure) ---------------------------------------------


def _probe(table):
    calls = []

    def probe(name):
        calls.append(name)
        return table.get(name, "is not in this FFmpeg build")

    probe.calls = calls
    return probe


def test_auto_takes_the_first_that_opens():
    probe = _probe({"h264_nvenc": None, "libx264": None})
    choice = choose_encoder("auto", ("h264_nvenc", "libx264"), probe)
    assert choice == EncoderChoice("h264_nvenc", "auto", True, ())
    assert probe.calls == ["h264_nvenc"]
    assert choice.summary() == "encoder h264_nvenc (hardware)"


def test_auto_falls_back_and_says_why():
    probe = _probe({"h264_nvenc": "did not open: Operation not permitted", "libx264": None})
    choice = choose_encoder("auto", ("h264_nvenc", "libx264"), probe)
    assert (choice.name, choice.hardware) == ("libx264", False)
    assert choice.passed_over == (("h264_nvenc", "did not open: Operation not permitted"),)
    assert choice.summary() == "encoder libx264 (software; h264_nvenc did not open: Operation not permitted)"
    assert json.loads(json.dumps(choice.as_dict())) == {
        "name": "libx264", "requested": "auto", "hardware": False,
        "passed_over": {"h264_nvenc": "did not open: Operation not permitted"}}


def test_auto_with_nothing_working_names_what_was_tried():
    probe = _probe({"libx264": "did not open: x"})
    with pytest.raises(InputError, match=r"no video encoder opened \(h264_nvenc is not in this FFmpeg build; "
                                         r"libx264 did not open: x\); no encoder works"):
        choose_encoder("auto", ("h264_nvenc", "libx264"), probe)


def test_named_encoder_must_open_and_the_error_names_what_works():
    probe = _probe({"h264_nvenc": "did not open: no GPU", "libx264": None, "libx265": None})
    assert choose_encoder("libx265", (), probe) == EncoderChoice("libx265", "libx265", False)
    with pytest.raises(InputError) as err:
        choose_encoder("h264_nvenc", ("libx264",), probe)
    # Only encoders of the same codec are offered instead.
    assert str(err.value) == "--encoder h264_nvenc did not open: no GPU; encoders that work here: libx264"


def test_named_unknown_encoder():
    with pytest.raises(InputError, match="unknown encoder 'mpeg2video'"):
        choose_encoder("mpeg2video", (), _probe({}))


# -- platform detection -----------------------------------------------------------


def test_is_jetson(tmp_path):
    assert not is_jetson(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
    assert is_jetson(tmp_path)
    other = tmp_path / "other"
    (other / "proc/device-tree").mkdir(parents=True)
    (other / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    assert is_jetson(other)
    (other / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B\x00")
    assert not is_jetson(other)


# -- real probes against PyAV's FFmpeg --------------------------------------------


def test_libx264_opens_here():
    assert probe_encoder("libx264", encoder_options("libx264")) is None
    assert probe_encoder("libx264", encoder_options("libx264", tune="zerolatency", threads=1)) is None


def test_probe_reasons():
    assert probe_encoder("no_such_encoder", {}) == "is not in this FFmpeg build"
    assert probe_encoder("aac", {}) == "is not a video encoder"


@pytest.mark.parametrize("name", ["libsvtav1", "ffv1"])
def test_av1_and_ffv1_open_where_pyav_has_them(name):
    if name not in av.codecs_available:
        pytest.skip(f"this PyAV's FFmpeg has no {name}")
    assert probe_encoder(name, encoder_options(name)) is None
    assert probe_encoder(name, encoder_options(name), bit_depth=10) is None


def test_resolve_per_codec_and_depth():
    assert resolve_encoder("auto", codec="ffv1").name == "ffv1"
    if NVENC_WHY is not None:
        assert resolve_encoder("auto", codec="hevc", bit_depth=10).name == "libx265"
        assert resolve_encoder("auto", codec="av1").name == "libsvtav1"
    with pytest.raises(InputError, match="writes hevc, not --codec h264"):
        resolve_encoder("libx265", codec="h264")


def test_libx265_opens_where_pyav_has_it():
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV's FFmpeg has no libx265")
    assert probe_encoder("libx265", encoder_options("libx265")) is None


def test_auto_here_uses_nvenc_only_if_it_opens():
    choice = resolve_encoder("auto")
    if is_jetson():
        assert choice.name == "libx264" and choice.passed_over == ()
    elif NVENC_WHY is None:
        assert (choice.name, choice.hardware, choice.passed_over) == ("h264_nvenc", True, ())
    else:
        assert (choice.name, choice.hardware) == ("libx264", False)
        assert choice.passed_over == (("h264_nvenc", NVENC_WHY),)
        assert "h264_nvenc" in choice.summary() and choice.summary().startswith("encoder libx264 (software; ")


@pytest.mark.skipif(NVENC_WHY is None, reason="NVENC opens on this machine")
def test_named_nvenc_fails_here_naming_what_works():
    with pytest.raises(InputError) as err:
        resolve_encoder("h264_nvenc")
    msg = str(err.value)
    assert msg.startswith("--encoder h264_nvenc ") and "encoders that work here: libx264" in msg and "\n" not in msg


def test_resolve_checks_options_of_a_named_encoder():
    with pytest.raises(InputError, match="unknown libx264 preset 'p5'"):
        resolve_encoder("libx264", preset="p5")


def test_auto_passes_over_a_candidate_whose_options_do_not_fit():
    # p5 is an NVENC preset: libx264 cannot take it, so auto has nothing left where NVENC does not open.
    if NVENC_WHY is None:
        assert resolve_encoder("auto", preset="p5").name == "h264_nvenc"
    else:
        with pytest.raises(InputError, match="libx264 cannot take these options"):
            resolve_encoder("auto", preset="p5")


# -- the writer with each software encoder ----------------------------------------


@pytest.mark.parametrize(("codec", "name"), [("libx264", "h264"), ("libx265", "hevc")])
def test_writer_writes_with_the_chosen_encoder(tmp_path, codec, name):
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV's FFmpeg has no {codec}")
    out = tmp_path / f"{codec}.mp4"
    rgb = np.zeros((48, 64, 3), np.uint8)
    with VideoWriter(out, 64, 48, Fraction(1, 25), Fraction(25), codec=codec, preset="ultrafast") as w:
        for i in range(5):
            rgb[:, :, 0] = i * 40
            w.write(Frame(rgb.copy(), i, i))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == name
        assert len(list(c.decode(video=0))) == 5


@pytest.mark.skipif(NVENC_WHY is None, reason="NVENC opens on this machine")
def test_writer_with_nvenc_that_does_not_open_is_an_input_error(tmp_path):
    # NVENC without a driver fails with EPERM: an encoder that did not open, not a file that cannot be written.
    with pytest.raises(InputError, match="with h264_nvenc: the encoder did not open") as err:
        with VideoWriter(tmp_path / "o.mp4", 64, 48, Fraction(1, 25), Fraction(25), codec="h264_nvenc"):
            pass
    assert "choose -o elsewhere" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


# -- sr-run --encoder ---------------------------------------------------------------


def _clip(path, n=6, w=48, h=32):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), i * 30, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_sr_run_says_which_encoder_and_reports_it(cli, tmp_path):
    src, out, report = _clip(tmp_path / "in.mp4"), tmp_path / "out.mp4", tmp_path / "run.json"
    res = cli("run", "--video", src, "-o", out, "--report", report, "--preset", "ultrafast")
    assert res.code == 0, res.err
    lines = [ln for ln in res.err.splitlines() if ln.startswith("sr-run: encoder ")]
    expected = resolve_encoder("auto", preset="ultrafast")
    assert lines == [f"sr-run: {expected.summary()}"]
    assert json.loads(report.read_text())["encoder"] == expected.as_dict()
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == 6


def test_sr_run_named_encoder(cli, tmp_path):
    src, out, report = _clip(tmp_path / "in.mp4"), tmp_path / "out.mkv", tmp_path / "run.json"
    res = cli("run", "--video", src, "-o", out, "--encoder", "libx265", "--report", report, "-q")
    if "libx265" not in av.codecs_available:
        assert res.code == 2
        return
    assert res.code == 0, res.err
    assert json.loads(report.read_text())["encoder"] == {
        "name": "libx265", "requested": "libx265", "hardware": False, "passed_over": {}}
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    assert "x265 [info]" not in res.err


@pytest.mark.skipif(NVENC_WHY is None, reason="NVENC opens on this machine")
def test_sr_run_named_nvenc_that_does_not_open_exits_2_with_one_line(cli, tmp_path):
    src, out = _clip(tmp_path / "in.mp4"), tmp_path / "out.mp4"
    res = cli("run", "--video", src, "-o", out, "--encoder", "h264_nvenc")
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sr-run: error: --encoder h264_nvenc "), res.err
    assert "encoders that work here: libx264" in lines[0]
    assert not out.exists()


def test_sr_run_unknown_encoder_is_a_usage_error(cli, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli("run", "--video", _clip(tmp_path / "in.mp4"), "-o", tmp_path / "o.mp4", "--encoder", "mpeg4")
    assert exc.value.code == 2 and "invalid choice: 'mpeg4'" in capsys.readouterr().err


# -- sr-run --codec and the container checked up front ---------------------------------


def test_sr_run_refuses_a_container_that_cannot_hold_the_codec_before_decoding(cli, tmp_path):
    # The input is not even a video: the refusal must come first, before anything is opened or decoded.
    src = tmp_path / "in.mp4"
    src.write_bytes(b"not a video at all")
    res = cli("run", "--video", src, "-o", tmp_path / "out.webm")
    assert res.code == 2
    assert res.err.strip().splitlines() == [(
        f"sr-run: error: cannot write {tmp_path / 'out.webm'}: .webm files cannot hold h264 video: use --codec av1, "
        "or -o NAME.mp4 or NAME.mkv")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(("args", "words"), [
    (["--codec", "hevc", "--encoder", "libx264"], "--encoder libx264 writes h264, not --codec hevc"),
    (["--codec", "ffv1", "--crf", "10"], "ffv1 is lossless: it takes no --crf or --preset"),
    (["--codec", "ffv1", "-o", "{tmp}/x.mov"], ".mov files cannot hold ffv1 video"),
    (["--codec", "av1", "--crf", "0"], "--crf 0 (lossless) is not available with libsvtav1"),
])
def test_sr_run_bad_codec_choices_exit_2_with_one_line(cli, tmp_path, args, words):
    src = _clip(tmp_path / "in.mp4", n=2)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = [] if "-o" in args else ["-o", tmp_path / "out.mkv"]
    res = cli("run", "--video", src, *out, *args)
    assert res.code == 2 and res.err.count("\n") == 1 and words in res.err, res.err


@pytest.mark.parametrize(("codec", "suffix", "name"), [("av1", ".webm", "av1"), ("ffv1", ".mkv", "ffv1")])
def test_sr_run_codec_end_to_end(cli, tmp_path, codec, suffix, name):
    if {"av1": "libsvtav1", "ffv1": "ffv1"}[codec] not in av.codecs_available:
        pytest.skip(f"this PyAV's FFmpeg has no {codec} encoder")
    src, out = _clip(tmp_path / "in.mp4"), tmp_path / f"out{suffix}"
    res = cli("run", "--video", src, "-o", out, "--codec", codec, "--no-resume", "-q")
    assert res.code == 0, res.err
    if codec == "av1":  # SVT-AV1 prints its banner straight to fd 2 unless SVT_LOG says errors only
        assert os.environ.get("SVT_LOG") == "1"
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name in (name, "libdav1d")
        assert len(list(c.decode(video=0))) == 6
