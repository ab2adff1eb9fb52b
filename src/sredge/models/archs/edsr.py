"""EDSR (Lim et al., CVPRW 2017), baseline and full, in the official EDSR-PyTorch key layout.

Keys: ``sub_mean`` / ``add_mean`` (1x1 "MeanShift" convs stored as parameters),
``head.0``, ``body.N.body.0`` / ``body.N.body.2`` (residual blocks, ReLU between),
``body.{n_resblocks}`` (body tail conv), ``tail.0.K`` (upsampler: conv to 4n + PixelShuffle(2)
per factor of 2, or conv to 9n + PixelShuffle(3)), ``tail.1`` (last conv).
The official models take RGB in [0, 255] (``rgb_range=255``); the mean is subtracted inside.

Also read: BasicSR's ``edsr_arch.py`` layout, ``conv_first``, ``body.N.conv1`` / ``body.N.conv2``,
``conv_after_body``, ``upsample.K``, ``conv_last``. Same blocks; its DIV2K mean and ``img_range``
255 are not in the file (constants in the code): it computes ``f(255 * (x - mean)) / 255 + mean``
on [0, 1] input, which is exactly this module with ``rgb_range=255`` on [0, 255] input, so
:func:`adapt_state_dict` renames the keys and adds the two mean shifts BasicSR hard-codes.
And Lornatang/EDSR-PyTorch's ``model.py``: ``conv1``, ``trunk.N.conv1/conv2``, ``conv2``,
``upsampling.K``, ``conv3``, with ``mean`` / ``std`` buffers, on [0, 1] (``rgb_range=1``); its blocks
scale by 0.1 and it is 256 features wide, which ``detect`` infers (res_scale 0.1 from 256 features).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from sredge.models.archs._blocks import (
    MeanShift,
    make_upsampler,
    rgb_range_from_mean_shift,
    upsampler_scale,
)
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


LAYOUTS = (
    {"conv_first.": "head.0.", "body.": "body.", "conv_after_body.": "body.{n_resblocks}.", "upsample.": "tail.0.",
     "conv_last.": "tail.1."},
    {"conv1.": "head.0.", "trunk.": "body.", "conv2.": "body.{n_resblocks}.", "upsampling.": "tail.0.",
     "conv3.": "tail.1.", "mean": "sub_mean/add_mean", "std": "sub_mean/add_mean"},
)
"""Foreign key layouts (prefix -> ours), for messages; :func:`adapt_state_dict` renames them:
BasicSR (``edsr_arch.py``) and Lornatang/EDSR-PyTorch (``model.py``)."""


def _layout_pattern(first: str, blocks: str, after: str, up: str, last: str, extra: str = "") -> re.Pattern[str]:
    return re.compile(rf"(?P<fixed>{first}|{after}|{last})\.(?P<p1>weight|bias)$"
                      rf"|{blocks}\.(?P<block>\d+)\.conv(?P<conv>[12])\.(?P<p2>weight|bias)$"
                      rf"|{up}\.(?P<up>\d+)\.(?P<p3>weight|bias)$" + (f"|(?P<extra>{extra})$" if extra else ""))


# (first conv, residual blocks, conv after the blocks, upsampler, last conv), and the pattern of every key.
_BASICSR = ("conv_first", "body", "conv_after_body", "upsample", "conv_last")
_LORNATANG = ("conv1", "trunk", "conv2", "upsampling", "conv3")
_PATTERNS = {_BASICSR: _layout_pattern(*_BASICSR), _LORNATANG: _layout_pattern(*_LORNATANG, extra="mean|std")}


def _rename_foreign(sd: StateDict, names: tuple[str, str, str, str, str]) -> dict | None:
    """A conv_first / blocks.N.conv1-conv2 / after-body / upsampler / last-conv layout onto ours, with the mean
    shifts built from what that code uses: BasicSR's hard-coded DIV2K mean and ``img_range`` 255, or the
    ``mean`` / ``std`` buffers Lornatang's file holds (on [0, 1]). None unless every key fits."""
    first, blocks, after, up, last = names
    if not has_keys(sd, (f"{first}.weight", f"{after}.weight", f"{last}.weight", f"{blocks}.0.conv1.weight",
                         f"{up}.0.weight")):
        return None
    pattern = _PATTERNS[names]
    n_resblocks = count_indexed(sd, f"{blocks}.")
    fixed = {first: "head.0", after: f"body.{n_resblocks}", last: "tail.1"}
    out = {}
    for k, v in sd.items():
        if not (m := pattern.match(k)):
            return None
        if m["fixed"]:
            out[f"{fixed[m['fixed']]}.{m['p1']}"] = v
        elif m["block"] is not None:
            out[f"body.{m['block']}.body.{0 if m['conv'] == '1' else 2}.{m['p2']}"] = v
        elif m["up"] is not None:
            out[f"tail.0.{m['up']}.{m['p3']}"] = v
    n_colors = int(sd[f"{first}.weight"].shape[1])
    if names == _BASICSR:
        for name, sign in (("sub_mean", -1), ("add_mean", 1)):
            shift = MeanShift(255.0, sign, n_colors)
            out[f"{name}.weight"], out[f"{name}.bias"] = shift.weight.detach(), shift.bias.detach()
        return out
    if "mean" not in sd or "std" not in sd:
        return None
    mean, std = (sd[k].reshape(-1).to(torch.float32) for k in ("mean", "std"))
    eye = torch.eye(n_colors).view(n_colors, n_colors, 1, 1)
    # (x - mean) / std in, y * std + mean out: the same 1x1 convs as EDSR-PyTorch's MeanShift.
    out["sub_mean.weight"], out["sub_mean.bias"] = eye / std.view(-1, 1, 1, 1), -mean / std
    out["add_mean.weight"], out["add_mean.bias"] = eye * std.view(-1, 1, 1, 1), mean.clone()
    return out


def adapt_state_dict(sd: StateDict) -> dict[str, torch.Tensor]:
    """Rename BasicSR's or Lornatang's EDSR layout onto EDSR-PyTorch's; ours passes through."""
    return _rename_foreign(sd, _BASICSR) or _rename_foreign(sd, _LORNATANG) or dict(sd)


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
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
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
