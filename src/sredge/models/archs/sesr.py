"""SESR-style network of collapsible linear blocks (after Bhardwaj et al., MLSys 2022), sredge's own code.

Training form: every convolution is a *linear block*, a k x k conv into ``expand`` channels
followed by a 1 x 1 conv back down (no activation between them), and the body blocks add their
input (a short residual). Such a block is one k x k convolution in disguise, so the exported
network (:meth:`SESR.collapse`) is a plain stack of small convolutions:

    5x5 conv (C -> f), PReLU
    m x [3x3 conv (f -> f), PReLU]          (each conv already includes its block's identity)
    + the first layer's output               (long residual)
    5x5 conv (f -> C*s*s), PixelShuffle(s)
    + nearest-upsampled input                (the input residual)

The over-parameterized form only changes how training moves the weights. Because both parts of a
block are linear, :class:`LinearBlock` can compute its folded kernel on each forward (a tiny matrix
product) and run one convolution: the same function of the same parameters, so the same gradients,
at the cost of the collapsed network. ``expanded=True`` runs the two convolutions literally (the
reference the collapse is tested against). Both folds are exact at the border (k x k then 1 x 1).

Key layout (sr-train's checkpoints): ``head.conv.*``/``head.proj.*``, ``head_act``, ``body.N.block``,
``body.N.act``, ``tail.*``; the collapsed form: ``head.weight``, ``body.N.conv``, ``tail.weight``, ...
Y or RGB in [0, 1].
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models import reparam
from sredge.models.archs._util import count_indexed, has_keys, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict


class LinearBlock(nn.Module):
    """k x k conv (cin -> expand) then 1 x 1 conv (expand -> cout), plus the input when ``residual``.

    Input (N, cin, H, W); output (N, cout, H, W); zero padding k // 2.
    """

    def __init__(self, cin: int, cout: int, k: int, expand: int, residual: bool):
        super().__init__()
        if residual and cin != cout:
            raise ValueError("a residual linear block needs cin == cout")
        self.conv = nn.Conv2d(cin, expand, k, padding=k // 2)
        self.proj = nn.Conv2d(expand, cout, 1)
        self.residual, self.k = residual, k
        self.expanded = False

    def folded(self, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The single conv (weight (cout, cin, k, k), bias (cout,)) this block equals.

        Folded by :mod:`sredge.models.reparam`, differentiably: in float64 when ``exact`` (for
        export), else in the parameters' dtype (for training, on every step).
        """
        w, b = reparam.conv_then_pointwise(self.conv.weight, self.conv.bias, self.proj.weight, self.proj.bias,
                                           float64=exact)
        if self.residual:
            eye = reparam.identity_conv(w.shape[0], self.k, dtype=w.dtype, device=w.device)
            w, b = reparam.sum_branches((w, b), eye, float64=exact)
        return w, b

    def forward(self, x):
        if self.expanded:
            y = self.proj(self.conv(x))
            return y + x if self.residual else y
        w, b = self.folded()
        return F.conv2d(x, w, b, padding=self.k // 2)


class _Layout(nn.Module):
    """The data flow both forms share: head, body blocks, long residual, tail, pixel shuffle, input residual."""

    def forward(self, x):
        h = self.head_act(self.head(x))
        y = h
        for blk in self.body:
            y = blk(y)
        out = F.pixel_shuffle(self.tail(y + h), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class SESR(_Layout):
    """Training form. Input (N, C, H, W) in [0, 1]; output (N, C, H*scale, W*scale)."""

    def __init__(self, scale: int, num_channels: int = 1, feats: int = 16, blocks: int = 5, expand: int = 256):
        super().__init__()
        c = num_channels
        self.head = LinearBlock(c, feats, 5, expand, residual=False)
        self.head_act = nn.PReLU(feats)
        self.body = nn.ModuleList(_BodyBlock(LinearBlock(feats, feats, 3, expand, residual=True), feats)
                                  for _ in range(blocks))
        self.tail = LinearBlock(feats, c * scale * scale, 5, expand, residual=False)
        self.scale = scale
        self.hparams = {"scale": scale, "num_channels": c, "feats": feats, "blocks": blocks}

    def set_expanded(self, expanded: bool) -> SESR:
        """Run every linear block as its two literal convolutions (True) or as its folded kernel."""
        for m in self.modules():
            if isinstance(m, LinearBlock):
                m.expanded = expanded
        return self

    def collapse(self) -> SESRCollapsed:
        """The deployed form: each linear block folded (in float64) into one convolution."""
        hp = self.hparams
        out = SESRCollapsed(hp["scale"], hp["num_channels"], hp["feats"], hp["blocks"])
        with torch.no_grad():
            for dst, src in [(out.head, self.head), (out.tail, self.tail)] + [
                    (d.conv, s.block) for d, s in zip(out.body, self.body)]:
                w, b = src.folded(exact=True)
                dst.weight.copy_(w)
                dst.bias.copy_(b)
            out.head_act.load_state_dict(self.head_act.state_dict())
            for d, s in zip(out.body, self.body):
                d.act.load_state_dict(s.act.state_dict())
        return out.eval()


class _BodyBlock(nn.Module):
    def __init__(self, block: nn.Module, feats: int):
        super().__init__()
        self.block, self.act = block, nn.PReLU(feats)

    def forward(self, x):
        return self.act(self.block(x))


class _PlainBlock(nn.Module):
    def __init__(self, feats: int):
        super().__init__()
        self.conv, self.act = nn.Conv2d(feats, feats, 3, padding=1), nn.PReLU(feats)

    def forward(self, x):
        return self.act(self.conv(x))


class SESRCollapsed(_Layout):
    """Deployed form (what sr-export writes). Input (N, C, H, W) in [0, 1]; output (N, C, H*s, W*s)."""

    def __init__(self, scale: int, num_channels: int = 1, feats: int = 16, blocks: int = 5):
        super().__init__()
        c = num_channels
        self.head = nn.Conv2d(c, feats, 5, padding=2)
        self.head_act = nn.PReLU(feats)
        self.body = nn.ModuleList(_PlainBlock(feats) for _ in range(blocks))
        self.tail = nn.Conv2d(feats, c * scale * scale, 5, padding=2)
        self.scale = scale


_TRAINING_KEY = re.compile(
    r"(head|tail|body\.\d+\.block)\.(conv|proj)\.(weight|bias)$|(head_act|body\.\d+\.act)\.weight$")
_COLLAPSED_KEY = re.compile(r"(head|tail|body\.\d+\.conv)\.(weight|bias)$|(head_act|body\.\d+\.act)\.weight$")


def _form(sd: StateDict) -> bool | None:
    """True: training form, False: collapsed, None: not this architecture."""
    if not sd:
        return None
    if all(_TRAINING_KEY.match(k) for k in sd) and has_keys(sd, ("head.conv.weight", "tail.proj.weight")):
        return True
    if all(_COLLAPSED_KEY.match(k) for k in sd) and has_keys(sd, ("head.weight", "tail.weight")):
        return False
    return None


def build(scale: int, num_channels: int = 1, feats: int = 16, blocks: int = 5, expand: int = 256,
          training_form: bool = True) -> nn.Module:
    """The training form (``training_form``) or the collapsed form of the network."""
    if training_form:
        return SESR(scale, num_channels, feats, blocks, expand)
    return SESRCollapsed(scale, num_channels, feats, blocks)


def detect(sd: StateDict) -> HParams | None:
    form = _form(sd)
    if form is None:
        return None
    head = sd["head.conv.weight"] if form else sd["head.weight"]
    tail = sd["tail.proj.weight"] if form else sd["tail.weight"]
    feats, c = int(head.shape[0] if not form else sd["head.proj.weight"].shape[0]), int(head.shape[1])
    scale = shuffle_scale(int(tail.shape[0]), c)
    if scale is None:
        return None
    blocks = count_indexed(sd, "body.")
    hp: HParams = {"scale": scale, "num_channels": c, "feats": feats, "blocks": blocks, "training_form": form}
    if form:
        hp["expand"] = int(head.shape[0])
    return hp


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_channels", 1)
    return ArchIO(c, c, "y" if c == 1 else "rgb")


ARCH = ArchSpec(
    name="sesr",
    title="SESR collapsible linear blocks (after Bhardwaj et al. 2022), sredge's implementation",
    build=build,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    # M5 is the paper's small size; M9 (x2, x3) and M11 (x4) are the bundled models' (docs/sr-models.md).
    variants={f"sesr_m{m}_x{s}": {"scale": s, "feats": 16, "blocks": m} for m in (5, 9, 11) for s in (2, 3, 4)},
    test_config={"scale": 2, "feats": 8, "blocks": 2, "expand": 16},
)
