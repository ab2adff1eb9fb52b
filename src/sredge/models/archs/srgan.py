"""SRGAN generator (Ledig et al., CVPR 2017) in its two widely used PyTorch layouts.

The paper's SRResNet/SRGAN generator: 9x9 conv + PReLU, residual blocks with batch norm
(conv, BN, PReLU, conv, BN, plus input), conv + BN with a skip from the first conv,
conv(n, 4n) + PixelShuffle(2) + PReLU per factor 2, and a 9x9 conv to RGB. It differs from
BasicSR's MSRResNet (:mod:`sredge.models.archs.srresnet`: no batch norm, LeakyReLU, bilinear
skip), so it lives here. Batch norm is folded by the exporters' constant folding; the
network runs in eval mode (running statistics), as the authors' test scripts do.

``flavor="lornatang"``: written from github.com/Lornatang/SRGAN-PyTorch ``model.py`` (commit
35c279b, class ``SRResNet``, which that repository trains as the SRGAN generator):

- ``conv1.0`` 9x9 conv in -> n with bias, ``conv1.1`` PReLU (one slope);
- ``trunk.N.rcb.{0,1,2,3,4}``: conv (no bias), BN, PReLU, conv (no bias), BN;
- ``conv2.{0,1}``: conv (no bias), BN; ``upsampling.N.upsample_block.{0,2}``: conv n -> 4n
  with bias, PReLU; ``conv3``: 9x9 conv n -> out. Output clamped to [0, 1].
- Their earlier layout (commit 0cc33e5: ``conv_block1``, ``trunk``, ``conv_block2``,
  ``upsampling``, ``conv_block3``) is the same network and is renamed on load.

``flavor="leftthomas"``: written from github.com/leftthomas/SRGAN ``model.py`` (commit 548f79c,
class ``Generator``): ``block1.{0,1}`` 9x9 conv + PReLU, ``block2``..``block6`` residual blocks
(``conv1, bn1, prelu, conv2, bn2``, convs with bias), ``block7.{0,1}`` conv (with bias) + BN,
``block8.{0..k-1}`` upsample blocks (``conv``, ``prelu``) and ``block8.k`` the 9x9 conv to RGB;
the output is ``(tanh(y) + 1) / 2``, in (0, 1). Always 3 channels and 5 residual blocks.

The flavor is told by the key names. Scales 2, 4, 8 (one PixelShuffle(2) stage per factor 2;
the Lornatang code's x3 branch cannot run, so x3 is not offered). I/O: RGB in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from sredge.models.archs._util import adapt_layouts, count_indexed, has_keys, max_index
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

FLAVORS = ("lornatang", "leftthomas")
_SCALES = {1: 2, 2: 4, 3: 8}  # upsample stages -> scale

# Lornatang/SRGAN-PyTorch before its rename (commit 0cc33e5) -> the current names.
OLD_LORNATANG = {
    "conv_block1.": "conv1.",
    "trunk.": "trunk.",
    "conv_block2.": "conv2.",
    "upsampling.": "upsampling.",
    "conv_block3.": "conv3.",
}


def _stages(scale: int) -> int:
    stages = {s: n for n, s in _SCALES.items()}.get(scale)
    if stages is None:
        raise ValueError(f"the SRGAN generator supports scales 2, 4 and 8, not {scale}")
    return stages


class ResidualConvBlock(nn.Module):
    """conv, BN, PReLU, conv, BN, plus the input (Lornatang names)."""

    def __init__(self, channels: int):
        super().__init__()
        self.rcb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return self.rcb(x) + x


class UpsampleBlock(nn.Module):
    """conv(n, 4n), PixelShuffle(2), PReLU (Lornatang names)."""

    def __init__(self, channels: int):
        super().__init__()
        self.upsample_block = nn.Sequential(nn.Conv2d(channels, 4 * channels, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU())

    def forward(self, x):
        return self.upsample_block(x)


class SRGANGenerator(nn.Module):
    """Lornatang layout. Input (N, in, H, W) in [0, 1]; output (N, out, H*scale, W*scale) clamped to [0, 1]."""

    def __init__(self, scale: int, in_channels: int = 3, out_channels: int = 3, channels: int = 64, num_rcb: int = 16):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), nn.PReLU())
        self.trunk = nn.Sequential(*[ResidualConvBlock(channels) for _ in range(num_rcb)])
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.upsampling = nn.Sequential(*[UpsampleBlock(channels) for _ in range(_stages(scale))])
        self.conv3 = nn.Conv2d(channels, out_channels, 9, 1, 4)

    def forward(self, x):
        out1 = self.conv1(x)
        out = self.upsampling(out1 + self.conv2(self.trunk(out1)))
        return self.conv3(out).clamp(0, 1)


class LeftthomasResidualBlock(nn.Module):
    """conv, BN, PReLU, conv, BN, plus the input (leftthomas names; convs with bias)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class LeftthomasUpsample(nn.Module):
    """conv(n, 4n), PixelShuffle(2), PReLU (leftthomas names)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * channels, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.prelu = nn.PReLU()

    def forward(self, x):
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class LeftthomasGenerator(nn.Module):
    """leftthomas layout. Input (N, 3, H, W) in [0, 1]; output (N, 3, H*scale, W*scale) in (0, 1)."""

    def __init__(self, scale: int, channels: int = 64):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self.block2 = LeftthomasResidualBlock(channels)
        self.block3 = LeftthomasResidualBlock(channels)
        self.block4 = LeftthomasResidualBlock(channels)
        self.block5 = LeftthomasResidualBlock(channels)
        self.block6 = LeftthomasResidualBlock(channels)
        self.block7 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        ups: list[nn.Module] = [LeftthomasUpsample(channels) for _ in range(_stages(scale))]
        self.block8 = nn.Sequential(*ups, nn.Conv2d(channels, 3, 9, padding=4))

    def forward(self, x):
        b1 = self.block1(x)
        body = self.block6(self.block5(self.block4(self.block3(self.block2(b1)))))
        return (torch.tanh(self.block8(b1 + self.block7(body))) + 1) / 2


def build(
    scale: int,
    flavor: str = "lornatang",
    in_channels: int = 3,
    out_channels: int = 3,
    channels: int = 64,
    num_rcb: int = 16,
) -> nn.Module:
    """The generator of one flavor (``"lornatang"`` or ``"leftthomas"``; see the module docstring)."""
    if flavor == "lornatang":
        return SRGANGenerator(scale, in_channels, out_channels, channels, num_rcb)
    if flavor == "leftthomas":
        if (in_channels, out_channels, num_rcb) != (3, 3, 5):
            raise ValueError("the leftthomas SRGAN generator has 3 channels in and out and 5 residual blocks")
        return LeftthomasGenerator(scale, channels)
    raise ValueError(f"unknown SRGAN flavor {flavor!r}; known: {', '.join(FLAVORS)}")


def _detect_lornatang(sd: StateDict) -> HParams | None:
    keys = (
        "conv1.0.weight",
        "conv1.1.weight",
        "trunk.0.rcb.0.weight",
        "trunk.0.rcb.1.running_var",
        "trunk.0.rcb.2.weight",
        "conv2.1.running_var",
        "upsampling.0.upsample_block.0.weight",
        "conv3.weight",
    )
    if not has_keys(sd, keys) or "conv2.0.bias" in sd:
        return None
    channels, in_ch = (int(d) for d in sd["conv1.0.weight"].shape[:2])
    stages = count_indexed(sd, "upsampling.")
    ups = [sd.get(f"upsampling.{i}.upsample_block.0.weight") for i in range(stages)]
    if stages not in _SCALES or any(w is None or w.shape[0] != 4 * channels for w in ups):
        return None
    return {
        "scale": _SCALES[stages],
        "flavor": "lornatang",
        "in_channels": in_ch,
        "out_channels": int(sd["conv3.weight"].shape[0]),
        "channels": channels,
        "num_rcb": count_indexed(sd, "trunk."),
    }


def _detect_leftthomas(sd: StateDict) -> HParams | None:
    keys = (
        "block1.0.weight",
        "block1.1.weight",
        *(f"block{i}.bn2.running_var" for i in range(2, 7)),
        "block7.0.bias",
        "block7.1.running_var",
        "block8.0.conv.weight",
        "block8.0.prelu.weight",
    )
    if not has_keys(sd, keys) or any(k.startswith("block9.") for k in sd):
        return None
    channels = int(sd["block1.0.weight"].shape[0])
    stages = max_index(sd, "block8.")
    if stages not in _SCALES or f"block8.{stages}.weight" not in sd or sd["block1.0.weight"].shape[1] != 3:
        return None
    return {
        "scale": _SCALES[stages],
        "flavor": "leftthomas",
        "in_channels": 3,
        "out_channels": 3,
        "channels": channels,
        "num_rcb": 5,
    }


def adapt_state_dict(sd: StateDict) -> dict:
    return adapt_layouts(sd, (OLD_LORNATANG,))


def detect(sd: StateDict) -> HParams | None:
    return _detect_lornatang(adapt_state_dict(sd)) or _detect_leftthomas(sd)


def _io(hp: HParams) -> ArchIO:
    c_in, c_out = hp.get("in_channels", 3), hp.get("out_channels", 3)
    return ArchIO(c_in, c_out, "rgb" if c_in == 3 else "y", value_range=1.0)


ARCH = ArchSpec(
    name="srgan",
    title="SRGAN generator (Ledig et al. 2017; Lornatang and leftthomas PyTorch layouts)",
    build=build,
    detect=detect,
    io=_io,
    scales=(2, 4, 8),
    variants={
        "srgan_x4": {"scale": 4},
        **{f"srgan_leftthomas_x{s}": {"scale": s, "flavor": "leftthomas", "num_rcb": 5} for s in (2, 4, 8)},
    },
    test_config={"scale": 2, "channels": 8, "num_rcb": 2},
    adapt_state_dict=adapt_state_dict,
    key_layouts=(OLD_LORNATANG,),
)
