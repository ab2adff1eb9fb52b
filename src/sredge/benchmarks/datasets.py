"""SR benchmark datasets: HR images, with LR images either provided or made by MATLAB bicubic.

Three layouts are accepted:

* ``ROOT/HR/*.png`` with ``ROOT/LR_bicubic/X{s}/NAMEx{s}.png`` (or ``NAME.png``): the
  LR images are used as they are (the Set5 / Set14 / B100 / Urban100 convention).
* SelfExSR (BSD100 / Urban100 as distributed with Huang et al. 2015): ``NAME_SRF_{s}_HR.png``
  next to ``NAME_SRF_{s}_LR.png`` in one folder, often for several scales (the pairs of the
  requested scale are used), or in ``ROOT/image_SRF_{s}/``. Other methods' results filed
  beside them (``NAME_SRF_{s}_bicubic.png``, ``..._SRCNN.png``, ...) are not HR or LR and are left out.
* A folder of HR images (``ROOT/*.png`` or ``ROOT/HR/*.png`` without the LR folder for
  this scale): each LR image is made with the MATLAB-compatible
  :func:`~sredge.imaging.resize.imresize`, which reproduces the published x2/x3/x4 LR
  images bit for bit.

A folder that mixes HR and LR images any other way (``baby.png`` beside ``babyx2.png``,
``a_HR.png`` beside ``a_LR.png``, SelfExSR pairs beside plain images) is refused with one
line rather than read wrongly (LR images scored as HR). Either way the HR image is cropped
to a multiple of the scale first (BasicSR ``mod_crop``).

Two images of one name (``a.png`` beside ``a.bmp``) are refused: scores are kept by name. So is
an image too small to score (its HR, cropped to a multiple of the scale and then by ``scale``
pixels on every border as the metrics do, smaller than SSIM's window), checked from the headers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.errors import InputError
from sredge.imaging.io import IMAGE_SUFFIXES, image_size, read_rgb
from sredge.imaging.metrics import SSIM_WINDOW
from sredge.imaging.resize import imresize
from sredge.limits import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Sample:
    """One benchmark image."""

    name: str
    """The HR file's stem."""
    hr: Path
    lr: Path | None
    """The provided LR file, or None when the LR is made from the HR."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image its files are decoded at (``--max-pixels``), checked from their headers."""


@dataclass(frozen=True)
class Dataset:
    """The images of one benchmark at one scale."""

    name: str
    """The folder's name (``Set5``)."""
    root: Path
    scale: int
    samples: tuple[Sample, ...]
    lr_source: str
    """``"provided"`` (LR_bicubic or SelfExSR LR files) or ``"imresize"`` (made here from the HR)."""

    def fingerprint(self) -> str:
        """sha256 over the scale, the LR source and every HR (and LR) file's name and bytes.

        Two runs are comparable only when their fingerprints agree.
        """
        h = hashlib.sha256(f"x{self.scale}:{self.lr_source}".encode())
        for s in self.samples:
            for path in (s.hr, s.lr):
                if path is not None:
                    h.update(path.name.encode())
                    h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


_SELFEXSR = re.compile(r"^(?P<name>.+)_SRF_(?P<scale>\d+)_(?P<tag>[^_]+)$", re.IGNORECASE)
# Names that say "this is an LR image" in the usual ways (a_LR, a-lr, a_LR_x4, img.LR, a_lrbicx4, ...).
_LR_WORD = re.compile(r"(?:^|[_\-. ])(?:lr|lrbicx\d+)(?:[_\-. ]|x?\d*$)", re.IGNORECASE)


def _selfexsr_pairs(files: list[Path]) -> dict[int, dict[str, dict[str, Path]]]:
    """SelfExSR files by scale, then image name, then ``"HR"``/``"LR"`` (other tags: left out).

    Raises:
        InputError: Two files for one name, scale and tag (``a_SRF_2_HR.png`` beside ``a_SRF_2_HR.bmp``).
    """
    out: dict[int, dict[str, dict[str, Path]]] = {}
    for f in files:
        if (m := _SELFEXSR.match(f.stem)) and m["tag"].upper() in ("HR", "LR"):
            tags = out.setdefault(int(m["scale"]), {}).setdefault(m["name"], {})
            if (other := tags.get(m["tag"].upper())) is not None:
                raise _twice(f.parent, m["name"], other, f)
            tags[m["tag"].upper()] = f
    return out


def _twice(folder: Path, name: str, a: Path, b: Path) -> InputError:
    return InputError(f"{folder} has two images named {name} ({a.name}, {b.name}): rename one "
                      "(scores are kept by image name)")


def _check_names(folder: Path, files: list[Path]) -> None:
    """Refuse two images of one stem (``a.png``, ``a.bmp``): one's scores would replace the other's."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise _twice(folder, f.stem, seen[f.stem], f)
        seen[f.stem] = f


def min_side(scale: int) -> int:
    """The smallest HR side that can be scored at ``scale`` (pure): after the mod crop to a multiple of
    ``scale`` and the metrics' crop of ``scale`` pixels from each border, SSIM's window must fit."""
    return scale * (-(-SSIM_WINDOW // scale) + 2)


def _check_sizes(samples: list[Sample], scale: int) -> None:
    """Refuse, from the headers, an image too small to score (and one over ``--max-pixels``).

    Raises:
        InputError: An HR image with a side under :func:`min_side`; the message names it and its size.
    """
    need = min_side(scale)
    for s in samples:
        h, w = image_size(s.hr, s.max_pixels)
        if min(h, w) < need:
            raise InputError(f"{s.hr} is {w}x{h} pixels, too small to score at x{scale}: cropped to a multiple "
                             f"of {scale} and by {scale} pixels on each border it leaves less than SSIM's "
                             f"{SSIM_WINDOW}x{SSIM_WINDOW} window; benchmark images need {need}x{need} or more")


def _selfexsr_dataset(root: Path, folder: Path, files: list[Path], scale: int, max_pixels: int) -> Dataset:
    pairs = _selfexsr_pairs(files)
    others = [f.name for f in files if not _SELFEXSR.match(f.stem)]
    if others:
        raise InputError(f"{folder} mixes SelfExSR pairs (NAME_SRF_{{s}}_HR/LR) with other images ({others[0]}, ...): "
                         "keep one layout per folder")
    if scale not in pairs:
        have = ", ".join(f"x{s}" for s in sorted(pairs))
        raise InputError(f"{folder} has SelfExSR pairs for {have}, none for x{scale} (is --scale right?)")
    samples = []
    for name, tags in sorted(pairs[scale].items()):
        missing = {"HR", "LR"} - set(tags)
        if missing:
            have_tag = next(iter(tags.values())).name
            raise InputError(f"{have_tag} has no {missing.pop()} partner ({name}_SRF_{scale}_"
                             f"{'LR' if 'HR' in tags else 'HR'}{next(iter(tags.values())).suffix}) in {folder}")
        samples.append(Sample(name, tags["HR"], tags["LR"], max_pixels))
    _check_sizes(samples, scale)
    return Dataset(root.name, root, scale, tuple(samples), "provided")


def _check_hr_only(folder: Path, files: list[Path]) -> None:
    """Refuse a folder of 'HR' images that holds LR images too (they would be scored as HR).
    HR-only names (``a_HR.png``, ``baby_GT.bmp``) are fine.

    Raises:
        InputError: A file named as an LR image (``a_LR.png``), or ``NAMEx{s}`` beside ``NAME``.
    """
    stems = {f.stem.lower() for f in files}
    for f in files:
        if _LR_WORD.search(f.stem):
            raise InputError(f"{folder}: {f.name} is named as an LR image, so this folder mixes HR and LR images "
                             "in a layout sredge does not know; use HR/ + LR_bicubic/X{s}/ (NAMEx{s}.png), "
                             "SelfExSR's NAME_SRF_{s}_HR.png + NAME_SRF_{s}_LR.png, or HR images alone")
        base = re.sub(r"x\d+$", "", f.stem.lower())
        if base != f.stem.lower() and base in stems:
            raise InputError(f"{folder}: {f.name} looks like the LR image of {base}{f.suffix} (NAMEx{{s}}), so this "
                             "folder mixes HR and LR images; put the LR images in LR_bicubic/X{s}/ beside HR/")


def _lr_partner(hr: Path, lrs: list[Path], scale: int) -> Path | None:
    """The LR image of ``hr`` among ``lrs`` (pure): ``NAMEx{scale}`` first, then ``NAME``; in any image format,
    the suffix's case aside (``bird.PNG`` beside ``birdx2.png``); of two formats of one name, the HR's.

    Raises:
        InputError: Two LR images of that name, neither in the HR's format.
    """
    for stem in (f"{hr.stem}x{scale}", hr.stem):
        found = [p for p in lrs if p.stem == stem]
        if len(found) > 1:
            same = [p for p in found if p.suffix.lower() == hr.suffix.lower()]
            if len(same) != 1:
                raise InputError(f"{hr.name} has {len(found)} LR images ({', '.join(p.name for p in found)}); "
                                 "keep one")
            found = same
        if found:
            return found[0]
    return None


def load_dataset(root: str | Path, scale: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Dataset:
    """Find a dataset's images for ``scale`` (see the module docstring for the layouts); ``max_pixels``
    is the decoding limit its images are read under (see :attr:`Sample.max_pixels`).

    Raises:
        InputError: The folder is missing or has no images, an HR image has no LR partner
            in a provided LR folder, two images share a name, or an image is too small to score
            (see :func:`min_side`) or over ``max_pixels`` (both from the headers).
    """
    root = Path(root)
    if scale < 1:
        raise InputError(f"--scale must be a positive integer, not {scale}")
    if not root.is_dir():
        raise InputError(f"dataset {root} is not a folder")
    hr_dir = root / "HR" if (root / "HR").is_dir() else root
    if hr_dir == root and not _images(root):
        srf = sorted(d.name for d in root.glob("image_SRF_*") if d.is_dir())  # SelfExSR's folders, one per scale
        if f"image_SRF_{scale}" in srf:
            hr_dir = root / f"image_SRF_{scale}"
        elif srf:
            raise InputError(f"{root} has {', '.join(srf)}, no image_SRF_{scale} (is --scale right?)")
    hrs = _images(hr_dir)
    if not hrs:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {hr_dir}")
    if _selfexsr_pairs(hrs):
        return _selfexsr_dataset(root, hr_dir, hrs, scale, max_pixels)
    _check_hr_only(hr_dir, hrs)
    _check_names(hr_dir, hrs)
    lr_dir = root / "LR_bicubic" / f"X{scale}"
    if hr_dir != root / "HR" or not lr_dir.is_dir():
        samples = [Sample(p.stem, p, None, max_pixels) for p in hrs]
        _check_sizes(samples, scale)
        return Dataset(root.name, root, scale, tuple(samples), "imresize")
    samples = []
    lrs = _images(lr_dir)
    for hr in hrs:
        lr = _lr_partner(hr, lrs, scale)
        if lr is None:
            raise InputError(f"{hr.name} has no LR image in {lr_dir} (expected {hr.stem}x{scale}{hr.suffix})")
        samples.append(Sample(hr.stem, hr, lr, max_pixels))
    _check_sizes(samples, scale)
    return Dataset(root.name, root, scale, tuple(samples), "provided")


def load_pair(sample: Sample, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample as ``(hr, lr)`` RGB uint8 arrays, HR cropped to exactly LR size x scale.

    Returns:
        hr: (h * scale, w * scale, 3) uint8. lr: (h, w, 3) uint8.

    Raises:
        InputError: A 16-bit image, or a provided LR whose size does not fit the HR at this scale.
    """
    hr = read_rgb(sample.hr, sample.max_pixels)
    if hr.dtype != np.uint8:
        raise InputError(f"{sample.hr}: benchmark images must be 8-bit")
    if sample.lr is None:
        h, w = hr.shape[0] // scale, hr.shape[1] // scale
        if h < 1 or w < 1:
            raise InputError(f"{sample.hr} ({hr.shape[1]}x{hr.shape[0]}) is smaller than the scale {scale}")
        hr = hr[: h * scale, : w * scale]
        return hr, imresize(hr, scale=1 / scale)
    lr = read_rgb(sample.lr, sample.max_pixels)
    if lr.dtype != np.uint8:
        raise InputError(f"{sample.lr}: benchmark images must be 8-bit")
    h, w = lr.shape[:2]
    # The HR may exceed LR x scale by less than one LR pixel (mod crop); anything else is a mismatch.
    if not (h * scale <= hr.shape[0] < (h + 1) * scale and w * scale <= hr.shape[1] < (w + 1) * scale):
        raise InputError(
            f"{sample.lr.name} is {w}x{h} but {sample.hr.name} is {hr.shape[1]}x{hr.shape[0]}: "
            f"not an x{scale} pair (is --scale right?)"
        )
    return hr[: h * scale, : w * scale], lr
