"""EFDN (Wang, CVPR Workshops 2022, "Edge-enhanced Feature Distillation Network for Efficient
Super-Resolution"; NTIRE 2022 efficient SR challenge), in its *deploy* form.

Written from the authors' ``models/EFDN_deploy.py`` and ``models/unitv2.py`` in
github.com/icandle/EFDN (commit 322cada), whose test script loads the published
``EFDN_gv.pth`` into this form. Training uses edge-enhanced diverse branch blocks (EDBB:
3x3, 1x1, 1x1-3x3, Sobel-x/y and Laplacian branches) that are re-parameterised into one 3x3
conv per block for deployment; only the re-parameterised (deploy) weights are supported, a
training-form checkpoint (keys ``conv1x1_sbx``, ``conv1x1_lpl``, ...) is not recognised.

Key layout (theirs):

- ``head``: conv in -> n_feats.
- ``cells.{0..3}``: ``conv1.conv1x1`` + ``conv1.act`` (1x1 conv, PReLU), ``conv2`` / ``conv3``
  (EDBB deploy: ``rep_conv`` 3x3 + ``act`` PReLU), ``branch.{0..3}`` (1x1, n -> n/2 for the
  block input and the three conv outputs), ``fuse`` (1x1, 2n -> n), ``att`` RFDN's enhanced
  spatial attention (``conv1, conv_f, conv_max, conv2, conv3, conv3_, conv4``, n/4 channels
  inside; shared with RFDN in ``_distill.ESA``), plus the cell input.
- ``local_fuse.{0,1,2}``: 1x1 convs 2n -> n joining cell outputs (the third joins cells 2
  and 4, as the authors wrote it).
- ``tail.0``: conv n -> out * scale^2, then PixelShuffle(scale).

The attention strides by 2 then max-pools 7x7 with stride 3, so inputs must be at least
15x15 pixels. Output clamped to [0, 1]. I/O: RGB in [0, 1] in and out.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from sredge.models.archs._distill import ESA
from sredge.models.archs._util import has_keys, max_index, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_TRAINING_BRANCH = re.compile(r"cells\.\d+\.conv[23]\.(?!rep_conv\.|act\.)")


class Conv1x1Act(nn.Module):
    """1x1 conv and a per-channel PReLU (the cell's first conv)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.conv1x1 = nn.Conv2d(n_feats, n_feats, 1)
        self.act = nn.PReLU(n_feats)

    def forward(self, x):
        return self.act(self.conv1x1(x))


class EDBBDeploy(nn.Module):
    """An edge-enhanced diverse branch block after re-parameterisation: one 3x3 conv and a PReLU."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.rep_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.act = nn.PReLU(n_feats)

    def forward(self, x):
        return self.act(self.rep_conv(x))


class Cell(nn.Module):
    """1x1 conv then two re-parameterised 3x3 convs; their distilled halves fused, attended, plus the input."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.conv1 = Conv1x1Act(n_feats)
        self.conv2 = EDBBDeploy(n_feats)
        self.conv3 = EDBBDeploy(n_feats)
        self.fuse = nn.Conv2d(2 * n_feats, n_feats, 1)
        self.att = ESA(n_feats, n_feats // 4, full=True)
        self.branch = nn.ModuleList([nn.Conv2d(n_feats, n_feats // 2, 1) for _ in range(4)])

    def forward(self, x):
        out1 = self.conv1(x)
        out2 = self.conv2(out1)
        out3 = self.conv3(out2)
        parts = [b(t) for b, t in zip(self.branch, (x, out1, out2, out3), strict=True)]
        return self.att(self.fuse(torch.cat(parts, dim=1))) + x


class EFDN(nn.Module):
    """EFDN (deploy form). Input (N, C, H, W) in [0, 1], H and W >= 15; output (N, C, H*scale, W*scale) in [0, 1]."""

    def __init__(self, scale: int, in_channels: int = 3, n_feats: int = 48, out_channels: int = 3):
        super().__init__()
        self.head = nn.Conv2d(in_channels, n_feats, 3, 1, 1)
        self.cells = nn.ModuleList([Cell(n_feats) for _ in range(4)])
        self.local_fuse = nn.ModuleList([nn.Conv2d(2 * n_feats, n_feats, 1) for _ in range(3)])
        self.tail = nn.Sequential(nn.Conv2d(n_feats, out_channels * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        out0 = self.head(x)
        out1 = self.cells[0](out0)
        out2 = self.cells[1](out1)
        out3 = self.cells[2](self.local_fuse[0](torch.cat([out1, out2], dim=1)))
        out4 = self.cells[3](self.local_fuse[1](torch.cat([out2, out3], dim=1)))
        out = self.local_fuse[2](torch.cat([out2, out4], dim=1)) + out0
        return self.tail(out).clamp(0, 1)


def detect(sd: StateDict) -> HParams | None:
    keys = (
        "head.weight",
        "cells.0.conv1.conv1x1.weight",
        "cells.0.conv2.rep_conv.weight",
        "cells.0.conv3.act.weight",
        "cells.0.att.conv_max.weight",
        "cells.0.branch.3.weight",
        "local_fuse.2.weight",
        "tail.0.weight",
    )
    if not has_keys(sd, keys) or max_index(sd, "cells.") != 3 or max_index(sd, "local_fuse.") != 2:
        return None
    if any(_TRAINING_BRANCH.match(k) for k in sd):  # EDBB branches not re-parameterised yet
        return None
    n_feats, in_ch = (int(d) for d in sd["head.weight"].shape[:2])
    # The tail's width is out * scale^2; every published EFDN maps RGB to RGB.
    scale = shuffle_scale(int(sd["tail.0.weight"].shape[0]), in_ch)
    if scale is None or scale < 2:
        return None
    return {"scale": scale, "in_channels": in_ch, "n_feats": n_feats, "out_channels": in_ch}


def _io(hp: HParams) -> ArchIO:
    return ArchIO(hp.get("in_channels", 3), hp.get("out_channels", 3), "rgb", value_range=1.0)


ARCH = ArchSpec(
    name="efdn",
    title="EFDN, edge-enhanced feature distillation network, deploy form (Wang 2022)",
    build=EFDN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"efdn_x{s}": {"scale": s} for s in (2, 3, 4)},
    test_config={"scale": 2, "n_feats": 8},
)
