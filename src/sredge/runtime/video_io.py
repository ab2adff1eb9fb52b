"""Streaming video input and output for the ``sr-run`` video pipeline (PyAV / FFmpeg).

:class:`VideoReader` opens a file, a network stream or a camera and yields, in demux
order, decoded video frames and undecoded audio packets. :class:`VideoWriter` encodes
frames to H.264 and stream-copies the audio packets, so audio passes through untouched.

Layouts and units:

* ``Frame.rgb`` is ``(H, W, 3)`` ``uint8``, channels in R, G, B order, values 0..255,
  C-contiguous, already rotated upright (see :attr:`VideoInfo.rotation`).
* ``Frame.pts`` is in units of :attr:`VideoInfo.time_base` (the video stream's time
  base): seconds = ``pts * time_base``. The writer uses the same time base and keeps
  each frame's pts, so variable frame rate and gaps survive a round trip.
* YUV <-> RGB: the reader converts with the matrix the stream is tagged with (BT.601
  when untagged, as FFmpeg does) and honours full-range tags; the writer converts to
  limited-range BT.601 ``yuv420p`` with OpenCV (several times faster than swscale for
  large frames) and tags the stream so players match.

Nothing holds more than a few frames: iteration is one pass over the input.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import cv2
import numpy as np
from av.stream import Discard, Disposition
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from sredge.atomic import check_writable, fsync_file, fsync_folder, write_error
from sredge.errors import InputError
from sredge.limits import DEFAULT_MAX_PIXELS, check_pixels
from sredge.runtime.camera import is_camera_uri
from sredge.runtime.colour import (
    BT601,
    SMPTE170M,
    UNSPECIFIED,
    Colour,
    ContentLight,
    MasteringDisplay,
    conversion_matrix,
    hdr_encoder_params,
    hdr_notice,
    parse_content_light,
    parse_mastering_display,
)
from sredge.runtime.encoders import ENCODERS, encoder_options, encoder_pix_fmt, quiet_encoder_logs
from sredge.runtime.streams import (
    SourceStreams,
    carried_video_tags,
    carry_streams,
    mux_carried,
    source_streams,
    stream_notices,
)
from sredge.runtime.window import Window, cut, expected_frames, parse_time

log = logging.getLogger(__name__)

AudioPacket = av.Packet
"""An undecoded, demuxed audio (or subtitle) packet, exactly as PyAV returns it (``av.Packet``).

Its ``stream`` is one of :attr:`VideoReader.carried_streams`; its ``pts``/``dts`` are in
that stream's ``time_base``. Hand it to :meth:`VideoWriter.mux_audio` unchanged.
"""

NETWORK_OPEN_TIMEOUT_S = 5.0
"""Seconds to wait for a network stream to open before giving up."""
NETWORK_READ_TIMEOUT_S = 10.0
"""Seconds without data after which a network stream counts as stopped."""

_NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp"})
# Demuxers that open still images or text as a one-picture "video".
_NOT_VIDEO_FORMATS = frozenset({"image2", "image2pipe", "tty", "bin", "xbin", "adf", "idf"})
_MOV_FORMATS = frozenset({"mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv", "f4v"})
_SEEK_PAST_START_S = 64
"""How far before a stream's first timestamp a seek for ``--start`` may reach looking for a key frame at
or before the start (MPEG-TS seeks land after the first key frame when asked for the start itself)."""
# Damaged packets/frames skipped in a row (live streams, or before the first frame) before giving up.
_MAX_DROPS_IN_A_ROW = 300
JOINED = "another recording starts"
"""How the reader's ``error`` begins its reason when a local MPEG-TS file holds recordings joined end to end."""
STOP_JOINED, STOP_DAMAGED = "joined", "damaged"
"""The reader's ``error_kind``: the input holds recordings joined end to end, or it is truncated or damaged
(a live source's end included)."""
_JOIN_LOOKAHEAD = 32
"""Packets read past a damaged one in a local MPEG-TS file to tell a join (timestamps restart) from damage."""


@dataclass(frozen=True)
class VideoInfo:
    """What a :class:`VideoReader` knows about its input once entered.

    Attributes:
        width: Display width in pixels, after :attr:`rotation` is applied (= ``Frame.rgb.shape[1]``).
        height: Display height in pixels, after rotation (= ``Frame.rgb.shape[0]``).
        fps: Average frame rate in frames per second, or None when the stream does not say.
        time_base: Seconds per unit of ``Frame.pts`` (the video stream's time base).
        frame_count: Number of frames the container declares (MP4/MOV), else None; with a
            :class:`~sredge.runtime.window.Window`, about how many it holds (for progress).
            Not a promise: a damaged file yields fewer (see :attr:`VideoReader.error`).
        rotation: Counter-clockwise rotation in degrees (0, 90, 180 or 270) that the
            reader applied to the decoded pixels to make them upright, from the
            stream's display matrix. Mirroring in the matrix is not applied.
        codec: FFmpeg name of the video codec, e.g. ``"h264"``.
        has_audio: The input has at least one audio stream (see :attr:`VideoReader.audio_streams`).
        is_live: A camera or a network stream of unknown length; read until it stops.
        bit_depth: Bits per sample of the decoded video: 8, or 10 (12, ...) for deep video, whose
            frames then come as 16-bit RGB so no precision is lost before the network.
        colour: The stream's colour description (primaries, transfer, matrix, range, HDR10
            metadata), which the writer keeps (see :mod:`sredge.runtime.colour`); None for cameras
            read through GStreamer.
        pixel_format: FFmpeg's name for the decoded samples, e.g. ``"yuv420p10le"`` (``""``: not known).
    """

    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction
    frame_count: int | None
    rotation: int
    codec: str
    has_audio: bool
    is_live: bool
    bit_depth: int = 8
    colour: Colour | None = None
    pixel_format: str = ""


@dataclass
class Frame:
    """One decoded video frame.

    Attributes:
        rgb: ``(H, W, 3)`` ``uint8`` RGB, C-contiguous, upright (display orientation); ``uint16``
            (0..65535) for deep video (:attr:`VideoInfo.bit_depth` > 8); None when the frame
            travels as :attr:`i420` instead.
        pts: Presentation timestamp in :attr:`VideoInfo.time_base` units, or None when
            the stream carries none (raw elementary streams).
        index: 0-based position in the order the decoder produced the frames
            (presentation order for well-formed streams).
        i420: ``(H * 3 // 2, W)`` ``uint8`` planar YUV 4:2:0 (Y, then U, then V), limited range,
            the source's own samples, when the reader was asked for them (see
            :class:`VideoReader`); None for RGB frames.
    """

    rgb: np.ndarray | None
    pts: int | None
    index: int
    i420: np.ndarray | None = None

    def to_rgb(self) -> np.ndarray:
        """The frame as ``(H, W, 3)`` RGB: :attr:`rgb` as it is (``uint16`` for deep video), or ``uint8`` from
        the BT.601 conversion of an I420 frame."""
        if self.rgb is not None:
            return self.rgb
        return cv2.cvtColor(self.i420, cv2.COLOR_YUV2RGB_I420)


@dataclass(frozen=True)
class Source:
    """Where a :class:`VideoReader` reads from, as FFmpeg needs it (see :func:`parse_source`).

    Attributes:
        kind: ``"file"``, ``"camera"`` or ``"url"``.
        target: Path, device node or URL handed to FFmpeg.
        format: Forced FFmpeg input format (``"v4l2"`` for cameras), else None to probe.
        options: FFmpeg input/protocol options (timeouts, RTSP transport).
        label: How messages name the source, e.g. ``"camera 0 (/dev/video0)"``.
    """

    kind: str
    target: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    label: str = ""


def _microseconds(seconds: float) -> str:
    return str(int(seconds * 1_000_000))


def file_url_path(source: str) -> str:
    """The path a ``file://`` URL names (the scheme in any case); any other source as it is (pure)."""
    source = str(source)
    return source[len("file://"):] if source[:len("file://")].lower() == "file://" else source


def parse_source(source: str) -> Source:
    """Classify a source string; pure apart from the file checks.

    Args:
        source: A file path; an ``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``,
            ``rtp://``, ``srt://`` or ``tcp://`` URL; a camera index (``"0"``, ``"1"``,
            ... meaning ``/dev/videoN``); or a ``/dev/videoN`` device.

    Raises:
        InputError: A missing or unreadable file, an unsupported URL scheme, or a camera
            index on a system without Video4Linux2.
    """
    source = str(source)
    if re.fullmatch(r"\d+", source) or source.startswith("/dev/video"):
        device = f"/dev/video{int(source)}" if source.isdigit() else source
        if not sys.platform.startswith("linux"):
            raise InputError(
                f"camera {source}: cameras are read through Video4Linux2, which needs Linux; "
                "pass a video file or a stream URL"
            )
        name = f"camera {source} ({device})" if source.isdigit() else f"camera {device}"
        return Source("camera", device, "v4l2", {}, name)

    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", source)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            return parse_source(file_url_path(source))
        if scheme not in _NETWORK_SCHEMES:
            raise InputError(f"unsupported stream URL {source}: use one of {', '.join(sorted(_NETWORK_SCHEMES))}")
        # rw_timeout bounds every blocking read of FFmpeg's I/O layer.
        options = {"rw_timeout": _microseconds(NETWORK_READ_TIMEOUT_S)}
        if scheme in ("rtsp", "rtsps"):
            # TCP: no lost packets (UDP drops show up as smeared frames); "timeout" is
            # the RTSP socket timeout, so an unreachable camera fails fast.
            options.update(rtsp_transport="tcp", timeout=_microseconds(NETWORK_OPEN_TIMEOUT_S))
        elif scheme in ("udp", "rtp"):
            options.update(timeout=_microseconds(NETWORK_READ_TIMEOUT_S))
            if scheme == "udp":
                options["overrun_nonfatal"] = "1"
        elif scheme in ("http", "https"):
            options.update(reconnect="1")
        return Source("url", source, None, options, source)

    path = Path(source)
    if not path.exists():
        raise InputError(f"video not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    return Source("file", str(path), None, {}, str(path))


def _reason(exc: BaseException) -> str:
    """One-line cause of an FFmpeg/OS error, without PyAV's errno and file name noise."""
    if isinstance(exc, av.error.ExitError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _parse_hms(text: str) -> float | None:
    """Seconds from a Matroska ``DURATION`` tag such as ``00:01:02.500000000``; None if it is not a time."""
    try:
        return parse_time(text, "DURATION")
    except InputError:
        return None


class VideoReader:
    """Decode a video file, network stream or camera, one frame at a time.

    Use as a context manager; :attr:`info` is set on entry, which opens the input and
    decodes the first frame (to learn the display size and rotation). Iterating yields
    :class:`Frame` (decoded, RGB ``(H, W, 3)`` ``uint8``, upright) and
    :data:`AudioPacket` (undecoded, for stream copy) in demux order. Iterate once.

    Damaged input does not raise mid-stream: for a file, the frames before the damage are
    yielded, iteration ends and :attr:`error` says what happened. Damage is detected from
    (a) demuxer or decoder errors, (b) packets FFmpeg flags as corrupt (e.g. cut short),
    (c) frames the decoder flags as concealed (partly made-up pictures), and (d) at the
    end, fewer frames than the container declares or a last frame well short of the
    declared duration. Damage is skipped with a warning instead on live streams (a network
    hiccup is not the end of a stream) and before the first good frame (recordings that
    start mid-GOP); a lost or stalled connection ends iteration with :attr:`error`.

    Attributes:
        source: The source string given.
        info: :class:`VideoInfo`, available after ``__enter__``.
        audio_streams: The input's audio streams (PyAV ``AudioStream``); packets from
            these are yielded for :meth:`VideoWriter.mux_audio`.
        error: None, or one line saying why decoding stopped early.
    """

    def __init__(self, source: str, want_i420: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                 window: Window | None = None, warn_damage: bool = True):
        """Record the source; nothing is opened until ``__enter__``.

        Args:
            source: A file path, a stream URL (rtsp/rtmp/http(s)/udp/rtp/srt/tcp), a camera
                index ``"0"``, ``"1"``, ... (``/dev/videoN``) or a ``/dev/videoN`` path (these
                through FFmpeg), or a ``csi://N`` / ``v4l2:///dev/videoN`` camera URI, opened
                through OpenCV's GStreamer backend (see :mod:`sredge.runtime.camera`).
            want_i420: Yield frames as the source's own YUV 4:2:0 samples (``Frame.i420``)
                instead of RGB, when that is exact: limited range, BT.601 or unspecified
                matrix, no rotation, even width and height (:attr:`i420` says whether it is).
            max_pixels: Largest frame (width x height) admitted, checked from the stream's header
                before a frame is decoded (``--max-pixels``).
            window: Yield only this part of the video (``--start/--duration/--frames``; see
                :mod:`sredge.runtime.window`): files seek to the key frame before its start and drop
                the frames before it; frames and audio come retimed to start at 0. None: all of it.
            warn_damage: Log a warning where decoding stops at damage, and for each damaged audio packet
                dropped (``error`` is set either way); False for a second reading of a source whose damage
                was already said.
        """
        self.max_pixels = max_pixels
        self.warn_damage = warn_damage
        self.source = str(source)
        self.want_i420 = want_i420
        self.window = window if window is not None and not window.is_whole else None
        self._seeked = False  # decoding began at a key frame found by seeking, not at the start
        self.zero_pts: int | None = None
        """With a window: the source pts of its first frame, which is yielded with pts 0 (set on entry)."""
        self._source_pts: int | None = None  # pts of the last frame handed to the window cut
        self.i420: bool = False
        """Frames are yielded as ``Frame.i420`` (decided on the first frame)."""
        self.info: VideoInfo | None = None
        self.audio_streams: tuple = ()
        self.carried_streams: tuple = ()
        """Audio and subtitle streams whose packets are yielded (for :meth:`VideoWriter.mux_audio`)."""
        self.source_streams: SourceStreams | None = None
        """The source's streams, tags and chapters for :func:`~sredge.runtime.streams.carry_streams`
        (None: a camera)."""
        self.error: str | None = None
        self.error_kind: str | None = None
        """With ``error``: :data:`STOP_JOINED` or :data:`STOP_DAMAGED`."""
        self.waited_s = 0.0
        """Seconds spent so far waiting for a live source (a stream's next packet, a camera's next frame); 0 for
        files. A pipeline reading frames takes it out of their decode time and end-to-end latency."""
        self._why: str | None = None  # cause of an early stop, set while decoding
        self._kind: str | None = None
        self._src: Source | None = None
        self._container = None
        self._video = None
        self._pending: deque = deque()
        self._items: Iterator | None = None
        self._live = False
        self._count = 0  # frames yielded so far
        self._last_pts: int | None = None
        self._last_end: int | None = None  # the latest frame end (pts + duration) the decoder gave
        self._first_pts: int | None = None
        self._coded_size: tuple[int, int] | None = None  # (width, height) before rotation
        self._rot_k = 0  # quarter turns counter-clockwise
        self._bit_depth = 8  # of the decoded samples, from the first frame
        self._pixel_format = ""
        self._colour: Colour | None = None  # from the first frame
        self._resized_warned = False
        self._dropped = 0  # damaged packets/frames skipped (see _drop)
        self._drops_in_a_row = 0
        self._last_drop: str | None = None

    # -- opening ------------------------------------------------------------------

    def __enter__(self) -> VideoReader:
        if is_camera_uri(self.source):  # csi:// and v4l2:// open through GStreamer, not FFmpeg
            return self._enter_gstreamer()
        src = self._src = parse_source(self.source)
        self._container = self._open(src)
        try:
            self._select_streams(src)
            self._live = src.kind == "camera" or (src.kind == "url" and self._container.duration is None)
            self._seek_to_window()
            self._items = self._cut(self._decode_all(), self._video_origin_s())
            for item in self._items:  # up to the first frame: its size and rotation define info
                self._pending.append(item)
                if isinstance(item, Frame):
                    break
            else:
                why = self._why or self._last_drop
                w = self.window
                if w is not None and why is None:
                    total = self._declared_duration_s()
                    if w.duration_s is None or (total is not None and w.start_s >= total):
                        length = f" ({total:.3f} s long)" if total is not None else ""
                        where = ("is at or past the end of" if total is None or w.start_s >= total
                                 else "is after the last frame's start in")  # 0.47 s of a 0.48 s clip
                        raise InputError(f"--start {w.start_s:g} s {where} {src.label}{length}; "
                                         "give an earlier --start")
                    raise InputError(f"{src.label} has no frame from {w.start_s:g} s to "
                                     f"{w.start_s + w.duration_s:g} s; give a longer --duration")
                cause = f" ({why})" if why else ""
                raise InputError(f"{src.label}: no video frame could be decoded{cause}")
            self.info = self._make_info()
        except BaseException:
            self.close()
            raise
        log.debug("opened %s: %s", src.label, self.info)
        return self

    def _video_origin_s(self) -> Fraction:
        v = self._video
        return Fraction(v.start_time or 0) * Fraction(v.time_base)

    @property
    def origin_s(self) -> Fraction:
        """Seconds of the video stream's start, where :class:`~sredge.runtime.window.Window` times count from."""
        return self._video_origin_s() if self._video is not None else Fraction(0)

    def _seek_to_window(self) -> None:
        """Seek to the key frame at or before the window's start; the frames before it are dropped later."""
        if self.window is None or self.window.start_s <= 0 or self._live:
            return
        v = self._video
        tb = Fraction(v.time_base)
        origin = int(v.start_time or 0)
        target = int((self._video_origin_s() + Fraction(self.window.start_s)) / tb)
        # Formats without an index (MPEG-TS) may land on a key frame after the target, even when asked
        # for the stream's very start (FFmpeg's search by timestamp), or inside a group of pictures with
        # no key frame before the target: step back (1 s, 2 s, 4 s, ...),
        # past the start if need be, until the first key frame is at or before the target. Decoding
        # from a later key frame would silently drop the frames between (the cut cannot see them).
        back, reach = 0, origin - int(_SEEK_PAST_START_S / tb)
        try:
            while True:
                at = target - int(back / tb)
                self._container.seek(at, stream=v, backward=True, any_frame=False)
                key = self._first_key_pts()  # None: no key frame soon after (landed inside a long GOP)
                if key is not None and key <= target:
                    break
                if at <= reach:
                    raise InputError(
                        f"{self._src.label}: cannot seek to --start {self.window.start_s:g} s: no key frame found "
                        f"at or before it, so frames would be lost; cut the file first or drop --start")
                back = max(1, 2 * back)
            self._container.seek(at, stream=v, backward=True, any_frame=False)  # _first_key_pts read on
        except (av.error.FFmpegError, OSError, OverflowError) as exc:
            raise InputError(f"{self._src.label}: cannot seek to --start {self.window.start_s:g} s "
                             f"({_reason(exc) if not isinstance(exc, OverflowError) else 'out of range'}); "
                             "cut the file first or drop --start") from exc
        self._seeked = True

    def _first_key_pts(self) -> int | None:
        """Pts of the first video key frame packet from the current read position (None: none soon)."""
        for i, packet in enumerate(self._container.demux(self._video)):
            if packet.size and packet.is_keyframe and packet.pts is not None:
                return packet.pts
            if i > 1000:
                return None
        return None

    def _cut(self, items: Iterator, origin_s: Fraction) -> Iterator:
        """``items`` limited to :attr:`window` (see :func:`sredge.runtime.window.cut`), or unchanged."""
        if self.window is None:
            return items
        v = self._video
        fps = Fraction(v.average_rate) if v is not None and v.average_rate else None
        time_base = Fraction(v.time_base) if v is not None else Fraction(1, 1000)  # GStreamer: milliseconds
        kept = cut(self._remember_pts(items), self.window, time_base, origin_s, fps, lambda o: isinstance(o, Frame),
                   has_audio=bool(self.audio_streams))
        return self._note_zero(kept)

    def _remember_pts(self, items: Iterator) -> Iterator:
        for obj in items:
            if isinstance(obj, Frame):
                self._source_pts = obj.pts
            yield obj

    def _note_zero(self, kept: Iterator) -> Iterator:
        """Records :attr:`zero_pts`: ``cut`` yields each kept frame right after reading it, so the last
        source pts seen is the first kept frame's."""
        for obj in kept:
            if self.zero_pts is None and isinstance(obj, Frame):
                self.zero_pts = self._source_pts
            yield obj

    def _open(self, src: Source):
        kwargs: dict = {"format": src.format, "options": src.options}
        if src.kind == "url":
            kwargs["timeout"] = (NETWORK_OPEN_TIMEOUT_S, NETWORK_READ_TIMEOUT_S)
        try:
            return av.open(src.target, **kwargs)
        except (av.error.FFmpegError, OSError) as exc:
            why = _reason(exc)
            if src.kind == "camera":
                raise InputError(f"{src.label} did not open: {why}") from exc
            if src.kind == "url":
                raise InputError(f"could not open stream {src.label}: {why}") from exc
            if isinstance(exc, av.error.InvalidDataError):
                raise InputError(
                    f"{src.label} is not a video FFmpeg can read (unknown format, or a damaged or cut-short file)"
                ) from exc
            raise InputError(f"cannot open {src.label}: {why}") from exc

    # -- GStreamer cameras (csi://, v4l2://) ------------------------------------------

    def _enter_gstreamer(self) -> VideoReader:
        """Open a jetson-utils style camera URI through OpenCV's GStreamer backend.

        Frames come out as the FFmpeg path's do: upright RGB ``Frame.rgb`` (never I420), pts in
        milliseconds since the first frame (arrival times, so the output keeps the camera's real
        timing), no audio, live. The capture is kept in ``_container``: ``close()`` closes it alike.
        """
        from sredge.runtime.camera import parse_camera_uri
        from sredge.runtime.camera_capture import GstCapture

        spec = parse_camera_uri(self.source)
        if spec.width is not None:  # the size asked for: refused before the camera starts
            check_pixels(spec.label, spec.width, spec.height, self.max_pixels)
        capture = GstCapture(spec)
        capture.open()
        self._src = Source("camera", capture.pipeline, "gstreamer", {}, spec.label)
        self._container, self._live = capture, True
        try:
            self._items = self._cut(self._gstreamer_frames(capture), Fraction(0))
            first = next(self._items, None)
            if first is None:
                raise InputError(f"{spec.label} opened but sent no frame")
            self._pending.append(first)
            h, w = first.rgb.shape[:2]
            check_pixels(spec.label, w, h, self.max_pixels)  # the size the camera chose
            fps = spec.framerate or capture.fps
            self.info = VideoInfo(width=w, height=h, fps=Fraction(fps).limit_denominator(1001) if fps else None,
                                  time_base=Fraction(1, 1000), frame_count=None, rotation=0, codec="rawvideo",
                                  has_audio=False, is_live=True)
        except BaseException:
            self.close()
            raise
        log.debug("opened %s: %s", spec.label, self.info)
        return self

    def _gstreamer_frames(self, capture) -> Iterator[Frame]:
        start = None
        size = None  # (width, height) of the first frame: every frame is scaled to it
        while True:
            t0 = time.perf_counter()
            bgr = capture.read()
            self.waited_s += time.perf_counter() - t0
            if bgr is None:
                if self._count:
                    self.error = f"stopped at frame {self._count}: the camera stopped sending frames"
                    log.warning("%s: %s", self._src.label, self.error)
                return
            now = time.monotonic()
            start = now if start is None else start
            pts = round((now - start) * 1000)
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
            h, w = bgr.shape[:2]
            size = size or (w, h)
            if (w, h) != size:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            yield self._next(Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), pts, self._count))

    # -- FFmpeg streams -------------------------------------------------------------

    def _select_streams(self, src: Source) -> None:
        c = self._container
        fmt = c.format
        if fmt.name in _NOT_VIDEO_FORMATS or fmt.name.endswith("_pipe"):
            raise InputError(f"{src.label} is not a video (FFmpeg reads it as {fmt.long_name or fmt.name})")
        videos = [s for s in c.streams.video if not s.disposition & Disposition.attached_pic]
        self.audio_streams = tuple(c.streams.audio)
        self.carried_streams = (*self.audio_streams, *c.streams.subtitles)
        if not videos:
            what = "audio only" if self.audio_streams else f"{len(c.streams)} non-video streams"
            raise InputError(f"{src.label} has no video stream ({what})")
        default = [s for s in videos if s.disposition & Disposition.default]
        self._video = (default or videos)[0]
        cc = self._video.codec_context
        if cc is not None and cc.width > 0 and cc.height > 0:  # issue 14: frame size limit before decoding
            check_pixels(src.label, cc.width, cc.height, self.max_pixels)
        if self._video.codec_context is None:
            raise InputError(f"{src.label}: this FFmpeg build cannot decode its video codec")
        # Frame + slice threads; but frame threads sometimes lose the "concealed errors" flag of the
        # last, cut-short picture, and in MPEG-TS that flag is the only sign of it (see _ends_mid_ts_packet).
        self._video.codec_context.thread_type = "SLICE" if self._is_local_ts() else "AUTO"
        w = self.window  # before the discards below: a stream the demuxer discards itself is an MP4 chapter track
        start = Fraction(w.start_s).limit_denominator(10**6) if w is not None else Fraction(0)
        end = start + Fraction(w.duration_s).limit_denominator(10**6) if w is not None and w.duration_s else None
        self.source_streams = source_streams(c, self._video, start, end)
        # Data and extra video streams are not demuxed at all (the writer says it drops them).
        keep = {self._video.index, *(s.index for s in self.carried_streams)}
        for s in c.streams:
            if s.index not in keep:
                s.discard = Discard.all

    def _make_info(self) -> VideoInfo:
        v = self._video
        w, h = self._coded_size
        if self._rot_k % 2:
            w, h = h, w
        fps = v.average_rate if v.average_rate else None
        frames = v.frames if (v.frames and not self._live) else None
        if self.window is not None:
            frames = expected_frames(self.window, frames, Fraction(fps) if fps else None)
        return VideoInfo(
            width=w,
            height=h,
            fps=Fraction(fps) if fps else None,
            time_base=Fraction(v.time_base),
            frame_count=frames,
            rotation=self._rot_k * 90,
            codec=v.codec_context.name,
            has_audio=bool(self.audio_streams),
            is_live=self._live,
            bit_depth=self._bit_depth,
            colour=self._colour,
            pixel_format=self._pixel_format,
        )

    # -- iteration -----------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame | AudioPacket]:
        """Yield :class:`Frame` and :data:`AudioPacket` items in demux order, once."""
        if self._items is None:
            raise RuntimeError("use VideoReader as a context manager: with VideoReader(src) as r: ...")
        while self._pending:
            yield self._pending.popleft()
        yield from self._items

    def _stop(self, why: str, kind: str = STOP_DAMAGED) -> None:
        """Record why decoding ends early; ``error`` (and ``error_kind``) are set when iteration ends."""
        self._why, self._kind = why, kind

    def _decode_all(self) -> Iterator[Frame | AudioPacket]:
        try:
            yield from self._decode_until_damage()
        finally:
            if self._why is not None:
                # Frames still in the decoder may follow the stop, so count at the very end.
                self.error = f"stopped at frame {self._count}: {self._why}"
                self.error_kind = self._kind
                if self.warn_damage:
                    log.warning("%s: %s", self._src.label, self.error)

    def _decode_until_damage(self) -> Iterator[Frame | AudioPacket]:
        """Demux video + audio; decode video; stop cleanly (with ``error``) on damage."""
        video = self._video
        packets = self._demux(video, cut_short=self._ends_mid_ts_packet())
        if self._live:
            packets = self._on_timeline(packets)
        drain = True  # flush the decoder at the end: the frames it holds are intact
        while True:
            t0 = time.perf_counter()
            try:
                packet, cut = next(packets)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError) as exc:
                self._stop(("stream lost: " if self._live else "read error: ") + self._read_failure(exc))
                break
            finally:
                if self._live:
                    self.waited_s += time.perf_counter() - t0
            if packet.stream_index != video.index:
                if packet.is_corrupt:
                    log.log(logging.WARNING if self.warn_damage else logging.DEBUG,  # said once, at the first read
                            "%s: dropped a damaged audio packet at byte %s", self._src.label, packet.pos)
                    continue
                yield packet
                continue
            if cut:  # the last video packet of an MPEG-TS file that ends mid-packet
                self._stop(f"the file ends in the middle of a packet (cut short?); its last picture at byte "
                           f"{packet.pos} is incomplete")
                break
            if packet.is_corrupt:  # FFmpeg marks packets it could not read whole
                if self._drop(f"a damaged or cut-short packet at byte {packet.pos}"):
                    continue
                join = self._join_after(packet, packets)
                if join is None:
                    break
                # The first recording is whole: decode it to its end, then stop where the second begins.
                joined_at, rest = join
                self._why = None
                for p in (packet, *rest):
                    if p.stream_index != video.index:
                        yield p
                        continue
                    try:
                        decoded = video.decode(p)
                    except av.error.FFmpegError as exc:
                        self._drop(f"an undecodable packet ({_reason(exc)})")
                        break
                    yield from self._emit(decoded)
                    if self._why is not None:
                        break
                if self._why is None:
                    self._stop(f"{JOINED} at byte {joined_at}, where the timestamps begin again (MPEG-TS files "
                               "joined end to end, e.g. with cat?); upscale each recording as its own file",
                               STOP_JOINED)
                else:
                    drain = False
                break
            try:
                decoded = video.decode(packet)
            except av.error.FFmpegError as exc:
                if self._drop(f"an undecodable packet ({_reason(exc)})"):
                    continue
                break
            yield from self._emit(decoded)
            if self._why is not None:
                drain = False  # later frames may reference the damaged one
                break
        if drain:
            try:
                decoded = video.decode(None)
            except av.error.FFmpegError as exc:
                decoded = []
                if self._why is None:
                    self._stop(f"corrupt data at the end: {_reason(exc)}")
            yield from self._emit(decoded)
        if self._why is None and not self._live:
            self._check_complete()

    def _read_failure(self, exc: BaseException) -> str:
        """Why reading failed, in words: a stream's timeout says how long nothing came."""
        if isinstance(exc, av.error.ExitError) and self._src.kind == "url":
            return f"nothing came for {NETWORK_READ_TIMEOUT_S:g} s (the sender stopped or stalled)"
        return _reason(exc)

    def _join_after(self, damaged, packets: Iterator[tuple[object, bool]]) -> tuple[int, list] | None:
        """Where a second recording starts just after ``damaged``: (its byte, the packets between), or None.

        Joining two MPEG-TS files with ``cat`` breaks the continuity counters at the join, so FFmpeg
        flags a video packet near the end of the first recording as damaged although it is whole; the
        video's decoding timestamps then begin again. Called only when the reader would stop at
        ``damaged``: it reads up to :data:`_JOIN_LOOKAHEAD` packets further; None when the timestamps
        do not begin again there (damage) or the input is not a local MPEG-TS file.
        """
        if not self._is_local_ts() or damaged.dts is None:
            return None
        between = []
        try:
            for _ in range(_JOIN_LOOKAHEAD):
                packet, cut = next(packets)
                if packet.stream_index == self._video.index and packet.dts is not None and packet.dts < damaged.dts:
                    return packet.pos, between
                if cut:
                    return None
                between.append(packet)
        except (StopIteration, av.error.FFmpegError, OSError):
            pass
        return None

    def _demux(self, video, cut_short: bool) -> Iterator[tuple[object, bool]]:
        """``(packet, cut)`` in demux order, end-of-stream markers left out. With ``cut_short``
        the video packets are held back one, so the last one can come with ``cut=True``."""
        held = None
        for packet in self._container.demux(video, *self.carried_streams):
            if packet.size == 0:  # end-of-stream markers; the decoder is flushed by the caller
                continue
            if not cut_short or packet.stream_index != video.index:
                yield packet, False
                continue
            if held is not None:
                yield held, False
            held = packet
        if held is not None:
            yield held, True

    def _on_timeline(self, packets: Iterator[tuple[object, bool]]) -> Iterator[tuple[object, bool]]:
        """``packets`` of a live source shifted onto one forward timeline (:mod:`sredge.runtime.timeline`):
        a sender that loops or restarts begins its timestamps again, and the output must not."""
        from sredge.runtime.timeline import LiveTimeline

        timeline = LiveTimeline()
        for packet, cut_short in packets:
            jump = timeline.place(packet, watched=packet.stream.type in ("video", "audio"))
            if jump is not None:
                log.warning("%s: the timestamps start over at %.2f s, after %.2f s (the sender looped or restarted?); "
                            "the recording goes on without a gap", self._src.label, jump.to_s, jump.from_s)
            yield packet, cut_short

    def _is_local_ts(self) -> bool:
        """The input is an MPEG-TS file (not a stream or a camera)."""
        return self._src.kind == "file" and "mpegts" in self._container.format.name.split(",")

    def _ends_mid_ts_packet(self) -> bool:
        """A local MPEG-TS file whose size is not a whole number of 188- (or 192-) byte packets was cut short.

        Video PES packets in MPEG-TS usually declare no length, so FFmpeg cannot flag the last
        one as incomplete, and H.264's frame-threaded decoder does not always flag the picture
        it conceals. The size is a signal that does not depend on either.
        """
        if not self._is_local_ts():
            return False
        try:
            size = Path(self._src.target).stat().st_size
        except (OSError, TypeError):
            return False
        return size % 188 != 0 and size % 192 != 0

    def _emit(self, decoded: list) -> Iterator[Frame]:
        for vf in decoded:
            if vf.is_corrupt:  # the decoder concealed errors: part of the picture is made up
                if self._drop("a frame with concealed decoding errors"):
                    continue
                return
            self._drops_in_a_row = 0
            yield self._to_frame(vf)

    def _drop(self, what: str) -> bool:
        """Skip damaged data where that is tolerated, else stop. Returns True if skipped.

        Live streams skip damage (a network hiccup is not the end of a stream), and so does
        any input before its first good frame (recordings that start mid-GOP decode
        garbage until the next key frame). Files stop at damage after the first frame.
        """
        tolerated = self._live or self._count == 0
        if not tolerated or self._drops_in_a_row >= _MAX_DROPS_IN_A_ROW:
            self._stop(f"corrupt data: {what}")
            return False
        self._drops_in_a_row += 1
        self._dropped += 1
        self._last_drop = what
        level = logging.WARNING if self._dropped <= 10 else logging.DEBUG
        log.log(level, "%s: dropped %s (%d so far)", self._src.label, what, self._dropped)
        return True

    def _to_frame(self, vf) -> Frame:
        if self._coded_size is None:
            check_pixels(self._src.label, vf.width, vf.height, self.max_pixels)  # the header did not say
            self._coded_size = (vf.width, vf.height)
            rot = vf.rotation  # counter-clockwise degrees from the display matrix, [-180, 180]
            self._rot_k = round(rot / 90) % 4
            if abs(rot - round(rot / 90) * 90) > 1:
                label, used = self._src.label, 90 * self._rot_k
                log.warning("%s: rotation %s° is not a multiple of 90; using %d°", label, rot, used)
            self._bit_depth = max((c.bits for c in vf.format.components), default=8)
            self._pixel_format = vf.format.name
            self._colour = _colour_of(vf, self._video.codec_context)
            # Deep video is never I420 (8-bit planes); the network sees it through 16-bit RGB.
            self.i420 = self.want_i420 and self._bit_depth <= 8 and i420_passthrough_ok(
                vf.width, vf.height, self._rot_k, int(vf.colorspace), int(vf.color_range))
        start = vf.pts if vf.pts is not None else vf.dts
        if start is not None and vf.duration:  # a held last frame (variable frame rate) ends late
            self._last_end = max(self._last_end or 0, start + vf.duration)
        if self.i420:
            return self._next(Frame(None, vf.pts if vf.pts is not None else vf.dts, self._count,
                                    i420=self._i420_of(vf)))
        # Deep video: 16-bit RGB straight from the decoder's 10-bit samples, never through 8 bits.
        kwargs: dict = {"format": "rgb48le" if self._bit_depth > 8 else "rgb24"}
        if (vf.width, vf.height) != self._coded_size:
            # Mid-stream size changes (adaptive streams) are scaled back so every frame matches info.
            kwargs["width"], kwargs["height"] = self._coded_size
            if not self._resized_warned:
                self._resized_warned = True
                log.warning(
                    "%s: frame size changed to %dx%d; scaling to %dx%d",
                    self._src.label, vf.width, vf.height, *self._coded_size,
                )  # fmt: skip
        if vf.color_range == ColorRange.JPEG:
            # PyAV treats an unset source range as limited; full-range video must say so.
            kwargs["src_color_range"] = ColorRange.JPEG
        rgb = vf.to_ndarray(**kwargs)
        if self._rot_k:
            rgb = np.rot90(rgb, self._rot_k)
        pts = vf.pts if vf.pts is not None else vf.dts
        return self._next(Frame(np.ascontiguousarray(rgb), pts, self._count))

    def _i420_of(self, vf) -> np.ndarray:
        w, h = self._coded_size
        if (vf.width, vf.height) != (w, h):
            return vf.to_ndarray(format="yuv420p", width=w, height=h)  # adaptive stream: scaled back
        return vf.to_ndarray(format="yuv420p")  # the decoder's own planes for yuv420p sources

    def _next(self, frame: Frame) -> Frame:
        self._count += 1
        pts = frame.pts
        if pts is not None:
            self._first_pts = pts if self._first_pts is None else min(self._first_pts, pts)
            self._last_pts = pts if self._last_pts is None else max(self._last_pts, pts)
        return frame

    def _check_complete(self) -> None:
        """After a clean end of a file: did it end where the container says it should?"""
        v = self._video
        frame_s = float(1 / v.average_rate) if v.average_rate else 0.0
        expected = self._declared_duration_s()
        got = None
        # After a seek the frames before the key frame were never decoded: time from the stream's start.
        first = int(v.start_time or 0) if self._seeked else self._first_pts
        if self._last_pts is not None and first is not None:
            got = float((self._last_pts - first) * v.time_base) + frame_s
        declared = v.frames if (v.frames and not self._seeked) else None
        if declared and self._count < declared:
            # An edit list may hide declared frames on purpose; the time then still reaches the end.
            if expected is None or got is None or got < expected - 1.5 * frame_s:
                self._stop(f"the file ends early ({declared} frames declared; truncated?)")
            return
        tag = self._matroska_track_duration_s()
        if tag is not None and not self._seeked and self._last_pts is not None and self._last_pts >= 0:
            # Matroska's muxers write each track's own end time (FFmpeg: the DURATION tag, from the packets it
            # wrote): the video's last frame must end there, to a frame or two. (The container's span, used
            # below otherwise, may be an estimate, hence that check's wide margin: a 1-hour file cut by minutes
            # passed it.)
            end = max(float(self._last_pts * v.time_base) + frame_s, float((self._last_end or 0) * v.time_base))
            if end < tag - (0.5 + 2 * frame_s):
                self._stop(f"the file ends early, at {end:.2f} s of {tag:.2f} s (truncated?)")
            return
        if expected is not None and got is not None and got < expected - (1.0 + 0.05 * expected):
            self._stop(f"the file ends early, at {got:.2f} s of {expected:.2f} s (truncated?)")

    def _matroska_track_duration_s(self) -> float | None:
        """The video track's DURATION tag of a Matroska/WebM file (its end time, in seconds), or None."""
        if "matroska" not in self._container.format.name.split(","):
            return None
        tag = self._video.metadata.get("DURATION")
        return _parse_hms(tag) if tag else None

    def _declared_duration_s(self) -> float | None:
        v = self._video
        if v.duration and v.time_base:
            return float(v.duration * v.time_base)
        tag = v.metadata.get("DURATION")  # Matroska writes per-stream durations as tags
        if tag and (seconds := _parse_hms(tag)) is not None:
            return seconds
        if not self.audio_streams and self._container.duration:
            return self._container.duration / av.time_base  # the container's span is the video's
        return None

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        """Close the input; iteration ends. Safe to call twice."""
        self._items = None
        self._pending.clear()
        if self._container is not None:
            container, self._container = self._container, None
            container.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def source_bit_depth(source: str) -> int:
    """Bits per sample of a video file's main video stream, from its header (nothing decoded): 8, 10, ...

    Cameras, stream URLs and files FFmpeg cannot open count as 8 (the reader then reports the
    problem, or the writer falls back from the first frame). Used to pick an encoder that can
    write that depth before any work starts.
    """
    try:
        src = parse_source(source) if not is_camera_uri(source) else None
    except InputError:
        return 8
    if src is None or src.kind != "file":
        return 8
    try:
        with av.open(src.target) as c:
            videos = [s for s in c.streams.video if not s.disposition & Disposition.attached_pic]
            cc = videos[0].codec_context if videos else None
            fmt = cc.format if cc is not None else None
            return max((x.bits for x in fmt.components), default=8) if fmt is not None else 8
    except (av.error.FFmpegError, OSError, ValueError):
        return 8


def _colour_of(vf, cc) -> Colour:
    """The colour description of a decoded frame (its stream's, where the frame says nothing), with
    the HDR10 metadata it carries as side data."""
    def pick(frame_value, stream_value) -> int:
        v = int(frame_value)
        return v if v != 2 or stream_value is None else int(stream_value)

    mastering: MasteringDisplay | None = None
    light: ContentLight | None = None
    for sd in vf.side_data:
        name = getattr(sd.type, "name", "")
        if name == "MASTERING_DISPLAY_METADATA":
            mastering = parse_mastering_display(bytes(sd))
        elif name == "CONTENT_LIGHT_LEVEL":
            light = parse_content_light(bytes(sd))
    full = int(vf.color_range) == int(ColorRange.JPEG) or (
        int(vf.color_range) == 0 and cc is not None and int(cc.color_range) == int(ColorRange.JPEG))
    return Colour(
        primaries=pick(vf.color_primaries, getattr(cc, "color_primaries", None)),
        transfer=pick(vf.color_trc, getattr(cc, "color_trc", None)),
        matrix=pick(vf.colorspace, getattr(cc, "colorspace", None)),
        full_range=full, mastering=mastering, light=light)


_AVCOL_SPC_601_OR_UNSET = (2, 5, 6)
"""FFmpeg AVColorSpace values: UNSPECIFIED, BT470BG and SMPTE170M (both BT.601)."""


def parameter_sets(codec: str, extradata: bytes | None) -> tuple[bytes, ...]:
    """The NAL units in an H.264/HEVC ``extradata``, whether Annex B (an encoder's) or avcC/hvcC (an MP4's);
    other codecs: the bytes as they are. Two streams with equal parameter sets can be joined."""
    data = bytes(extradata or b"")
    if not data:
        return ()  # none: a container without global headers (AVI) has them in the key frames
    if codec not in ("h264", "hevc", "libx264", "libx265") and not codec.startswith(("h264_", "hevc_")):
        return (data,)
    if data[:3] == b"\0\0\1" or data[:4] == b"\0\0\0\1":
        return tuple(n.strip(b"\0") for n in re.split(b"\0\0\1", data) if n.strip(b"\0"))
    units = []
    try:
        if codec.startswith(("h264", "libx264")):  # avcC
            pos, count = 6, data[5] & 0x1F
            for group in range(2):
                for _ in range(count):
                    size = int.from_bytes(data[pos:pos + 2], "big")
                    units.append(data[pos + 2:pos + 2 + size])
                    pos += 2 + size
                if group == 0:
                    count, pos = data[pos], pos + 1
        else:  # hvcC
            pos, arrays = 23, data[22]
            for _ in range(arrays):
                count, pos = int.from_bytes(data[pos + 1:pos + 3], "big"), pos + 3
                for _ in range(count):
                    size = int.from_bytes(data[pos:pos + 2], "big")
                    units.append(data[pos + 2:pos + 2 + size])
                    pos += 2 + size
    except IndexError:
        return (data,)
    return tuple(units)


def i420_passthrough_ok(width: int, height: int, rot_k: int, colorspace: int, color_range: int) -> bool:
    """Whether a source's YUV 4:2:0 samples can be used as they are (pure).

    They can when converting through RGB would give the same samples back: BT.601 (or
    unspecified: FFmpeg and sredge then assume BT.601) limited-range video, upright, with even
    sides so the chroma planes are exactly half size.
    """
    bt601_or_unset = colorspace in _AVCOL_SPC_601_OR_UNSET
    limited = color_range in (int(ColorRange.MPEG), int(ColorRange.UNSPECIFIED))
    return bt601_or_unset and limited and rot_k == 0 and width % 2 == 0 and height % 2 == 0


def output_notices(reader: VideoReader, path: str | Path, codec: str) -> list[str]:
    """What a :class:`VideoWriter` at ``path`` with encoder ``codec``, fed from ``reader``, will not carry (or
    carry changed), one line each, known before anything is written: the same lines as its ``notices``.

    Raises:
        InputError: Audio the output container cannot hold (the writer would refuse it too).
    """
    lines = stream_notices(reader.source_streams, path) if reader.source_streams is not None else []
    info = reader.info
    enc = ENCODERS.get(codec)
    hdr = hdr_notice(codec, enc.family if enc is not None else "", info.colour if info else None)
    depth = sampling_notice(info.pixel_format, info.bit_depth) if info else None
    return [x for x in (depth, hdr) if x] + lines


def sampling_notice(pixel_format: str, bit_depth: int) -> str | None:
    """The line saying the output's 4:2:0 samples hold less than the source's, or None (pure).

    The output is 4:2:0 at 8 or 10 bits: a 12-bit source loses its two lowest bits, a 4:2:2 or 4:4:4
    source half or three quarters of its chroma resolution.
    """
    what = []
    if bit_depth > 10:
        what.append(f"{bit_depth}-bit samples are written at 10 bits")
    name = pixel_format or ""
    if name and not name.startswith("gray") and not any(k in name for k in ("420", "nv12", "nv21", "p010", "p016")):
        what.append("its chroma is written as 4:2:0")
    return f"the source is {name}: {' and '.join(what)}" if what else None


NO_B_FRAMES = ("avi", "mpegts")
"""FFmpeg muxers whose outputs are encoded without B-frames. AVI stores no presentation times, so
reordered frames decode out of order; MPEG-TS (``.ts``, ``.m2ts``, ``.mts``) shifts every time by the
B-frame delay (2 frames with x264's default preset), which a resumed run's joined segments do not
reproduce (1 frame)."""


def partial_name(path: Path, token: str) -> str:
    """The name a :class:`VideoWriter` writes ``path`` under until it is complete: ``.NAME.<token>.partial.SUFFIX``."""
    return f".{path.name}.{token}.partial{path.suffix}"


def partial_name_extra(path: Path) -> int:
    """Bytes the longest name written on the way to the video ``path`` adds to its name: the writer's partial
    file (8 hex digits of token), or a resumable run's work folder (``NAME.sredge-partial``)."""
    from sredge.runtime.segments import WORK_SUFFIX

    return max(len(os.fsencode(partial_name(path, "0" * 8))) - len(os.fsencode(path.name)), len(WORK_SUFFIX))


class VideoWriter:
    """Encode RGB frames (H.264 ``yuv420p`` by default) and carry the source's other streams, atomically.

    Use as a context manager. Output goes to a hidden temporary file beside ``path``
    (``.<name>.<random>.partial<suffix>``, same folder so the rename is atomic) and is
    renamed onto ``path`` when the writer closes. Closing always finalizes (flushes the
    encoder, writes the index), also when the ``with`` block raised, e.g. on Ctrl-C or a
    backend error mid-video: a stopped run leaves a playable file of the frames written.
    If no frame was written, the temporary file is removed and nothing is left; so is it
    when finishing itself fails or is interrupted (a second Ctrl-C).

    Frames: ``Frame.rgb`` is ``(height, width, 3)`` ``uint8`` RGB, or ``uint16`` for a deep
    (``bit_depth=10``) output. Odd sizes cannot be stored in 4:2:0, so an odd ``width``/``height``
    is padded to even by repeating the last column/row: the output is then at most 1 px
    wider/taller than asked.

    Colour: 8-bit output is limited-range BT.601 4:2:0 converted by OpenCV (the fast path, tagged
    so players match); 10-bit output (``yuv420p10le``: x264 High 10, x265 Main 10, SVT-AV1, FFV1;
    NVENC ``p010le``) is converted by swscale with the source's own matrix and range. Primaries
    and transfer (BT.2020, PQ, HLG) are tagged as the source's, and its HDR10 mastering display and
    content light level are written into the bitstream by x265 and SVT-AV1 (other encoders: a notice).

    Timestamps: the output video stream has the given ``time_base`` and each frame keeps
    its ``pts`` (in ``time_base`` units), so timing, including variable frame rate, is
    preserved when the container can store that time base (MP4/MOV can; Matroska
    rounds to milliseconds). A missing pts continues from the previous frame at ``fps``;
    a pts not above the previous one is bumped by one tick (with a warning), since the
    encoder needs strictly increasing timestamps.

    Attributes:
        path: The final output path.
        frames_written: Frames handed to the encoder so far.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        time_base: Fraction,
        fps: Fraction | None,
        crf: int | None = None,
        codec: str = "libx264",
        preset: str | None = None,
        audio_from: VideoReader | None = None,
        threads: int = 0,
        tune: str | None = None,
        bit_depth: int | None = None,
        colour: Colour | None = None,
        b_frames: bool = True,
    ):
        """Check the options and the output folder; nothing is created until ``__enter__``.

        Args:
            path: Output file; the container format comes from its suffix (``.mp4``, ``.mkv``, ``.mov``).
            width: Width in pixels of the frames to be written.
            height: Height in pixels of the frames to be written.
            time_base: Seconds per pts unit, normally the reader's :attr:`VideoInfo.time_base`.
            fps: Nominal frame rate written as stream metadata and used as the encoder's
                rate-control hint; None when unknown.
            crf: Constant rate factor, 0 (lossless) .. 51 (SVT-AV1: 1 .. 63); None: the encoder's default
                (:data:`sredge.runtime.encoders.DEFAULT_CRF`; 18 for x264, visually transparent).
            codec: FFmpeg encoder name, e.g. ``libx264``, ``h264_nvenc``, ``libx265``, ``hevc_nvenc``
                (``--encoder auto`` is resolved before: :func:`sredge.runtime.encoders.resolve_encoder`);
                ``crf``, ``preset``, ``threads`` and ``tune`` reach it as its own options
                (:func:`sredge.runtime.encoders.encoder_options`: NVENC gets ``cq`` and ``p1``..``p7``).
            preset: x264 speed/size trade-off, ``ultrafast`` .. ``placebo`` (mapped for NVENC and SVT-AV1;
                FFV1 takes none); None: ``veryfast``. The default ``veryfast``
                costs about half the CPU of ``medium`` at a similar size for upscaled video, which
                matters when the encoder shares the CPU with inference.
            threads: Encoder threads; 0 lets the encoder choose (x264: 1.5 x cores). One thread
                uses the least CPU in total, best when inference keeps the cores busy.
            audio_from: An entered reader whose audio and subtitle streams, attachments, tags and
                chapters are carried to the output (see :mod:`sredge.runtime.streams`); feed its
                :data:`AudioPacket` items to :meth:`mux_audio`. Its bit depth and colour description
                are the output's unless ``bit_depth``/``colour`` say otherwise.
            tune: Encoder tuning passed as its ``tune`` option, e.g. ``"zerolatency"`` (x264: no
                B-frames, no lookahead, so each frame's packet leaves the encoder at once); None: none.
            bit_depth: 8 or 10 bits per output sample; None: ``audio_from``'s (8 without it).
            colour: The colour description to write; None: ``audio_from``'s (BT.709 primaries and
                transfer without it).
            b_frames: Let the encoder reorder frames (B-frames); never in an AVI or MPEG-TS file
                (:data:`NO_B_FRAMES`); False for pieces of a video that will end up in one.

        Raises:
            InputError: Impossible options, an encoder missing from this FFmpeg build,
                or an output folder that is missing or read-only.
        """
        self.path = check_writable(path)
        if int(width) < 1 or int(height) < 1:
            raise InputError(f"cannot write {self.path}: frame size {width}x{height} is empty")
        try:
            encoder = av.codec.Codec(codec, "w")
        except (av.codec.codec.UnknownCodecError, ValueError) as exc:
            raise InputError(f"video encoder {codec!r} is not available in this FFmpeg build") from exc
        if encoder.type != "video":
            raise InputError(f"{codec!r} is not a video encoder")
        time_base = Fraction(time_base)
        if time_base <= 0:
            raise InputError(f"time base must be positive, got {time_base}")
        if fps is not None and Fraction(fps) <= 0:
            fps = None
        self.width, self.height = int(width), int(height)
        self.time_base = time_base
        self.fps = Fraction(fps) if fps is not None else None
        if int(threads) < 0:
            raise InputError(f"encoder threads must be >= 0, got {threads}")
        self.crf, self.codec, self.preset, self.threads = crf, codec, preset, int(threads)
        self.tune = tune
        self.b_frames = b_frames
        # The encoder's own option names for crf/preset/threads/tune (see sredge.runtime.encoders).
        self._options = encoder_options(codec, crf=crf, preset=preset, threads=self.threads, tune=tune)
        src_info = audio_from.info if audio_from is not None else None
        self.bit_depth = int(bit_depth or (src_info.bit_depth if src_info is not None else 8))
        self.bit_depth = 10 if self.bit_depth > 8 else 8  # 12-bit sources are written at 10 bits
        self.colour = colour if colour is not None else (src_info.colour if src_info is not None else None)
        self._pix_fmt = encoder_pix_fmt(codec, self.bit_depth)
        # The output keeps the source's matrix and range, converting with swscale; an 8-bit BT.601 (or
        # untagged) source takes OpenCV's BT.601 conversion instead, several times faster.
        matrix = conversion_matrix(self.colour)
        self._swscale = self.bit_depth > 8 or matrix not in (BT601, SMPTE170M)
        self._matrix = matrix if self._swscale else int(Colorspace.ITU601)
        full = self.colour is not None and self.colour.full_range
        self._range = ColorRange.JPEG if self._swscale and full else ColorRange.MPEG
        self.audio_from = audio_from
        self.frames_written = 0
        self.before_replace: Callable[[Path], None] | None = None
        """Called with the finished temporary file just before it is renamed onto ``path`` (a resumable run
        records the file's size and mtime in its journal there); an error abandons the file."""
        # Encoded size: 4:2:0 chroma needs even dimensions.
        self._enc_w, self._enc_h = self.width + self.width % 2, self.height + self.height % 2
        self._tmp: Path | None = None
        self._container = None
        self._stream = None
        self._routes: dict[int, tuple] = {}  # source stream index -> (output stream, action)
        self.notices: list[str] = []
        """One line per source stream not carried or changed (also logged as warnings)."""
        self._pending: list = []  # encoded packets not yet muxed (survive an interrupt)
        self._last_pts: int | None = None
        self._bumped_warned = False
        step = round(1 / (self.fps * time_base)) if self.fps else 1
        self._pts_step = max(1, step)
        # The video stream's own time base: this writer's, except AVI's, which counts frames (see __enter__).
        self._stream_tb = time_base
        self._last_stream_pts: int | None = None

    def __enter__(self) -> VideoWriter:
        self._tmp = self.path.with_name(partial_name(self.path, secrets.token_hex(4)))
        avi = self.path.suffix.lower() == ".avi"  # FFmpeg picks the muxer by the suffix
        # AVI counts frames: the muxer's shift of every stream past the audio's negative start (AAC priming)
        # moved the video by a fraction of a frame, rounded into a blank frame after the first.
        options = {"avoid_negative_ts": "disabled"} if avi else {}
        try:
            self._container = av.open(str(self._tmp), "w", options=options)
        except ValueError as exc:
            raise InputError(
                f"cannot tell the video format from the name {self.path.name}; use a suffix like .mp4 or .mkv"
            ) from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise write_error(self.path, exc) or InputError(f"cannot write {self.path}: {_reason(exc)}") from exc
        try:
            if avi and self.fps:
                # AVI stores no timestamps: its stream's time base is its frame rate. Given the source's
                # (1/12800 from MP4), a 25 fps clip was declared 600 fps with 24 blank frames per frame,
                # and sr-run refused it as truncated. Frames are counted at the frame rate instead.
                self._stream_tb = 1 / self.fps
            if self._container.format.name in _MOV_FORMATS and self.time_base.numerator == 1:
                # The MOV muxer would otherwise raise a small timescale (e.g. 1/1000 from
                # Matroska) to >= 10000 and rewrite every pts; keep the caller's units.
                self._container.container_options["video_track_timescale"] = str(self.time_base.denominator)
            self._add_video_stream()
            self._add_audio_streams()
            self._container.start_encoding()  # opens the encoder now: bad options fail before any work
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, (av.error.FFmpegError, OSError)):
                if "avcodec_open2" in str(exc):  # the encoder did not open (NVENC without a GPU: EPERM), not the file
                    raise InputError(f"cannot write {self.path} with {self.codec}: the encoder did not open "
                                     f"({_reason(exc)}); try --encoder libx264") from exc
                raise write_error(self.path, exc) or InputError(
                    f"cannot write {self.path} with {self.codec}: {_reason(exc)}") from exc
            raise
        return self

    def _add_video_stream(self) -> None:
        c = self._container
        quiet_encoder_logs(self.codec)
        self._add_hdr_params()
        options = dict(self._options)
        if not self.b_frames or c.format.name in NO_B_FRAMES:
            options["bf"] = "0"
        try:
            s = c.add_stream(self.codec, rate=self.fps, options=options)
        except ValueError as exc:  # the container cannot hold this codec
            raise InputError(f"cannot write {self.codec} video into {self.path}: {exc}") from exc
        s.width, s.height = self._enc_w, self._enc_h
        s.pix_fmt = self._pix_fmt
        s.time_base = self._stream_tb
        cc = s.codec_context
        cc.time_base = self._stream_tb
        # 8 bits: BT.601 matrix, the conversion in write() is OpenCV's (SIMD, ~8x faster than swscale here).
        cc.colorspace, cc.color_range = self._matrix, self._range
        c_ = self.colour
        known = c_ is not None and c_.primaries != UNSPECIFIED and c_.transfer != UNSPECIFIED
        cc.color_primaries = c_.primaries if known else ColorPrimaries.BT709
        cc.color_trc = c_.transfer if known else ColorTrc.BT709
        self._stream = s

    def _add_hdr_params(self) -> None:
        """HDR10 mastering display / content light level of the source, written by the encoder itself."""
        enc = ENCODERS.get(self.codec)
        family = enc.family if enc is not None else ""
        notice = hdr_notice(self.codec, family, self.colour)
        if notice is not None:
            self.notices.append(notice)
        params = hdr_encoder_params(family, self.colour)
        if params is None:
            return
        key = f"{family}-params"
        self._options[key] = ":".join(x for x in (self._options.get(key), params) if x)

    def _add_audio_streams(self) -> None:
        """Carry the source's audio, subtitles, attachments, tags and chapters (see :mod:`sredge.runtime.streams`)."""
        reader = self.audio_from
        if reader is None:
            return
        if reader.info is None:
            raise RuntimeError("audio_from must be an entered VideoReader")
        if reader.source_streams is None:  # a GStreamer camera: nothing but video
            return
        carried_video_tags(self._stream, reader.source_streams)
        self._routes, notices = carry_streams(self._container, reader.source_streams, self.path)
        self.notices += notices
        for line in self.notices:
            log.info("%s", line)  # the caller shows them (sr-run prints each as a note)

    # -- writing -------------------------------------------------------------------

    def write(self, frame: Frame) -> None:
        """Encode one frame.

        Args:
            frame: ``frame.rgb`` is ``(height, width, 3)`` ``uint8`` RGB, or for a 10-bit writer also
                ``uint16`` RGB (0..65535, the precision kept); ``frame.pts`` is in ``time_base``
                units (None: continue at ``fps``).

        Raises:
            ValueError: The array has the wrong shape or dtype.
            InputError: The encoder or the disk failed (e.g. disk full).
        """
        if self._container is None:
            raise RuntimeError("VideoWriter is not open; use it as a context manager")
        if frame.i420 is not None:
            self._encode(self._i420_frame(frame.i420), frame.pts)
            return
        rgb = frame.rgb
        deep = self.bit_depth > 8
        if (rgb.shape != (self.height, self.width, 3)
                or not (rgb.dtype == np.uint8 or (deep and rgb.dtype == np.uint16))):
            kind = "uint8 or uint16" if deep else "uint8"
            raise ValueError(
                f"frame must be ({self.height}, {self.width}, 3) {kind} RGB, got {rgb.shape} {rgb.dtype}"
            )
        if (self._enc_w, self._enc_h) != (self.width, self.height):
            rgb = np.pad(rgb, ((0, self._enc_h - self.height), (0, self._enc_w - self.width), (0, 0)), mode="edge")
        if self._swscale:
            self._encode(self._deep_frame(rgb), frame.pts)
            return
        # RGB -> limited-range BT.601 I420 in one OpenCV pass (the stream is tagged to match).
        self._encode(av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420),
                                                format="yuv420p"), frame.pts)

    def _deep_frame(self, rgb: np.ndarray):
        """16-bit or 8-bit RGB -> the 4:2:0 frame the encoder takes (10 or 8 bits), with the output's matrix and
        range (swscale)."""
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
        return vf.reformat(format=self._pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range)

    def _i420_frame(self, i420: np.ndarray):
        if i420.shape != (self.height * 3 // 2, self.width) or i420.dtype != np.uint8 or (
                (self._enc_w, self._enc_h) != (self.width, self.height)):
            raise ValueError(f"an I420 frame must be ({self.height * 3 // 2}, {self.width}) uint8 "
                             f"for an even-sized output, got {i420.shape} {i420.dtype}")
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(i420), format="yuv420p")

    def _encode(self, vf, pts_in: int | None) -> None:
        pts = self._next_pts(pts_in)
        vf.colorspace, vf.color_range = self._matrix, self._range
        vf.pts = self._stream_pts(pts)
        vf.time_base = self._stream_tb
        try:
            packets = self._stream.encode(vf)
            self.frames_written += 1
            self._last_pts = pts
            self._pending.extend(packets)
            self._mux_pending(self._container)
        except (av.error.FFmpegError, OSError) as exc:
            raise write_error(self.path, exc) or InputError(f"writing {self.path} failed: {_reason(exc)}") from exc

    def _next_pts(self, pts: int | None) -> int:
        last = self._last_pts
        if pts is None:
            return 0 if last is None else last + self._pts_step
        if last is not None and pts <= last:
            if not self._bumped_warned:
                self._bumped_warned = True
                log.warning("%s: frame pts %d is not after %d; shifting it (broken timestamps)", self.path, pts, last)
            return last + 1
        return int(pts)

    def _stream_pts(self, pts: int) -> int:
        """``pts`` (in :attr:`time_base`) in the video stream's own units: the same, except for AVI, whose
        stream counts frames at the frame rate (rounded, and kept increasing for a variable rate)."""
        if self._stream_tb == self.time_base:
            return pts
        n = round(Fraction(pts) * self.time_base / self._stream_tb)
        if self._last_stream_pts is not None and n <= self._last_stream_pts:
            n = self._last_stream_pts + 1
        self._last_stream_pts = n
        return n

    def _mux_pending(self, container) -> None:
        while self._pending:
            container.mux(self._pending[0])
            self._pending.pop(0)

    def mux_audio(self, packet: AudioPacket) -> None:
        """Stream-copy one audio or subtitle packet from ``audio_from`` (timestamps rescaled, data unchanged
        except text subtitles re-wrapped for the output, see :func:`sredge.runtime.streams.plan_carry`).

        Packets of streams that were not carried, and end-of-stream markers, are ignored.
        The packet object is re-targeted at the output stream (it is not reusable after).
        """
        if self._container is None:
            raise RuntimeError("VideoWriter is not open; use it as a context manager")
        try:
            mux_carried(self._container, self._routes, packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise write_error(self.path, exc) or InputError(f"writing {self.path} failed: {_reason(exc)}") from exc

    def mux_encoded(self, packet: av.Packet, extradata: bytes | None = None) -> None:
        """Stream-copy one already encoded video packet into the video stream, instead of :meth:`write`.

        For joining the segments of a resumable run (:mod:`sredge.runtime.segments`): the packet must come
        from an encoder with this writer's settings (same codec, size and options), so its parameter sets
        are this stream's own: pass the ``extradata`` of the stream it came from with a segment's first
        packet, to have that checked. H.264/HEVC data must be Annex B, as an encoder makes it (MP4-stored
        packets through ``h264_mp4toannexb``). ``packet.pts``/``dts`` must already be in this writer's
        ``time_base`` and increasing in decode order. Counts as a frame written.

        Raises:
            InputError: The packet's stream has other codec parameters, or writing failed (disk full).
        """
        if self._container is None:
            raise RuntimeError("VideoWriter is not open; use it as a context manager")
        if extradata is not None:
            name = self._stream.codec_context.name
            own = ()
            if name.startswith(("libx26", "h264", "hevc")):
                own = parameter_sets(name, self._stream.codec_context.extradata)
            if not own:
                # AV1's av1C box stores the sequence header re-serialised, never byte-equal to what the encoder
                # hands out when it opens, and a container without global headers (AVI) gets none from the
                # encoder (they travel in the key frames): check the segments against each other (the journal
                # already pins every encoder option).
                own = getattr(self, "_first_segment_params", None) or parameter_sets(name, extradata)
                self._first_segment_params = own
            if parameter_sets(name, extradata) != own:
                raise InputError(f"cannot join the segments of {self.path}: they were encoded with other "
                                 f"{self.codec} parameters than this run's; start over with --no-resume")
        packet.stream = self._stream
        if self._stream_tb != self.time_base and packet.pts is not None:  # AVI, no B-frames: dts = pts
            packet.pts = packet.dts = self._stream_pts(packet.pts)
            packet.duration = 1  # one frame (a duration in the source's units declared hundreds)
        packet.time_base = self._stream_tb
        try:
            self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise write_error(self.path, exc) or InputError(f"writing {self.path} failed: {_reason(exc)}") from exc
        self.frames_written += 1

    # -- finishing -----------------------------------------------------------------

    def close(self) -> None:
        """Finalize and rename onto ``path`` (or remove the temporary file if no frame was written).

        Raises:
            InputError: Finishing the file failed (e.g. disk full); nothing is left behind.
        """
        c = self._container
        if c is None:
            return
        self._container = None
        try:
            if self.frames_written:
                self._pending.extend(self._stream.encode(None))  # flush delayed frames
                self._mux_pending(c)
            c.close()  # writes the trailer (the MP4 index)
        except BaseException as exc:
            # Judged before the temporary file goes: removing it frees the space a full disk lacked.
            full = write_error(self.path, exc) if isinstance(exc, (av.error.FFmpegError, OSError)) else None
            self._container = c
            self._abandon()
            if isinstance(exc, (av.error.FFmpegError, OSError)):
                raise full or InputError(f"could not finish {self.path}: {_reason(exc)}") from exc
            raise
        if self.frames_written:
            try:
                # Its data, then its name, on the disk: a resumable run removes its segments once the output is
                # joined, and a power loss must not leave an empty file in their place.
                fsync_file(self._tmp)
                if self.before_replace is not None:
                    self.before_replace(self._tmp)
            except BaseException as exc:
                self._abandon()
                if isinstance(exc, OSError):
                    raise write_error(self.path, exc) or InputError(f"could not finish {self.path}: "
                                                                    f"{_reason(exc)}") from exc
                raise
            os.replace(self._tmp, self.path)
            fsync_folder(self.path.parent)
            log.info("wrote %d frames to %s", self.frames_written, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Drop what was written: the temporary file is removed and ``path`` is left as it was."""
        self._abandon()

    def _abandon(self) -> None:
        c, self._container = self._container, None
        try:
            if c is not None:
                c.close()
        except Exception:  # the file is being discarded anyway
            log.debug("closing an abandoned output failed", exc_info=True)
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # The block failed: still finish what was written, but let the original error propagate.
        try:
            self.close()
        except Exception as close_exc:  # noqa: BLE001 - the block's own error is the one to raise
            log.error("could not finish %s after an error: %s", self.path, close_exc)
