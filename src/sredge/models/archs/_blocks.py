"""Building blocks shared by several architectures: the EDSR-PyTorch mean shift (EDSR, RCAN) and
the conv + PixelShuffle upsampler (EDSR, RCAN, SwinIR), with their detection from weights."""

from __future__ import annotations

import torch
from torch import nn

from sredge.models.archs._util import max_index, shuffle_scale
from sredge.models.spec import StateDict

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
    """Adds ``sign * rgb_range * mean`` per channel, as a frozen 1x1 conv (kept in the state dict)."""

    def __init__(self, rgb_range: float, sign: int, channels: int = 3):
        super().__init__(channels, channels, 1)
        mean = DIV2K_MEAN if channels == 3 else (0.5,) * channels
        with torch.no_grad():
            self.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean))
        self.requires_grad_(False)


def make_upsampler(scale: int, n_feats: int, kernel_size: int = 3) -> nn.Sequential:
    """conv(n, 4n) + PixelShuffle(2) per factor of 2 (x2, x4, x8), or conv(n, 9n) + PixelShuffle(3)."""
    def conv(cout: int) -> nn.Conv2d:
        return nn.Conv2d(n_feats, cout, kernel_size, padding=kernel_size // 2)

    layers: list[nn.Module] = []
    if scale == 3:
        layers += [conv(9 * n_feats), nn.PixelShuffle(3)]
    elif scale in (2, 4, 8):
        for _ in range(scale.bit_length() - 1):
            layers += [conv(4 * n_feats), nn.PixelShuffle(2)]
    else:
        raise ValueError(f"scale {scale} is not supported (2, 3, 4, 8)")
    return nn.Sequential(*layers)


def upsampler_scale(sd: StateDict, prefix: str, n_feats: int) -> int | None:
    """Scale of a ``make_upsampler`` stack stored under ``prefix`` (e.g. ``"tail.0."``); None if it is not one."""
    convs = [sd[f"{prefix}{i}.weight"] for i in range(0, max_index(sd, prefix) + 1, 2) if f"{prefix}{i}.weight" in sd]
    factors = [shuffle_scale(int(w.shape[0]), n_feats) for w in convs]
    if factors == [3]:
        return 3
    if factors and len(factors) <= 3 and all(f == 2 for f in factors):
        return 2 ** len(factors)
    return None


def rgb_range_from_mean_shift(sd: StateDict, key: str = "add_mean.bias") -> float:
    """255.0 or 1.0: ``add_mean``'s bias is ``rgb_range * mean`` (std 1), which tells the two apart.

    Shape-only (meta) tensors carry no values; the published 255 is assumed for them.
    """
    bias = sd[key]
    if bias.is_meta:
        return 255.0
    # |bias| is at most the largest mean (< 1) times rgb_range.
    return 1.0 if float(bias.abs().max()) < 2.0 else 255.0
