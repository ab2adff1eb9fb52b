"""Pieces shared by the feature-distillation family: IMDN, RFDN and RLFN.

The three networks come from one lineage (IMDN -> RFDN -> RLFN) and their authors' code
shares building blocks, which are exact here too:

- every conv is "same"-padded (``k // 2``) with a bias unless stated;
- activations are LeakyReLU(0.05) unless stated;
- the upsampler is ``upsampler.0`` conv 3x3 (nf -> out * s * s) then ``upsampler.1``
  PixelShuffle(s), with no global skip from the input image;
- ESA (enhanced spatial attention, from RFANet, Liu et al. CVPR 2020) in two forms: the full one
  of RFDN (``conv_max`` and ``conv3_`` present) and the light one of RLFN (both removed).

Weights-to-hyper-parameter helpers for the detectors are here as well. ``fits`` builds a
configuration on the meta device and compares every key and shape, so a detector never
claims a checkpoint whose keys it would not load strictly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import shuffle_scale
from sredge.models.spec import ArchIO, HParams, StateDict

NEG_SLOPE = 0.05


def conv(cin: int, cout: int, k: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """A k x k conv with "same" padding (``k // 2``)."""
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=bias)


def lrelu() -> nn.LeakyReLU:
    """The family's LeakyReLU (negative slope 0.05)."""
    return nn.LeakyReLU(NEG_SLOPE)


def upsampler(nf: int, out_ch: int, factor: int) -> nn.Sequential:
    """conv 3x3 (nf -> out_ch * factor^2) and PixelShuffle(factor): keys ``0.weight``, ``0.bias``."""
    return nn.Sequential(conv(nf, out_ch * factor * factor, 3), nn.PixelShuffle(factor))


def shuffle_factor(sd: StateDict, key: str, out_ch: int) -> int | None:
    """PixelShuffle factor of the conv ``key`` (its output channels are ``out_ch * f * f``)."""
    w = sd.get(key)
    if w is None or w.ndim != 4:
        return None
    return shuffle_scale(int(w.shape[0]), out_ch)


class ESA(nn.Module):
    """Enhanced spatial attention: a sigmoid mask computed at 1/6 resolution, multiplied in.

    ``full=True`` is RFDN's form (``conv_max`` and ReLUs, ``conv3_``); ``full=False`` is RLFN's
    (``conv3`` straight on the pooled map). Inputs need H, W >= 15 (stride-2 conv then a
    7x7 max pool without padding).
    """

    def __init__(self, n_feats: int, esa_channels: int, full: bool):
        super().__init__()
        f = esa_channels
        self.full = full
        self.conv1 = nn.Conv2d(n_feats, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        if full:
            self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        if full:
            self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, n_feats, 1)

    def forward(self, x):
        reduced = self.conv1(x)
        low = F.max_pool2d(self.conv2(reduced), kernel_size=7, stride=3)
        if self.full:
            low = F.relu(self.conv_max(low))
            low = self.conv3_(F.relu(self.conv3(low)))
        else:
            low = self.conv3(low)
        low = F.interpolate(low, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(low + self.conv_f(reduced)))


class Shortcut(nn.Module):
    """``x + sub(x)``; the submodule is stored as ``sub`` (IMDN-RTC's key layout)."""

    def __init__(self, sub: nn.Module):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class ConcatFusionTrunk(nn.Module):
    """The IMDN / RFDN body: ``fea_conv``, blocks ``{prefix}1..n`` in sequence, every block's
    output concatenated and fused by ``c`` (1x1 conv + LeakyReLU), ``LR_conv`` (3x3) plus the
    first features, then the upsampler."""

    def __init__(self, prefix: str, blocks: list[nn.Module], in_nc: int, out_nc: int, nf: int, scale: int):
        super().__init__()
        self.fea_conv = conv(in_nc, nf, 3)
        self._block_names = [f"{prefix}{i}" for i in range(1, len(blocks) + 1)]
        for name, block in zip(self._block_names, blocks):
            self.add_module(name, block)
        self.c = nn.Sequential(conv(nf * len(blocks), nf, 1), lrelu())
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = upsampler(nf, out_nc, scale)

    def forward(self, x):
        fea = self.fea_conv(x)
        outs = []
        h = fea
        for name in self._block_names:
            h = getattr(self, name)(h)
            outs.append(h)
        return self.upsampler(self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea)


def channel_io(value_range: float = 1.0, size_multiple: int = 1) -> Callable[[HParams], ArchIO]:
    """The family's I/O contract from ``in_nc``/``out_nc`` (default 3): Y for one channel, else RGB."""

    def io(hp: HParams) -> ArchIO:
        c = hp.get("in_nc", 3)
        return ArchIO(c, hp.get("out_nc", c), "y" if c == 1 else "rgb", value_range=value_range,
                      size_multiple=size_multiple)

    return io


def fits(build, hp: HParams, sd: StateDict) -> bool:
    """True when ``build(**hp)`` has exactly the keys of ``sd``, each with the same shape.

    Built on the meta device: no memory, no initialisation cost.
    """
    try:
        with torch.device("meta"):
            ours = build(**hp).state_dict()
    except (ValueError, RuntimeError, TypeError):
        return False
    if set(ours) != set(sd):
        return False
    return all(tuple(ours[k].shape) == tuple(sd[k].shape) for k in ours)
