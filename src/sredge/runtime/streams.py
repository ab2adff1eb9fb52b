"""Which of a source's other streams, tags and chapters an ``sr-run`` output carries, and the notice for the rest.

The upscaled video is new; everything else in the source is carried where the output container can
hold it: audio, subtitles, attachments (fonts in Matroska), chapters, the container's tags (title,
creation time, ...) and each stream's tags (language, title). Each stream that cannot be carried
gets a one-line notice, never silence; audio that cannot be carried is refused instead (losing the
sound is not a detail), with the container that would keep it.

One place decides (:func:`plan_carry`, pure) and one place applies the decision to an output
(:func:`carry_streams`): :class:`~sredge.runtime.video_io.VideoWriter` and any later re-mux of the
same source go through both, so they carry the same streams with the same notices.
:func:`output_format` names the container a path will be written as, before anything is written, so
a codec the container cannot hold is refused before any decoding.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from sredge.errors import InputError

log = logging.getLogger(__name__)

ATTACHMENT_FORMATS = frozenset({"matroska"})
"""Output formats (FFmpeg muxer names) that store attachments: Matroska (``.mkv``, ``.mka``, ``.mks``)."""
TEXT_SUBTITLES = frozenset({"subrip", "srt", "mov_text", "ass", "ssa", "webvtt", "text"})
"""Subtitle codecs that hold text (the others, DVD/PGS/DVB, are bitmaps)."""

_DISCARD_ALL = 48  # FFmpeg's AVDISCARD_ALL: the demuxer's mark on an MP4 chapter track
# Tags that describe the old file or its encoder rather than the content: not copied.
_STALE_TAGS = frozenset({"encoder", "duration", "major_brand", "minor_version", "compatible_brands", "bps",
                         "number_of_frames", "number_of_bytes", "vendor_id", "creation_tool", "handler_name"})


@dataclass(frozen=True)
class StreamFacts:
    """What the plan needs to know about one source stream.

    Attributes:
        index: The stream's index in the source.
        kind: ``"video"``, ``"audio"``, ``"subtitle"``, ``"attachment"``, ``"data"``, or ``"chapters"`` for
            the track in which MP4 stores chapters (carried as chapters, not as a stream).
        codec: FFmpeg codec name, ``""`` when FFmpeg has none (most data streams).
        language: Its ``language`` tag, or None.
        filename: An attachment's file name, or None.
    """

    index: int
    kind: str
    codec: str
    language: str | None = None
    filename: str | None = None

    def label(self) -> str:
        """How notices name it, e.g. ``subtitle stream #2 (subrip, deu)``."""
        what = ", ".join(x for x in (self.filename or self.codec or "unknown codec", self.language) if x)
        return f"{self.kind} stream #{self.index} ({what})"


@dataclass(frozen=True)
class Carry:
    """The decision for one source stream.

    Attributes:
        index: The source stream's index.
        action: ``"copy"`` (packets copied unchanged), ``"to_mov_text"`` / ``"ass_to_mov_text"`` /
            ``"to_srt"`` (text subtitles re-wrapped for the output's subtitle format), ``"attach"``
            (an attachment written whole) or ``"drop"``.
        notice: One line for the user when the stream is dropped or changed, else None.
    """

    index: int
    action: str
    notice: str | None = None


def _where(container: str, suffix: str) -> str:
    return f"{suffix} files" if suffix else f"the {container} format"


def plan_carry(streams: Sequence[StreamFacts], video_index: int, container: str, suffix: str,
               holds: Callable[[str], bool]) -> tuple[Carry, ...]:
    """Decide, for each source stream but the upscaled video, whether the output carries it (pure).

    Args:
        streams: The source's streams (see :func:`stream_facts`).
        video_index: The video stream being upscaled (not part of the plan).
        container: The output's FFmpeg muxer name, e.g. ``"mp4"``, ``"matroska"``.
        suffix: The output path's suffix for messages, e.g. ``".mp4"``.
        holds: Whether the output container can store a codec (FFmpeg's ``avformat_query_codec``).

    Returns:
        One :class:`Carry` per stream, in source order.

    Raises:
        InputError: An audio stream the output container cannot hold, naming a container that can.
    """
    where = _where(container, suffix)
    plan = []
    for s in streams:
        if s.index == video_index:
            continue
        if s.kind == "audio":
            if not holds(s.codec):
                raise InputError(_no_audio(s, where))
            plan.append(Carry(s.index, "copy"))
        elif s.kind == "subtitle":
            plan.append(_plan_subtitle(s, where, holds))
        elif s.kind == "attachment":
            if container in ATTACHMENT_FORMATS:
                plan.append(Carry(s.index, "attach"))
            else:
                plan.append(Carry(s.index, "drop", f"{s.label()} is not carried: {where} cannot hold "
                                                   "attachments; write to .mkv to keep it"))
        elif s.kind == "chapters":
            continue  # carried through SourceStreams.chapters
        elif s.kind == "video":
            plan.append(Carry(s.index, "drop", f"{s.label()} is not carried: only the upscaled video is written"))
        else:
            plan.append(Carry(s.index, "drop", f"{s.label()} is not carried: sr-run does not copy {s.kind} streams"))
    return tuple(plan)


def _no_audio(s: StreamFacts, where: str) -> str:
    return (f"{where} cannot hold the input's {s.codec} audio; write to .mkv instead (or convert the input's "
            f"audio first): {s.label()}")


def _plan_subtitle(s: StreamFacts, where: str, holds: Callable[[str], bool]) -> Carry:
    if s.codec and holds(s.codec):
        return Carry(s.index, "copy")
    if s.codec in ("subrip", "srt") and holds("mov_text"):
        return Carry(s.index, "to_mov_text", f"{s.label()} carried as mov_text, the text subtitles {where} hold "
                                             "(styling tags such as <i> are dropped)")
    if s.codec in ("ass", "ssa") and holds("mov_text"):
        return Carry(s.index, "ass_to_mov_text", f"{s.label()} carried as mov_text, the text subtitles {where} hold "
                                                 "(plain text: ASS styles, positions and effects are dropped)")
    if s.codec == "mov_text" and holds("subrip"):
        return Carry(s.index, "to_srt", f"{s.label()} carried as SubRip, the text subtitles {where} hold")
    hint = "write to .mkv to keep it" if s.codec in TEXT_SUBTITLES or s.codec.endswith("_subtitle") else \
        "convert it first"
    return Carry(s.index, "drop", f"{s.label()} is not carried: {where} cannot hold {s.codec or 'these'} "
                                  f"subtitles; {hint}")


def copyable_tags(tags: dict[str, str]) -> dict[str, str]:
    """The tags worth carrying to the output (pure): title, language, creation_time, ... but not the old
    file's encoder, durations, brands or Matroska statistics, which would be wrong for the new file."""
    return {k: v for k, v in tags.items()
            if k.lower() not in _STALE_TAGS and not k.upper().startswith(("_STATISTICS", "NUMBER_OF"))}


def shift_chapters(chapters: Sequence[dict], start_s: Fraction, end_s: Fraction | None) -> list[dict]:
    """Chapters moved to an output that starts at ``start_s`` seconds of the source and ends at ``end_s``
    (None: its end); those outside are left out, those across an edge cut at it (pure).

    Args:
        chapters: PyAV chapter dicts (``id``, ``start``, ``end``, ``time_base``, ``metadata``).
        start_s: Source time of the output's first frame, in seconds.
        end_s: Source time where the output ends, or None.
    """
    out = []
    for ch in chapters:
        tb = Fraction(ch["time_base"] or Fraction(1, 1_000_000_000))
        a, b = ch["start"] * tb, ch["end"] * tb
        if b <= start_s or (end_s is not None and a >= end_s):
            continue
        a = max(a, start_s) - start_s
        b = (min(b, end_s) if end_s is not None else b) - start_s
        out.append({"id": ch["id"], "start": round(a / tb), "end": round(b / tb), "time_base": tb,
                    "metadata": dict(ch["metadata"])})
    return out


# ------------------------------------------------------------------- subtitles


_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # SubRip HTML-ish tags and ASS override blocks


def srt_to_mov_text(data: bytes) -> bytes:
    """One SubRip packet's text -> one ``mov_text`` (3GPP timed text) sample: a big-endian 16-bit length
    and the UTF-8 text, styling tags dropped (pure)."""
    text = _TAG.sub("", data.decode("utf-8", "replace")).encode("utf-8")[:0xFFFF]
    return struct.pack(">H", len(text)) + text


def ass_to_mov_text(data: bytes) -> bytes:
    """One Matroska ASS packet (``ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text``) -> one
    ``mov_text`` sample of its text: override blocks dropped, ``\\N`` line breaks kept (pure)."""
    fields = data.decode("utf-8", "replace").split(",", 8)
    text = fields[8] if len(fields) == 9 else fields[-1]
    text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    return srt_to_mov_text(text.encode("utf-8"))


def mov_text_to_srt(data: bytes) -> bytes:
    """One ``mov_text`` sample -> its UTF-8 text as a SubRip packet (style boxes after the text are left out)."""
    if len(data) < 2:
        return b""
    (n,) = struct.unpack(">H", data[:2])
    return data[2 : 2 + n]


# Default 3GPP text sample description (the 'tx3g' box body players expect): no flags, centred at the
# bottom, transparent background, no text box, one style (font 1, plain, 18 px, opaque white), font
# table with font 1 = "Serif". FFmpeg's own mov_text encoder writes the same defaults.
_TX3G = (struct.pack(">IbbBBBB", 0, 1, -1, 0, 0, 0, 0) + struct.pack(">hhhh", 0, 0, 0, 0)
         + struct.pack(">HHHBBBBBB", 0, 0, 1, 0, 18, 255, 255, 255, 255)
         + struct.pack(">I4sHHB", 18, b"ftab", 1, 1, 5) + b"Serif")


# ------------------------------------------------------------------ side effects


@dataclass
class SourceStreams:
    """A source's streams and tags as :func:`carry_streams` needs them; read from an open input.

    Attributes:
        facts: Every stream of the source (see :class:`StreamFacts`).
        video_index: The video stream being upscaled.
        streams: ``index -> PyAV stream`` of the source (templates for copies).
        tags: The container's tags worth carrying (see :func:`copyable_tags`).
        video_tags: The upscaled video stream's tags worth carrying (language, title).
        chapters: Chapters, already moved to the output's time line (see :func:`shift_chapters`).
    """

    facts: tuple[StreamFacts, ...]
    video_index: int
    streams: dict[int, object] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    video_tags: dict[str, str] = field(default_factory=dict)
    chapters: list[dict] = field(default_factory=list)


def stream_facts(stream) -> StreamFacts:
    """:class:`StreamFacts` of a PyAV input stream."""
    kind = stream.type
    if kind == "data" and int(stream.discard) >= _DISCARD_ALL:
        kind = "chapters"  # the text track that holds an MP4's chapters: carried as chapters
    cc = stream.codec_context if kind in ("video", "audio", "subtitle") else None
    codec = cc.name if cc is not None else ""
    if not codec:
        try:
            codec = stream.codec.name if kind != "attachment" else ""
        except Exception:  # noqa: BLE001 - data streams often have no codec at all
            codec = ""
    meta = dict(stream.metadata)
    return StreamFacts(stream.index, kind, codec or "", meta.get("language") or None,
                       meta.get("filename") or getattr(stream, "name", None) if kind == "attachment" else None)


def source_streams(container, video, start_s: Fraction = Fraction(0), end_s: Fraction | None = None) -> SourceStreams:
    """Read what :func:`carry_streams` copies from an open input container.

    Args:
        container: The PyAV input container.
        video: Its video stream being upscaled.
        start_s: Source time (seconds from the video's start) where the output begins (``--start``).
        end_s: Source time where it ends, or None.
    """
    try:
        chapters = container.chapters()
    except (AttributeError, ValueError):
        chapters = []
    origin = Fraction(video.start_time or 0) * Fraction(video.time_base)
    return SourceStreams(
        facts=tuple(stream_facts(s) for s in container.streams),
        video_index=video.index,
        streams={s.index: s for s in container.streams},
        tags=copyable_tags(dict(container.metadata)),
        video_tags=copyable_tags(dict(video.metadata)),
        chapters=shift_chapters(chapters, start_s + origin if chapters else start_s,
                                None if end_s is None else end_s + origin),
    )


def output_format(path: str | Path) -> tuple[str, frozenset[str]]:
    """The FFmpeg muxer ``path``'s suffix selects and the codecs it can store; nothing is written.

    Raises:
        InputError: FFmpeg knows no format for the suffix.
    """
    import av

    path = Path(path)
    try:
        probe = av.open(str(path), "w")  # the file is created only when writing starts: never here
    except ValueError as exc:
        raise InputError(f"cannot tell the video format from the name {path.name}; use a suffix like .mp4 "
                         "or .mkv") from exc
    try:
        name = probe.format.name
        return name, (frozenset(probe.supported_codecs) | _UNLISTED.get(name, frozenset())) - _REFUSED.get(name,
                                                                                                          frozenset())
    finally:
        probe.close()


_UNLISTED = {
    # MPEG-TS has no codec tag table, so FFmpeg lists only its default codecs; its muxer writes these too.
    "mpegts": frozenset({"h264", "hevc", "aac", "mp3", "ac3", "eac3", "opus", "dvb_subtitle", "dvb_teletext"}),
}
"""Codecs a muxer stores that FFmpeg's query does not list."""

_REFUSED = {
    # FFmpeg's MOV muxer lists AV1 but refuses it when writing starts ("only supported in MP4"): a whole
    # upscale ran before that error.
    "mov": frozenset({"av1"}),
}
"""Codecs FFmpeg's query lists for a muxer that the muxer then refuses."""


def stream_notices(source: SourceStreams, path: str | Path) -> list[str]:
    """The notices :func:`carry_streams` will give for an output at ``path``, before anything is written.

    Raises:
        InputError: Audio the container cannot hold, or a suffix FFmpeg knows no format for.
    """
    fmt, holds = output_format(path)
    plan = plan_carry(source.facts, source.video_index, fmt, Path(path).suffix, holds.__contains__)
    return [c.notice for c in plan if c.notice]


def carry_streams(out, source: SourceStreams, path: str | Path) -> tuple[dict[int, tuple[object, str]], list[str]]:
    """Add the carried streams, attachments, tags and chapters of ``source`` to the output container ``out``.

    Call before ``out.start_encoding()``, after the video stream was added (it gets the source
    video's tags). Packets of carried streams then go through :func:`mux_carried`.

    Args:
        out: A PyAV output container, not started.
        source: What to carry (see :func:`source_streams`).
        path: The final output path (its suffix for messages).

    Returns:
        ``(routes, notices)``: ``routes`` maps a source stream index to ``(output stream, action)``
        for streams whose packets are muxed; ``notices`` holds one line per stream dropped or changed.

    Raises:
        InputError: Audio the container cannot hold (see :func:`plan_carry`).
    """
    fmt = out.format.name
    supported = frozenset(out.supported_codecs) | _UNLISTED.get(fmt, frozenset())
    plan = plan_carry(source.facts, source.video_index, fmt, Path(path).suffix, lambda c: c in supported)
    routes: dict[int, tuple[object, str]] = {}
    notices = [c.notice for c in plan if c.notice]
    for c in plan:
        src = source.streams.get(c.index)
        if src is None or c.action == "drop":
            continue
        if c.action == "attach":
            meta = dict(src.metadata)
            att = out.add_attachment(meta.get("filename") or f"attachment{c.index}",
                                     meta.get("mimetype") or "application/octet-stream", bytes(src.data))
            _set_tags(att, {k: v for k, v in copyable_tags(meta).items() if k not in ("filename", "mimetype")})
            continue
        if c.action == "copy":
            try:
                dst = out.add_stream_from_template(src)
            except ValueError as exc:  # FFmpeg said the container holds the codec, the muxer disagrees
                facts = next(f for f in source.facts if f.index == c.index)
                if facts.kind == "audio":
                    raise InputError(_no_audio(facts, _where(fmt, Path(path).suffix))) from exc
                notices.append(f"{facts.label()} is not carried: {exc}")
                continue
        else:
            dst = out.add_mux_stream("subrip" if c.action == "to_srt" else "mov_text")
            dst.time_base = src.time_base
        _set_tags(dst, copyable_tags(dict(src.metadata)))
        dst.disposition = src.disposition
        routes[c.index] = (dst, c.action)
    _set_tags(out, source.tags)
    if source.chapters:
        out.set_chapters(source.chapters)
    return routes, notices


def _set_tags(target, tags: dict[str, str]) -> None:
    for k, v in tags.items():
        try:
            target.metadata[k] = v
        except (TypeError, ValueError):  # a tag this container cannot take
            log.debug("tag %s not carried", k)


_CONVERT = {"to_mov_text": srt_to_mov_text, "ass_to_mov_text": ass_to_mov_text, "to_srt": mov_text_to_srt}


def carried_video_tags(stream, source: SourceStreams) -> None:
    """Give the output's video ``stream`` the source video's tags (language, title)."""
    _set_tags(stream, source.video_tags)


def mux_carried(out, routes: dict[int, tuple[object, str]], packet) -> bool:
    """Mux one source packet of a carried stream into ``out``, re-wrapped when its plan says so.

    Returns:
        False when the packet is not to be muxed (a stream not carried, or an end-of-stream marker).
    """
    import av

    route = routes.get(packet.stream_index) if packet.stream is not None else None
    if route is None or packet.dts is None or packet.size == 0:
        return False
    dst, action = route
    if action != "copy":
        data = _CONVERT[action](bytes(packet))
        q = av.Packet(data)
        q.pts, q.dts, q.duration, q.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
        packet = q
    packet.stream = dst
    out.mux(packet)
    return True
