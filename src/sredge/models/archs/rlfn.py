"""RLFN (Kong et al., "Residual Local Feature Network for Efficient Super-Resolution", CVPR 2022
workshops; NTIRE 2022 efficient SR challenge, runtime track winner).

Read: ofsoundof/NTIRE2022_ESR ``models/team04_rlfn.py`` (044c930; class ``RLFN_cut``) and
bytedance/RLFN ``model/block.py``, ``model/rlfn.py``, ``model/rlfn_ntire.py`` (79700af);
written here from that reading.

Key layout (NTIRE 2022, ours): ``fea_conv`` 3x3, ``B1..Bn`` residual local feature blocks in
sequence, ``LR_conv`` 3x3 plus the first features, ``upsampler.0`` conv + PixelShuffle(s).
An RLFB: ``c1_r`` (nf -> mf), ``c2_r`` (mf -> mf), ``c3_r`` (mf -> nf), each 3x3 + LeakyReLU
0.05, plus the block input; then the 1x1 ``c5`` and the light ESA (``esa.*``: no
``conv_max``/``conv3_``, ``esa_channels`` wide, 16 in every release).

The bytedance/RLFN release names the same parameters ``conv_1``, ``block_1..block_n``,
``conv_2`` (``upsampler`` unchanged); :func:`adapt_state_dict` renames them. Its ``RLFN``
(52 features, 6 blocks) and ``RLFN_S`` (48, 6) have mf = nf; ``RLFN_Prune`` is the NTIRE
entry (46 features, mf 48, 4 blocks), whose checkpoint ``team04_rlfn.pth`` is x4.

I/O: RGB in [0, 255] in and out (value_range 255), no clamp inside the network. The weights
cannot tell the range: both authors' READMEs point to EDSR-PyTorch (rgb_range 255) for training,
and ofsoundof/NTIRE2022_ESR ``test_demo.py`` runs the NTIRE checkpoint with ``data_range = 255.0``
(fed [0, 1] it scores about 6 dB below bicubic on Set5 x4). ESA needs inputs of at least 15x15
pixels.
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import nn

from sredge.models.archs._distill import (
    ESA,
    NEG_SLOPE,
    channel_io,
    conv,
    fits,
    shuffle_factor,
    upsampler,
)
from sredge.models.archs._util import count_indexed, has_keys
from sredge.models.spec import ArchSpec, HParams, StateDict


class RLFB(nn.Module):
    """Residual local feature block (nf -> nf, mf inside)."""

    def __init__(self, nf: int, mf: int, esa_channels: int):
        super().__init__()
        self.c1_r = conv(nf, mf, 3)
        self.c2_r = conv(mf, mf, 3)
        self.c3_r = conv(mf, nf, 3)
        self.c5 = conv(nf, nf, 1)
        self.esa = ESA(nf, esa_channels, full=False)

    def forward(self, x):
        h = F.leaky_relu(self.c1_r(x), NEG_SLOPE)
        h = F.leaky_relu(self.c2_r(h), NEG_SLOPE)
        h = F.leaky_relu(self.c3_r(h), NEG_SLOPE)
        return self.esa(self.c5(h + x))


class RLFN(nn.Module):
    """RLFN. Input (N, in_nc, H, W) in [0, 255], H, W >= 15; output (N, out_nc, H*scale, W*scale)."""

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 52, mf: int = 52,
                 num_blocks: int = 6, esa_channels: int = 16):
        super().__init__()
        self.fea_conv = conv(in_nc, nf, 3)
        self._block_names = [f"B{i}" for i in range(1, num_blocks + 1)]
        for name in self._block_names:
            self.add_module(name, RLFB(nf, mf, esa_channels))
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = upsampler(nf, out_nc, scale)

    def forward(self, x):
        fea = self.fea_conv(x)
        h = fea
        for name in self._block_names:
            h = getattr(self, name)(h)
        return self.upsampler(self.LR_conv(h) + fea)


_BYTEDANCE = (
    (re.compile(r"conv_1\."), "fea_conv."),
    (re.compile(r"block_(\d+)\."), r"B\1."),
    (re.compile(r"conv_2\."), "LR_conv."),
    (re.compile(r"upsampler\."), "upsampler."),
)
LAYOUTS = ({"conv_1.": "fea_conv.", "block_N.": "BN.", "conv_2.": "LR_conv.", "upsampler.": "upsampler."},)
"""The bytedance/RLFN layout (prefix -> ours), for messages; ``N`` is the block number."""


def adapt_state_dict(sd: StateDict) -> dict:
    """Rename the bytedance/RLFN layout onto ours when every key is in it; otherwise unchanged."""
    if "conv_1.weight" not in sd or "block_1.c1_r.weight" not in sd:
        return dict(sd)
    out = {}
    for k, v in sd.items():
        for pat, repl in _BYTEDANCE:
            if pat.match(k):
                out[pat.sub(repl, k, count=1)] = v
                break
        else:
            return dict(sd)
    return out


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
    keys = ("fea_conv.weight", "B1.c1_r.weight", "B1.c3_r.weight", "B1.c5.weight", "B1.esa.conv1.weight",
            "LR_conv.weight", "upsampler.0.weight")
    if not has_keys(sd, keys) or sd["fea_conv.weight"].ndim != 4:
        return None
    nf, in_nc = (int(v) for v in sd["fea_conv.weight"].shape[:2])
    scale = shuffle_factor(sd, "upsampler.0.weight", in_nc)
    if scale is None:
        return None
    hp = {"scale": scale, "in_nc": in_nc, "out_nc": in_nc, "nf": nf, "mf": int(sd["B1.c1_r.weight"].shape[0]),
          "num_blocks": count_indexed(sd, "B"), "esa_channels": int(sd["B1.esa.conv1.weight"].shape[0])}
    return hp if fits(RLFN, hp, sd) else None


_io = channel_io(value_range=255.0)


ARCH = ArchSpec(
    name="rlfn",
    title="RLFN (Kong et al. 2022, NTIRE 2022 ESR runtime winner)",
    build=RLFN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={
        "rlfn_ntire22_x4": {"scale": 4, "nf": 46, "mf": 48, "num_blocks": 4},
        **{f"rlfn_x{s}": {"scale": s} for s in (2, 3, 4)},
        **{f"rlfn_s_x{s}": {"scale": s, "nf": 48, "mf": 48} for s in (2, 3, 4)},
    },
    test_config={"scale": 2, "nf": 12, "mf": 16, "num_blocks": 2, "esa_channels": 8},
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
