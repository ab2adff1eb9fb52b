"""SRResNet as BasicSR's MSRResNet (Ledig et al. 2017, modified: no batch norm, global bilinear skip).

Key layout of BasicSR ``srresnet_arch.py``:

- ``conv_first``: conv in -> num_feat, LeakyReLU(0.1).
- ``body.N.conv1``, ``body.N.conv2``: residual block N (conv, ReLU, conv, plus input; no BN).
- ``upconv1`` (+ ``upconv2`` for x4): x2/x3 one conv(nf, nf*s*s) + PixelShuffle(s);
  x4 two conv(nf, 4nf) + PixelShuffle(2) stages; each followed by LeakyReLU(0.1).
- ``conv_hr`` (+ LeakyReLU), ``conv_last``: nf -> out.

The output adds the bilinearly upsampled input (``align_corners=False``), so in and out
channels are equal. I/O: RGB in [0, 1] in and out.

BasicSR's RRDBNet also starts with ``conv_first``; MSRResNet has ``body.0.conv1`` where
RRDBNet has ``body.0.rdb1.conv1``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import count_indexed, has_keys, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class ResidualBlockNoBN(nn.Module):
    """conv, ReLU, conv, plus the input."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """MSRResNet. Input (N, C, H, W) in [0, 1]; output (N, C, H*scale, W*scale) in [0, 1] (not clamped)."""

    def __init__(self, scale: int = 4, num_ch: int = 3, num_feat: int = 64, num_block: int = 16):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(num_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        if scale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * scale * scale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(scale)
        elif scale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            raise ValueError(f"MSRResNet supports scales 2, 3 and 4, not {scale}")
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1)

    def forward(self, x):
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + base


def detect(sd: StateDict) -> HParams | None:
    keys = (
        "conv_first.weight",
        "body.0.conv1.weight",
        "body.0.conv2.weight",
        "upconv1.weight",
        "conv_hr.weight",
        "conv_last.weight",
    )
    if not has_keys(sd, keys):
        return None
    num_feat, num_ch = sd["conv_first.weight"].shape[:2]
    if sd["conv_last.weight"].shape[0] != num_ch:
        return None
    up1 = int(sd["upconv1.weight"].shape[0])
    if "upconv2.weight" in sd:
        if up1 != 4 * num_feat or sd["upconv2.weight"].shape[0] != 4 * num_feat:
            return None
        scale = 4
    else:
        scale = shuffle_scale(up1, int(num_feat))
        if scale not in (2, 3):
            return None
    return {
        "scale": scale,
        "num_ch": int(num_ch),
        "num_feat": int(num_feat),
        "num_block": int(count_indexed(sd, "body.")),
    }


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_ch", 3)
    return ArchIO(c, c, "rgb" if c == 3 else "y", value_range=1.0)


ARCH = ArchSpec(
    name="srresnet",
    title="SRResNet / MSRResNet (Ledig et al. 2017; BasicSR)",
    build=MSRResNet,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"msrresnet_x{s}": {"scale": s, "num_feat": 64, "num_block": 16} for s in (2, 3, 4)},
    test_config={"scale": 3, "num_feat": 8, "num_block": 2},
)
