"""CSNLN (Mei et al., CVPR 2020, "Image Super-Resolution with Cross-Scale Non-Local Attention and
Exhaustive Self-Exemplars Mining").

Written from the authors' ``src/model/csnln.py``, ``src/model/attention.py``,
``src/model/common.py`` and ``src/model/utils/tools.py`` in
github.com/SHI-Labs/Cross-Scale-Non-Local-Attention (commit e12b906). Their per-image loop
in the cross-scale attention is batched here (unfold, batched matmul, fold: the same sums);
their attention modules hard-code 128 channels, here they follow ``n_feats`` (the same
network at the published 128).

Key layout (theirs, EDSR-PyTorch style):

- ``sub_mean`` / ``add_mean``: MeanShift 1x1 convs; ``head.{0,1}.{0,1}``: two 3x3 conv + PReLU.
- ``SEM``: one self-exemplar mining cell, applied ``depth`` times with shared weights:
  ``multi_source_projection`` (``up_attention``: cross-scale attention with
  ``conv_match_1``, ``conv_match_2``, ``conv_assembly`` 1x1 conv + PReLU and an
  ``escape_NaN`` buffer; ``down_attention``: in-scale non-local attention with
  ``conv_match1``, ``conv_match2``, ``conv_assembly``; ``upsample.{0,1}`` ConvTranspose2d +
  PReLU; ``encoder.body.{0,1,2}`` a residual conv, PReLU, conv), ``down_sample_1`` /
  ``down_sample_2`` strided conv + PReLU, ``error_encode`` ConvTranspose2d + PReLU,
  ``post_conv.{0,1}`` conv + PReLU. x4 has a second projection stage
  (``multi_source_projection_2``, ``down_sample_3``, ``down_sample_4``, ``error_encode_2``)
  and no ``down_sample_2``.
- ``tail.0``: 3x3 conv over the ``depth`` concatenated HR estimates, n * depth -> 3.

Heavy: the in-scale non-local attention holds an (H*W) x (H*W) float32 matrix and the
cross-scale one an (H*W / s^2) x (H*W) matrix per image, so memory grows with the square of
the tile's pixel count: about 4 * (H*W)^2 bytes, 1 GiB for a 128x128 tile at x2/x3, and 16
times that at x4, whose second projection attends at twice the resolution; use small tiles.
Their dot products run over unnormalised features of [0, 255] inputs and are not
fp16-safe. Inputs must be a multiple of the attention's scale (2 for x2 and x4, 3 for x3),
which the authors' code also needs. ONNX export writes im2col/Col2Im-style ops (runs
in ONNX Runtime). I/O: RGB in [0, rgb_range] (255 for the published checkpoints).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._blocks import MeanShift, rgb_range_from_mean_shift
from sredge.models.archs._util import has_keys
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

# scale -> (kernel, stride, padding) of the projection's (transposed) convs; x4 starts with x2.
_PROJ = {2: (6, 2, 2), 3: (9, 3, 3), 4: (6, 2, 2)}


def _conv_act(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.PReLU())


class NonLocalAttention(nn.Module):
    """In-scale non-local attention: every pixel attends to every pixel of the same map."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_match1 = _conv_act(channels, channels // 2, 1)
        self.conv_match2 = _conv_act(channels, channels // 2, 1)
        self.conv_assembly = _conv_act(channels, channels, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        query = self.conv_match1(x).flatten(2).transpose(1, 2)  # (N, HW, C/2)
        key = self.conv_match2(x).flatten(2)  # (N, C/2, HW)
        value = self.conv_assembly(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        score = torch.softmax(torch.bmm(query, key), dim=2)
        return torch.bmm(score, value).transpose(1, 2).reshape(n, -1, h, w)


class CrossScaleAttention(nn.Module):
    """Each pixel attends to 3x3 patches of the map downscaled by ``scale`` and pastes their
    (3*scale)x(3*scale) full-resolution counterparts: output ``scale`` times larger."""

    def __init__(self, channels: int, scale: int, ksize: int = 3, softmax_scale: float = 10.0):
        super().__init__()
        self.scale, self.ksize, self.softmax_scale = scale, ksize, softmax_scale
        self.register_buffer("escape_NaN", torch.tensor([1e-4]))
        self.conv_match_1 = _conv_act(channels, channels // 2, 1)
        self.conv_match_2 = _conv_act(channels, channels // 2, 1)
        self.conv_assembly = _conv_act(channels, channels, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        s, k = self.scale, self.ksize
        big = k * s
        # Full-resolution patches (big x big, stride s; "same" padding is s per side when s divides H, W).
        raw = F.unfold(self.conv_assembly(x), big, stride=s, padding=s)  # (N, C*big*big, L)
        ref = self.conv_match_2(F.interpolate(x, scale_factor=1.0 / s, mode="bilinear", align_corners=False))
        patches = F.unfold(ref, k, padding=k // 2).transpose(1, 2)  # (N, L, C/2*k*k)
        norm = torch.maximum(patches.pow(2).sum(dim=2, keepdim=True).sqrt(), self.escape_NaN)
        queries = F.unfold(self.conv_match_1(x), k, padding=k // 2)  # (N, C/2*k*k, HW)
        score = torch.softmax(torch.bmm(patches / norm, queries) * self.softmax_scale, dim=1)  # (N, L, HW)
        # Transposed conv of the scores with the raw patches, per image: fold of raw @ score.
        out = F.fold(torch.bmm(raw, score), (h * s, w * s), big, stride=s, padding=s)
        return out / 6.0


class ResBlock(nn.Module):
    """conv, PReLU, conv, plus the input (EDSR-PyTorch ``ResBlock`` names)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, x):
        return self.body(x) + x


class MultisourceProjection(nn.Module):
    """Cross-scale attention corrected by the upsampled in-scale attention: output ``factor`` times larger."""

    def __init__(self, channels: int, factor: int):
        super().__init__()
        k, stride, pad = _PROJ[factor]
        self.up_attention = CrossScaleAttention(channels, factor)
        self.down_attention = NonLocalAttention(channels)
        self.upsample = nn.Sequential(nn.ConvTranspose2d(channels, channels, k, stride=stride, padding=pad), nn.PReLU())
        self.encoder = ResBlock(channels)

    def forward(self, x):
        down_map = self.upsample(self.down_attention(x))
        return down_map + self.encoder(self.up_attention(x) - down_map)


def _strided(channels: int, k: int, stride: int, pad: int, transposed: bool = False) -> nn.Sequential:
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    return nn.Sequential(cls(channels, channels, k, stride=stride, padding=pad), nn.PReLU())


class RecurrentProjection(nn.Module):
    """The self-exemplar mining cell: returns (LR features for the next step, HR estimate)."""

    def __init__(self, channels: int, scale: int):
        super().__init__()
        self.scale = scale
        k, stride, pad = _PROJ[scale]
        factor = 2 if scale == 4 else scale
        self.multi_source_projection = MultisourceProjection(channels, factor)
        self.down_sample_1 = _strided(channels, k, stride, pad)
        if scale != 4:
            self.down_sample_2 = _strided(channels, k, stride, pad)
        self.error_encode = _strided(channels, k, stride, pad, transposed=True)
        self.post_conv = _conv_act(channels, channels, 3)
        if scale == 4:
            self.multi_source_projection_2 = MultisourceProjection(channels, 2)
            self.down_sample_3 = _strided(channels, 8, 4, 2)
            self.down_sample_4 = _strided(channels, 8, 4, 2)
            self.error_encode_2 = _strided(channels, 8, 4, 2, transposed=True)

    def forward(self, x):
        x_up = self.multi_source_projection(x)
        h_estimate = x_up + self.error_encode(x - self.down_sample_1(x_up))
        if self.scale == 4:
            x_up_2 = self.multi_source_projection_2(h_estimate)
            h_estimate = x_up_2 + self.error_encode_2(x - self.down_sample_3(x_up_2))
            return self.post_conv(self.down_sample_4(h_estimate)), h_estimate
        return self.post_conv(self.down_sample_2(h_estimate)), h_estimate


class CSNLN(nn.Module):
    """CSNLN. Input (N, 3, H, W) RGB in [0, rgb_range], H and W multiples of 2 (x2, x4) or 3 (x3);
    output (N, 3, H*scale, W*scale), same range."""

    def __init__(self, scale: int, n_feats: int = 128, depth: int = 12, rgb_range: float = 255.0):
        super().__init__()
        if scale not in _PROJ:
            raise ValueError(f"CSNLN supports scales 2, 3 and 4, not {scale}")
        self.depth = depth
        self.sub_mean = MeanShift(rgb_range, -1)
        self.head = nn.Sequential(_conv_act(3, n_feats, 3), _conv_act(n_feats, n_feats, 3))
        self.SEM = RecurrentProjection(n_feats, scale)
        self.tail = nn.Sequential(nn.Conv2d(n_feats * depth, 3, 3, padding=1))
        self.add_mean = MeanShift(rgb_range, 1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        estimates = []
        for _ in range(self.depth):
            x, h_estimate = self.SEM(x)
            estimates.append(h_estimate)
        return self.add_mean(self.tail(torch.cat(estimates, dim=1)))


def detect(sd: StateDict) -> HParams | None:
    msp = "SEM.multi_source_projection."
    keys = (
        "sub_mean.weight",
        "add_mean.bias",
        "head.0.0.weight",
        "head.1.1.weight",
        f"{msp}up_attention.conv_match_1.0.weight",
        f"{msp}up_attention.escape_NaN",
        f"{msp}down_attention.conv_match1.0.weight",
        f"{msp}upsample.0.weight",
        f"{msp}encoder.body.0.weight",
        "SEM.down_sample_1.0.weight",
        "SEM.error_encode.0.weight",
        "SEM.post_conv.0.weight",
        "tail.0.weight",
    )
    if not has_keys(sd, keys):
        return None
    n_feats, n_colors = (int(d) for d in sd["head.0.0.weight"].shape[:2])
    tail_in = int(sd["tail.0.weight"].shape[1])
    if n_colors != 3 or tail_in % n_feats:
        return None
    k = int(sd["SEM.down_sample_1.0.weight"].shape[-1])
    if "SEM.multi_source_projection_2.upsample.0.weight" in sd and "SEM.down_sample_3.0.weight" in sd:
        scale = 4
    elif "SEM.down_sample_2.0.weight" in sd and k in (6, 9):
        scale = 2 if k == 6 else 3
    else:
        return None
    return {"scale": scale, "n_feats": n_feats, "depth": tail_in // n_feats, "rgb_range": rgb_range_from_mean_shift(sd)}


def _io(hp: HParams) -> ArchIO:
    return ArchIO(
        3,
        3,
        "rgb",
        value_range=float(hp.get("rgb_range", 255.0)),
        size_multiple=3 if hp["scale"] == 3 else 2,
        fp16_safe=False,
    )


ARCH = ArchSpec(
    name="csnln",
    title="CSNLN, cross-scale non-local attention (Mei et al. 2020); memory grows with tile area squared",
    build=CSNLN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4),
    variants={f"csnln_x{s}": {"scale": s} for s in (2, 3, 4)},
    test_config={"scale": 2, "n_feats": 8, "depth": 1},
    export_sizes=((24, 32), (18, 26)),
)
