"""Bit depth and colour kept from input to output, on clips made here with PyAV (x265, x264, FFV1).

10-bit in is 10-bit out with the precision kept through the network (16-bit RGB, never 8 bits);
BT.2020 / PQ tags and HDR10 mastering display / content light metadata survive; BT.709 and BT.2020
matrices are decoded with the right coefficients, so luma-only networks see the luma they were
trained on (BT.601 luma of the true RGB), not the source's Y plane of another matrix.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from sredge.imaging.color import rgb_to_y
from sredge.runtime.colour import (
    Colour,
    ContentLight,
    MasteringDisplay,
    hdr_encoder_params,
    hdr_notice,
    parse_content_light,
    parse_mastering_display,
)
from sredge.runtime.upscaler import Upscaler
from sredge.runtime.video_io import Frame, VideoReader, output_notices, sampling_notice

# SMPTE ST 2086 values of a P3-D65 1000-nit mastering display, in HEVC SEI units.
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
MASTERING = MasteringDisplay(red=(34000, 16000), green=(13250, 34500), blue=(7500, 3000), white=(15635, 16450),
                             min_luminance=1, max_luminance=10000000)
LIGHT = ContentLight(1000, 400)


def ramp16(h: int = 48, w: int = 64) -> np.ndarray:
    """(h, w, 3) uint16 grey ramp with ~3000 distinct levels (far more than 8 bits hold), a little colour."""
    v = np.linspace(0.1, 0.9, h * w).reshape(h, w)
    rgb = np.stack([v, v, v * 0.8 + 0.1], -1)
    return np.round(rgb * 65535).astype(np.uint16)


def make_10bit_hevc(path, n: int = 4, hdr: bool = True, lossless: bool = True) -> np.ndarray:
    """A 10-bit x265 clip tagged BT.2020 / PQ (with HDR10 metadata when ``hdr``); returns the RGB it encodes."""
    rgb = ramp16()
    params = ["log-level=error"] + (["lossless=1"] if lossless else []) + (
        ["hdr10=1", f"master-display={MASTER}", "max-cll=1000,400"] if hdr else [])
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265", rate=25, options={"preset": "ultrafast", "x265-params": ":".join(params)})
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p10le"
        cc = s.codec_context
        cc.colorspace, cc.color_range = Colorspace.BT2020, ColorRange.MPEG
        cc.color_primaries, cc.color_trc = ColorPrimaries.BT2020, ColorTrc.SMPTE2084
        for i in range(n):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace=Colorspace.BT2020, dst_color_range=ColorRange.MPEG)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return rgb


def make_blocks(path, matrix: int, pix_fmt: str, codec: str = "libx264") -> np.ndarray:
    """Flat 16x16 colour blocks, encoded losslessly with ``matrix`` (tagged so); returns the 8-bit RGB."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 40, 120), (30, 200, 200), (240, 240, 40)]
    rgb = np.zeros((16, 16 * len(colours), 3), np.uint8)
    for k, col in enumerate(colours):
        rgb[:, 16 * k : 16 * (k + 1)] = col
    options = {"qp": "0", "preset": "ultrafast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25, options=options)
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
        s.codec_context.colorspace, s.codec_context.color_range = matrix, ColorRange.MPEG
        src = rgb.astype(np.uint16) * 257 if "10" in pix_fmt else rgb
        fmt = "rgb48le" if "10" in pix_fmt else "rgb24"
        for i in range(2):
            f = av.VideoFrame.from_ndarray(src, format=fmt).reformat(format=pix_fmt, dst_colorspace=matrix,
                                                                       dst_color_range=ColorRange.MPEG)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return rgb


def first_frame(path, **kwargs):
    with VideoReader(str(path), **kwargs) as r:
        frame = next(x for x in r if isinstance(x, Frame))
        return r, frame


def block_centres(rgb: np.ndarray) -> np.ndarray:
    """The centre 8x8 of each 16x16 block, as float, (blocks, 8, 8, 3)."""
    n = rgb.shape[1] // 16
    return np.stack([rgb[4:12, 16 * k + 4 : 16 * k + 12] for k in range(n)]).astype(np.float64)


# -- HDR10 metadata (pure) -----------------------------------------------------------


def test_ffmpeg_structs_parse_to_sei_units():
    # AVMasteringDisplayMetadata as FFmpeg lays it out: R, G, B, white point (x, y), min, max luminance, flags.
    rationals = [(34000, 50000), (16000, 50000), (13250, 50000), (34500, 50000), (7500, 50000), (3000, 50000),
                 (15635, 50000), (16450, 50000), (1, 10000), (10000000, 10000)]
    data = b"".join(int(a).to_bytes(4, "little") + int(b).to_bytes(4, "little") for a, b in rationals)
    data += (1).to_bytes(4, "little") * 2
    assert parse_mastering_display(data) == MASTERING
    assert parse_mastering_display(data[:-8] + bytes(8)) is None  # neither primaries nor luminance
    assert parse_content_light((1000).to_bytes(4, "little") + (400).to_bytes(4, "little")) == LIGHT


def test_hdr_params_per_encoder():
    c = Colour(9, 16, 9, False, MASTERING, LIGHT)
    assert hdr_encoder_params("x265", c) == f"master-display={MASTER}:max-cll=1000,400:hdr10=1"
    assert hdr_encoder_params("svtav1", c) == (
        "mastering-display=G(0.26500,0.69000)B(0.15000,0.06000)R(0.68000,0.32000)WP(0.31270,0.32900)"
        "L(1000.0000,0.0001):content-light=1000,400")
    assert hdr_encoder_params("x264", c) is None and hdr_encoder_params("x265", Colour(9, 16, 9)) is None
    assert "libx264 cannot" in hdr_notice("libx264", "x264", c)
    assert hdr_notice("libx265", "x265", c) is None and hdr_notice("libx264", "x264", Colour(9, 16, 9)) is None


# -- reading ------------------------------------------------------------------------


def test_10bit_hevc_is_read_at_16_bits_with_its_colour(tmp_path):
    clip = tmp_path / "hdr.mkv"
    src = make_10bit_hevc(clip)
    r, frame = first_frame(clip, want_i420=True)
    assert r.info.bit_depth == 10 and not r.i420  # deep video never travels as 8-bit I420
    assert r.info.colour == Colour(primaries=9, transfer=16, matrix=9, full_range=False, mastering=MASTERING,
                                   light=LIGHT)
    rgb = frame.rgb
    assert rgb.dtype == np.uint16 and rgb.shape == src.shape
    assert len(np.unique(rgb[..., 1])) > 512  # ~820 ten-bit levels; an 8-bit path would leave at most 256
    # 10-bit 4:2:0 round trip of a smooth ramp: within 4 ten-bit steps (64 in 16-bit units) of what was
    # encoded, the rounding of subsampled chroma; the grey channel within one and a half.
    err = np.abs(rgb.astype(np.int64) - src)
    assert err.max() < 4 * 64 and np.abs(rgb[..., 1].astype(np.int64) - src[..., 1]).mean() < 1.5 * 64


@pytest.mark.parametrize(("matrix", "pix_fmt"), [(Colorspace.ITU709, "yuv420p"), (Colorspace.BT2020, "yuv420p10le")])
def test_matrices_are_decoded_with_their_own_coefficients(tmp_path, matrix, pix_fmt):
    clip = tmp_path / "blocks.mkv"
    truth = make_blocks(clip, int(matrix), pix_fmt)
    r, frame = first_frame(clip, want_i420=True)  # a luma network asks for I420: refused, the matrix is not BT.601
    assert not r.i420 and r.info.colour.matrix == int(matrix)
    got = frame.rgb.astype(np.float64) / (257.0 if frame.rgb.dtype == np.uint16 else 1.0)
    want = block_centres(truth)
    assert np.abs(block_centres(got) - want).max() <= 3
    # Read as BT.601 the same samples are visibly wrong: the tag matters.
    with av.open(str(clip)) as c:
        vf = next(c.decode(video=0))
        wrong = vf.reformat(format="rgb24", src_colorspace=Colorspace.ITU601).to_ndarray()
    assert np.abs(block_centres(wrong) - want).max() > 8


def test_a_luma_network_sees_the_bt601_luma_of_the_true_colours(tmp_path, real_model):
    desc = real_model("fsrcnn_x2")[1].descriptor
    assert desc.color_space == "y"
    clip = tmp_path / "bt2020.mkv"
    truth = make_blocks(clip, int(Colorspace.BT2020), "yuv420p10le")
    _, frame = first_frame(clip, want_i420=True)
    x = Upscaler(None, desc).preprocess_frame(frame).x  # (1, H, W) network input, model not run
    want_y = rgb_to_y(truth.astype(np.float32) / 255.0) * desc.value_range
    assert np.abs(block_centres(x[0][..., None]) - block_centres(want_y[..., None])).max() < 2.0 / 255


# -- sr-run end to end ----------------------------------------------------------------


def _stream(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        f = next(c.decode(video=0))
        side = {sd.type.name: bytes(sd) for sd in f.side_data}
        return v.codec_context.profile, f.format.name, f, side


def test_sr_run_10bit_hevc_in_10bit_hevc_out_with_hdr10(cli, exported, tmp_path):
    clip, out = tmp_path / "hdr.mkv", tmp_path / "up.mkv"
    make_10bit_hevc(clip, lossless=False)
    res = cli("run", "--video", clip, "--model", exported("fsrcnn_x2"), "-o", out, "--codec", "hevc",
              "--preset", "ultrafast", "-q")
    assert res.code == 0, res.err
    assert "note:" not in res.err  # nothing dropped
    profile, fmt, f, side = _stream(out)
    assert (profile, fmt, f.width, f.height) == ("Main 10", "yuv420p10le", 128, 96)
    assert (int(f.color_primaries), int(f.color_trc), int(f.colorspace), int(f.color_range)) == (9, 16, 9, 1)
    assert parse_mastering_display(side["MASTERING_DISPLAY_METADATA"]) == MASTERING
    assert parse_content_light(side["CONTENT_LIGHT_LEVEL"]) == LIGHT
    with VideoReader(str(out)) as r:
        up = next(x for x in r if isinstance(x, Frame)).rgb
    assert up.dtype == np.uint16 and len(np.unique(up[..., 1])) > 512  # precision kept through the network


def test_sr_run_10bit_to_h264_is_high10_and_says_hdr10_metadata_is_not_written(cli, exported, tmp_path):
    clip, out = tmp_path / "hdr.mkv", tmp_path / "up.mp4"
    make_10bit_hevc(clip, n=2, lossless=False)
    res = cli("run", "--video", clip, "--model", exported("fsrcnn_x2"), "-o", out, "--preset", "ultrafast", "-q")
    assert res.code == 0, res.err
    notes = [ln for ln in res.err.splitlines() if ln.startswith("sr-run: note: ")]
    assert len(notes) == 1 and "HDR10" in notes[0] and "--codec hevc" in notes[0]
    profile, fmt, f, side = _stream(out)
    assert (profile, fmt) == ("High 10", "yuv420p10le")
    assert (int(f.color_primaries), int(f.color_trc), int(f.colorspace)) == (9, 16, 9)
    assert "MASTERING_DISPLAY_METADATA" not in side


def test_8bit_in_stays_8bit(tmp_path):
    clip = tmp_path / "b709.mkv"
    make_blocks(clip, int(Colorspace.ITU709), "yuv420p")
    r, frame = first_frame(clip)
    assert r.info.bit_depth == 8 and frame.rgb.dtype == np.uint8


def test_an_8bit_bt709_source_is_written_bt709_with_its_colours(tmp_path):
    """8-bit BT.709 in, 8-bit BT.709 out (swscale converts with that matrix), and the colours read back
    through the output's own tag are the source's; a BT.601 source keeps the OpenCV BT.601 path."""
    from sredge.runtime.video_io import VideoWriter

    clip = tmp_path / "b709.mkv"
    rgb = make_blocks(clip, int(Colorspace.ITU709), "yuv420p")
    out = tmp_path / "o709.mkv"
    with VideoReader(str(clip)) as r:
        with VideoWriter(out, rgb.shape[1], rgb.shape[0], r.info.time_base, r.info.fps, crf=0, audio_from=r) as w:
            for f in r:
                if isinstance(f, Frame):
                    w.write(f)
    with av.open(str(out)) as c:
        vf = next(c.decode(video=0))
        assert int(vf.colorspace) == int(Colorspace.ITU709) and vf.format.name == "yuv420p"
        back = vf.reformat(format="rgb24", src_colorspace=Colorspace.ITU709).to_ndarray()
    assert np.abs(back[4:12, 4::16][:, :6].astype(int) - rgb[4:12, 4::16][:, :6].astype(int)).max() <= 6


def test_what_4_2_0_at_10_bits_cannot_hold_is_said():
    assert sampling_notice("yuv420p", 8) is None and sampling_notice("yuv420p10le", 10) is None
    assert sampling_notice("nv12", 8) is None and sampling_notice("gray", 8) is None
    assert sampling_notice("yuv444p", 8) == "the source is yuv444p: its chroma is written as 4:2:0"
    assert sampling_notice("yuv422p12le", 12) == (
        "the source is yuv422p12le: 12-bit samples are written at 10 bits and its chroma is written as 4:2:0")


def test_a_444_source_gets_its_notice_before_anything_is_written(tmp_path):
    clip = tmp_path / "c444.mkv"
    make_blocks(clip, int(Colorspace.ITU709), "yuv444p")
    with VideoReader(str(clip)) as r:
        assert r.info.pixel_format == "yuv444p"
        assert output_notices(r, tmp_path / "o.mp4", "libx264") == [
            "the source is yuv444p: its chroma is written as 4:2:0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c444.mkv"]
