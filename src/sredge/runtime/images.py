"""``sr-run --image``: which files an argument names, where their results go, and upscaling them.

A single file is written beside itself (``NAME_x{scale}.EXT``) or to ``-o``. A folder or a glob
pattern always writes into a folder, never among its inputs: ``-o DIR`` or, by default, a new
sibling folder (``photos/`` -> ``photos_x2/``), so a later run of the same folder never picks up
its own results.

The output format and size are :class:`ImageFormat`: ``--ext png|jpg|webp`` with ``--quality``, and
``--outscale`` / ``--target`` (see :mod:`sredge.runtime.resize_plan`); the default name says the size
(``NAME_x3.jpg``, ``NAME_3840x2160.png``).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sredge.atomic import WriteError
from sredge.errors import InputError, SredgeError
from sredge.imaging.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_encodable_size, read_image, write_image
from sredge.runtime.resize_plan import OutputSize, plan_output_size, resize_image

if TYPE_CHECKING:
    from sredge.runtime.runner import LoadedRuntime

log = logging.getLogger(__name__)


EXT_CHOICES = ("png", "jpg", "webp")
"""``--ext`` values."""
_LOSSY = (".jpg", ".jpeg", ".webp")
"""Suffixes whose files store 8-bit samples and take ``--quality``."""


@dataclass(frozen=True)
class ImageFormat:
    """How ``sr-run --image`` writes its results: size, file format and quality."""

    size: OutputSize = field(default_factory=OutputSize)
    """``--outscale`` / ``--target``; default the model's own scale."""
    ext: str | None = None
    """``--ext``: ``png``, ``jpg`` or ``webp`` for every output; None: each input's own format (or ``-o``'s)."""
    quality: int | None = None
    """``--quality``: 1..100 for JPEG and WebP, lossy (None: OpenCV's default, 95 for JPEG and lossless WebP)."""

    def __post_init__(self) -> None:
        if self.ext is not None and self.ext not in EXT_CHOICES:
            raise InputError(f"--ext {self.ext}: choose {', '.join(EXT_CHOICES)}")
        if self.quality is not None:
            if not 1 <= self.quality <= 100:
                raise InputError(f"--quality must be 1..100, not {self.quality}")
            if self.ext == "png":
                raise InputError("--quality sets JPEG/WebP quality; PNG is lossless: drop --quality or use --ext jpg")

    def suffix(self, src: Path) -> str:
        """The output suffix for input ``src``: ``.EXT`` from ``--ext``, else the input's own."""
        return f".{self.ext}" if self.ext is not None else src.suffix

    def tag(self, scale: int) -> str:
        """What the default name says about the size: ``x2`` (the model's), ``x2.5``, ``3840x2160``, ``3840x0``."""
        return f"x{scale}" if self.size.is_model_scale else self.size.describe()


def check_output_suffix(output: Path, fmt: ImageFormat) -> None:
    """A single image's output (``-o`` or the default name) must agree with ``--ext`` and ``--quality`` (pure).
    (A folder's outputs follow ``--ext``; without it, ``--quality`` applies to its JPEG and WebP files.)

    Raises:
        InputError: A suffix sredge cannot write (``-o x.gif``), ``-o x.png --ext jpg``, or ``--quality``
            for a PNG.
    """
    suffix = output.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:  # found only after inference before (the image audit)
        raise InputError(f"-o {output}: {'a ' + suffix if suffix else 'a suffix-less'} file is not an image format "
                         f"sredge writes; name it .png, .jpg, .webp, .tif or .bmp")
    if fmt.ext is not None and suffix != f".{fmt.ext}" and not (fmt.ext == "jpg" and suffix == ".jpeg"):
        raise InputError(f"-o {output} is a {suffix or 'suffix-less'} file but --ext {fmt.ext}: "
                         f"name it {output.with_suffix('.' + fmt.ext).name} or drop --ext")
    if fmt.quality is not None and suffix not in _LOSSY:
        raise InputError(f"--quality sets JPEG/WebP quality, and the output {output.name} is "
                         f"{suffix or 'not an image'}: drop --quality, or write .jpg/.webp (--ext jpg)")


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
        # hidden files (macOS's ._NAME AppleDouble companions) are skipped, as a glob skips them
        files = sorted(f for f in p.iterdir()
                       if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not f.name.startswith("."))
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
        return ImageInputs(tuple(files), single=False, folders=(p,))
    if p.exists():
        return ImageInputs((p,), single=True)
    if any(ch in spec for ch in "*?["):
        files = sorted(f for f in map(Path, glob.glob(spec)) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise InputError(f"no images match {spec}")
        return ImageInputs(tuple(files), single=False, folders=tuple(sorted({f.parent for f in files})))
    raise InputError(f"no such file: {spec}")


def output_name(src: Path, scale: int, fmt: ImageFormat | None = None) -> str:
    """``photo.jpg`` -> ``photo_x2.jpg``; with ``fmt``, its size tag and suffix (``photo_x3.webp``) (pure)."""
    fmt = fmt or ImageFormat()
    return f"{src.stem}_{fmt.tag(scale)}{fmt.suffix(src)}"


def default_folder(images: ImageInputs, scale: int, fmt: ImageFormat | None = None) -> Path:
    """The new sibling folder a folder or pattern input writes into: ``photos/`` -> ``photos_x2/``.

    Raises:
        InputError: The images' folder has no name to derive one from (the file-system root).
    """
    base = Path(os.path.commonpath([os.path.abspath(f) for f in images.folders]))
    if not base.name:
        raise InputError(f"give -o FOLDER for images in {base}")
    named = images.folders[0] if len(images.folders) == 1 and images.folders[0].name else base
    return named.with_name(f"{named.name}_{(fmt or ImageFormat()).tag(scale)}")


def output_folder(images: ImageInputs, output: Path | None, scale: int, fmt: ImageFormat | None = None) -> Path:
    """The folder a folder or pattern input writes into: ``-o`` or :func:`default_folder` (pure but for stat).

    Raises:
        InputError: ``-o`` names an existing file, or a name with an image suffix.
    """
    if output is None:
        return default_folder(images, scale, fmt)
    if output.exists() and not output.is_dir():
        raise InputError(f"-o {output} is a file; {len(images.files)} image(s) from a folder or pattern "
                         "are written into a folder: give -o FOLDER")
    if not output.exists() and output.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"-o {output} looks like an image file name; a folder or pattern input writes into a "
                         "folder: give -o FOLDER (or --image one file)")
    return output


def image_outputs(images: ImageInputs, output: Path | None, scale: int, fmt: ImageFormat | None = None) -> list[Path]:
    """Where each upscaled image goes. A single file: ``-o`` is the file (or an existing folder to write
    into), default ``NAME_x{scale}.EXT`` beside it; a folder or pattern: files in :func:`output_folder`.
    ``fmt`` (``--ext``, ``--outscale``/``--target``) sets the default names' suffix and size tag.

    Raises:
        InputError: See :func:`output_folder` and :func:`check_output_suffix`; two inputs of a folder that
            would be written to one file (``a.png`` and ``a.jpg`` with ``--ext jpg``).
    """
    if images.single:
        src = images.files[0]
        named = output is not None and not output.is_dir()
        if not named and (fmt is None or fmt.ext is None) and src.suffix.lower() not in IMAGE_SUFFIXES:
            # The output's name would come from the input's: say what is wrong with the input instead.
            hint = ("for a video use --video" if src.suffix.lower() in VIDEO_SUFFIXES
                    else "an image under another name needs -o NAME.png (or .jpg, ...)")
            raise InputError(f"{src}: not an image by its name ({src.suffix or 'no suffix'}); --image reads PNG, "
                             f"JPEG, WebP, BMP and TIFF files: {hint}")
        if output is None:
            dst = src.with_name(output_name(src, scale, fmt))
        elif output.is_dir():
            dst = output / output_name(src, scale, fmt)
        else:
            dst = output
        check_output_suffix(dst, fmt or ImageFormat())
        return [dst]
    folder = output_folder(images, output, scale, fmt)
    outputs = [folder / output_name(src, scale, fmt) for src in images.files]
    first: dict[Path, Path] = {}
    for src, dst in zip(images.files, outputs):
        if dst in first:  # photo.png and photo.jpg with --ext jpg
            ext = fmt is not None and fmt.ext
            raise InputError(f"{first[dst]} and {src} would be written to the same file in {dst.parent}"
                             + (f" (--ext {fmt.ext}): rename one, or drop --ext to keep each input's format"
                                if ext else ": rename one, or run them separately"))
        first[dst] = src
    return outputs


@dataclass
class ImagesResult:
    """What a run over images did."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, SredgeError]] = field(default_factory=list)
    """Inputs that could not be upscaled (unreadable, corrupt, ...), with why; the others were written."""
    compare: Path | None = None
    """The ``--compare`` picture, when written."""


def upscale_images(rt: LoadedRuntime, inputs: list[Path] | tuple[Path, ...], outputs: list[Path],
                   on_image: Callable[[int, int], None] | None = None, fmt: ImageFormat | None = None,
                   compare: Path | None = None, notify: Callable[[str], None] | None = None) -> ImagesResult:
    """Upscale each image, resize it as ``fmt`` says, and write it atomically.

    ``on_image(done, total)`` is called after each image, written or failed (progress display).
    ``compare``: also write the before/after picture of the (single) image there
    (:func:`sredge.runtime.compare.before_after`). ``notify(line)`` gets a line for what an input holds
    that its output cannot (the frames after the first of an animation, an ICC profile:
    :func:`~sredge.imaging.io.image_notes`).

    Every image is tried: a bad one is recorded in :attr:`ImagesResult.failed` and the run goes on.
    An image the output format cannot hold (transparency into JPEG, a side over the format's limit) or
    whose resized output cannot fit in memory fails before its inference.
    Failing to write (disk full, read-only target) stops the run, since every later write would fail too.

    Raises:
        WriteError: An output could not be written.
    """
    fmt = fmt or ImageFormat()
    result = ImagesResult()
    for done, (src, dst) in enumerate(zip(inputs, outputs), 1):
        try:
            notes: list[str] = []
            img = read_image(src, rt.opts.max_pixels, notes=notes)
            check_storable(img, src, dst)
            plan = plan_output_size(img.shape[:2], rt.desc.scale, fmt.size)
            check_encodable_size(dst, plan.out_hw[1], plan.out_hw[0])
            if compare is not None:  # its size too, before the model runs
                from sredge.runtime.compare import before_after_size, compare_label

                ch, cw = before_after_size(*plan.out_hw, compare_label(rt.desc, fmt.size))
                check_encodable_size(compare, cw, ch)
            _check_resize_fits(plan, img)
            for line in notes if notify is not None else ():  # what the output will lose: once it will be written
                notify(line)
            out = rt.upscaler(img.shape[0], img.shape[1]).upscale(img)
            out = resize_image(out, plan)
            result.written.append(write_as(dst, out, fmt.quality))
            log.info("wrote %s", dst)
            if compare is not None:
                from sredge.runtime.compare import before_after, compare_label

                result.compare = write_image(compare, before_after(img, out, compare_label(rt.desc, fmt.size)))
        except WriteError:
            raise
        except SredgeError as exc:
            log.debug("%s failed: %s", src, exc)
            result.failed.append((src, exc))
        if on_image is not None:
            on_image(done, len(inputs))
    return result


def _check_resize_fits(plan, img: np.ndarray) -> None:
    """Refuse a ``--target``/``--outscale`` whose resized output cannot fit the memory available (the upscaler
    counts only the model's own output: --target 40000x40000 was an OpenCV allocation error, exit 3)."""
    if not plan.resizes:
        return
    from sredge.runtime.memory import require_memory

    channels = 1 if img.ndim == 2 else img.shape[2]
    (mh, mw), (oh, ow) = plan.model_hw, plan.out_hw
    need = (mh * mw + oh * ow) * channels * 4  # the model's output and the resized one, as float32 at most
    require_memory(need, f"resizing to {ow}x{oh} needs", "give a smaller --target or --outscale")


def check_storable(img: np.ndarray, src: Path, dst: Path) -> None:
    """Refuse, before inference, an image that ``dst``'s format would lose: transparency into JPEG, 16-bit
    samples into BMP.

    An alpha channel that is opaque everywhere is not transparency: it is dropped without loss.

    Raises:
        InputError: ``src`` has transparent pixels and ``dst`` is a JPEG, or 16-bit samples and ``dst`` a BMP.
    """
    # Only 8- and 16-bit integer samples are upscaled (a float TIFF is refused in the upscaler, one line): a float
    # image here was an internal error that ended a whole folder run (the image audit).
    if dst.suffix.lower() == ".bmp" and img.dtype == np.uint16:  # was refused by the writer, after the inference
        raise InputError(f"{src} has 16-bit samples and .bmp stores 8: write .png or .tif (they keep 16 bits)")
    if dst.suffix.lower() in (".jpg", ".jpeg") and img.ndim == 3 and img.shape[2] == 4 and img.dtype.kind in "ui":
        opaque = np.iinfo(img.dtype).max
        if int(img[..., 3].min()) < opaque:
            raise InputError(f"{src} has transparent pixels and JPEG has no alpha channel: "
                             "write .png or .webp (--ext png) instead")


def write_as(dst: Path, img: np.ndarray, quality: int | None = None) -> Path:
    """Write an upscaled image in ``dst``'s format, atomically.

    JPEG and WebP store 8-bit samples: a 16-bit image is reduced to 8 bits for them (PNG and TIFF
    keep 16). An opaque alpha channel is dropped for JPEG (see :func:`check_storable`).

    Args:
        dst: Output path; the format comes from its suffix.
        img: (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16.
        quality: 1..100 for JPEG/WebP (None: OpenCV's default).

    Raises:
        InputError: Unwritable location, or a format OpenCV cannot encode.
    """
    suffix = dst.suffix.lower()
    if suffix in _LOSSY:
        from sredge.runtime.compare import to_8bit

        img = to_8bit(img)
        if suffix != ".webp" and img.ndim == 3 and img.shape[2] == 4:
            img = np.ascontiguousarray(img[..., :3])
    return write_image(dst, img, quality)
