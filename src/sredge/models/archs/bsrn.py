"""BSRN (Li et al., "Blueprint Separable Residual Network for Efficient Image Super-Resolution",
CVPR Workshops 2022; BSRN-S won the NTIRE 2022 efficient-SR model-complexity track).

Written from reading the authors' code: github.com/xiaom233/BSRN ``basicsr/archs/BSRN_arch.py``
(commit 355aa84f; BSRN: ESDB blocks with CCA) and github.com/ofsoundof/NTIRE2022_ESR
``models/team18_bsrn.py`` (commit 044c9300; BSRN-S as entered in the challenge: RFDB-style blocks
with 1x1 layers written as ``nn.Linear``, a per-channel weight ``cw`` and a ``conv_out``).

Both use blueprint separable convolutions (BSConvU: a pointwise 1x1 then a depthwise 3x3) and the
same key layout: ``fea_conv`` (BSConvU on the input repeated 4 times along channels), blocks
``B1..Bn`` (``c{1,2,3}_d`` 1x1 distillation, ``c{1,2,3}_r`` BSConvU, ``c4``, ``c5`` 1x1 fusion, ``esa``
enhanced spatial attention; ESDB adds ``cca`` contrast-aware channel attention, RFDB adds ``cw`` and
``conv_out``), ``c1`` 1x1 over the concatenated block outputs, GELU, ``c2`` BSConvU plus the
``fea_conv`` output, then ``upsampler.upsampleOneStep.0`` conv and PixelShuffle. RGB in [0, 1].

Here every 1x1 layer is a ``Conv2d`` (what ONNX and TensorRT run best); the challenge checkpoint's
2-D ``nn.Linear`` weights are reshaped to (out, in, 1, 1) on load, which computes the same thing.
The ESA branch pools with a 7x7 window after a stride-2 conv, so inputs must be at least 15x15.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import has_keys, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

BLOCKS = ("esdb", "rfdb")
"""``esdb``: BSRN (xiaom233/BSRN); ``rfdb``: BSRN-S as entered in NTIRE 2022 (team 18)."""


class BSConvU(nn.Module):
    """Blueprint separable conv: pointwise 1x1 (``pw``), then depthwise kxk (``dw``)."""

    def __init__(self, cin: int, cout: int, pw_bias: bool, stride: int = 1, padding: int = 1):
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1, bias=pw_bias)
        self.dw = nn.Conv2d(cout, cout, 3, stride=stride, padding=padding, groups=cout)

    def forward(self, x):
        return self.dw(self.pw(x))


class ESA(nn.Module):
    """Enhanced spatial attention: a strided, max-pooled low-resolution mask, upsampled, sigmoid gate."""

    def __init__(self, n: int, block: str):
        super().__init__()
        f, pw_bias = n // 4, block == "rfdb"
        self.conv1 = nn.Conv2d(n, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = BSConvU(f, f, pw_bias)
        self.conv2 = BSConvU(f, f, pw_bias, stride=2, padding=0) if block == "esdb" else nn.Conv2d(f, f, 3, 2, 0)
        self.conv3 = BSConvU(f, f, pw_bias)
        self.conv3_ = BSConvU(f, f, pw_bias)
        self.conv4 = nn.Conv2d(f, n, 1)

    def forward(self, x):
        c1_ = self.conv1(x)
        c1 = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)
        c3 = F.gelu(self.conv3(F.gelu(self.conv_max(c1))))
        c3 = F.interpolate(self.conv3_(c3), size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class CCALayer(nn.Module):
    """Contrast-aware channel attention: (per-channel std + mean) -> squeeze -> excite -> sigmoid."""

    def __init__(self, n: int, reduction: int):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(n, n // reduction, 1), nn.ReLU(), nn.Conv2d(n // reduction, n, 1), nn.Sigmoid()
        )

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class DistillationBlock(nn.Module):
    """ESDB (``block="esdb"``) or the challenge's RFDB variant (``block="rfdb"``), with a skip."""

    def __init__(self, n: int, block: str, reduction: int):
        super().__init__()
        dc, pw_bias = n // 2, block == "rfdb"
        self.c1_d, self.c2_d, self.c3_d = (nn.Conv2d(n, dc, 1) for _ in range(3))
        self.c1_r, self.c2_r, self.c3_r = (BSConvU(n, n, pw_bias) for _ in range(3))
        self.c4 = BSConvU(n, dc, pw_bias)
        self.c5 = nn.Conv2d(dc * 4, n, 1)
        self.esa = ESA(n, block)
        self.block = block
        if block == "esdb":
            self.cca = CCALayer(n, reduction)
        else:
            self.cw = nn.Parameter(torch.ones(1, n))  # a per-channel weight, stored (1, n)
            self.conv_out = nn.Conv2d(n, n, 1)

    def forward(self, x):
        d1 = F.gelu(self.c1_d(x))
        r1 = F.gelu(self.c1_r(x) + x)
        d2 = F.gelu(self.c2_d(r1))
        r2 = F.gelu(self.c2_r(r1) + r1)
        d3 = F.gelu(self.c3_d(r2))
        r3 = F.gelu(self.c3_r(r2) + r2)
        r4 = F.gelu(self.c4(r3))
        out = self.esa(self.c5(torch.cat([d1, d2, d3, r4], dim=1)))
        if self.block == "esdb":
            out = self.cca(out)
        else:
            out = self.conv_out(out * self.cw.view(1, -1, 1, 1))
        return out + x


class _PixelShuffleDirect(nn.Module):
    def __init__(self, scale: int, n: int, cout: int):
        super().__init__()
        self.upsampleOneStep = nn.Sequential(nn.Conv2d(n, cout * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x):
        return self.upsampleOneStep(x)


class BSRN(nn.Module):
    """BSRN / BSRN-S. Input (N, C, H, W) in [0, 1], H and W at least 15; output (N, C, H*s, W*s)."""

    def __init__(self, scale: int, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 8, block: str = "esdb", reduction: int = 16):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        pw_bias = block == "rfdb"
        self.fea_conv = BSConvU(num_in_ch * 4, num_feat, pw_bias)
        for i in range(1, num_block + 1):
            self.add_module(f"B{i}", DistillationBlock(num_feat, block, reduction))
        self.num_block = num_block
        self.c1 = nn.Conv2d(num_feat * num_block, num_feat, 1)
        self.c2 = BSConvU(num_feat, num_feat, pw_bias)
        self.upsampler = _PixelShuffleDirect(scale, num_feat, num_out_ch)

    def forward(self, x):
        fea = self.fea_conv(torch.cat([x, x, x, x], dim=1))
        outs, out = [], fea
        for i in range(1, self.num_block + 1):
            out = getattr(self, f"B{i}")(out)
            outs.append(out)
        trunk = F.gelu(self.c1(torch.cat(outs, dim=1)))
        return self.upsampler(self.c2(trunk) + fea)


_BLOCK_KEY = re.compile(r"B(\d+)\.")


def detect(sd: StateDict) -> HParams | None:
    keys = ("fea_conv.pw.weight", "fea_conv.dw.weight", "B1.c1_d.weight", "B1.c1_r.pw.weight",
            "B1.c4.dw.weight", "B1.c5.weight", "B1.esa.conv1.weight", "B1.esa.conv4.weight", "c1.weight",
            "c2.pw.weight", "c2.dw.weight", "upsampler.upsampleOneStep.0.weight")
    if not has_keys(sd, keys):
        return None
    if has_keys(sd, ("B1.cca.conv_du.0.weight", "B1.esa.conv2.pw.weight")) and "B1.cw" not in sd:
        block = "esdb"
    elif has_keys(sd, ("B1.cw", "B1.conv_out.weight", "B1.esa.conv2.weight")) and "B1.cca.conv_du.0.weight" not in sd:
        block = "rfdb"
    else:
        return None
    # Either layout: "rfdb" pointwise layers may be 2-D nn.Linear weights (the challenge code).
    if ("fea_conv.pw.bias" in sd) != (block == "rfdb"):
        return None
    num_feat, in4 = (int(d) for d in sd["fea_conv.pw.weight"].shape[:2])
    # BSConvU runs pointwise then depthwise; the authors' DepthWiseConv option (depthwise first) does not fit.
    if in4 % 4 or int(sd["fea_conv.dw.weight"].shape[0]) != num_feat:
        return None
    num_in = in4 // 4
    blocks = {int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))}
    num_block = len(blocks)
    if blocks != set(range(1, num_block + 1)) or int(sd["c1.weight"].shape[1]) != num_feat * num_block:
        return None
    scale = shuffle_scale(int(sd["upsampler.upsampleOneStep.0.weight"].shape[0]), num_in)
    if scale is None:
        return None
    hp: HParams = {"scale": scale, "num_in_ch": num_in, "num_out_ch": num_in, "num_feat": num_feat,
                   "num_block": num_block, "block": block, "reduction": 16}
    if block == "esdb":
        squeeze = int(sd["B1.cca.conv_du.0.weight"].shape[0])
        if squeeze <= 0 or num_feat % squeeze:
            return None
        hp["reduction"] = num_feat // squeeze
    return hp


def adapt_state_dict(sd: StateDict) -> dict:
    """2-D ``nn.Linear`` weights (the NTIRE 2022 code's 1x1 layers) become (out, in, 1, 1) conv weights."""
    return {k: v[:, :, None, None] if k.endswith(".weight") and v.ndim == 2 else v for k, v in sd.items()}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_in_ch", 3)
    # fp16_safe, measured on the NTIRE 2022 BSRN-S x4 checkpoint: Set5 Y-PSNR 32.0092 dB in float16 vs
    # 32.0099 in float32 (PyTorch), largest activation on Set5 ~90, far below float16's 65504.
    return ArchIO(c, hp.get("num_out_ch", 3), "y" if c == 1 else "rgb", fp16_safe=True)


ARCH = ArchSpec(
    name="bsrn",
    title="BSRN (Li et al. 2022, blueprint separable residual network)",
    build=BSRN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={
        **{f"bsrn_x{s}": {"scale": s, "num_feat": 64, "num_block": 8, "block": "esdb"} for s in (2, 3, 4)},
        "bsrn_s_ntire22_x4": {"scale": 4, "num_feat": 48, "num_block": 5, "block": "rfdb"},
    },
    test_config={"scale": 4, "num_feat": 16, "num_block": 2, "block": "esdb"},
    adapt_state_dict=adapt_state_dict,
)
