"""VDSR (Kim et al., CVPR 2016): a deep residual network on the bicubic-upsampled luma image.

Key layout of the widely used PyTorch port: ``input`` (3x3 conv, no bias),
``residual_layer.N.conv`` (N 3x3 conv+ReLU blocks, no bias), ``output`` (3x3 conv,
no bias); global residual (the network predicts the detail added to its input).
Pre-upsampling: one set of weights serves every scale.

Also read, renamed by :func:`adapt_state_dict` (same network, same operations):
``conv1.0`` / ``trunk.N.conv`` / ``conv2`` (Lornatang/VDSR-PyTorch ``model.py``), and one
``features`` Sequential of bias-free 3x3 convs with ReLUs between, ``features.0`` ...
``features.{2L+2}`` (the first ``vdsr.py`` of twtygqyy/pytorch-vdsr).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from sredge.models.archs._util import adapt_layouts, count_indexed, has_keys
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class _ConvReLU(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    """VDSR. Input (N, C, H, W) luma in [0, 1], already bicubic-upsampled; output the same shape."""

    def __init__(self, scale: int, num_channels: int = 1, num_feat: int = 64, num_layers: int = 18):
        super().__init__()
        self.input = nn.Conv2d(num_channels, num_feat, 3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(*[_ConvReLU(num_feat) for _ in range(num_layers)])
        self.output = nn.Conv2d(num_feat, num_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.output(self.residual_layer(self.relu(self.input(x))))
        return torch.add(out, x)


LAYOUTS = (
    {"conv1.0.": "input.", "trunk.": "residual_layer.", "conv2.": "output."},
    {"features.": "input. / residual_layer.N.conv. / output."},  # renumbered by _rename_features
)
"""Foreign key layouts (prefix -> ours), listed in messages; :func:`adapt_state_dict` renames them."""

_FEATURE = re.compile(r"features\.(\d+)\.weight$")


def _rename_features(sd: StateDict) -> dict | None:
    """``features.{0,2,...,2L+2}.weight`` (convs, ReLUs between) onto input / residual_layer / output."""
    idx = [int(m.group(1)) if (m := _FEATURE.match(k)) else -1 for k in sd]
    n = len(idx)
    if n < 3 or sorted(idx) != list(range(0, 2 * n, 2)):
        return None
    if any(tuple(v.shape[2:]) != (3, 3) for v in sd.values()):  # VDSR is 3x3 throughout
        return None
    last = 2 * (n - 1)
    out = {}
    for i in idx:
        name = "input" if i == 0 else "output" if i == last else f"residual_layer.{i // 2 - 1}.conv"
        out[f"{name}.weight"] = sd[f"features.{i}.weight"]
    return out


def adapt_state_dict(sd: StateDict) -> dict:
    """Rename a known foreign layout onto ``input`` / ``residual_layer`` / ``output``; ours passes through."""
    return _rename_features(sd) or adapt_layouts(sd, LAYOUTS[:1])


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
    if not has_keys(sd, ("input.weight", "output.weight", "residual_layer.0.conv.weight")):
        return None
    w = sd["input.weight"]
    return {"scale": None, "num_channels": int(w.shape[1]), "num_feat": int(w.shape[0]),
            "num_layers": count_indexed(sd, "residual_layer.")}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_channels", 1)
    return ArchIO(c, c, "y" if c == 1 else "rgb", pre_upsample=True)


ARCH = ArchSpec(
    name="vdsr",
    title="VDSR (Kim et al. 2016)",
    build=VDSR,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={"vdsr": {"scale": 2}},
    test_config={"scale": 2, "num_feat": 16, "num_layers": 3},
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
