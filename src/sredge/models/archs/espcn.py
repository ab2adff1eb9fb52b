"""ESPCN (Shi et al., CVPR 2016): convolutions in low resolution, then a sub-pixel shuffle.

Key layout: ``conv_1`` (5x5, 64), ``conv_2`` (3x3, 32), ``conv_3`` (3x3, C*s*s), tanh
activations, PixelShuffle(s), output clipped to [0, 1]. The scale follows from
``conv_3``'s output channels. The 3-channel checkpoints of this layout (Nhat-Thanh's
ESPCN-Pytorch) were trained on BT.601 YCbCr, not RGB: fed YCbCr they score about 2 dB
higher on Set5 x2 than fed RGB, so the descriptor says ``ycbcr`` (``--color`` overrides).

Also read: the layout of the most-used PyTorch release (yjn870/ESPCN-pytorch ``models.py``):
``first_part.0`` (conv 5x5), ``first_part.2`` (conv 3x3), ``last_part.0`` (conv 3x3) then
PixelShuffle, tanh between, usually 1 channel (Y). Same network; :func:`adapt_state_dict`
renames its keys. Its code clips the output only when saving, which the clamp here matches.
"""

from __future__ import annotations

import torch
from torch import nn

from sredge.models.archs._util import adapt_layouts, has_keys, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class ESPCN(nn.Module):
    """ESPCN. Input (N, C, H, W) in [0, 1]; output (N, C, H*scale, W*scale) in [0, 1]."""

    def __init__(self, scale: int, num_channels: int = 3, n1: int = 64, n2: int = 32):
        super().__init__()
        self.conv_1 = nn.Conv2d(num_channels, n1, 5, padding=2)
        self.conv_2 = nn.Conv2d(n1, n2, 3, padding=1)
        self.conv_3 = nn.Conv2d(n2, num_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        x = torch.tanh(self.conv_1(x))
        x = torch.tanh(self.conv_2(x))
        return torch.clamp(self.shuffle(self.conv_3(x)), 0.0, 1.0)


LAYOUTS = ({"first_part.0.": "conv_1.", "first_part.2.": "conv_2.", "last_part.0.": "conv_3."},)
"""Foreign key layouts (prefix -> ours) that :func:`adapt_state_dict` renames."""


def adapt_state_dict(sd: StateDict) -> dict[str, torch.Tensor]:
    """Rename a known foreign layout onto ``conv_1``/``conv_2``/``conv_3``; ours passes through."""
    return adapt_layouts(sd, LAYOUTS)


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
    keys = ("conv_1.weight", "conv_2.weight", "conv_3.weight")
    if not has_keys(sd, keys) or any(not k.startswith(("conv_1.", "conv_2.", "conv_3.")) for k in sd):
        return None
    c = int(sd["conv_1.weight"].shape[1])
    scale = shuffle_scale(int(sd["conv_3.weight"].shape[0]), c)
    if scale is None:
        return None
    return {"scale": scale, "num_channels": c, "n1": int(sd["conv_1.weight"].shape[0]),
            "n2": int(sd["conv_2.weight"].shape[0])}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_channels", 3)
    return ArchIO(c, c, "y" if c == 1 else "ycbcr")


ARCH = ArchSpec(
    name="espcn",
    title="ESPCN (Shi et al. 2016)",
    build=ESPCN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={f"espcn_x{s}": {"scale": s} for s in (2, 3, 4, 8)},
    test_config={"scale": 3, "n1": 16, "n2": 8},
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
