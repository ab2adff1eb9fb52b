"""IMDN (Hui et al., "Lightweight Image Super-Resolution with Information Multi-distillation
Network", ACM MM 2019) and its two real-time variants from the same repository.

Read: Zheng222/IMDN ``model/architecture.py`` (53f1dac) and ``model/block.py`` (7c51070);
written here from that reading, not copied.

- **IMDN** (``IMDN``): ``fea_conv`` 3x3, ``IMDB1..IMDB6`` information multi-distillation
  blocks, ``c.0`` 1x1 fusion of all block outputs (+ LeakyReLU), ``LR_conv`` 3x3 plus the
  first features, ``upsampler.0`` conv + PixelShuffle(s). An IMDB: ``c1..c4`` 3x3 convs, each
  of the first three keeps a quarter of its channels ("distilled") and passes the rest on;
  the four distilled parts are concatenated, weighted by contrast-aware channel attention
  (``cca.conv_du.{0,2}``: std + mean pooling, 1x1 squeeze by 16, 1x1 excite, sigmoid), fused
  by the 1x1 ``c5`` and added to the input. Published for x2, x3, x4 (64 features).
- **IMDN-RTC** (``IMDN_RTC``, winner of the AI in RTC 2020 SR challenge, x2): the same
  block without the attention (``c5`` fuses the distilled quarters), 12 features, 5 blocks,
  a 1x1 conv and a skip over the blocks, all in one ``model.*`` Sequential:
  ``model.0`` conv, ``model.1.sub.{0..n-1}`` blocks, ``model.1.sub.n`` 1x1 conv, ``model.2``
  upsampling conv, ``model.3`` PixelShuffle.
- **IMDN-RTE** (``IMDN_RTE``, x2): ``fea_conv.0`` 3x3 conv + ReLU then ``fea_conv.2`` a
  stride-2 3x3 conv (no bias), six bias-free "large" blocks ``block1..block6`` (five distilling
  steps, ReLU, 1x1 ``c7``), ``LR_conv`` 1x1 (no bias) plus the features, then a
  PixelShuffle(2 * scale) upsampler: the network works at half resolution, so inputs must have
  even sides (``size_multiple`` 2). The authors' class takes ``upscale`` and shuffles by
  ``upscale ** 2``, which is 2 * scale only at x2, the one scale they use; here the scale is
  the network's, the shuffle factor 2 * scale.

Not included: the authors' IMDN_AS (a same-size RealSR restoration network: two stride-2
convs, then PixelShuffle(4)). As published, IMDN_RTE refers to ``IMDModule_Large`` without its
module prefix (a NameError when the class is built): a copy used for the equivalence test must
import that name from ``block``.

I/O: RGB in [0, 1] in and out, no clamp inside the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._distill import (
    NEG_SLOPE,
    ConcatFusionTrunk,
    Shortcut,
    channel_io,
    conv,
    fits,
    shuffle_factor,
    upsampler,
)
from sredge.models.archs._util import count_indexed, has_keys, max_index
from sredge.models.spec import ArchSpec, HParams, StateDict


def _split_sizes(nf: int) -> tuple[int, int]:
    """(distilled, remaining) channels of a distillation step: a quarter (floored) and the rest."""
    d = int(nf * 0.25)
    return d, nf - d


class ContrastChannelAttention(nn.Module):
    """CCA: per-channel (std + mean) over H, W, squeeze 1x1 by ``reduction``, excite 1x1, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDB(nn.Module):
    """Information multi-distillation block; ``attention=False`` is IMDN-RTC's fast block."""

    def __init__(self, nf: int, attention: bool = True):
        super().__init__()
        self.d, self.r = _split_sizes(nf)
        self.c1 = conv(nf, nf, 3)
        self.c2 = conv(self.r, nf, 3)
        self.c3 = conv(self.r, nf, 3)
        self.c4 = conv(self.r, self.d, 3)
        self.c5 = conv(4 * self.d, nf, 1)
        self.cca = ContrastChannelAttention(4 * self.d) if attention else None

    def forward(self, x):
        kept = []
        h = x
        for layer in (self.c1, self.c2, self.c3):
            d, h = torch.split(F.leaky_relu(layer(h), NEG_SLOPE), (self.d, self.r), dim=1)
            kept.append(d)
        out = torch.cat([*kept, self.c4(h)], dim=1)
        if self.cca is not None:
            out = self.cca(out)
        return self.c5(out) + x


class IMDBLarge(nn.Module):
    """IMDN-RTE's block: five distilling 3x3 convs (ReLU, no bias), the last on a quarter; 1x1 fusion."""

    def __init__(self, nf: int):
        super().__init__()
        self.d, self.r = _split_sizes(nf)
        d, r = self.d, self.r
        if r - 2 * d != d:
            raise ValueError(f"IMDN-RTE needs features divisible by 4, got {nf}")
        self.c1 = conv(nf, nf, 3, bias=False)
        self.c2 = conv(r, nf, 3, bias=False)
        self.c3 = conv(r, nf, 3, bias=False)
        self.c4 = conv(r, r, 3, bias=False)
        self.c5 = conv(r - d, r - d, 3, bias=False)
        self.c6 = conv(d, d, 3, bias=False)
        self.c7 = conv(6 * d, nf, 1, bias=False)

    def forward(self, x):
        d, r = self.d, self.r
        d1, h = torch.split(F.relu(self.c1(x)), (d, r), dim=1)
        d2, h = torch.split(F.relu(self.c2(h)), (d, r), dim=1)
        d3, h = torch.split(F.relu(self.c3(h)), (d, r), dim=1)
        d4, h = torch.split(F.relu(self.c4(h)), (d, r - d), dim=1)
        d5, h = torch.split(F.relu(self.c5(h)), (d, r - 2 * d), dim=1)
        return self.c7(torch.cat([d1, d2, d3, d4, d5, F.relu(self.c6(h))], dim=1)) + x


class IMDN(ConcatFusionTrunk):
    """IMDN. Input (N, in_nc, H, W) in [0, 1]; output (N, out_nc, H*scale, W*scale)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 64, num_modules: int = 6):
        super().__init__("IMDB", [IMDB(nf) for _ in range(num_modules)], in_nc, out_nc, nf, scale)


class IMDN_RTC(nn.Module):
    """IMDN-RTC. Input (N, in_nc, H, W) in [0, 1]; output (N, out_nc, H*scale, W*scale)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 12, num_modules: int = 5):
        super().__init__()
        blocks: list[nn.Module] = [IMDB(nf, attention=False) for _ in range(num_modules)]
        self.model = nn.Sequential(
            conv(in_nc, nf, 3),
            Shortcut(nn.Sequential(*blocks, conv(nf, nf, 1))),
            conv(nf, out_nc * scale * scale, 3),
            nn.PixelShuffle(scale),
        )

    def forward(self, x):
        return self.model(x)


class IMDN_RTE(nn.Module):
    """IMDN-RTE. Input (N, in_nc, H, W) in [0, 1], H and W even; output (N, out_nc, H*scale, W*scale)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 20, num_modules: int = 6):
        super().__init__()
        self.fea_conv = nn.Sequential(conv(in_nc, nf, 3), nn.ReLU(), conv(nf, nf, 3, stride=2, bias=False))
        self._block_names = [f"block{i}" for i in range(1, num_modules + 1)]
        for name in self._block_names:
            self.add_module(name, IMDBLarge(nf))
        self.LR_conv = conv(nf, nf, 1, bias=False)
        self.upsampler = upsampler(nf, out_nc, 2 * scale)  # features are at half resolution

    def forward(self, x):
        fea = self.fea_conv(x)
        h = fea
        for name in self._block_names:
            h = getattr(self, name)(h)
        return self.upsampler(self.LR_conv(h) + fea)


def _channels(sd: StateDict, key: str) -> tuple[int, int] | None:
    """(out, in) channels of the conv weight ``key``; None when it is not a 4-D weight."""
    w = sd[key]
    return (int(w.shape[0]), int(w.shape[1])) if w.ndim == 4 else None


def detect(sd: StateDict) -> HParams | None:
    keys = ("fea_conv.weight", "IMDB1.c1.weight", "IMDB1.cca.conv_du.0.weight", "c.0.weight",
            "LR_conv.weight", "upsampler.0.weight")
    if not has_keys(sd, keys) or (ch := _channels(sd, "fea_conv.weight")) is None:
        return None
    nf, in_nc = ch
    scale = shuffle_factor(sd, "upsampler.0.weight", in_nc)
    if scale is None:
        return None
    hp = {"scale": scale, "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "num_modules": count_indexed(sd, "IMDB")}
    return hp if fits(IMDN, hp, sd) else None


def detect_rtc(sd: StateDict) -> HParams | None:
    if not has_keys(sd, ("model.0.weight", "model.1.sub.0.c1.weight", "model.1.sub.0.c5.weight", "model.2.weight")):
        return None
    if (ch := _channels(sd, "model.0.weight")) is None:
        return None
    nf, in_nc = ch
    scale = shuffle_factor(sd, "model.2.weight", in_nc)
    if scale is None:
        return None
    hp = {"scale": scale, "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "num_modules": max_index(sd, "model.1.sub.")}
    return hp if fits(IMDN_RTC, hp, sd) else None


def detect_rte(sd: StateDict) -> HParams | None:
    keys = ("fea_conv.0.weight", "fea_conv.2.weight", "block1.c1.weight", "block1.c7.weight",
            "LR_conv.weight", "upsampler.0.weight")
    if not has_keys(sd, keys) or (ch := _channels(sd, "fea_conv.0.weight")) is None:
        return None
    nf, in_nc = ch
    factor = shuffle_factor(sd, "upsampler.0.weight", in_nc)
    if factor is None or factor % 2:
        return None
    hp = {"scale": factor // 2, "in_nc": in_nc, "out_nc": in_nc, "nf": nf,
          "num_modules": count_indexed(sd, "block")}
    return hp if fits(IMDN_RTE, hp, sd) else None


_io = channel_io()
_io_rte = channel_io(size_multiple=2)


ARCH = ArchSpec(
    name="imdn",
    title="IMDN (Hui et al. 2019)",
    build=IMDN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"imdn_x{s}": {"scale": s} for s in (2, 3, 4)},
    test_config={"scale": 2, "nf": 16, "num_modules": 2},
)

RTC_ARCH = ArchSpec(
    name="imdn_rtc",
    title="IMDN-RTC (Hui et al., AI in RTC 2020 SR challenge winner)",
    build=IMDN_RTC,
    detect=detect_rtc,
    io=_io,
    scales=(2, 3, 4),
    variants={"imdn_rtc_x2": {"scale": 2}},
    test_config={"scale": 2, "nf": 8, "num_modules": 2},
)

RTE_ARCH = ArchSpec(
    name="imdn_rte",
    title="IMDN-RTE (Hui et al., half-resolution real-time IMDN)",
    build=IMDN_RTE,
    detect=detect_rte,
    io=_io_rte,
    scales=(2,),
    variants={"imdn_rte_x2": {"scale": 2}},
    test_config={"scale": 2, "nf": 8, "num_modules": 2},
)
