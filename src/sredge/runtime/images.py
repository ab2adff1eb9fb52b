"""``sr-run --image``: which files an argument names, where their results go, and upscaling them.

A single file is written beside itself (``NAME_x{scale}.EXT``) or to ``-o``. A folder or a glob
pattern always writes into a folder, never among its inputs: ``-o DIR`` or, by default, a new
sibling folder (``photos/`` -> ``photos_x2/``), so a later run of the same folder never picks up
its own results.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sredge.atomic import WriteError
from sredge.errors import InputError, SredgeError
from sredge.imaging.io import IMAGE_SUFFIXES, read_image, write_image

if TYPE_CHECKING:
    from sredge.runtime.runner import LoadedRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageInputs:
    """The images one ``--image`` argument names."""

    files: tuple[Path, ...]
    """The image files, sorted."""
    single: bool
    """One named file (not a folder or a pattern, whatever it matched)."""
    folders: tuple[Path, ...] = ()
    """Folder or pattern input: the folders the images are read from (outputs never go into them)."""


def expand_images(spec: str) -> ImageInputs:
    """A file, a folder (its images, sorted) or a glob pattern -> the images it names.

    Raises:
        InputError: Nothing matches, or no such file.
    """
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
        return ImageInputs(tuple(files), single=False, folders=(p,))
    if p.exists():
        return ImageInputs((p,), single=True)
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no images match {spec}")
        return ImageInputs(tuple(files), single=False, folders=tuple(sorted({f.parent for f in files})))
    raise InputError(f"no such file: {spec}")


def output_name(src: Path, scale: int) -> str:
    """``photo.jpg`` -> ``photo_x2.jpg`` (pure)."""
    return f"{src.stem}_x{scale}{src.suffix}"


def default_folder(images: ImageInputs, scale: int) -> Path:
    """The new sibling folder a folder or pattern input writes into: ``photos/`` -> ``photos_x2/``.

    Raises:
        InputError: The images' folder has no name to derive one from (the file-system root).
    """
    base = Path(os.path.commonpath([os.path.abspath(f) for f in images.folders]))
    if not base.name:
        raise InputError(f"give -o FOLDER for images in {base}")
    named = images.folders[0] if len(images.folders) == 1 and images.folders[0].name else base
    return named.with_name(f"{named.name}_x{scale}")


def output_folder(images: ImageInputs, output: Path | None, scale: int) -> Path:
    """The folder a folder or pattern input writes into: ``-o`` or :func:`default_folder` (pure but for stat).

    Raises:
        InputError: ``-o`` names an existing file, or a name with an image suffix.
    """
    if output is None:
        return default_folder(images, scale)
    if output.exists() and not output.is_dir():
        raise InputError(f"-o {output} is a file; {len(images.files)} image(s) from a folder or pattern "
                         "are written into a folder: give -o FOLDER")
    if not output.exists() and output.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"-o {output} looks like an image file name; a folder or pattern input writes into a "
                         "folder: give -o FOLDER (or --image one file)")
    return output


def image_outputs(images: ImageInputs, output: Path | None, scale: int) -> list[Path]:
    """Where each upscaled image goes. A single file: ``-o`` is the file (or an existing folder to write
    into), default ``NAME_x{scale}.EXT`` beside it; a folder or pattern: files in :func:`output_folder`.

    Raises:
        InputError: See :func:`output_folder`.
    """
    if images.single:
        src = images.files[0]
        if output is None:
            return [src.with_name(output_name(src, scale))]
        return [output / output_name(src, scale)] if output.is_dir() else [output]
    folder = output_folder(images, output, scale)
    return [folder / output_name(src, scale) for src in images.files]


@dataclass
class ImagesResult:
    """What a run over images did."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, SredgeError]] = field(default_factory=list)
    """Inputs that could not be upscaled (unreadable, corrupt, ...), with why; the others were written."""


def upscale_images(rt: LoadedRuntime, inputs: list[Path] | tuple[Path, ...], outputs: list[Path],
                   on_image: Callable[[int, int], None] | None = None) -> ImagesResult:
    """Upscale each image and write it atomically.

    ``on_image(done, total)`` is called after each image, written or failed (progress display).

    Every image is tried: a bad one is recorded in :attr:`ImagesResult.failed` and the run goes on.
    Failing to write (disk full, read-only target) stops the run, since every later write would fail too.

    Raises:
        WriteError: An output could not be written.
    """
    result = ImagesResult()
    for done, (src, dst) in enumerate(zip(inputs, outputs), 1):
        try:
            img = read_image(src, rt.opts.max_pixels)
            out = rt.upscaler(img.shape[0], img.shape[1]).upscale(img)
            result.written.append(write_image(dst, out))
            log.info("wrote %s", dst)
        except WriteError:
            raise
        except SredgeError as exc:
            log.debug("%s failed: %s", src, exc)
            result.failed.append((src, exc))
        if on_image is not None:
            on_image(done, len(inputs))
    return result
