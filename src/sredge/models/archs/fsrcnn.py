"""FSRCNN (Dong et al., ECCV 2016): feature extraction, shrink, map, expand, deconvolution.

Key layout of the widely used PyTorch port: ``first_part.0`` conv + ``first_part.1``
PReLU, ``mid_part`` (shrink conv, PReLU, m x (3x3 conv, PReLU), expand conv, PReLU),
``last_part`` a ConvTranspose2d whose stride is the scale. Luma-only (Y in [0, 1]).
The transposed conv's kernel is 9 at every scale, so the weights do not tell the scale.

Also read: ``Conv1`` (conv + PReLU), ``Conv2`` (shrink + PReLU), ``Conv3`` (m x (conv, PReLU)),
``Conv4`` (expand + PReLU), ``DeConv`` (the RGB port in NicoCeresa/FSRCNN-2016, ``num_channels=3``).
Same network and operations; :func:`adapt_state_dict` renumbers its keys into ``mid_part``.
"""

from __future__ import annotations

import re

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


LAYOUTS = ({"Conv1.": "first_part.", "Conv2.": "mid_part.", "Conv3.": "mid_part.", "Conv4.": "mid_part.",
            "DeConv.": "last_part."},)
"""Foreign key layouts (prefix -> ours), for messages; :func:`adapt_state_dict` renames them."""

_CONV_DECONV = re.compile(r"(Conv[1-4])\.(\d+)\.(.+)$|DeConv\.(weight|bias)$")


def _rename_conv_deconv(sd: StateDict) -> dict | None:
    """``Conv1``..``Conv4`` / ``DeConv`` onto ``first_part`` / ``mid_part`` / ``last_part``; None unless
    every key is of that layout and all five parts occur."""
    m = count_indexed(sd, "Conv3.") // 2  # m x (conv, PReLU)
    offset = {"Conv2": 0, "Conv3": 2, "Conv4": 2 + 2 * m}
    out, seen = {}, set()
    for k, v in sd.items():
        if not (hit := _CONV_DECONV.match(k)):
            return None
        part, idx, rest, deconv = hit.groups()
        seen.add(part or "DeConv")
        if deconv:
            out[f"last_part.{deconv}"] = v
        elif part == "Conv1":
            out[f"first_part.{idx}.{rest}"] = v
        else:
            out[f"mid_part.{offset[part] + int(idx)}.{rest}"] = v
    return out if seen == {"Conv1", "Conv2", "Conv3", "Conv4", "DeConv"} else None


def adapt_state_dict(sd: StateDict) -> dict:
    """Rename the ``Conv1``..``Conv4``/``DeConv`` layout onto ours; ours passes through."""
    return _rename_conv_deconv(sd) or dict(sd)


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
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
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
