"""HAN (Niu et al., ECCV 2020, "Single Image Super-Resolution via a Holistic Attention Network").

Written from the authors' ``src/model/han.py`` in github.com/wwlCape/HAN (commit 26ac015),
built in EDSR-PyTorch on top of RCAN; the key layout is RCAN's (see
:mod:`sredge.models.archs.rcan`, whose blocks are reused here unchanged) plus:

- ``la.gamma``: layer attention over the outputs of every body module (each residual group
  and the body's tail conv, ``n_resgroups + 1`` feature maps, newest first): a softmax over
  the (max - energy) of their pairwise inner products mixes them, scaled by ``gamma``, plus
  themselves; ``last_conv`` (3x3, ``n * (n_resgroups + 1)`` -> n) fuses the mixed stack.
- ``csa.conv`` / ``csa.gamma``: channel-spatial attention, a 3x3x3 Conv3d over the
  (channel, height, width) volume of the body output, ``x * gamma * sigmoid(conv) + x``.
- ``last``: 3x3 conv 2n -> n over both, plus the head features, then RCAN's tail.

The authors hard-code ``last_conv``'s input for 10 residual groups; here it follows
``n_resgroups`` (the same network at 10). The layer attention's inner products sum over
n * H * W values: they overflow float16, so the network is not fp16-safe.
I/O: RGB in [0, rgb_range] (255 for the published checkpoints) in and out.
"""

from __future__ import annotations

import torch
from torch import nn

from sredge.models.archs import rcan
from sredge.models.archs._blocks import (
    MeanShift,
    make_upsampler,
    rgb_range_from_mean_shift,
)
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class LayerAttention(nn.Module):
    """Mixes a stack of N feature maps (B, N, C, H, W) by their softmaxed pairwise similarity."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, n, c, h, w = x.shape
        flat = x.reshape(b, n, c * h * w)
        energy = torch.bmm(flat, flat.transpose(1, 2))
        attention = torch.softmax(energy.amax(dim=-1, keepdim=True) - energy, dim=-1)
        out = torch.bmm(attention, flat).reshape(b, n, c, h, w)
        return (self.gamma * out + x).reshape(b, n * c, h, w)


class ChannelSpatialAttention(nn.Module):
    """A 3D conv over (channel, height, width) gates the features: ``x * gamma * sigmoid(conv) + x``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, 1, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        gate = torch.sigmoid(self.conv(x.unsqueeze(1))).squeeze(1)
        return x * (self.gamma * gate) + x


class HAN(nn.Module):
    """HAN. Input (N, 3, H, W) RGB in [0, rgb_range]; output (N, 3, H*scale, W*scale), same range."""

    def __init__(
        self,
        scale: int,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        rgb_range: float = 255.0,
    ):
        super().__init__()
        k = 3
        self.sub_mean = MeanShift(rgb_range, -1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, k, padding=1))
        groups: list[nn.Module] = [
            rcan.ResidualGroup(n_feats, k, reduction, n_resblocks) for _ in range(n_resgroups)
        ]
        self.body = nn.Sequential(*groups, nn.Conv2d(n_feats, n_feats, k, padding=1))
        self.csa = ChannelSpatialAttention()
        self.la = LayerAttention()
        self.last_conv = nn.Conv2d(n_feats * (n_resgroups + 1), n_feats, 3, 1, 1)
        self.last = nn.Conv2d(n_feats * 2, n_feats, 3, 1, 1)
        self.tail = nn.Sequential(make_upsampler(scale, n_feats, k), nn.Conv2d(n_feats, 3, k, padding=1))
        self.add_mean = MeanShift(rgb_range, 1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        res, stack = x, []
        for module in self.body:
            res = module(res)
            stack.append(res)
        layers = self.last_conv(self.la(torch.stack(stack[::-1], dim=1)))
        res = self.last(torch.cat([self.csa(res), layers], dim=1)) + x
        return self.add_mean(self.tail(res))


def detect(sd: StateDict) -> HParams | None:
    if not all(k in sd for k in ("la.gamma", "csa.conv.weight", "csa.gamma", "last_conv.weight", "last.weight")):
        return None
    # Everything but the attention and the fusion convs is RCAN's layout.
    base = rcan.detect({k: v for k, v in sd.items() if not k.startswith(("la.", "csa.", "last_conv.", "last."))})
    if base is None or base["kernel_size"] != 3:
        return None
    n_feats, n_resgroups = base["n_feats"], base["n_resgroups"]
    if tuple(sd["last_conv.weight"].shape[:2]) != (n_feats, n_feats * (n_resgroups + 1)):
        return None
    return {
        "scale": base["scale"],
        "n_resgroups": n_resgroups,
        "n_resblocks": base["n_resblocks"],
        "n_feats": n_feats,
        "reduction": base["reduction"],
        "rgb_range": rgb_range_from_mean_shift(sd),
    }


def _io(hp: HParams) -> ArchIO:
    return ArchIO(3, 3, "rgb", value_range=float(hp.get("rgb_range", 255.0)), fp16_safe=False)


ARCH = ArchSpec(
    name="han",
    title="HAN, holistic attention network (Niu et al. 2020)",
    build=HAN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={f"han_x{s}": {"scale": s} for s in (2, 3, 4, 8)},
    test_config={"scale": 2, "n_resgroups": 2, "n_resblocks": 1, "n_feats": 8, "reduction": 4},
)
