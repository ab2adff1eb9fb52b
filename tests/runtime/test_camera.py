"""Camera URIs (csi://, v4l2://): parsing, GStreamer pipeline strings, and the real error path here.

The pure functions are tested exhaustively. Opening a pipeline needs an OpenCV built with
GStreamer, which pip's wheels never are: here the real error path runs (``sr-run --video csi://0``
exits 2 with one line). A second Python whose OpenCV has GStreamer (``SREDGE_GST_PYTHON``, else
the system ``/usr/bin/python3``) runs the real capture with ``videotestsrc`` standing in for the
camera: skipped with the reason when there is none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import cv2
import pytest

from sredge.errors import InputError
from sredge.runtime import camera_capture
from sredge.runtime.camera import (
    CSI_DEFAULT_FRAMERATE,
    CSI_DEFAULT_SIZE,
    FLIPS,
    CameraSpec,
    gst_launch_command,
    gstreamer_pipeline,
    is_camera_uri,
    missing_elements_message,
    missing_gstreamer_message,
    opencv_has_gstreamer,
    parse_camera_uri,
    pipeline_elements,
)
from sredge.runtime.video_io import VideoReader

ROOT = Path(__file__).resolve().parents[2]
HAS_GST = opencv_has_gstreamer(cv2.getBuildInformation())


# -- is_camera_uri / parse_camera_uri ---------------------------------------------


@pytest.mark.parametrize("uri", ["csi://0", "CSI://1", "v4l2:///dev/video0", "V4L2://2", "csi://", "csi://x?y"])
def test_is_camera_uri_true(uri):
    assert is_camera_uri(uri)


@pytest.mark.parametrize("uri", ["0", "/dev/video0", "rtsp://cam/x", "file:///tmp/a.mp4", "clip.mp4", "csi:0",
                                 "mycsi://0", ""])
def test_is_camera_uri_false(uri):
    assert not is_camera_uri(uri)


def test_csi_defaults_are_jetson_utils_defaults():
    spec = parse_camera_uri("csi://0")
    assert spec == CameraSpec("csi", sensor=0, width=1280, height=720, framerate=Fraction(30), flip="none",
                              buffers=1, uri="csi://0")
    assert (spec.width, spec.height) == CSI_DEFAULT_SIZE and spec.framerate == CSI_DEFAULT_FRAMERATE
    assert spec.device is None and spec.format is None
    assert spec.label == "CSI camera 0"


def test_csi_query_options():
    spec = parse_camera_uri("csi://1?width=1920&height=1080&framerate=60&flip=rotate-180&buffers=3")
    assert (spec.sensor, spec.width, spec.height, spec.framerate, spec.flip, spec.buffers) == (
        1, 1920, 1080, Fraction(60), "rotate-180", 3)


def test_scheme_is_case_insensitive():
    assert parse_camera_uri("CSI://0").scheme == "csi"
    assert parse_camera_uri("V4L2:///dev/video0").scheme == "v4l2"


def test_v4l2_defaults_let_the_camera_choose():
    spec = parse_camera_uri("v4l2:///dev/video0")
    assert spec == CameraSpec("v4l2", device="/dev/video0", format="raw", uri="v4l2:///dev/video0")
    assert spec.width is spec.height is spec.framerate is None
    assert spec.label == "V4L2 camera /dev/video0"


@pytest.mark.parametrize(("uri", "device"), [
    ("v4l2:///dev/video0", "/dev/video0"),
    ("v4l2://3", "/dev/video3"),
    ("v4l2:///dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234-video-index0",
     "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234-video-index0"),
    ("v4l2:///dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0",
     "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0"),
])
def test_v4l2_device_forms(uri, device):
    assert parse_camera_uri(uri).device == device


def test_v4l2_options():
    spec = parse_camera_uri("v4l2:///dev/video1?width=1280&height=720&framerate=30000/1001&format=mjpeg&flip=vertical")
    assert (spec.width, spec.height, spec.framerate, spec.format, spec.flip) == (
        1280, 720, Fraction(30000, 1001), "mjpeg", "vertical")


@pytest.mark.parametrize(("uri", "words"), [
    ("csi://", "csi://N"),
    ("csi://a", "sensor id"),
    ("csi://-1", "sensor id"),
    ("csi://0/x", "sensor id"),
    ("csi://123", "sensor id"),
    ("csi://0?width=1920", "together"),
    ("csi://0?height=1080", "together"),
    ("csi://0?width=0&height=720", "width must be"),
    ("csi://0?width=abc&height=720", "width must be"),
    ("csi://0?width=1280&height=-1", "height must be"),
    ("csi://0?width=99999&height=720", "width must be"),
    ("csi://0?width=1280.5&height=720", "width must be"),
    ("csi://0?framerate=0", "framerate"),
    ("csi://0?framerate=30/0", "framerate"),
    ("csi://0?framerate=abc", "framerate"),
    ("csi://0?framerate=2000", "framerate"),
    ("csi://0?framerate=29.97", "framerate"),
    ("csi://0?flip=sideways", "unknown flip"),
    ("csi://0?format=mjpeg", "V4L2 cameras"),
    ("csi://0?fps=30", "unknown option 'fps'"),
    ("csi://0?width=1280&width=1920&height=720", "twice"),
    ("csi://0?width", "key=value"),
    ("csi://0?buffers=0", "buffers"),
    ("csi://0?buffers=65", "buffers"),
    ("v4l2://", "v4l2:///dev/videoN"),
    ("v4l2://dev/video0", "three slashes"),
    ("v4l2:///etc/passwd", "v4l2:///dev/videoN"),
    ("v4l2:///dev/video0 ! fakesink", "v4l2:///dev/videoN"),
    ("v4l2:///dev/video0\"x", "v4l2:///dev/videoN"),
    ("v4l2:///dev/../etc/shadow", "v4l2:///dev/videoN"),
    ("v4l2:///dev/video0?format=h264", "unknown format"),
    ("v4l2:///dev/video0?flip=upside", "unknown flip"),
    ("rtsp://cam/stream", "not a camera URI"),
    ("/dev/video0", "not a camera URI"),
])
def test_bad_uris_are_one_line_input_errors(uri, words):
    with pytest.raises(InputError) as err:
        parse_camera_uri(uri)
    msg = str(err.value)
    assert words in msg and "\n" not in msg
    assert msg.startswith(uri) or "camera URI" in msg


# -- pipeline strings ----------------------------------------------------------


def test_csi_pipeline_string():
    assert gstreamer_pipeline(parse_camera_uri("csi://0")) == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1,format=NV12 ! "
        "nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false")


def test_csi_pipeline_with_options():
    p = gstreamer_pipeline(parse_camera_uri("csi://1?width=1920&height=1080&framerate=30000/1001&flip=rotate-180"
                                            "&buffers=2"))
    assert p.startswith("nvarguscamerasrc sensor-id=1 ! "
                        "video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30000/1001,format=NV12 ! "
                        "nvvidconv flip-method=2 ! ")
    assert p.endswith("appsink drop=true max-buffers=2 sync=false")


def test_v4l2_raw_pipeline_string():
    assert gstreamer_pipeline(parse_camera_uri("v4l2:///dev/video0")) == (
        'v4l2src device="/dev/video0" ! video/x-raw ! videoconvert ! video/x-raw,format=BGR ! '
        "appsink drop=true max-buffers=1 sync=false")
    assert gstreamer_pipeline(parse_camera_uri("v4l2:///dev/video2?width=640&height=480&framerate=15")) == (
        'v4l2src device="/dev/video2" ! video/x-raw,width=640,height=480,framerate=15/1 ! videoconvert ! '
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")


def test_v4l2_mjpeg_pipeline_string():
    assert gstreamer_pipeline(parse_camera_uri("v4l2://1?format=mjpeg&width=1920&height=1080&framerate=30")) == (
        'v4l2src device="/dev/video1" ! image/jpeg,width=1920,height=1080,framerate=30/1 ! jpegdec ! '
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")


@pytest.mark.parametrize("flip", list(FLIPS))
def test_every_flip(flip):
    number, name = FLIPS[flip]
    csi = gstreamer_pipeline(parse_camera_uri(f"csi://0?flip={flip}"))
    assert f"nvvidconv flip-method={number} !" in csi
    v4l2 = gstreamer_pipeline(parse_camera_uri(f"v4l2:///dev/video0?flip={flip}"))
    if flip == "none":
        assert "videoflip" not in v4l2
    else:
        assert f"! videoflip method={name} ! videoconvert !" in v4l2


def test_flip_numbers_follow_nvvidconv():
    # nvvidconv's flip-method enum: 0 none, 1 counterclockwise, 2 rotate-180, 3 clockwise,
    # 4 horizontal, 5 upper-right-diagonal, 6 vertical, 7 upper-left-diagonal.
    assert [FLIPS[k][0] for k in ("none", "counterclockwise", "rotate-180", "clockwise", "horizontal",
                                  "upper-right-diagonal", "vertical", "upper-left-diagonal")] == list(range(8))


def test_every_pipeline_ends_in_a_bgr_appsink():
    for uri in ("csi://0", "v4l2:///dev/video0", "v4l2://0?format=mjpeg&flip=clockwise"):
        assert gstreamer_pipeline(parse_camera_uri(uri)).endswith(
            "! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")


def test_pipeline_elements():
    assert pipeline_elements(gstreamer_pipeline(parse_camera_uri("csi://0"))) == (
        "nvarguscamerasrc", "nvvidconv", "videoconvert", "appsink")
    assert pipeline_elements(gstreamer_pipeline(parse_camera_uri("v4l2://0?format=mjpeg&flip=vertical"))) == (
        "v4l2src", "jpegdec", "videoflip", "videoconvert", "appsink")


def test_gst_launch_command_quotes_nvmm_caps_for_a_shell():
    cmd = gst_launch_command(gstreamer_pipeline(parse_camera_uri("csi://0")))
    assert cmd == ("gst-launch-1.0 nvarguscamerasrc sensor-id=0 ! "
                   "'video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1,format=NV12' ! "
                   "nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
                   "fakesink")


# -- GStreamer in OpenCV: detection and messages -----------------------------------


def test_opencv_has_gstreamer_reads_the_build_information():
    yes = "  Video I/O:\n    DC1394:                      NO\n    FFMPEG:                      YES\n" \
          "    GStreamer:                   YES (1.22.0)\n"
    no = yes.replace("YES (1.22.0)", "NO")
    assert opencv_has_gstreamer(yes) and not opencv_has_gstreamer(no)
    assert not opencv_has_gstreamer("")
    assert HAS_GST == ("GStreamer:                   YES" in cv2.getBuildInformation())


def test_missing_gstreamer_message_is_one_line_and_says_what_to_do():
    csi = missing_gstreamer_message(parse_camera_uri("csi://0"), "5.0.0")
    assert csi.startswith("csi://0 needs OpenCV built with GStreamer") and "5.0.0" in csi and "\n" not in csi
    assert "Jetson" in csi and "/dev/videoN" not in csi
    v4l2 = missing_gstreamer_message(parse_camera_uri("v4l2:///dev/video0"), "5.0.0")
    assert "--video /dev/videoN" in v4l2  # a USB camera still works through FFmpeg


def test_missing_elements_message_names_where_they_come_from():
    msg = missing_elements_message(parse_camera_uri("csi://0"), ["nvarguscamerasrc", "nvvidconv"])
    assert msg == ("csi://0 needs GStreamer elements this machine lacks: nvarguscamerasrc, nvvidconv from JetPack's "
                   "camera stack (csi:// cameras work on Jetson boards only)")
    msg = missing_elements_message(parse_camera_uri("v4l2:///dev/video0"), ["v4l2src", "mystery"])
    assert "v4l2src from gstreamer1.0-plugins-good" in msg and "mystery from a GStreamer plugin" in msg


# -- the real error path on this OpenCV ----------------------------------------


@pytest.mark.skipif(HAS_GST, reason="this OpenCV has GStreamer; the no-GStreamer error path cannot run")
@pytest.mark.parametrize("uri", ["csi://0", "v4l2:///dev/video0"])
def test_reader_without_gstreamer_is_a_one_line_input_error(uri):
    with pytest.raises(InputError, match="needs OpenCV built with GStreamer") as err:
        with VideoReader(uri):
            pass
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="GStreamer"):
        camera_capture.GstCapture(parse_camera_uri(uri)).open()


def test_reader_applies_the_pixel_limit_to_the_size_asked_for():
    with pytest.raises(InputError, match="--max-pixels"):
        with VideoReader("csi://0?width=4000&height=3000", max_pixels=10_000_000):
            pass


def test_reader_rejects_a_bad_camera_uri_before_opening_anything():
    with pytest.raises(InputError, match="sensor id"):
        with VideoReader("csi://front"):
            pass


@pytest.mark.skipif(HAS_GST, reason="this OpenCV has GStreamer; the no-GStreamer error path cannot run")
def test_sr_run_csi_without_gstreamer_exits_2_with_one_line(tmp_path):
    out = tmp_path / "out.mp4"
    res = subprocess.run([sys.executable, "-m", "sredge.cli.run", "--video", "csi://0", "-o", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("sr-run: error: csi://0 needs OpenCV built with GStreamer")
    assert not out.exists()


def test_sr_run_bad_camera_uri_exits_2(cli, tmp_path):
    res = cli("run", "--video", "v4l2:///dev/video0?width=640", "-o", tmp_path / "o.mp4")
    assert res.code == 2
    assert res.err.strip() == "sr-run: error: v4l2:///dev/video0?width=640: give width and height together"


# -- a real GStreamer capture, where some Python has OpenCV with GStreamer ---------------


def _gst_python() -> str:
    """A Python whose cv2 has GStreamer and which has PyAV and numpy (for VideoReader)."""
    candidates = [os.environ.get("SREDGE_GST_PYTHON"), "/usr/bin/python3"]
    probe = ("import cv2, av, numpy; "
             "assert 'GStreamer:                   YES' in cv2.getBuildInformation()")
    for py in filter(None, candidates):
        if Path(py).exists() and subprocess.run([py, "-c", probe], capture_output=True, timeout=60).returncode == 0:
            return py
    pytest.skip("no Python with OpenCV built with GStreamer plus av and numpy (set SREDGE_GST_PYTHON; "
                "e.g. a venv with --system-site-packages over Debian's python3-opencv)")


_GST_SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys, time
    import sredge.runtime.camera_capture as cc
    from sredge.errors import InputError
    from sredge.runtime.camera import parse_camera_uri
    from sredge.runtime.video_io import Frame, VideoReader

    out = {}
    # videotestsrc stands in for the camera: the URI, parsing, reader and frame conversion are real.
    test_src = ("videotestsrc num-buffers=12 is-live=true pattern=smpte ! video/x-raw,width=96,height=64,"
                "framerate=30/1 ! videoconvert ! video/x-raw,format=BGR ! appsink max-buffers=4 sync=false")
    real = cc.gstreamer_pipeline
    cc.gstreamer_pipeline = lambda spec: test_src
    with VideoReader("v4l2:///dev/video0?width=96&height=64&framerate=30") as r:
        items = list(r)
        info = r.info
    frames = [f for f in items if isinstance(f, Frame)]
    out["n"] = len(frames)
    out["info"] = [info.width, info.height, float(info.fps), str(info.time_base), info.is_live, info.has_audio,
                   info.frame_count]
    out["rgb"] = [list(f.rgb.shape) for f in frames[:1]] + [str(frames[0].rgb.dtype),
                  bool(frames[0].rgb.flags["C_CONTIGUOUS"]), frames[0].i420 is None]
    out["pts_increasing"] = all(b.pts > a.pts for a, b in zip(frames, frames[1:]))
    out["index"] = [f.index for f in frames] == list(range(len(frames)))
    out["error"] = r.error
    # SMPTE bars: the first bar is white-ish, the second yellow (R and G high, B low) in RGB order.
    px = frames[0].rgb[10, 96 // 7 + 6]
    out["yellow_is_rgb"] = bool(px[0] > 150 and px[1] > 150 and px[2] < 80)
    cc.gstreamer_pipeline = real

    # csi:// off a Jetson: the missing elements are named at once (gst-inspect-1.0 finds none).
    t = time.monotonic()
    try:
        VideoReader("csi://0").__enter__()
    except InputError as exc:
        out["csi"] = [str(exc), round(time.monotonic() - t, 2)]
    # Without gst-inspect-1.0 the same pipeline would never return from OpenCV: the open times out.
    os.environ["PATH"] = ""
    cc.OPEN_TIMEOUT_S = 2.0
    t = time.monotonic()
    try:
        cc.GstCapture(parse_camera_uri("csi://0")).open()
    except InputError as exc:
        out["timeout"] = [str(exc), round(time.monotonic() - t, 2)]
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # the timed-out opener thread is still blocked inside OpenCV
""")


@pytest.mark.slow
def test_real_gstreamer_capture_yields_reader_frames(tmp_path):
    py = _gst_python()
    script = tmp_path / "gst_check.py"
    script.write_text(_GST_SCRIPT)
    res = subprocess.run([py, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["n"] == 12
    assert out["info"] == [96, 64, 30.0, "1/1000", True, False, None]
    assert out["rgb"] == [[64, 96, 3], "uint8", True, True]
    assert out["pts_increasing"] and out["index"]
    assert out["error"] == "stopped at frame 12: the camera stopped sending frames"
    assert out["yellow_is_rgb"]
    csi_msg, csi_s = out["csi"]
    assert csi_msg.startswith("csi://0 needs GStreamer elements this machine lacks: nvarguscamerasrc, nvvidconv")
    assert csi_s < 5
    timeout_msg, timeout_s = out["timeout"]
    assert timeout_msg.startswith("CSI camera 0 did not start within 2 s through GStreamer")
    assert 1.5 < timeout_s < 10
