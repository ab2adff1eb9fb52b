"""RRDBNet (ESRGAN, Wang et al. 2018; Real-ESRGAN, Wang et al. 2021): residual-in-residual dense blocks.

Key layout of BasicSR ``rrdbnet_arch.py`` (Real-ESRGAN and current ESRGAN releases):

- ``conv_first``: conv in -> num_feat; ``in`` is the image channels, times 4 for x2 and
  times 16 for x1 (those variants pixel-unshuffle the input by 2 / 4, then upsample x4).
- ``body.N.rdb{1,2,3}.conv{1..5}``: the dense convs of RRDB N (growth num_grow_ch).
- ``conv_body``: conv after the trunk (long skip from ``conv_first``).
- ``conv_up1``, ``conv_up2`` (and ``conv_up3`` for x8): nearest x2 then conv + LeakyReLU(0.2).
- ``conv_hr`` (+ LeakyReLU), ``conv_last``: num_feat -> num_out_ch.

Two older layouts are renamed onto this one by ``adapt_state_dict`` (``detect`` accepts them):

- xinntao's original ESRGAN ("old arch"): ``model.0`` (conv_first),
  ``model.1.sub.N.RDB{k}.conv{j}.0``, ``model.1.sub.{nb}`` (conv_body), upconvs at
  ``model.3``, ``model.6`` (``model.9``), then conv_hr and conv_last two indices apart
  (``model.8``, ``model.10`` for x4).
- the ESRGAN repository's later layout (also BSRGAN / RealSR): ``RRDB_trunk.N.RDB{k}.conv{j}``,
  ``trunk_conv``, ``upconv1/2``, ``HRconv``, ``conv_last``.

I/O: RGB in [0, 1] in and out; any input size (x1/x2 reflect-pad to the unshuffle factor
inside ``forward`` and crop the output).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._util import count_indexed, has_keys, max_index
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_UNSHUFFLE = {1: 4, 2: 2}  # scale -> pixel-unshuffle factor before the x4 trunk


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output scaled by 0.2 plus the input."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        nf, gc = num_feat, num_grow_ch
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        # Not in-place: in-place activations slow the dynamo ONNX export down markedly.
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks with a 0.2-scaled residual around them."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """RRDBNet. Input (N, num_in_ch, H, W) in [0, 1], any H and W (at least 2 for x2, 3 for x1:
    reflect padding); output (N, num_out_ch, H*scale, W*scale) in [0, 1] (not clamped)."""

    def __init__(
        self,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ):
        super().__init__()
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"RRDBNet supports scales 1, 2, 4 and 8, not {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE.get(scale, 1)
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if scale == 8:
            self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        h, w = x.shape[-2:]
        r = self.unshuffle
        if r > 1:
            # Reflect-pad bottom/right to a multiple of r so any size works; cropped below.
            x = F.pad(x, (0, (r - w % r) % r, 0, (r - h % r) % r), mode="reflect")
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        ups = [self.conv_up1, self.conv_up2] + ([self.conv_up3] if self.scale == 8 else [])
        for conv in ups:
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if r > 1:
            out = out[..., : h * self.scale, : w * self.scale]
        return out


_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_TRUNK_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$")
_TRUNK_NAMES = {
    "trunk_conv": "conv_body",
    "upconv1": "conv_up1",
    "upconv2": "conv_up2",
    "upconv3": "conv_up3",
    "HRconv": "conv_hr",
}


def _is_old(sd: StateDict) -> bool:
    return has_keys(sd, ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"))


def _is_trunk(sd: StateDict) -> bool:
    return has_keys(sd, ("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight"))


def _rename_old(sd: StateDict) -> dict[str, torch.Tensor]:
    nb = max_index(sd, "model.1.sub.")
    last = max_index(sd, "model.")
    # Flattened Sequential: conv_first 0, trunk 1, per upsampling (Upsample, conv, LReLU) from 2,
    # then conv_hr, LReLU, conv_last.
    n_up = (last - 4) // 3
    names = {0: "conv_first", 3 * n_up + 2: "conv_hr", 3 * n_up + 4: "conv_last"}
    names.update({3 + 3 * i: f"conv_up{i + 1}" for i in range(n_up)})
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if m := _OLD_RDB.match(k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
        elif m := re.match(rf"^model\.1\.sub\.{nb}\.(weight|bias)$", k):
            out[f"conv_body.{m[1]}"] = v
        elif (m := re.match(r"^model\.(\d+)\.(weight|bias)$", k)) and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = v
        else:
            out[k] = v  # unknown keys stay, so a strict load reports them
    return out


def _rename_trunk(sd: StateDict) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        head, _, tail = k.partition(".")
        if m := _TRUNK_RDB.match(k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
        elif head in _TRUNK_NAMES:
            out[f"{_TRUNK_NAMES[head]}.{tail}"] = v
        else:
            out[k] = v
    return out


def adapt_state_dict(sd: StateDict) -> dict[str, torch.Tensor]:
    """Rename the original ESRGAN layouts onto BasicSR's; BasicSR dicts pass through unchanged."""
    if _is_old(sd):
        return _rename_old(sd)
    if _is_trunk(sd):
        return _rename_trunk(sd)
    return dict(sd)


def detect(sd: StateDict) -> HParams | None:
    if _is_old(sd) or _is_trunk(sd):
        sd = adapt_state_dict(sd)
    keys = (
        "conv_first.weight",
        "body.0.rdb1.conv1.weight",
        "body.0.rdb3.conv5.weight",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.weight",
    )
    if not has_keys(sd, keys):
        return None
    num_feat, in_ch = sd["conv_first.weight"].shape[:2]
    num_out_ch = sd["conv_last.weight"].shape[0]
    num_grow_ch = sd["body.0.rdb1.conv1.weight"].shape[0]
    if sd["conv_up1.weight"].shape[:2] != (num_feat, num_feat):
        return None  # e.g. an old-arch pixel-shuffle upsampler, not supported
    if "conv_up3.weight" in sd:
        scale, num_in_ch = 8, in_ch
    elif in_ch == 16 * num_out_ch:
        scale, num_in_ch = 1, num_out_ch
    elif in_ch == 4 * num_out_ch:
        scale, num_in_ch = 2, num_out_ch
    else:
        scale, num_in_ch = 4, in_ch
    return {
        "scale": scale,
        "num_in_ch": int(num_in_ch),
        "num_out_ch": int(num_out_ch),
        "num_feat": int(num_feat),
        "num_block": int(count_indexed(sd, "body.")),
        "num_grow_ch": int(num_grow_ch),
    }


def _io(hp: HParams) -> ArchIO:
    cin, cout = hp.get("num_in_ch", 3), hp.get("num_out_ch", 3)
    return ArchIO(cin, cout, "rgb" if cout == 3 else "y", value_range=1.0, fp16_safe=True)


def _cfg(scale: int, num_block: int = 23) -> HParams:
    return {
        "scale": scale,
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": 64,
        "num_block": num_block,
        "num_grow_ch": 32,
    }


ARCH = ArchSpec(
    name="rrdbnet",
    title="RRDBNet (ESRGAN, Wang et al. 2018; Real-ESRGAN 2021)",
    build=RRDBNet,
    detect=detect,
    io=_io,
    scales=(1, 2, 4, 8),
    variants={
        "realesrgan_x4plus": _cfg(4),
        "realesrgan_x2plus": _cfg(2),
        "realesrnet_x4plus": _cfg(4),
        "realesrgan_x4plus_anime_6b": _cfg(4, num_block=6),
        "esrgan_x4": _cfg(4),
    },
    test_config={"scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4},
    adapt_state_dict=adapt_state_dict,
)
