"""FSRCNN (Dong et al., ECCV 2016): feature extraction, shrink, map, expand, deconvolution.

Key layout of the widely used PyTorch port: ``first_part.0`` conv + ``first_part.1``
PReLU, ``mid_part`` (shrink conv, PReLU, m x (3x3 conv, PReLU), expand conv, PReLU),
``last_part`` a ConvTranspose2d whose stride is the scale. Luma-only (Y in [0, 1]).
The transposed conv's kernel is 9 at every scale, so the weights do not tell the scale.
"""

from __future__ import annotations

from torch import nn

from sredge.models.archs._util import count_indexed, has_keys
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class FSRCNN(nn.Module):
    """FSRCNN. Input (N, C, H, W) in [0, 1]; output (N, C, H*scale, W*scale)."""

    def __init__(self, scale: int, num_channels: int = 1, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(num_channels, d, 5, padding=2), nn.PReLU(d))
        mid: list[nn.Module] = [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            mid += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        mid += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(
            d, num_channels, 9, stride=scale, padding=4, output_padding=scale - 1
        )

    def forward(self, x):
        return self.last_part(self.mid_part(self.first_part(x)))


def detect(sd: StateDict) -> HParams | None:
    if not has_keys(sd, ("first_part.0.weight", "mid_part.0.weight", "last_part.weight")):
        return None
    d, c = sd["first_part.0.weight"].shape[:2]
    s = sd["mid_part.0.weight"].shape[0]
    # mid_part holds shrink + PReLU, m x (conv + PReLU), expand + PReLU: 2m + 4 modules.
    m = (count_indexed(sd, "mid_part.") - 4) // 2
    return {"scale": None, "num_channels": int(c), "d": int(d), "s": int(s), "m": int(m)}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_channels", 1)
    return ArchIO(c, c, "y" if c == 1 else "rgb")


ARCH = ArchSpec(
    name="fsrcnn",
    title="FSRCNN (Dong et al. 2016)",
    build=FSRCNN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={f"fsrcnn_x{s}": {"scale": s} for s in (2, 3, 4, 8)},
    test_config={"scale": 3, "d": 16, "s": 8, "m": 2},
)
