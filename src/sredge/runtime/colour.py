"""A video stream's colour description (primaries, transfer, matrix, range, HDR10 metadata), kept from input to output.

Values are FFmpeg's enum numbers, so they pass to and from PyAV unchanged: primaries
(``AVColorPrimaries``: 1 BT.709, 9 BT.2020, 2 unspecified), transfer (``AVColorTransferCharacteristic``:
1 BT.709, 16 SMPTE ST 2084 "PQ", 18 ARIB STD-B67 "HLG"), matrix (``AVColorSpace``: 1 BT.709, 5/6
BT.601, 9 BT.2020 non-constant luminance, 2 unspecified).

HDR10 static metadata arrives as frame side data (the decoder's reading of the stream's SEI / OBU);
:func:`parse_mastering_display` and :func:`parse_content_light` read FFmpeg's structs, and
:func:`hdr_encoder_params` turns them into the parameters x265 and SVT-AV1 write back into the new
bitstream. All pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

UNSPECIFIED = 2
"""FFmpeg's "unspecified" in all three enums."""
BT709, BT601, SMPTE170M, BT2020 = 1, 5, 6, 9
"""Matrix (``AVColorSpace``) values sredge converts with."""
_SWSCALE_MATRICES = frozenset({1, 4, 5, 6, 7, 9})
"""Matrices FFmpeg's swscale converts with (BT.709, FCC, BT.601 x2, SMPTE 240M, BT.2020 NCL)."""


@dataclass(frozen=True)
class MasteringDisplay:
    """SMPTE ST 2086 mastering display colour volume, in the units HEVC's SEI uses.

    Attributes:
        red, green, blue, white: ``(x, y)`` CIE 1931 chromaticity in units of 0.00002.
        min_luminance, max_luminance: cd/m² in units of 0.0001.
    """

    red: tuple[int, int]
    green: tuple[int, int]
    blue: tuple[int, int]
    white: tuple[int, int]
    min_luminance: int
    max_luminance: int


@dataclass(frozen=True)
class ContentLight:
    """CTA-861.3 content light level: maximum content and frame-average light level, cd/m²."""

    max_cll: int
    max_fall: int


@dataclass(frozen=True)
class Colour:
    """How a stream's samples are to be interpreted (see the module docstring for the numbers).

    Attributes:
        primaries: ``AVColorPrimaries``.
        transfer: ``AVColorTransferCharacteristic``.
        matrix: ``AVColorSpace``, the YCbCr <-> RGB matrix.
        full_range: 0..255 (or 0..1023) samples rather than 16..235 (64..940).
        mastering: HDR10 mastering display metadata, when the source has it.
        light: HDR10 content light level, when the source has it.
    """

    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED
    matrix: int = UNSPECIFIED
    full_range: bool = False
    mastering: MasteringDisplay | None = None
    light: ContentLight | None = None

    @property
    def is_hdr(self) -> bool:
        """PQ or HLG transfer: an HDR stream."""
        return self.transfer in (16, 18)


def conversion_matrix(colour: Colour | None) -> int:
    """The matrix RGB is converted to YCbCr with for a deep (10-bit) output (pure): the source's own when
    swscale has it, else BT.601 (what FFmpeg assumes for an unspecified matrix)."""
    if colour is None or colour.matrix not in _SWSCALE_MATRICES:
        return BT601
    return colour.matrix


_Q = struct.Struct("<12i")  # 6 AVRationals of the display primaries (R, G, B; x, y): num, den pairs


def _ratio(num: int, den: int, unit: int) -> int:
    return round(num * unit / den) if den else 0


def parse_mastering_display(data: bytes) -> MasteringDisplay | None:
    """FFmpeg's ``AVMasteringDisplayMetadata`` (88 bytes: ten ``AVRational`` and two ``int`` flags) ->
    :class:`MasteringDisplay`, or None when it says it has neither primaries nor luminance."""
    if len(data) < 88:
        return None
    p = _Q.unpack_from(data, 0)
    wx, wxd, wy, wyd, mn, mnd, mx, mxd, has_primaries, has_luminance = struct.unpack_from("<10i", data, 48)
    if not has_primaries and not has_luminance:
        return None

    def xy(i: int) -> tuple[int, int]:
        return _ratio(p[4 * i], p[4 * i + 1], 50000), _ratio(p[4 * i + 2], p[4 * i + 3], 50000)

    return MasteringDisplay(red=xy(0), green=xy(1), blue=xy(2), white=(_ratio(wx, wxd, 50000), _ratio(wy, wyd, 50000)),
                            min_luminance=_ratio(mn, mnd, 10000), max_luminance=_ratio(mx, mxd, 10000))


def parse_content_light(data: bytes) -> ContentLight | None:
    """FFmpeg's ``AVContentLightMetadata`` (two ``unsigned``) -> :class:`ContentLight`."""
    if len(data) < 8:
        return None
    cll, fall = struct.unpack_from("<2I", data, 0)
    return ContentLight(cll, fall)


def hdr_encoder_params(encoder_family: str, colour: Colour | None) -> str | None:
    """The encoder parameter string that writes ``colour``'s HDR10 metadata into the bitstream (pure).

    Args:
        encoder_family: ``"x265"`` (``x265-params``) or ``"svtav1"`` (``svtav1-params``); others have none.
        colour: The source's colour description.

    Returns:
        ``key=value`` pairs joined by ``:``, or None when there is nothing to write (or no way to).
    """
    if colour is None or (colour.mastering is None and colour.light is None):
        return None
    m, light = colour.mastering, colour.light
    parts = []
    if encoder_family == "x265":
        if m is not None:
            parts.append("master-display=" + "".join(f"{k}({x},{y})" for k, (x, y) in (
                ("G", m.green), ("B", m.blue), ("R", m.red), ("WP", m.white)))
                         + f"L({m.max_luminance},{m.min_luminance})")
        if light is not None:
            parts.append(f"max-cll={light.max_cll},{light.max_fall}")
        return ":".join([*parts, "hdr10=1"])
    if encoder_family == "svtav1":
        if m is not None:
            def c(v: tuple[int, int]) -> str:
                return f"({v[0] / 50000:.5f},{v[1] / 50000:.5f})"

            parts.append(f"mastering-display=G{c(m.green)}B{c(m.blue)}R{c(m.red)}WP{c(m.white)}"
                         f"L({m.max_luminance / 10000:.4f},{m.min_luminance / 10000:.4f})")
        if light is not None:
            parts.append(f"content-light={light.max_cll},{light.max_fall}")
        return ":".join(parts)
    return None


def hdr_notice(encoder: str, encoder_family: str, colour: Colour | None) -> str | None:
    """The one line saying the source's HDR10 metadata will not be written, or None when it will be (or
    there is none) (pure)."""
    if colour is None or (colour.mastering is None and colour.light is None):
        return None
    if hdr_encoder_params(encoder_family, colour) is not None:
        return None
    return (f"the source's HDR10 mastering display / content light metadata is not written: {encoder} cannot; "
            "use --codec hevc or av1 to keep it")
