"""A teacher network's outputs as distillation targets, in the student's colour space and value range."""

from __future__ import annotations

import numpy as np

from sredge._lazy import require
from sredge.errors import InputError
from sredge.imaging.model_io import output_to_image
from sredge.imaging.resize import imresize
from sredge.models.descriptor import ColorSpace
from sredge.train.data import to_color_space


class Teacher:
    """Runs a loaded teacher (any network sr-export reads) on LR images, for a student in ``color_space``.

    The teacher is fed as sredge's inference feeds it (:mod:`sredge.imaging.model_io`): the Y or RGB
    image converted to its own colour space (BT.601 YCbCr for a ``ycbcr`` network), upsampled by
    MATLAB's bicubic for a pre-upsampling teacher (VDSR), at its value range (0-255 for some). Its
    output, in the student's colour space, is clipped to [0, 1]; in another one, it is turned into the
    RGB image inference would show (:func:`sredge.imaging.model_io.output_to_image`: converted, then
    clipped) and that into the student's colour space (:func:`sredge.train.data.to_color_space`).
    """

    def __init__(self, module, desc, scale: int, color_space: ColorSpace):
        channels = 1 if color_space == "y" else 3
        if desc.in_channels != channels:
            raise InputError(
                f"the teacher takes {desc.in_channels} channels, the student {channels}: "
                f"use --channels {desc.in_channels}"
            )
        if desc.scale != scale:
            raise InputError(f"the teacher is a x{desc.scale} model; the student is x{scale}")
        self.module, self.desc, self.scale, self.color_space = module.eval(), desc, scale, color_space

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        """(N, C, h, w) float32 in [0, 1], Y (C = 1) or RGB (C = 3) -> the teacher's (N, C, h*scale, w*scale)
        float32 in [0, 1], in the student's colour space."""
        torch = require("torch")
        x = to_color_space(np.asarray(lr, np.float32), self.desc.color_space)
        if self.desc.pre_upsample:
            x = np.stack([_upsample(p, self.scale) for p in x])
        with torch.no_grad():
            y = self.module(torch.from_numpy(np.ascontiguousarray(x) * self.desc.value_range)).numpy()
        if self.desc.color_space == self.color_space:
            return np.ascontiguousarray(np.clip(y / self.desc.value_range, 0.0, 1.0), dtype=np.float32)
        rgb = np.stack([output_to_image(o[None], self.desc).transpose(2, 0, 1) for o in y])
        return np.ascontiguousarray(to_color_space(rgb, self.color_space), dtype=np.float32)


def _upsample(plane: np.ndarray, scale: int) -> np.ndarray:
    """(C, h, w) -> (C, h*scale, w*scale) by MATLAB's bicubic."""
    up = imresize(plane.transpose(1, 2, 0), scale=scale)
    up = up[..., None] if up.ndim == 2 else up
    return up.transpose(2, 0, 1).astype(np.float32)
