"""The bundled sample set: a few freely licensed photos that work wherever a folder of HR images is asked for.

The word ``sample`` given to ``sr-bench --dataset``, ``sr-calibrate build --from`` or
``sr-train --data`` / ``--val`` means this set, so every command can be tried on a fresh machine
without downloading anything. A folder of your own that happens to be called ``sample`` is reached
as ``./sample``. Sources and licences: ``README.md`` beside this module.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sredge.errors import InputError

SAMPLE = "sample"
"""The name that stands for the bundled set on the command line."""


def sample_folder() -> Path:
    """The folder of the bundled sample photos: HR images, (H, W, 3) 8-bit RGB PNGs (no LR folders).

    Raises:
        InputError: The installation has no sample set (a broken install).
    """
    folder = Path(str(resources.files("sredge.data") / SAMPLE))
    if not folder.is_dir():
        raise InputError(f"the bundled sample set is missing from this installation ({folder}); reinstall sredge")
    return folder


def folder_arg(text: str) -> Path:
    """An argparse ``type`` for image-folder options: ``sample`` -> :func:`sample_folder`, anything else a Path.

    Only the exact word ``sample`` is replaced, so ``./sample`` still names a folder of that name.
    """
    if text != SAMPLE:
        return Path(text)
    if Path(SAMPLE).exists():  # the export audit: a folder of that name here was passed over without a word
        import sys

        print(f"note: '{SAMPLE}' means the bundled photos; the {SAMPLE} folder here is not read (give ./{SAMPLE} "
              "for it)", file=sys.stderr)
    return sample_folder()
