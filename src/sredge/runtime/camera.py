"""Camera URIs in jetson-utils' form -> GStreamer capture pipelines (pure).

``csi://0`` is MIPI CSI sensor 0 read through ``nvarguscamerasrc`` (Jetson's Argus camera
stack); ``v4l2:///dev/video0`` is a Video4Linux2 device read through ``v4l2src``. Capture
settings travel in the URI's query, one way for every caller::

    csi://0?width=1920&height=1080&framerate=30&flip=rotate-180
    v4l2:///dev/video1?width=1280&height=720&framerate=30&format=mjpeg

Query keys (all optional):

* ``width``, ``height``: capture size in pixels, given together (CSI default 1280x720, as
  jetson-utils; V4L2 default: what the camera negotiates).
* ``framerate``: frames per second, an integer or a fraction such as ``30000/1001``
  (CSI default 30).
* ``flip``: one of :data:`FLIPS` (jetson-utils' ``--input-flip`` names); CSI flips in the
  Jetson's video converter (``nvvidconv``), V4L2 in GStreamer's ``videoflip``.
* ``format``: V4L2 only: ``raw`` (default: uncompressed frames) or ``mjpeg`` (most USB
  webcams deliver large sizes only as Motion JPEG).
* ``buffers``: frames the capture keeps before dropping the oldest (default 1: always the
  newest frame, lowest latency).

Every pipeline ends in ``videoconvert ! video/x-raw,format=BGR ! appsink`` because that is
what OpenCV's GStreamer backend (``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)``) reads.
Opening one is :mod:`sredge.runtime.camera_capture`'s job.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import parse_qsl

from sredge.errors import InputError

CAMERA_SCHEMES = ("csi", "v4l2")
"""URI schemes this module handles (jetson-utils' names)."""

FLIPS: dict[str, tuple[int, str]] = {
    "none": (0, "none"),
    "counterclockwise": (1, "counterclockwise"),
    "rotate-180": (2, "rotate-180"),
    "clockwise": (3, "clockwise"),
    "horizontal": (4, "horizontal-flip"),
    "upper-right-diagonal": (5, "upper-right-diagonal"),
    "vertical": (6, "vertical-flip"),
    "upper-left-diagonal": (7, "upper-left-diagonal"),
}
"""``flip`` name -> (``nvvidconv flip-method`` number, ``videoflip method`` name).

The names are jetson-utils' ``--input-flip`` values; the numbers are nvvidconv's enum (the
order jetson-utils passes through). Unlike jetson-utils, ``none`` never turns into a
180-degree rotation behind the user's back: a camera mounted upside down says ``flip=rotate-180``.
"""

CSI_DEFAULT_SIZE = (1280, 720)
"""(width, height) of a CSI capture that names none (jetson-utils' default)."""
CSI_DEFAULT_FRAMERATE = Fraction(30)
"""Frames per second of a CSI capture that names none."""

V4L2_FORMATS = ("raw", "mjpeg")
_KEYS = ("width", "height", "framerate", "flip", "format", "buffers")
# A device path goes into a pipeline string: keep it to characters a /dev path uses
# (by-path names have ':' and '.'), so nothing can end the element or add another.
_DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_./:+-]+")
_MAX_SIDE = 16384
_MAX_BUFFERS = 64


@dataclass(frozen=True)
class CameraSpec:
    """A camera and how to capture from it, parsed from a URI by :func:`parse_camera_uri`.

    Attributes:
        scheme: ``"csi"`` or ``"v4l2"``.
        sensor: CSI sensor id (``nvarguscamerasrc sensor-id``); None for V4L2.
        device: V4L2 device node, e.g. ``"/dev/video0"``; None for CSI.
        width: Capture width in pixels, or None to let the camera choose (V4L2 only).
        height: Capture height in pixels, or None with ``width``.
        framerate: Frames per second, or None to let the camera choose (V4L2 only).
        flip: A key of :data:`FLIPS`.
        format: V4L2 frame format, ``"raw"`` or ``"mjpeg"``; None for CSI.
        buffers: Frames ``appsink`` holds before dropping the oldest (``max-buffers``).
        uri: The URI as given, for messages.
    """

    scheme: str
    sensor: int | None = None
    device: str | None = None
    width: int | None = None
    height: int | None = None
    framerate: Fraction | None = None
    flip: str = "none"
    format: str | None = None
    buffers: int = 1
    uri: str = ""

    @property
    def label(self) -> str:
        """How messages name the camera, e.g. ``"CSI camera 0"``."""
        return f"CSI camera {self.sensor}" if self.scheme == "csi" else f"V4L2 camera {self.device}"


def is_camera_uri(source: str) -> bool:
    """Whether ``source`` is a ``csi://`` or ``v4l2://`` URI (any case), well formed or not."""
    scheme, sep, _ = str(source).partition("://")
    return bool(sep) and scheme.lower() in CAMERA_SCHEMES


def parse_camera_uri(uri: str) -> CameraSpec:
    """Parse ``csi://N[?query]`` or ``v4l2:///dev/videoN[?query]`` (also ``v4l2://N``).

    Args:
        uri: The camera URI; query keys are listed in the module docstring.

    Returns:
        The camera and its capture settings, CSI defaults filled in.

    Raises:
        InputError: Not a camera URI, a bad sensor id or device path, an unknown or repeated
            query key, or a bad value.
    """
    uri = str(uri)
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in CAMERA_SCHEMES:
        raise InputError(f"{uri} is not a camera URI: use csi://N or v4l2:///dev/videoN")
    target, _, query = rest.partition("?")
    opts = _query(uri, query)
    width, height = _size(uri, opts)
    framerate = _framerate(uri, opts.get("framerate"))
    flip = opts.get("flip", "none")
    if flip not in FLIPS:
        raise InputError(f"{uri}: unknown flip {flip!r}: use one of {', '.join(FLIPS)}")
    buffers = _positive_int(uri, "buffers", opts.get("buffers", "1"), _MAX_BUFFERS)
    if scheme == "csi":
        if not re.fullmatch(r"\d{1,2}", target):
            raise InputError(f"{uri}: a CSI camera is csi://N with N the sensor id (csi://0, csi://1, ...)")
        if "format" in opts:
            raise InputError(f"{uri}: format= is for V4L2 cameras; a CSI camera always delivers raw NV12")
        if width is None:
            width, height = CSI_DEFAULT_SIZE
        return CameraSpec("csi", sensor=int(target), width=width, height=height,
                          framerate=framerate or CSI_DEFAULT_FRAMERATE, flip=flip, buffers=buffers, uri=uri)
    device = f"/dev/video{int(target)}" if re.fullmatch(r"\d{1,3}", target) else target
    if not _DEVICE_RE.fullmatch(device) or "/../" in device or device.endswith("/.."):
        raise InputError(f"{uri}: a V4L2 camera is v4l2:///dev/videoN (three slashes: the device path follows "
                         "v4l2://) or v4l2://N")
    fmt = opts.get("format", "raw")
    if fmt not in V4L2_FORMATS:
        raise InputError(f"{uri}: unknown format {fmt!r}: use one of {', '.join(V4L2_FORMATS)}")
    return CameraSpec("v4l2", device=device, width=width, height=height, framerate=framerate, flip=flip,
                      format=fmt, buffers=buffers, uri=uri)


def _query(uri: str, query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InputError(f"{uri}: the query must be key=value pairs joined by '&'") from None
    opts: dict[str, str] = {}
    for key, value in pairs:
        if key not in _KEYS:
            raise InputError(f"{uri}: unknown option {key!r}: use {', '.join(_KEYS)}")
        if key in opts:
            raise InputError(f"{uri}: {key} is given twice")
        opts[key] = value.strip()
    return opts


def _positive_int(uri: str, key: str, text: str, limit: int) -> int:
    if not re.fullmatch(r"\d+", text) or not 1 <= int(text) <= limit:
        raise InputError(f"{uri}: {key} must be a whole number from 1 to {limit}, not {text!r}")
    return int(text)


def _size(uri: str, opts: dict[str, str]) -> tuple[int | None, int | None]:
    if ("width" in opts) != ("height" in opts):
        raise InputError(f"{uri}: give width and height together")
    if "width" not in opts:
        return None, None
    return (_positive_int(uri, "width", opts["width"], _MAX_SIDE),
            _positive_int(uri, "height", opts["height"], _MAX_SIDE))


def _framerate(uri: str, text: str | None) -> Fraction | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d{1,6})(?:/(\d{1,6}))?", text)
    num, den = (int(m.group(1)), int(m.group(2) or 1)) if m else (0, 0)
    if not den or not 0 < Fraction(num, den) <= 1000:
        raise InputError(f"{uri}: framerate must be frames per second like 30 or 30000/1001, not {text!r}")
    return Fraction(num, den)


def _caps(media: str, spec: CameraSpec, extra: str = "") -> str:
    parts = [media]
    if spec.width is not None:
        parts += [f"width={spec.width}", f"height={spec.height}"]
    if spec.framerate is not None:
        parts.append(f"framerate={spec.framerate.numerator}/{spec.framerate.denominator}")
    if extra:
        parts.append(extra)
    return ",".join(parts)


def gstreamer_pipeline(spec: CameraSpec) -> str:
    """The ``gst-launch``-style pipeline that captures ``spec`` into BGR frames for OpenCV.

    CSI: ``nvarguscamerasrc`` delivers NV12 in NVMM (GPU) memory; ``nvvidconv`` flips and
    copies it to system memory as BGRx; ``videoconvert`` drops the padding byte. V4L2: the
    camera's raw (or decoded MJPEG) frames, flipped in software when asked, converted to BGR.
    ``appsink drop=true max-buffers=N sync=false`` keeps only the newest frames, so a slow
    consumer sees the present rather than a growing backlog.

    Args:
        spec: A parsed camera (see :func:`parse_camera_uri`).

    Returns:
        The pipeline string for ``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)``.
    """
    sink = f"videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers={spec.buffers} sync=false"
    method, name = FLIPS[spec.flip]
    if spec.scheme == "csi":
        return (f"nvarguscamerasrc sensor-id={spec.sensor} ! "
                f"{_caps('video/x-raw(memory:NVMM)', spec, 'format=NV12')} ! "
                f"nvvidconv flip-method={method} ! video/x-raw,format=BGRx ! {sink}")
    if spec.format == "mjpeg":
        source = f'v4l2src device="{spec.device}" ! {_caps("image/jpeg", spec)} ! jpegdec'
    else:
        source = f'v4l2src device="{spec.device}" ! {_caps("video/x-raw", spec)}'
    flip = f" ! videoflip method={name}" if spec.flip != "none" else ""
    return f"{source}{flip} ! {sink}"


ELEMENT_SOURCES: dict[str, str] = {
    "nvarguscamerasrc": "JetPack's camera stack (csi:// cameras work on Jetson boards only)",
    "nvvidconv": "JetPack's camera stack (csi:// cameras work on Jetson boards only)",
    "v4l2src": "gstreamer1.0-plugins-good",
    "videoflip": "gstreamer1.0-plugins-good",
    "jpegdec": "gstreamer1.0-plugins-good",
    "videoconvert": "gstreamer1.0-plugins-base",
    "appsink": "gstreamer1.0-plugins-base",
}
"""GStreamer element -> where it comes from (Debian/Ubuntu package, or JetPack)."""


def pipeline_elements(pipeline: str) -> tuple[str, ...]:
    """The element names of a ``gst-launch``-style pipeline, in order, caps filters left out."""
    names: list[str] = []
    for segment in pipeline.split(" ! "):
        token = segment.strip().split(" ", 1)[0]
        if token and "/" not in token and token not in names:  # caps are media types: "video/x-raw,..."
            names.append(token)
    return tuple(names)


def missing_elements_message(spec: CameraSpec, missing: list[str] | tuple[str, ...]) -> str:
    """One line for a camera whose pipeline needs GStreamer elements this machine lacks."""
    sources: dict[str, list[str]] = {}
    for name in missing:
        sources.setdefault(ELEMENT_SOURCES.get(name, "a GStreamer plugin"), []).append(name)
    where = "; ".join(f"{', '.join(names)} from {src}" for src, names in sources.items())
    return f"{spec.uri or spec.label} needs GStreamer elements this machine lacks: {where}"


def gst_launch_command(pipeline: str) -> str:
    """A shell command that runs ``pipeline`` into ``fakesink``, to test a camera by hand.

    Caps with parentheses (``video/x-raw(memory:NVMM),...``) are quoted for the shell.
    """
    parts = pipeline.rsplit(" ! appsink", 1)[0].split(" ! ")
    return "gst-launch-1.0 " + " ! ".join(shlex.quote(p) if "(" in p else p for p in parts) + " ! fakesink"


def opencv_has_gstreamer(build_information: str) -> bool:
    """Whether ``cv2.getBuildInformation()`` text says the Video I/O section has GStreamer."""
    return re.search(r"^\s*GStreamer:\s*YES\b", build_information, re.MULTILINE) is not None


def missing_gstreamer_message(spec: CameraSpec, opencv_version: str) -> str:
    """One line for a camera URI on an OpenCV without GStreamer: what is missing and what to do."""
    usb = ("; a USB camera also opens without it as --video /dev/videoN (through FFmpeg)"
           if spec.scheme == "v4l2" else "")
    return (f"{spec.uri or spec.label} needs OpenCV built with GStreamer (this OpenCV {opencv_version} has none: "
            "pip's opencv-python wheels never do); on Jetson use JetPack's OpenCV as docs/jetson.md's "
            f"'Cameras on Jetson' says{usb}")
