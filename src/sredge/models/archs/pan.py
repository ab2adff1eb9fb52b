"""PAN (Zhao et al., ECCV Workshops 2020, "Efficient Image Super-Resolution Using Pixel Attention").

Written from the authors' ``codes/models/archs/PAN_arch.py`` in github.com/zhaohengyuan1/PAN
(commit 23914c2), a BasicSR/mmsr code base; the key layout is theirs:

- ``conv_first``: conv in_nc -> nf.
- ``SCPA_trunk.N``: self-calibrated block with pixel attention: ``conv1_a`` / ``conv1_b``
  (1x1, nf -> nf/2, no bias), ``k1.0`` (3x3, no bias) on branch a, ``PAConv.{k2,k3,k4}`` on
  branch b (k2 a 1x1 gate with bias, k3/k4 3x3 without), ``conv3`` (1x1, nf -> nf, no bias).
- ``trunk_conv``: conv nf -> nf, added to ``conv_first``'s output.
- Upsampling by nearest-neighbour interpolation, then ``upconv1`` (nf -> unf), ``att1.conv``
  (1x1 pixel attention), ``HRconv1``; x4 repeats it at x2 with ``upconv2``/``att2``/``HRconv2``.
- ``conv_last``: unf -> out_nc, plus the bilinearly upsampled input (``align_corners=False``).

x2 and x3 have the same weights' shapes (the interpolation factor is not a weight), so the
weights tell only x4 apart. I/O: RGB in [0, 1] in and out (not clamped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import count_indexed, has_keys
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class PA(nn.Module):
    """Pixel attention: x * sigmoid(conv1x1(x))."""

    def __init__(self, nf: int):
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """3x3 conv gated by a 1x1 pixel-attention map, then another 3x3 conv."""

    def __init__(self, nf: int):
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.k3 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)
        self.k4 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)

    def forward(self, x):
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Two half-width branches (plain 3x3; pixel-attention conv), fused by a 1x1, plus the input."""

    def __init__(self, nf: int):
        super().__init__()
        half = nf // 2
        self.conv1_a = nn.Conv2d(nf, half, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, half, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(half, half, 3, padding=1, bias=False))
        self.PAConv = PAConv(half)
        self.conv3 = nn.Conv2d(2 * half, nf, 1, bias=False)

    def forward(self, x):
        a = F.leaky_relu(self.k1(F.leaky_relu(self.conv1_a(x), 0.2)), 0.2)
        b = F.leaky_relu(self.PAConv(F.leaky_relu(self.conv1_b(x), 0.2)), 0.2)
        return self.conv3(torch.cat([a, b], dim=1)) + x


class PAN(nn.Module):
    """PAN. Input (N, in_nc, H, W) in [0, 1]; output (N, out_nc, H*scale, W*scale) in [0, 1] (not clamped)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 40, unf: int = 24, nb: int = 16):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"PAN supports scales 2, 3 and 4, not {scale}")
        if in_nc != out_nc:
            raise ValueError("PAN adds the upsampled input to its output: in_nc must equal out_nc")
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, unf, 3, 1, 1)
        self.att1 = PA(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, 1, 1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, 1, 1)
            self.att2 = PA(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, 1, 1)
        self.conv_last = nn.Conv2d(unf, out_nc, 3, 1, 1)

    def _up(self, fea, factor: int, upconv, att, hrconv):
        fea = upconv(F.interpolate(fea, scale_factor=factor, mode="nearest"))
        fea = F.leaky_relu(att(fea), 0.2)
        return F.leaky_relu(hrconv(fea), 0.2)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:
            fea = self._up(fea, 2, self.upconv1, self.att1, self.HRconv1)
            fea = self._up(fea, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            fea = self._up(fea, self.scale, self.upconv1, self.att1, self.HRconv1)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + base


def detect(sd: StateDict) -> HParams | None:
    keys = (
        "conv_first.weight",
        "SCPA_trunk.0.conv1_a.weight",
        "SCPA_trunk.0.PAConv.k2.weight",
        "trunk_conv.weight",
        "upconv1.weight",
        "att1.conv.weight",
        "HRconv1.weight",
        "conv_last.weight",
    )
    if not has_keys(sd, keys):
        return None
    nf, in_nc = (int(d) for d in sd["conv_first.weight"].shape[:2])
    unf = int(sd["upconv1.weight"].shape[0])
    out_nc = int(sd["conv_last.weight"].shape[0])
    if out_nc != in_nc or sd["SCPA_trunk.0.conv1_a.weight"].shape[0] * 2 != nf:
        return None
    return {
        "scale": 4 if "upconv2.weight" in sd else None,
        "in_nc": in_nc,
        "out_nc": out_nc,
        "nf": nf,
        "unf": unf,
        "nb": count_indexed(sd, "SCPA_trunk."),
    }


def _io(hp: HParams) -> ArchIO:
    c = hp.get("in_nc", 3)
    return ArchIO(c, c, "rgb" if c == 3 else "y", value_range=1.0)


ARCH = ArchSpec(
    name="pan",
    title="PAN, pixel attention network (Zhao et al. 2020)",
    build=PAN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"pan_x{s}": {"scale": s} for s in (2, 3, 4)},
    test_config={"scale": 3, "nf": 8, "unf": 8, "nb": 2},
)
