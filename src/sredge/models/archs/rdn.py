"""RDN (Zhang et al., CVPR 2018): residual dense blocks with global feature fusion.

Key layout of EDSR-PyTorch ``model/rdn.py``:

- ``SFENet1`` (conv n_colors -> G0), ``SFENet2`` (conv G0 -> G0): shallow features.
- ``RDBs.D.convs.C.conv.0``: growth conv ``G0 + C*G -> G`` of dense layer C in block D
  (3x3 whatever ``kSize`` is, as in the original), ``RDBs.D.LFF``: 1x1 local fusion -> G0.
- ``GFF.0`` (1x1, D*G0 -> G0), ``GFF.1`` (conv G0 -> G0): global feature fusion.
- ``UPNet.0/2/4``: x2, x3: conv(G0, G*r*r), PixelShuffle(r), conv(G, n_colors);
  x4: conv(G0, 4G), PixelShuffle(2), conv(G, 4G), PixelShuffle(2), conv(G, n_colors).

I/O: RGB in [0, 255] (EDSR-PyTorch's rgb_range, no mean shift) in and out.
"""

from __future__ import annotations

import torch
from torch import nn

from sredge.models.archs._util import count_indexed, has_keys, max_index, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_RDB_KSIZE = 3  # the original passes no kSize to its dense layers


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=(k - 1) // 2)


class DenseLayer(nn.Module):
    """conv + ReLU whose output is concatenated to its input (``RDB_Conv``)."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = nn.Sequential(_conv(cin, growth, _RDB_KSIZE), nn.ReLU())

    def forward(self, x):
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    """Residual dense block: ``c`` dense layers, 1x1 local fusion, local residual."""

    def __init__(self, g0: int, g: int, c: int):
        super().__init__()
        self.convs = nn.Sequential(*[DenseLayer(g0 + i * g, g) for i in range(c)])
        self.LFF = nn.Conv2d(g0 + c * g, g0, 1)

    def forward(self, x):
        return self.LFF(self.convs(x)) + x


class RDN(nn.Module):
    """RDN. Input (N, n_colors, H, W) in [0, 255]; output (N, n_colors, H*scale, W*scale), same range."""

    def __init__(
        self,
        scale: int,
        g0: int = 64,
        d: int = 16,
        c: int = 8,
        g: int = 64,
        ksize: int = 3,
        n_colors: int = 3,
    ):
        super().__init__()
        self.SFENet1 = _conv(n_colors, g0, ksize)
        self.SFENet2 = _conv(g0, g0, ksize)
        self.RDBs = nn.ModuleList([RDB(g0, g, c) for _ in range(d)])
        self.GFF = nn.Sequential(nn.Conv2d(d * g0, g0, 1), _conv(g0, g0, ksize))
        if scale in (2, 3):
            up: list[nn.Module] = [_conv(g0, g * scale * scale, ksize), nn.PixelShuffle(scale)]
        elif scale == 4:
            up = [_conv(g0, g * 4, ksize), nn.PixelShuffle(2), _conv(g, g * 4, ksize), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"RDN supports scales 2, 3 and 4, not {scale}")
        self.UPNet = nn.Sequential(*up, _conv(g, n_colors, ksize))

    def forward(self, x):
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        outs = []
        for rdb in self.RDBs:
            x = rdb(x)
            outs.append(x)
        x = self.GFF(torch.cat(outs, 1)) + f1
        return self.UPNet(x)


def detect(sd: StateDict) -> HParams | None:
    keys = (
        "SFENet1.weight",
        "SFENet2.weight",
        "RDBs.0.convs.0.conv.0.weight",
        "RDBs.0.LFF.weight",
        "GFF.0.weight",
        "GFF.1.weight",
        "UPNet.0.weight",
    )
    if not has_keys(sd, keys):
        return None
    g0, n_colors, ksize = sd["SFENet1.weight"].shape[:3]
    g = sd["RDBs.0.convs.0.conv.0.weight"].shape[0]
    d = count_indexed(sd, "RDBs.")
    c = count_indexed(sd, "RDBs.0.convs.")
    if sd["GFF.0.weight"].shape[1] != d * g0:
        return None
    last = max_index(sd, "UPNet.")
    if last == 4:
        if sd["UPNet.0.weight"].shape[0] != 4 * g or sd["UPNet.2.weight"].shape[0] != 4 * g:
            return None
        scale = 4
    elif last == 2:
        scale = shuffle_scale(int(sd["UPNet.0.weight"].shape[0]), int(g))
        if scale not in (2, 3):
            return None
    else:
        return None
    return {
        "scale": scale,
        "g0": int(g0),
        "d": int(d),
        "c": int(c),
        "g": int(g),
        "ksize": int(ksize),
        "n_colors": int(n_colors),
    }


def _io(hp: HParams) -> ArchIO:
    n = hp.get("n_colors", 3)
    return ArchIO(n, n, "rgb" if n == 3 else "y", value_range=255.0)


ARCH = ArchSpec(
    name="rdn",
    title="RDN (Zhang et al. 2018)",
    build=RDN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"rdn_x{s}": {"scale": s, "g0": 64, "d": 16, "c": 8, "g": 64} for s in (2, 3, 4)},
    test_config={"scale": 2, "g0": 16, "d": 2, "c": 2, "g": 8},
)
