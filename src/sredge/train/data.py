"""Training patches: HR images, LR made by the MATLAB-compatible bicubic, random aligned crops.

Luma networks train on BT.601 Y, RGB networks on RGB, both in [0, 1] like their inputs at
run time. LR images are made once per image (the whole image, mod-cropped to the scale), so
sampling a batch is only slicing and flipping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sredge.errors import InputError
from sredge.imaging.color import rgb_to_y
from sredge.imaging.io import IMAGE_SUFFIXES, read_rgb, to_float
from sredge.imaging.resize import imresize
from sredge.limits import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class PatchOptions:
    """How training patches are cut."""

    scale: int
    lr_patch: int = 32
    """LR patch edge; the HR patch is ``lr_patch * scale``."""
    luma: bool = True
    """Y channel (1-channel networks) instead of RGB."""
    augment: bool = True
    """Random horizontal/vertical flips and 90-degree rotations."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest training image decoded (``--max-pixels``), checked from each file's header."""


class PatchSampler:
    """Random aligned (LR, HR) patch batches from a folder of HR images.

    Batches are (N, C, p, p) LR and (N, C, p*s, p*s) HR float32 in [0, 1]; deterministic for a seed.
    With a ``teacher`` (``teacher(lr (1, C, h, w)) -> (1, C, h*s, w*s)``, see :class:`sredge.train.teacher.Teacher`),
    its output on each whole LR image is computed once here, and batches are (LR, HR, teacher's) triples.
    """

    def __init__(self, folder: str | Path, opts: PatchOptions, seed: int = 0, teacher=None,
                 on_image: Callable[[int, int], None] | None = None):
        folder = Path(folder)
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files:
            raise InputError(f"no training images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.opts = opts
        self.rng = np.random.default_rng(seed)
        s, hp = opts.scale, opts.lr_patch * opts.scale
        self.pairs = []
        for f in files:
            hr = to_float(read_rgb(f, opts.max_pixels))
            h, w = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s
            if h < hp or w < hp:
                continue
            hr = hr[:h, :w]
            lr = np.clip(imresize(hr, scale=1 / s), 0.0, 1.0)
            if opts.luma:
                hr, lr = rgb_to_y(hr)[..., None], rgb_to_y(lr)[..., None]
            pair = (np.ascontiguousarray(lr.transpose(2, 0, 1)), np.ascontiguousarray(hr.transpose(2, 0, 1)))
            if teacher is not None:
                pair += (teacher(pair[0][None])[0],)
                if on_image is not None:
                    on_image(len(self.pairs) + 1, len(files))
            self.pairs.append(pair)
        if not self.pairs:
            raise InputError(f"no image in {folder} is at least {hp}x{hp} pixels (the HR patch size)")

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

    Batches are (N, C, p, p) float32 in [0, 1] (Y when ``luma``), deterministic for a seed.
    """

    def __init__(self, folder: str | Path, patch: int, luma: bool, augment: bool = True, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        folder = Path(folder)
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
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
            raise InputError(f"no image in {folder} is at least {patch}x{patch} pixels")

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
