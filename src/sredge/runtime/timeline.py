"""One forward timeline for a live stream whose timestamps start over (pure).

A sender that loops its file, or an encoder restarted behind a camera, begins its timestamps again
in the middle of a stream (MPEG-TS, RTP). Passed on as they are, the frames after the jump would
all get the previous frame's time plus one tick (played at once), the audio would fail the muxer, and
``--duration`` would never be reached. :class:`LiveTimeline` shifts every packet after such a jump,
all streams alike (as the ``ffmpeg`` tool does for inputs with discontinuities), so the stream goes on
where it left off.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

BACK_S = Fraction(1, 10)
"""A decoding time this far before the stream's previous one is a discontinuity (less is jitter)."""
AHEAD_S = Fraction(10)
"""A decoding time this far past the end of the stream's previous packet is a discontinuity."""


@dataclass
class Jump:
    """A discontinuity found by :meth:`LiveTimeline.place`.

    Attributes:
        from_s: Where the stream was, in seconds on the sender's clock (the expected next time).
        to_s: The time the sender's packet carried, in seconds.
    """

    from_s: float
    to_s: float


class LiveTimeline:
    """Shifts the packets of a live source so each stream's decoding times keep going forward.

    Call :meth:`place` on every demuxed packet, in demux order, before it is decoded or muxed. Every
    stream gets the same shift, so audio stays with its video: the first stream to start over sets the
    new shift, and each other stream takes it when its own timestamps start over (a stream's packets from
    before the jump may still come after the first of another stream's from after it: MPEG-TS hands out
    a picture only once the next one begins). Subtitle and data streams take the newest shift and never
    start a jump: minutes without a packet are normal for them.
    """

    def __init__(self) -> None:
        """Start with no shift."""
        self.offset_s = Fraction(0)
        """Seconds added to the sender's timestamps since the latest jump."""
        self._offset: dict[int, Fraction] = {}  # stream index -> the shift its packets get now (seconds)
        self._last: dict[int, Fraction] = {}  # stream index -> its latest decoding time, shifted (seconds)
        self._end: dict[int, Fraction] = {}  # stream index -> where its next packet is expected (seconds)

    def place(self, packet, watched: bool = True) -> Jump | None:
        """Shift ``packet`` (its ``pts`` and ``dts``, in its ``time_base``) onto the timeline, in place.

        Args:
            packet: A demuxed packet (``av.Packet`` or anything with ``stream_index``, ``pts``, ``dts``,
                ``duration`` and ``time_base``).
            watched: Whether this packet's stream can start a jump (video and audio); False: only shifted.

        Returns:
            The jump this packet starts, or None (also when it follows one another stream started).
        """
        index = packet.stream_index
        offset = self._offset.get(index, self.offset_s) if watched else self.offset_s
        if packet.dts is None or not packet.time_base:
            _shift(packet, offset)
            return None
        tb = Fraction(packet.time_base)
        sent = packet.dts * tb
        last, end = self._last.get(index), self._end.get(index)
        jump = None
        if watched and last is not None and not _continues(sent + offset, last, end):
            if _continues(sent + self.offset_s, last, end):
                offset = self.offset_s  # another stream started over already: the same shift
            else:
                jump = Jump(float(end - offset), float(sent))
                offset = self.offset_s = end - sent
        self._offset[index] = offset
        _shift(packet, offset)
        at = packet.dts * tb
        step = packet.duration * tb if packet.duration else (at - last if last is not None and at > last else 0)
        self._last[index] = at if last is None else max(last, at)
        self._end[index] = max(end or at, at + step)
        return jump


def _continues(at: Fraction, last: Fraction, end: Fraction) -> bool:
    """Whether a packet at ``at`` carries on a stream whose latest packet was at ``last``, ending at ``end``."""
    return last - BACK_S <= at <= end + AHEAD_S


def _shift(packet, offset_s: Fraction) -> None:
    if not offset_s or not packet.time_base:
        return
    ticks = round(offset_s / Fraction(packet.time_base))
    if packet.pts is not None:
        packet.pts += ticks
    if packet.dts is not None:
        packet.dts += ticks
