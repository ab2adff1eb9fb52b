"""Training patches: HR images, LR made by the MATLAB-compatible bicubic, random aligned crops.

Every network trains in the colour space its descriptor declares (its architecture's
``io(hparams).color_space``), converted as sredge's inference converts it
(:mod:`sredge.imaging.model_io`): luma networks on BT.601 Y, ``ycbcr`` networks (a 3-channel
ESPCN) on BT.601 YCbCr, RGB networks on RGB, all in [0, 1] like their inputs at run time. LR
images are made once per image (the whole image, mod-cropped to the scale, bicubic in RGB), so
sampling a batch is only slicing and flipping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.errors import InputError
from sredge.imaging.color import rgb_to_y, rgb_to_ycbcr
from sredge.imaging.io import IMAGE_SUFFIXES, read_rgb, to_float
from sredge.imaging.resize import imresize
from sredge.limits import DEFAULT_MAX_PIXELS
from sredge.models.descriptor import COLOR_SPACES, ColorSpace

log = logging.getLogger(__name__)


def training_images(folder: Path) -> list[Path]:
    """The images the samplers read from ``folder`` (by suffix), sorted; [] when it is not a folder."""
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def data_fingerprint(folder: str | Path) -> str:
    """sha256 over the names and sizes of :func:`training_images` (cheap: no image is read): what a resumed run
    compares to know that ``--data`` still holds what the run began with."""
    import hashlib

    text = "\n".join(f"{f.name}\t{f.stat().st_size}" for f in training_images(Path(folder)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_color_space(images: np.ndarray, color_space: ColorSpace) -> np.ndarray:
    """Images as the samplers cut them -> a network's colour space, converted as its inference converts them.

    Args:
        images: (..., C, H, W) float32 in [0, 1], channels first: Y (C = 1) for a ``y`` network, RGB
            (C = 3) otherwise.
        color_space: The network's (its descriptor's ``color_space``).

    Returns:
        (..., C, H, W) float32: ``y`` and ``rgb`` as given; ``ycbcr`` by
        :func:`sredge.imaging.color.rgb_to_ycbcr`, the function :mod:`sredge.imaging.model_io`
        feeds such a network with; ``bgr`` with the channels reversed.
    """
    if color_space not in COLOR_SPACES:
        raise ValueError(f"unknown colour space {color_space!r} ({', '.join(COLOR_SPACES)})")
    if color_space == "ycbcr":
        channels_last = np.moveaxis(np.asarray(images, np.float32), -3, -1)
        return np.ascontiguousarray(np.moveaxis(rgb_to_ycbcr(channels_last), -1, -3))
    if color_space == "bgr":
        return np.ascontiguousarray(images[..., ::-1, :, :])
    return images


@dataclass(frozen=True)
class PatchOptions:
    """How training patches are cut."""

    scale: int
    lr_patch: int = 32
    """LR patch edge; the HR patch is ``lr_patch * scale``."""
    color_space: ColorSpace = "y"
    """The network's colour space (its descriptor's): both patches are converted to it (:func:`to_color_space`)."""
    augment: bool = True
    """Random horizontal/vertical flips and 90-degree rotations."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest training image decoded (``--max-pixels``), checked from each file's header."""


class PatchSampler:
    """Random aligned (LR, HR) patch batches from a folder of HR images.

    Batches are (N, C, p, p) LR and (N, C, p*s, p*s) HR float32 in [0, 1], in ``opts.color_space``;
    deterministic for a seed. With a ``teacher`` (``teacher(lr (1, C, h, w)) -> (1, C, h*s, w*s)``: LR in Y or
    RGB, its output in the student's colour space, see :class:`sredge.train.teacher.Teacher`), its output on
    each whole LR image is computed once here, and batches are (LR, HR, teacher's) triples. ``on_image(done,
    total)`` is called after each image is read (the teacher's pass over them takes minutes on T91).
    """

    def __init__(self, folder: str | Path, opts: PatchOptions, seed: int = 0, teacher=None,
                 on_image: Callable[[int, int], None] | None = None):
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"--data {folder}: " + ("not a folder of images" if folder.exists() else "no such folder"))
        files = training_images(folder)
        if not files:
            raise InputError(f"no training images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.opts = opts
        self.rng = np.random.default_rng(seed)
        s, hp = opts.scale, opts.lr_patch * opts.scale
        self.pairs = []
        small = 0
        for i, f in enumerate(files, 1):
            hr = to_float(read_rgb(f, opts.max_pixels))
            h, w = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s
            if h < hp or w < hp:
                small += 1
            else:
                self.pairs.append(self._pair(hr[:h, :w], teacher))
            if on_image is not None:
                on_image(i, len(files))
        if not self.pairs:
            raise InputError(f"no image in {folder} is at least {hp}x{hp} pixels (the HR patch size)")
        if small:  # not an error while others remain, but not unseen either
            log.warning("%s: %d of %d images are smaller than the %dx%d HR patch and are not used", folder, small,
                        len(files), hp, hp)

    def _pair(self, hr: np.ndarray, teacher) -> tuple[np.ndarray, ...]:
        """(LR, HR[, the teacher's output]) of one (H, W, 3) RGB image cropped to a multiple of the scale, each
        (C, h, w) in the sampler's colour space."""
        color_space = self.opts.color_space
        lr = np.clip(imresize(hr, scale=1 / self.opts.scale), 0.0, 1.0)
        if color_space == "y":
            hr, lr = rgb_to_y(hr)[..., None], rgb_to_y(lr)[..., None]
        lr, hr = np.ascontiguousarray(lr.transpose(2, 0, 1)), np.ascontiguousarray(hr.transpose(2, 0, 1))
        targets = (to_color_space(hr, color_space),)
        if teacher is not None:  # the teacher takes the Y or RGB image, as a user's image reaches it at run time
            targets += (teacher(lr[None])[0],)
        return (to_color_space(lr, color_space),) + targets

    def batch(self, n: int) -> tuple[np.ndarray, ...]:
        p, s = self.opts.lr_patch, self.opts.scale
        out: list[list[np.ndarray]] = [[] for _ in self.pairs[0]]
        for _ in range(n):
            lr, *hrs = self.pairs[self.rng.integers(len(self.pairs))]
            y = int(self.rng.integers(lr.shape[1] - p + 1))
            x = int(self.rng.integers(lr.shape[2] - p + 1))
            crops = [lr[:, y:y + p, x:x + p]] + [h[:, y * s:(y + p) * s, x * s:(x + p) * s] for h in hrs]
            if self.opts.augment:
                k = int(self.rng.integers(4))
                crops = [np.rot90(c, k, axes=(1, 2)) for c in crops]
                if self.rng.integers(2):
                    crops = [c[:, :, ::-1] for c in crops]
            for dst, c in zip(out, crops):
                dst.append(c)
        return tuple(np.ascontiguousarray(np.stack(c)) for c in out)


class InputPatchSampler:
    """Random patches of images taken as they are (no ground truth): inputs for distillation.

    Batches are (N, C, p, p) float32 in [0, 1] (Y when ``luma``, else RGB), deterministic for a seed:
    a teacher takes them so; :class:`sredge.train.loop.TeacherSampler` converts them to the student's
    colour space.
    """

    def __init__(self, folder: str | Path, patch: int, luma: bool, augment: bool = True, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "the patch"):
        folder = Path(folder)
        files = training_images(folder)
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.patch, self.augment = patch, augment
        self.rng = np.random.default_rng(seed)
        self.images = []
        for f in files:
            img = to_float(read_rgb(f, max_pixels))
            if min(img.shape[:2]) < patch:
                continue
            img = rgb_to_y(img)[..., None] if luma else img
            self.images.append(np.ascontiguousarray(img.transpose(2, 0, 1)))
        if not self.images:
            raise InputError(f"no image in {folder} is at least {patch}x{patch} pixels ({what})")
        if len(self.images) < len(files):
            log.warning("%s: %d of %d images are smaller than %dx%d pixels (%s) and are not used", folder,
                        len(files) - len(self.images), len(files), patch, patch, what)

    def batch(self, n: int) -> np.ndarray:
        p, out = self.patch, []
        for _ in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = int(self.rng.integers(img.shape[1] - p + 1))
            x = int(self.rng.integers(img.shape[2] - p + 1))
            a = img[:, y:y + p, x:x + p]
            if self.augment:
                a = np.rot90(a, int(self.rng.integers(4)), axes=(1, 2))
                if self.rng.integers(2):
                    a = a[:, :, ::-1]
            out.append(a)
        return np.ascontiguousarray(np.stack(out))
