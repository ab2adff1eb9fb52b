"""RFDN (Liu, Tang and Wu, "Residual Feature Distillation Network for Lightweight Image
Super-Resolution", ECCV 2020 workshops; AIM 2020 efficient SR winner), shipped as the
"RFDN baseline" reference model of the NTIRE 2022 efficient SR challenge code (whose efficiency
baseline was IMDN).

Read: njulj/RFDN ``RFDN.py`` and ``block.py`` (4cd8594), and ofsoundof/NTIRE2022_ESR
``models/rfdn_baseline/RFDN.py`` (044c930; the same network); written here from that reading.

Key layout (both repositories): ``fea_conv`` 3x3, ``B1..Bn`` residual feature distillation
blocks, ``c.0`` 1x1 fusion of all block outputs (+ LeakyReLU 0.05), ``LR_conv`` 3x3 plus the
first features, ``upsampler.0`` conv + PixelShuffle(s). An RFDB (nf features): three steps,
each a 1x1 "distilled" conv ``c{i}_d`` (nf -> nf/2, LeakyReLU) beside a shallow residual 3x3
conv ``c{i}_r`` (LeakyReLU(conv(x) + x)); ``c4`` 3x3 (nf -> nf/2, LeakyReLU) on the last
residual; the four halves concatenated, fused by the 1x1 ``c5`` and gated by the full ESA
(``esa.*``, nf/4 channels). The authors' RFDN hard-codes PixelShuffle(4) and four blocks
(``num_modules`` only sizes ``c``); here the scale and the block count follow the weights.
The published checkpoint (NTIRE 2022 ``rfdn_baseline.pth``) is nf=50, 4 blocks, x4.

I/O: RGB in [0, 255] in and out (value_range 255), no clamp inside the network. The weights
cannot tell the range: both authors' READMEs point to EDSR-PyTorch (rgb_range 255) for training,
and ofsoundof/NTIRE2022_ESR ``test_demo.py`` runs the NTIRE checkpoint with ``data_range = 255.0``
(fed [0, 1] it scores about 6 dB below bicubic on Set5 x4). ESA needs inputs of at least 15x15
pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._distill import (
    ESA,
    NEG_SLOPE,
    ConcatFusionTrunk,
    channel_io,
    conv,
    fits,
    shuffle_factor,
)
from sredge.models.archs._util import count_indexed, has_keys
from sredge.models.spec import ArchSpec, HParams, StateDict


class RFDB(nn.Module):
    """Residual feature distillation block (nf -> nf)."""

    def __init__(self, nf: int):
        super().__init__()
        dc = nf // 2
        self.c1_d = conv(nf, dc, 1)
        self.c1_r = conv(nf, nf, 3)
        self.c2_d = conv(nf, dc, 1)
        self.c2_r = conv(nf, nf, 3)
        self.c3_d = conv(nf, dc, 1)
        self.c3_r = conv(nf, nf, 3)
        self.c4 = conv(nf, dc, 3)
        self.c5 = conv(4 * dc, nf, 1)
        self.esa = ESA(nf, nf // 4, full=True)

    def forward(self, x):
        kept = []
        h = x
        for d_conv, r_conv in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            kept.append(F.leaky_relu(d_conv(h), NEG_SLOPE))
            h = F.leaky_relu(r_conv(h) + h, NEG_SLOPE)
        kept.append(F.leaky_relu(self.c4(h), NEG_SLOPE))
        return self.esa(self.c5(torch.cat(kept, dim=1)))


class RFDN(ConcatFusionTrunk):
    """RFDN. Input (N, in_nc, H, W) in [0, 255], H, W >= 15; output (N, out_nc, H*scale, W*scale)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 50, num_modules: int = 4):
        super().__init__("B", [RFDB(nf) for _ in range(num_modules)], in_nc, out_nc, nf, scale)


def detect(sd: StateDict) -> HParams | None:
    keys = ("fea_conv.weight", "B1.c1_d.weight", "B1.c1_r.weight", "B1.esa.conv_max.weight", "c.0.weight",
            "LR_conv.weight", "upsampler.0.weight")
    if not has_keys(sd, keys) or sd["fea_conv.weight"].ndim != 4:
        return None
    nf, in_nc = (int(v) for v in sd["fea_conv.weight"].shape[:2])
    scale = shuffle_factor(sd, "upsampler.0.weight", in_nc)
    if scale is None:
        return None
    hp = {"scale": scale, "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "num_modules": count_indexed(sd, "B")}
    return hp if fits(RFDN, hp, sd) else None


_io = channel_io(value_range=255.0)


ARCH = ArchSpec(
    name="rfdn",
    title="RFDN (Liu et al. 2020, AIM 2020 efficient SR winner)",
    build=RFDN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"rfdn_x{s}": {"scale": s} for s in (4, 2, 3)},
    test_config={"scale": 2, "nf": 16, "num_modules": 2},
)
