"""SRVGGNetCompact (Real-ESRGAN compact / animevideo): a plain conv stack in low resolution.

Key layout (BasicSR / Real-ESRGAN): ``body.0`` first conv, ``body.1`` PReLU, then per
conv ``body.2k`` conv and ``body.2k+1`` PReLU, last ``body.L`` conv to C*s*s channels,
PixelShuffle(s); the output adds the nearest-upsampled input. RGB in [0, 1].
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import max_index, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_KEY = re.compile(r"body\.\d+\.(weight|bias)$")


class SRVGGNetCompact(nn.Module):
    """SRVGGNetCompact with PReLU. Input (N, C, H, W) in [0, 1]; output (N, C, H*s, W*s)."""

    def __init__(self, scale: int, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_conv: int = 16):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(scale)
        self.scale = scale

    def forward(self, x):
        out = self.upsampler(self.body(x))
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def detect(sd: StateDict) -> HParams | None:
    if not sd or not all(_KEY.match(k) for k in sd) or "body.1.weight" not in sd:
        return None
    last = max_index(sd, "body.")
    if last < 2 or last % 2:
        return None
    first = sd["body.0.weight"]
    if first.ndim != 4 or sd["body.1.weight"].ndim != 1:
        return None
    num_feat, num_in = int(first.shape[0]), int(first.shape[1])
    scale = shuffle_scale(int(sd[f"body.{last}.weight"].shape[0]), num_in)
    if scale is None:
        return None
    return {"scale": scale, "num_in_ch": num_in, "num_out_ch": num_in, "num_feat": num_feat,
            "num_conv": (last - 2) // 2}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_in_ch", 3)
    return ArchIO(c, hp.get("num_out_ch", 3), "y" if c == 1 else "rgb")


ARCH = ArchSpec(
    name="srvgg",
    title="SRVGGNetCompact (Real-ESRGAN compact, Wang et al. 2021)",
    build=SRVGGNetCompact,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={
        "realesr_animevideov3": {"scale": 4, "num_feat": 64, "num_conv": 16},
        "realesr_general_x4v3": {"scale": 4, "num_feat": 64, "num_conv": 32},
        **{f"srvgg_compact_x{s}": {"scale": s, "num_feat": 64, "num_conv": 16} for s in (2, 3, 4)},
    },
    test_config={"scale": 4, "num_feat": 8, "num_conv": 2},
)
