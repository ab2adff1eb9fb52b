"""``--max-pixels``, shared by the commands that decode images or video (sr-run, sr-bench, sr-calibrate, sr-train,
sr-export), and the most ``--threads`` a command takes."""

from __future__ import annotations

import argparse
import os

from sredge.errors import InputError
from sredge.limits import DEFAULT_MAX_PIXELS, megapixels, parse_pixel_count


def _pixels(text: str) -> int:
    try:
        return parse_pixel_count(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-pixels N`` (``args.max_pixels``, an int) to a command's parser."""
    parser.add_argument("--max-pixels", type=_pixels, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="largest image or video frame to decode, in pixels (width x height), checked from the "
                             f"file's header; e.g. 250M (default {megapixels(DEFAULT_MAX_PIXELS)})")


def max_threads() -> int:
    """The largest ``--threads`` accepted: 4 per core, and at least 64 (more only exhausts memory: sr-bench
    --threads 100000 grew to 16 GB, sr-train's crashed torch)."""
    return max(64, 4 * (os.cpu_count() or 1))


def threads_cap_line(flag: str, value: int) -> str:
    """The one-line refusal of a ``--threads`` over :func:`max_threads`."""
    return (f"{flag} {value} is more than this machine can use: at most {max_threads()} (4 per core on its "
            f"{os.cpu_count() or 1} cores, and 64 on any machine); 0 lets the library choose")
