"""EDSR (Lim et al., CVPRW 2017), baseline and full, in the official EDSR-PyTorch key layout.

Keys: ``sub_mean`` / ``add_mean`` (1x1 "MeanShift" convs stored as parameters),
``head.0``, ``body.N.body.0`` / ``body.N.body.2`` (residual blocks, ReLU between),
``body.{n_resblocks}`` (body tail conv), ``tail.0.K`` (upsampler: conv to 4n + PixelShuffle(2)
per factor of 2, or conv to 9n + PixelShuffle(3)), ``tail.1`` (last conv).
The official models take RGB in [0, 255] (``rgb_range=255``); the mean is subtracted inside.
"""

from __future__ import annotations

from torch import nn

from sredge.models.archs._blocks import MeanShift, make_upsampler, rgb_range_from_mean_shift, upsampler_scale
from sredge.models.archs._util import count_indexed, has_keys
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class _ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feats, n_feats, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x):
        return self.body(x) * self.res_scale + x


class EDSR(nn.Module):
    """EDSR. Input (N, C, H, W) in [0, rgb_range]; output (N, C, H*scale, W*scale), same range."""

    def __init__(self, scale: int, n_resblocks: int = 16, n_feats: int = 64, n_colors: int = 3,
                 res_scale: float = 1.0, rgb_range: float = 255.0):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range, -1, n_colors)
        self.head = nn.Sequential(nn.Conv2d(n_colors, n_feats, 3, padding=1))
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(make_upsampler(scale, n_feats), nn.Conv2d(n_feats, n_colors, 3, padding=1))
        self.add_mean = MeanShift(rgb_range, 1, n_colors)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = self.body(x) + x
        return self.add_mean(self.tail(x))


def detect(sd: StateDict) -> HParams | None:
    if not has_keys(sd, ("sub_mean.weight", "add_mean.bias", "head.0.weight", "body.0.body.0.weight", "tail.1.weight")):
        return None
    if any(".conv_du." in k for k in sd):  # RCAN's channel attention
        return None
    n_feats, n_colors = (int(v) for v in sd["head.0.weight"].shape[:2])
    n_resblocks = count_indexed(sd, "body.") - 1
    scale = upsampler_scale(sd, "tail.0.", n_feats)
    if scale is None:
        return None
    # The official full EDSR (256 features) trains with res_scale 0.1; the baseline with 1.
    res_scale = 0.1 if n_feats >= 256 else 1.0
    return {"scale": scale, "n_resblocks": n_resblocks, "n_feats": n_feats, "n_colors": n_colors,
            "res_scale": res_scale, "rgb_range": rgb_range_from_mean_shift(sd)}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("n_colors", 3)
    # Full EDSR's 256-wide residual sums grow large; fp16 is not known to be safe there.
    return ArchIO(c, c, "rgb" if c == 3 else "y", value_range=hp.get("rgb_range", 255.0),
                  fp16_safe=hp.get("n_feats", 64) < 256)


_VARIANTS: dict[str, HParams] = {}
for _s in (2, 3, 4, 8):
    _VARIANTS[f"edsr_baseline_x{_s}"] = {"scale": _s}
    _VARIANTS[f"edsr_x{_s}"] = {"scale": _s, "n_resblocks": 32, "n_feats": 256, "res_scale": 0.1}

ARCH = ArchSpec(
    name="edsr",
    title="EDSR (Lim et al. 2017), EDSR-PyTorch layout",
    build=EDSR,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants=_VARIANTS,
    test_config={"scale": 4, "n_resblocks": 2, "n_feats": 16},
)
