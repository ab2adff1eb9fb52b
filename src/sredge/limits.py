"""Limits checked before anything large is allocated: decoded pixels per image or video frame.

A file's header says how large it will be once decoded; a hostile or broken one (a 1 MB PNG
declaring 20000x20000 pixels) must be refused from the header, before the decoder allocates.
The default is generous; ``--max-pixels`` raises it.
"""

from __future__ import annotations

import re

from sredge.errors import InputError

DEFAULT_MAX_PIXELS = 100_000_000
"""Decoded pixels (width x height) an image or video frame may have unless ``--max-pixels`` says more."""

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_pixel_count(text: str) -> int:
    """A ``--max-pixels`` value: ``250000000``, ``250M``, ``1.5G`` or ``800k`` (decimal multiples) (pure).

    Raises:
        InputError: Not a positive count.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text.replace("_", ""))
    if m is None:
        raise InputError(f"--max-pixels {text!r}: give a pixel count such as 250M or 250000000")
    n = int(float(m.group(1)) * _SUFFIX[m.group(2).lower()])
    if n < 1:
        raise InputError(f"--max-pixels {text!r}: the limit must be at least 1 pixel")
    return n


def megapixels(n: int) -> str:
    """``400000000`` -> ``"400 MP"``; small counts keep a decimal (pure)."""
    mp = n / 1e6
    return f"{mp:.0f} MP" if mp >= 10 else f"{mp:.2g} MP"


def check_pixels(what: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse an image or frame of ``width`` x ``height`` over the limit (pure).

    Args:
        what: The file or stream, for the message.

    Raises:
        InputError: Over ``max_pixels``; the message names the size, the limit and the ``--max-pixels``
            value that would admit it.
    """
    n = int(width) * int(height)
    if n > max_pixels:
        need = -(-n // 10**6)
        raise InputError(f"{what} is {width}x{height} pixels ({megapixels(n)}), over the limit of "
                         f"{megapixels(max_pixels)}: pass --max-pixels {need}M if you mean it")
