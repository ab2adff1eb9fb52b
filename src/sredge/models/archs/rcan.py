"""RCAN (Zhang et al., ECCV 2018): residual groups of residual channel-attention blocks.

Key layout of EDSR-PyTorch ``model/rcan.py`` (and the authors' RCAN repository):

- ``sub_mean`` / ``add_mean``: 1x1 MeanShift convs kept as parameters (weight + bias);
  the bias is ``-/+ rgb_range * (0.4488, 0.4371, 0.4040)``.
- ``head.0``: conv 3 -> n_feats.
- ``body.G.body.B.body.{0,2}``: the two convs of RCAB ``B`` in group ``G`` (ReLU at 1),
  ``body.G.body.B.body.3.conv_du.{0,2}``: channel attention (1x1 convs n -> n/reduction -> n).
- ``body.G.body.{n_resblocks}``: the group's tail conv; ``body.{n_resgroups}``: the body's.
- ``tail.0``: upsampler, ``tail.0.{0,2,4}`` conv(n, 4n) + PixelShuffle(2) per factor 2
  (x2, x4, x8) or ``tail.0.0`` conv(n, 9n) + PixelShuffle(3) (x3); ``tail.1``: conv n -> 3.

I/O: RGB in [0, rgb_range] (255 for every published checkpoint) in and out.
"""

from __future__ import annotations

from torch import nn

from sredge.models.archs._blocks import MeanShift, make_upsampler, rgb_range_from_mean_shift, upsampler_scale
from sredge.models.archs._util import has_keys, max_index
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class CALayer(nn.Module):
    """Channel attention: global average pool, squeeze, excite, sigmoid gate."""

    def __init__(self, n_feats: int, reduction: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(n_feats, n_feats // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(n_feats // reduction, n_feats, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Residual channel-attention block: conv, ReLU, conv, CA, plus the input."""

    def __init__(self, n_feats: int, k: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(n_feats, n_feats, k),
            nn.ReLU(),
            _conv(n_feats, n_feats, k),
            CALayer(n_feats, reduction),
        )

    def forward(self, x):
        return self.body(x) + x


class ResidualGroup(nn.Module):
    """``n_resblocks`` RCABs and a conv, with a skip over the group."""

    def __init__(self, n_feats: int, k: int, reduction: int, n_resblocks: int):
        super().__init__()
        blocks: list[nn.Module] = [RCAB(n_feats, k, reduction) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, _conv(n_feats, n_feats, k))

    def forward(self, x):
        return self.body(x) + x


class RCAN(nn.Module):
    """RCAN. Input (N, 3, H, W) RGB in [0, rgb_range]; output (N, 3, H*scale, W*scale), same range."""

    def __init__(
        self,
        scale: int,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        kernel_size: int = 3,
        rgb_range: float = 255.0,
    ):
        super().__init__()
        k = kernel_size
        self.sub_mean = MeanShift(rgb_range, -1)
        self.head = nn.Sequential(_conv(3, n_feats, k))
        groups: list[nn.Module] = [
            ResidualGroup(n_feats, k, reduction, n_resblocks) for _ in range(n_resgroups)
        ]
        self.body = nn.Sequential(*groups, _conv(n_feats, n_feats, k))
        self.tail = nn.Sequential(make_upsampler(scale, n_feats, k), _conv(n_feats, 3, k))
        self.add_mean = MeanShift(rgb_range, 1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = self.body(x) + x
        return self.add_mean(self.tail(x))


def detect(sd: StateDict) -> HParams | None:
    keys = (
        "sub_mean.weight",
        "add_mean.bias",
        "head.0.weight",
        "body.0.body.0.body.0.weight",
        "body.0.body.0.body.2.weight",
        "body.0.body.0.body.3.conv_du.0.weight",
        "body.0.body.0.body.3.conv_du.2.weight",
        "tail.0.0.weight",
        "tail.1.weight",
    )
    if not has_keys(sd, keys):
        return None
    if any(k.startswith(("la.", "csa.", "last_conv.", "last.")) for k in sd):
        return None  # HAN: RCAN plus layer and channel-spatial attention (archs/han.py)
    n_feats, n_colors, k = sd["head.0.weight"].shape[:3]
    if n_colors != 3:
        return None
    n_resgroups = max_index(sd, "body.")
    n_resblocks = max_index(sd, "body.0.body.")
    if f"body.{n_resgroups}.weight" not in sd or f"body.0.body.{n_resblocks}.weight" not in sd:
        return None
    squeeze = sd["body.0.body.0.body.3.conv_du.0.weight"].shape[0]
    if squeeze <= 0 or n_feats % squeeze:
        return None

    scale = upsampler_scale(sd, "tail.0.", int(n_feats))
    if scale is None:
        return None

    return {
        "scale": scale,
        "n_resgroups": int(n_resgroups),
        "n_resblocks": int(n_resblocks),
        "n_feats": int(n_feats),
        "reduction": int(n_feats // squeeze),
        "kernel_size": int(k),
        "rgb_range": rgb_range_from_mean_shift(sd),
    }


def _io(hp: HParams) -> ArchIO:
    return ArchIO(3, 3, "rgb", value_range=float(hp.get("rgb_range", 255.0)))


ARCH = ArchSpec(
    name="rcan",
    title="RCAN (Zhang et al. 2018)",
    build=RCAN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={
        f"rcan_x{s}": {"scale": s, "n_resgroups": 10, "n_resblocks": 20, "n_feats": 64, "reduction": 16}
        for s in (2, 3, 4, 8)
    },
    test_config={"scale": 2, "n_resgroups": 2, "n_resblocks": 2, "n_feats": 16, "reduction": 4},
)
