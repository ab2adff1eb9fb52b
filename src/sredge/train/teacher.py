"""A teacher network's outputs as distillation targets, in the student's channels and value range."""

from __future__ import annotations

import numpy as np

from sredge._lazy import require
from sredge.errors import InputError
from sredge.imaging.resize import imresize


class Teacher:
    """Runs a loaded teacher (any network sr-export reads) on student-format LR batches.

    The student and the teacher see the same channels (Y or RGB). A pre-upsampling teacher (VDSR)
    gets the LR batch upsampled by MATLAB's bicubic, as at run time; a teacher working at another
    value range (0-255) is fed and read back at its own range.
    """

    def __init__(self, module, desc, scale: int, channels: int):
        if desc.in_channels != channels:
            raise InputError(
                f"the teacher takes {desc.in_channels} channels, the student {channels}: "
                f"use --channels {desc.in_channels}"
            )
        if desc.color_space not in ("rgb", "y"):
            raise InputError(f"teachers must work on RGB or Y, not {desc.color_space}")
        if desc.scale != scale:
            raise InputError(f"the teacher is a x{desc.scale} model; the student is x{scale}")
        self.module, self.desc, self.scale = module.eval(), desc, scale

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        """(N, C, h, w) float32 in [0, 1] -> the teacher's (N, C, h*scale, w*scale) float32 in [0, 1], clipped."""
        torch = require("torch")
        x = np.asarray(lr, np.float32)
        if self.desc.pre_upsample:
            x = np.stack([_upsample(p, self.scale) for p in x])
        with torch.no_grad():
            y = self.module(torch.from_numpy(np.ascontiguousarray(x) * self.desc.value_range)).numpy()
        return np.ascontiguousarray(np.clip(y / self.desc.value_range, 0.0, 1.0), dtype=np.float32)


def _upsample(plane: np.ndarray, scale: int) -> np.ndarray:
    """(C, h, w) -> (C, h*scale, w*scale) by MATLAB's bicubic."""
    up = imresize(plane.transpose(1, 2, 0), scale=scale)
    up = up[..., None] if up.ndim == 2 else up
    return up.transpose(2, 0, 1).astype(np.float32)
