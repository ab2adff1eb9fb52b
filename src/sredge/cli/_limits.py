"""``--max-pixels``, shared by the commands that decode images or video (sr-run, sr-bench, sr-calibrate, sr-train,
sr-export)."""

from __future__ import annotations

import argparse

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
