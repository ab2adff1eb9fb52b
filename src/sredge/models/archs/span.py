"""SPAN (Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution",
CVPR Workshops 2024; winner of the NTIRE 2024 efficient-SR challenge).

Written from reading the authors' code: github.com/hongyuanyu/SPAN ``basicsr/archs/span_arch.py``
(commit e19736dd; training form) and github.com/Amazingren/NTIRE2024_ESR ``models/team38_SPAN.py``
(commit 4dcc6540; ``SPAN30``, the re-parameterized form the challenge checkpoint is stored in).

Network: ``(x - DIV2K mean) * img_range``, ``conv_1``, six SPAB blocks ``block_1..6`` (three Conv3XC
``c{1,2,3}_r`` with SiLU between; parameter-free attention ``sigmoid(out3) - 0.5`` gating
``out3 + x``), ``conv_2`` on the last block, ``conv_cat`` 1x1 over [conv_1 out, conv_2 out, block_1
out, block_6's SiLU(``c1_r`` out)], ``upsampler.0`` conv and PixelShuffle. Output in [0, 1] (no mean added).

Each Conv3XC exists in two forms, both detected and loaded:

- training form, keys ``sk`` (1x1 shortcut) and ``conv.{0,1,2}`` (1x1 expand by ``gain``, 3x3 unpadded
  on the zero-padded input, 1x1 project); a checkpoint saved from it also carries ``eval_conv``, a
  derived copy that may be stale, which is dropped on load;
- re-parameterized form, key ``eval_conv`` (one 3x3 conv).

:meth:`SPAN.collapse` folds the training form exactly into the re-parameterized one
(:mod:`sredge.models.reparam`); ``sr-export`` calls it before export.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._blocks import DIV2K_MEAN
from sredge.models.archs._util import has_keys, shuffle_scale
from sredge.models.reparam import conv_then_pointwise, pointwise_then_conv, sum_branches
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

NUM_BLOCKS = 6
_CONVS = ("conv_1", "conv_2", *(f"block_{b}.c{i}_r" for b in range(1, NUM_BLOCKS + 1) for i in (1, 2, 3)))
"""Every Conv3XC in the network, by state-dict prefix."""


class Conv3XC(nn.Module):
    """A 3x3 conv, as branches (``training_form``) or as the single ``eval_conv`` they fold into."""

    def __init__(self, cin: int, cout: int, gain: int, training_form: bool):
        super().__init__()
        self.training_form = training_form
        if training_form:
            self.sk = nn.Conv2d(cin, cout, 1)
            self.conv = nn.Sequential(
                nn.Conv2d(cin, cin * gain, 1), nn.Conv2d(cin * gain, cout * gain, 3), nn.Conv2d(cout * gain, cout, 1)
            )
        else:
            self.eval_conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        if self.training_form:
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        return self.eval_conv(x)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (out, in, 3, 3), bias (out,)) of the single conv equal to this one."""
        if not self.training_form:
            return self.eval_conv.weight.detach(), self.eval_conv.bias.detach()
        c0, c1, c2 = self.conv
        chain = conv_then_pointwise(*pointwise_then_conv(c0.weight, c0.bias, c1.weight, c1.bias), c2.weight, c2.bias)
        return sum_branches(chain, (self.sk.weight, self.sk.bias))


class SPAB(nn.Module):
    """Swift parameter-free attention block; returns (output, SiLU of the first conv's output)."""

    def __init__(self, n: int, gain: int, training_form: bool):
        super().__init__()
        self.c1_r = Conv3XC(n, n, gain, training_form)
        self.c2_r = Conv3XC(n, n, gain, training_form)
        self.c3_r = Conv3XC(n, n, gain, training_form)

    def forward(self, x):
        # The authors' in-place SiLU overwrites c1_r's output, so the second output is SiLU(c1_r(x)).
        out1 = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(out1)))
        return (out3 + x) * (torch.sigmoid(out3) - 0.5), out1


class SPAN(nn.Module):
    """SPAN. Input (N, 3, H, W) RGB in [0, 1]; output (N, num_out_ch, H*s, W*s) in [0, 1]."""

    def __init__(self, scale: int, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48,
                 img_range: float = 255.0, gain: int = 2, training_form: bool = False):
        super().__init__()
        if num_in_ch != 3:
            raise ValueError("SPAN subtracts the RGB mean: num_in_ch must be 3")
        self.hparams = {"scale": scale, "num_in_ch": num_in_ch, "num_out_ch": num_out_ch,
                        "feature_channels": feature_channels, "img_range": img_range, "gain": gain}
        self.training_form = training_form
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        n = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, n, gain, training_form)
        for b in range(1, NUM_BLOCKS + 1):
            self.add_module(f"block_{b}", SPAB(n, gain, training_form))
        self.conv_cat = nn.Conv2d(n * 4, n, 1)
        self.conv_2 = Conv3XC(n, n, gain, training_form)
        self.upsampler = nn.Sequential(nn.Conv2d(n, num_out_ch * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x):
        feature = self.conv_1((x - self.mean) * self.img_range)
        out, out_b1 = feature, None
        for b in range(1, NUM_BLOCKS + 1):
            out, first = getattr(self, f"block_{b}")(out)
            out_b1 = out if b == 1 else out_b1
        out = self.conv_cat(torch.cat([feature, self.conv_2(out), out_b1, first], dim=1))
        return self.upsampler(out)

    def collapse(self) -> SPAN:
        """The re-parameterized network computing the same function (``self`` if already collapsed).

        Every Conv3XC's branches fold into one 3x3 conv; other weights are copied. The result is a new
        module in eval mode, float32, on ``self``'s device; ``self`` is left unchanged.
        """
        if not self.training_form:
            return self
        out = SPAN(**self.hparams, training_form=False).to(self.mean.device)
        sd = {k: v for k, v in self.state_dict().items() if not k.startswith(_CONVS)}
        for name in _CONVS:
            w, b = self.get_submodule(name).folded()
            sd[f"{name}.eval_conv.weight"], sd[f"{name}.eval_conv.bias"] = w, b
        out.load_state_dict(sd, strict=True)
        return out.to(torch.float32).eval()


def _form(sd: StateDict) -> bool | None:
    """True for the training form, False for the re-parameterized one, None if neither fits every conv."""
    train = [has_keys(sd, (f"{c}.sk.weight", f"{c}.conv.0.weight", f"{c}.conv.1.weight", f"{c}.conv.2.weight"))
             for c in _CONVS]
    if all(train):
        return True
    if not any(train) and all(f"{c}.eval_conv.weight" in sd for c in _CONVS):
        return False
    return None


_KEY = re.compile(r"(?:(?:conv_[12]|block_[1-6]\.c[123]_r)\.(?:eval_conv|sk|conv\.[012])|conv_cat|upsampler\.0)"
                  r"\.(?:weight|bias)")
"""Every key SPAN has; the challenge's other blocks (learnable activations, grouped Conv3XC) do not fit."""


def detect(sd: StateDict) -> HParams | None:
    if not has_keys(sd, ("conv_cat.weight", "upsampler.0.weight")) or not all(_KEY.fullmatch(k) for k in sd):
        return None
    training_form = _form(sd)
    if training_form is None:
        return None
    first = sd["conv_1.conv.0.weight" if training_form else "conv_1.eval_conv.weight"]
    num_in = int(first.shape[1])
    n = int(sd["conv_cat.weight"].shape[0])
    if num_in != 3 or int(sd["conv_cat.weight"].shape[1]) != 4 * n:
        return None
    gain = 2
    if training_form:
        if int(first.shape[0]) % num_in:
            return None
        gain = int(first.shape[0]) // num_in
    # A grouped Conv3XC (the challenge's Conv3XC2) has fewer input channels per kernel.
    inner = sd["block_1.c1_r.conv.1.weight" if training_form else "block_1.c1_r.eval_conv.weight"]
    if int(inner.shape[1]) != n * (gain if training_form else 1):
        return None
    scale = shuffle_scale(int(sd["upsampler.0.weight"].shape[0]), num_in)
    if scale is None:
        return None
    return {"scale": scale, "num_in_ch": num_in, "num_out_ch": num_in, "feature_channels": n,
            "img_range": 255.0, "gain": gain, "training_form": training_form}


def adapt_state_dict(sd: StateDict) -> dict:
    """A training-form checkpoint's ``eval_conv`` entries are derived (and may be stale): drop them."""
    if _form(sd):
        return {k: v for k, v in sd.items() if ".eval_conv." not in k}
    return dict(sd)


def _io(hp: HParams) -> ArchIO:
    # fp16_safe, measured on the NTIRE 2024 ch28 checkpoint: Set5 Y-PSNR 31.7384 dB in float16 vs
    # 31.7390 in float32 (PyTorch); features are scaled by img_range=255 but stay in the hundreds.
    return ArchIO(3, hp.get("num_out_ch", 3), "rgb", fp16_safe=True)


ARCH = ArchSpec(
    name="span",
    title="SPAN (Wan et al. 2024, swift parameter-free attention network)",
    build=SPAN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={
        **{f"span_ch48_x{s}": {"scale": s, "feature_channels": 48} for s in (2, 4)},
        "span_ch28_ntire24_x4": {"scale": 4, "feature_channels": 28},
    },
    test_config={"scale": 2, "feature_channels": 8, "training_form": True},
    adapt_state_dict=adapt_state_dict,
)
