"""Image file headers read without decoding (pure): the format, the pixel size, whether the file is whole, and what
a decoder leaves out (the frames after the first, a grey PNG's colour key, an ICC colour profile).

The size comes from the header, so a limit can be checked before a decoder allocates anything
(a 1 MB PNG may declare 20000x20000 pixels). Completeness is checked from the container's own
structure, because decoders differ in what they do with a cut-short file (libjpeg fills the
missing rows with grey and only warns):

* PNG: every chunk present with a correct CRC, an IEND chunk, and an IDAT stream that inflates
  to exactly the rows the header declares;
* JPEG: the marker segments walked to an EOI marker after the last scan;
* WebP: the RIFF container as long as it declares, each chunk inside it;
* BMP: the pixel array as long as the header's size and depth need;
* TIFF: the first image's strips or tiles inside the file.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

FORMATS = ("png", "jpeg", "webp", "bmp", "tiff")
"""Formats whose headers are read here (those sredge reads and writes)."""


class NeedMoreData(ValueError):
    """The header is not within the bytes given (read more of the file and try again)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file says about itself before decoding."""

    format: str
    """One of :data:`FORMATS`."""
    width: int
    height: int
    """Pixels, as stored (before any EXIF or TIFF Orientation turn)."""

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> ImageHeader:
    """Format and size from the first bytes of an image file (pure).

    Raises:
        NeedMoreData: The header lies beyond ``data`` (only a prefix of the file was given).
        ValueError: Not a PNG, JPEG, WebP, BMP or TIFF file, or a damaged header (one-line reason).
    """
    b = bytes(data[:16])
    if b.startswith(_PNG_SIGNATURE):
        return _png_header(data)
    if b.startswith(b"\xff\xd8\xff"):
        return _jpeg_header(data)
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return _webp_header(data)
    if b.startswith(b"BM"):
        return _bmp_header(data)
    if b[:4] in _TIFF_MAGIC:
        return _tiff_header(data)
    raise ValueError("not a PNG, JPEG, WebP, BMP or TIFF file")


def damage(data: bytes, header: ImageHeader) -> str | None:
    """Why a whole image file is cut short or corrupt, or None when its structure is complete (pure).

    Args:
        data: The complete file.
        header: From :func:`read_header` on the same bytes.
    """
    check = {"png": _png_damage, "jpeg": _jpeg_damage, "webp": _webp_damage, "bmp": _bmp_damage,
             "tiff": _tiff_damage}[header.format]
    try:
        return check(data, header)
    except NeedMoreData:
        return "the file is cut short"


def _need(data, end: int) -> None:
    if len(data) < end:
        raise NeedMoreData(f"header needs {end} bytes")


def _sized(fmt: str, width: int, height: int) -> ImageHeader:
    if width < 1 or height < 1:
        raise ValueError(f"its {fmt.upper()} header declares an empty image ({width}x{height})")
    return ImageHeader(fmt, width, height)


# ---------------------------------------------------------------- PNG

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_header(data) -> ImageHeader:
    _need(data, 33)
    length, kind = struct.unpack(">I4s", bytes(data[8:16]))
    if kind != b"IHDR" or length != 13:
        raise ValueError("damaged PNG header (no IHDR chunk first)")
    w, h = struct.unpack(">II", bytes(data[16:24]))
    return _sized("png", w, h)


def png_raw_size(width: int, height: int, bit_depth: int, color_type: int, interlace: int) -> int:
    """Bytes the IDAT stream of a PNG inflates to: each row of each pass plus its filter byte (pure)."""
    bpp = _PNG_CHANNELS[color_type] * bit_depth
    if not interlace:
        return height * (1 + (width * bpp + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        pw, ph = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if pw and ph:
            total += ph * (1 + (pw * bpp + 7) // 8)
    return total


def _png_damage(data: bytes, header: ImageHeader) -> str | None:
    depth, ctype, _comp, _filt, interlace = data[24], data[25], data[26], data[27], data[28]
    if ctype not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        return f"unknown PNG colour type {ctype} / bit depth {depth}"
    view, pos, idat, ended = memoryview(data), 8, [], False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return f"the file is cut short (inside its {kind.decode('latin-1')!r} chunk)"
        body = view[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            return f"its {kind.decode('latin-1')!r} chunk is corrupt (CRC mismatch)"
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = True
            break
        pos = end
    if not ended:
        return "the file is cut short (no IEND chunk)"
    want = png_raw_size(header.width, header.height, depth, ctype, interlace)
    got, inflater = 0, zlib.decompressobj()
    try:
        for body in idat:
            chunk = inflater.decompress(body, 1 << 20)
            while True:
                got += len(chunk)
                if got > want or not inflater.unconsumed_tail:
                    break
                chunk = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
            if got > want:
                break
    except zlib.error as exc:
        return f"its image data is corrupt ({exc})"
    if got != want or not inflater.eof:
        return f"its image data is incomplete ({got} of {want} bytes)" if got < want else \
            f"its image data does not match its header ({got} bytes, not {want})"
    return None


# ---------------------------------------------------------------- JPEG

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_segments(data):
    """Yield (marker, segment start, segment end) from SOI on, walking lengths; entropy-coded data
    after each SOS is skipped to the next marker. Raises NeedMoreData at the end of ``data``."""
    pos = 2
    while True:
        _need(data, pos + 2)
        if data[pos] != 0xFF:
            raise ValueError(f"damaged JPEG (no marker at byte {pos})")
        while data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
            _need(data, pos + 2)
        marker = data[pos + 1]
        if marker in _STANDALONE or marker == 0xD8:
            yield marker, pos, pos + 2
            pos += 2
            continue
        if marker == 0xD9:
            yield marker, pos, pos + 2
            return
        _need(data, pos + 4)
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 2:
            raise ValueError(f"damaged JPEG (segment length {length} at byte {pos})")
        end = pos + 2 + length
        _need(data, end)
        yield marker, pos, end
        pos = end
        if marker == 0xDA:
            pos = _after_scan(data, pos)


def _after_scan(data, pos: int) -> int:
    """Offset of the first marker after entropy-coded data starting at ``pos`` (FF00 is a stuffed byte,
    FFD0-FFD7 are restart markers inside the scan)."""
    while True:
        i = data.find(b"\xff", pos)
        if i < 0 or i + 1 >= len(data):
            raise NeedMoreData("inside a scan")
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos = i + 1 if nxt == 0xFF else i + 2
            continue
        return i


def _jpeg_header(data) -> ImageHeader:
    for marker, start, end in _jpeg_segments(data):
        if marker in _SOF:
            if end - start < 10:
                raise ValueError("damaged JPEG frame header")
            h = (data[start + 5] << 8) | data[start + 6]
            w = (data[start + 7] << 8) | data[start + 8]
            if h == 0:
                raise ValueError("a JPEG whose height is given after the scan (DNL) is not supported")
            return _sized("jpeg", w, h)
        if marker in (0xDA, 0xD9):
            break
    raise ValueError("damaged JPEG (no frame header before the image data)")


def _jpeg_damage(data: bytes, header: ImageHeader) -> str | None:
    scans = 0
    try:
        for marker, _start, _end in _jpeg_segments(data):
            scans += marker == 0xDA
            if marker == 0xD9:
                return None if scans else "damaged JPEG (no image data before its end marker)"
    except NeedMoreData:
        pass
    except ValueError as exc:
        return str(exc)
    return "no JPEG end marker after its image data (cut short, or damaged)"


# ---------------------------------------------------------------- WebP

def _webp_header(data) -> ImageHeader:
    _need(data, 30)
    kind = bytes(data[12:16])
    if kind == b"VP8 ":
        if bytes(data[23:26]) != b"\x9d\x01\x2a":
            raise ValueError("damaged WebP (VP8 start code missing)")
        w, h = struct.unpack("<HH", bytes(data[26:30]))
        return _sized("webp", w & 0x3FFF, h & 0x3FFF)
    if kind == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("damaged WebP (VP8L signature missing)")
        (bits,) = struct.unpack("<I", bytes(data[21:25]))
        return _sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X":
        w = int.from_bytes(bytes(data[24:27]), "little") + 1
        h = int.from_bytes(bytes(data[27:30]), "little") + 1
        return _sized("webp", w, h)
    raise ValueError(f"damaged WebP (unknown first chunk {kind!r})")


def _webp_damage(data: bytes, header: ImageHeader) -> str | None:
    (riff,) = struct.unpack("<I", data[4:8])
    end = 8 + riff
    if end > len(data):
        return f"the file is cut short ({len(data)} of the {end} bytes its header declares)"
    pos = 12
    while pos + 8 <= end:
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        pos += 8 + size + (size & 1)
        if pos > end + 1:  # the last chunk's padding byte may be left out
            return "the file is cut short (inside a WebP chunk)"
    return None


# ---------------------------------------------------------------- BMP

def _bmp_header(data) -> ImageHeader:
    _need(data, 26)
    (dib,) = struct.unpack("<I", bytes(data[14:18]))
    if dib == 12:
        w, h = struct.unpack("<HH", bytes(data[18:22]))
    elif dib >= 40:
        w, h = struct.unpack("<ii", bytes(data[18:26]))
    else:
        raise ValueError(f"damaged BMP header (info header of {dib} bytes)")
    return _sized("bmp", w, abs(h))


def _bmp_damage(data: bytes, header: ImageHeader) -> str | None:
    (offset,) = struct.unpack("<I", data[10:14])
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:
        _need(data, 26)
        (bpp,) = struct.unpack("<H", data[24:26])
        compression, stored = 0, 0
    else:
        _need(data, 38)
        bpp, compression, stored = struct.unpack("<HII", data[28:38])
    if compression in (0, 3, 6):  # uncompressed rows, 4-byte aligned
        need = offset + ((header.width * bpp + 31) // 32) * 4 * header.height
    else:  # run-length or embedded JPEG/PNG: only the declared size can be checked
        need = offset + stored
    if need > len(data):
        return f"the file is cut short ({len(data)} of the {need} bytes its header needs)"
    return None


# ---------------------------------------------------------------- TIFF

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TIFF_ICC = 34675  # InterColorProfile
_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}  # the integer types of the tags read: BYTE, SHORT, LONG, LONG8
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_READ = (256, 257, 273, 279, 324, 325)  # width, length, strip offsets/byte counts, tile offsets/byte counts


def _tiff_ifd(data, wanted: tuple[int, ...] = _TIFF_READ) -> tuple[dict[int, tuple[int, ...]], int]:
    """The first directory's integer tags among ``wanted`` as ``{tag: values}``, and the end of everything it
    lies on (its entries, the next-directory offset, every value stored outside an entry)."""
    _need(data, 16)
    order = "<" if bytes(data[:2]) == b"II" else ">"
    big = data[2 + (order == ">")] == 0x2B
    off_fmt, count_fmt, entry = ("Q", "Q", 20) if big else ("I", "H", 12)
    inline = struct.calcsize(off_fmt)
    (ifd,) = struct.unpack(order + off_fmt, bytes(data[8:16] if big else data[4:8]))
    cs = struct.calcsize(count_fmt)
    _need(data, ifd + cs)
    (n,) = struct.unpack(order + count_fmt, bytes(data[ifd:ifd + cs]))
    if n > 4096:
        raise ValueError(f"damaged TIFF (its first directory claims {n} entries)")
    extent = ifd + cs + n * entry + inline
    _need(data, ifd + cs + n * entry)
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(n):
        e = ifd + cs + i * entry
        tag, typ = struct.unpack(order + "HH", bytes(data[e:e + 4]))
        (count,) = struct.unpack(order + off_fmt, bytes(data[e + 4:e + 4 + inline]))
        size = _TIFF_SIZES.get(typ, 1) * count
        at = e + 4 + inline
        if size > inline:
            (at,) = struct.unpack(order + off_fmt, bytes(data[at:at + inline]))
            extent = max(extent, at + size)
        if tag in wanted and typ in _TIFF_TYPES:
            if count > 1 << 24:
                raise ValueError(f"damaged TIFF (tag {tag} claims {count} values)")
            _need(data, at + size)
            tags[tag] = struct.unpack(f"{order}{count}{_TIFF_TYPES[typ]}", bytes(data[at:at + size]))
    return tags, extent


def _tiff_header(data) -> ImageHeader:
    tags, _extent = _tiff_ifd(data)
    if 256 not in tags or 257 not in tags:
        raise ValueError("damaged TIFF (no image width or length in its first directory)")
    return _sized("tiff", tags[256][0], tags[257][0])


def _tiff_damage(data: bytes, header: ImageHeader) -> str | None:
    try:
        tags, extent = _tiff_ifd(data)
    except ValueError as exc:
        return str(exc)
    offsets, counts = tags.get(273) or tags.get(324), tags.get(279) or tags.get(325)
    if not offsets or not counts or len(offsets) != len(counts):
        return "damaged TIFF (no strip or tile offsets for its first image)"
    end = max(extent, *(o + c for o, c in zip(offsets, counts)))
    if end > len(data):
        return f"the file is cut short ({len(data)} of the {end} bytes its first image needs)"
    return None


# ---------------------------------------------------------------- EXIF orientation

def exif_orientation(data: bytes) -> int:
    """The EXIF Orientation (1-8) of a JPEG (APP1), PNG (``eXIf``) or WebP (``EXIF`` chunk) file (pure).

    1 (as stored) when there is none, it is not within ``data`` (a prefix of the file), or it is
    unreadable: a damaged tag never stops an image from being read. A TIFF file has no EXIF block here (1):
    its own Orientation tag, which OpenCV's decoder applies, is read by :func:`tiff_orientation`.

    Values: 2 mirrored left-right, 3 rotated 180, 4 mirrored top-bottom, 5 transposed, 6 to be turned
    90 degrees clockwise, 7 transversed, 8 to be turned 90 degrees counter-clockwise.
    """
    try:
        block = _exif_block(bytes(data))
        value = _tiff_orientation(block) if block else 1
    except (ValueError, struct.error, IndexError, KeyError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_block(data: bytes) -> bytes | None:
    """The TIFF-structured EXIF block of an image file, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        for marker, start, end in _jpeg_segments(data):
            if marker == 0xE1 and data[start + 4:start + 10] == b"Exif\0\0":
                return data[start + 10:end]
            if marker in (0xDA, 0xD9):
                return None
    elif data.startswith(_PNG_SIGNATURE):
        for kind, start, length in _png_chunks(data):
            if kind == b"eXIf":
                return data[start:start + length]
            if kind in (b"IDAT", b"IEND"):
                return None
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        for kind, start, length in _riff_chunks(data):
            if kind == b"EXIF":
                block = data[start:start + length]
                return block[6:] if block.startswith(b"Exif\0\0") else block
    return None


def _tiff_orientation(block: bytes) -> int:
    """Tag 274 (Orientation, a SHORT) of a TIFF structure's first directory; 1 when absent."""
    order = {b"II": "<", b"MM": ">"}[block[:2]]
    (ifd,) = struct.unpack(order + "I", block[4:8])
    (n,) = struct.unpack(order + "H", block[ifd:ifd + 2])
    for i in range(n):
        e = ifd + 2 + 12 * i
        tag, typ = struct.unpack(order + "HH", block[e:e + 4])
        if tag == 274 and typ == 3:
            return struct.unpack(order + "H", block[e + 8:e + 10])[0]
    return 1


# ---------------------------------------------------------------- what a decoder leaves out


def png_grey_key(data: bytes) -> tuple[int, int] | None:
    """(bit depth, grey level) of a grey PNG's colour key, or None (pure).

    A grey PNG (colour type 0) with a ``tRNS`` chunk before its image data is transparent wherever a
    sample equals that level (as stored: 0..2**depth - 1). None for any other file.
    """
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 29 or data[25] != 0:
        return None
    for kind, start, length in _png_chunks(data):
        if kind == b"tRNS":
            return (data[24], int.from_bytes(data[start:start + 2], "big")) if length >= 2 else None
        if kind in (b"IDAT", b"IEND"):
            return None
    return None


def frame_count(data: bytes) -> int:
    """Frames of an animated PNG (``acTL``) or WebP (``ANMF`` chunks), or pages of a TIFF (pure).

    Args:
        data: The whole file (a WebP's frames and a TIFF's directories run through it).

    Returns:
        The count; 1 for a still image, another format, or a count that cannot be read.
    """
    try:
        if data.startswith(_PNG_SIGNATURE):
            for kind, start, length in _png_chunks(data):
                if kind == b"acTL" and length >= 8:
                    return max(1, int.from_bytes(data[start:start + 4], "big"))
                if kind in (b"IDAT", b"IEND"):  # acTL comes before the image data
                    break
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return max(1, sum(kind == b"ANMF" for kind, _start, _length in _riff_chunks(data)))
        elif data[:4] in _TIFF_MAGIC:
            return max(1, len(_tiff_directories(data)))
    except (ValueError, struct.error):
        pass
    return 1


def has_icc_profile(data: bytes) -> bool:
    """Whether an image file embeds an ICC colour profile (pure).

    PNG ``iCCP``, JPEG APP2 ``ICC_PROFILE``, WebP ``ICCP`` or TIFF InterColorProfile (34675) in its
    first directory; False for anything unreadable.
    """
    try:
        if data.startswith(_PNG_SIGNATURE):
            for kind, _start, _length in _png_chunks(data):
                if kind == b"iCCP":
                    return True
                if kind in (b"IDAT", b"IEND"):
                    return False
        elif data.startswith(b"\xff\xd8\xff"):
            for marker, start, _end in _jpeg_segments(data):
                if marker == 0xE2 and data[start + 4:start + 16] == b"ICC_PROFILE\0":
                    return True
                if marker in (0xDA, 0xD9):
                    return False
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return any(kind == b"ICCP" for kind, _start, _length in _riff_chunks(data))
        elif data[:4] in _TIFF_MAGIC:
            return _tiff_first_page_has(data, _TIFF_ICC)
    except (ValueError, struct.error):
        pass
    return False


def _png_chunks(data):
    """Yield (kind, body start, body length) of a PNG's chunks within ``data`` (CRCs unchecked)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, pos + 8, length
        pos += 12 + length


def _riff_chunks(data):
    """Yield (kind, body start, body length) of a WebP's chunks within ``data``, walking their sizes."""
    pos = 12
    while pos + 8 <= len(data):
        kind, length = bytes(data[pos:pos + 4]), int.from_bytes(data[pos + 4:pos + 8], "little")
        yield kind, pos + 8, length
        pos += 8 + length + (length & 1)


_TIFF_EXTRA_SAMPLES = 338  # ExtraSamples: alpha (or other channels) beside grey or RGB
_TIFF_ORIENTATION = 274


def tiff_has_extra_samples(data: bytes) -> bool:
    """Whether a TIFF's first page declares extra samples (``ExtraSamples``: an alpha channel), pure; False
    for another format or anything unreadable."""
    return data[:4] in _TIFF_MAGIC and _tiff_first_page_has(data, _TIFF_EXTRA_SAMPLES)


def tiff_extra_samples(data: bytes) -> tuple[int, ...]:
    """A TIFF's first page's ``ExtraSamples`` values (pure): 0 unspecified, 1 associated (premultiplied)
    alpha, 2 unassociated (straight) alpha, one a sample beyond grey or RGB; empty for none, another format
    or anything unreadable."""
    return _tiff_first_page_tags(data, _TIFF_EXTRA_SAMPLES)


def tiff_orientation(data: bytes) -> int:
    """A TIFF's first page's Orientation tag (1-8, the values of :func:`exif_orientation`), pure.

    OpenCV's TIFF decoder turns the image by it (every layout and depth, tried), so a viewer and
    :func:`sredge.imaging.io.read_image` show it upright. 1 when absent, out of range, not within ``data``,
    another format or unreadable.
    """
    value = _tiff_first_page_tags(data, _TIFF_ORIENTATION)[:1]
    return value[0] if value and 1 <= value[0] <= 8 else 1


def _tiff_first_page_tags(data: bytes, tag: int) -> tuple[int, ...]:
    """The integer values of ``tag`` in a TIFF's first directory; empty when absent or unreadable."""
    if bytes(data[:4]) not in _TIFF_MAGIC:
        return ()
    try:
        tags, _extent = _tiff_ifd(data, (tag,))
    except (ValueError, struct.error):  # NeedMoreData included
        return ()
    return tags.get(tag, ())


def _tiff_first_page_has(data: bytes, tag: int) -> bool:
    """Whether a TIFF's first directory holds ``tag``; False when it cannot be read."""
    try:
        directories = _tiff_directories(data)
    except (ValueError, struct.error):
        return False
    return bool(directories) and tag in directories[0]


def _tiff_directories(data) -> list[set[int]]:
    """The tags of each directory in a TIFF's chain (a page each), to the end of ``data`` or a loop."""
    order = "<" if bytes(data[:2]) == b"II" else ">"
    big = data[2 + (order == ">")] == 0x2B
    off_fmt, count_fmt, entry = ("Q", "Q", 20) if big else ("I", "H", 12)
    cs, inline = struct.calcsize(count_fmt), struct.calcsize(off_fmt)
    (ifd,) = struct.unpack(order + off_fmt, bytes(data[8:16] if big else data[4:8]))
    pages: list[set[int]] = []
    seen: set[int] = set()
    while ifd and ifd not in seen and ifd + cs <= len(data) and len(pages) < 1 << 16:
        seen.add(ifd)
        (n,) = struct.unpack(order + count_fmt, bytes(data[ifd:ifd + cs]))
        end = ifd + cs + n * entry
        if n > 4096 or end + inline > len(data):
            break
        pages.append({struct.unpack(order + "H", bytes(data[e:e + 2]))[0] for e in range(ifd + cs, end, entry)})
        (ifd,) = struct.unpack(order + off_fmt, bytes(data[end:end + inline]))
    return pages
