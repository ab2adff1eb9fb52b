"""SwinIR (Liang et al., ICCVW 2021): residual Swin Transformer blocks for image restoration.

Key layout of the official code (JingyunLiang/SwinIR ``models/network_swinir.py``):

* ``conv_first`` 3x3 conv, in_chans -> embed_dim.
* ``patch_embed.norm`` LayerNorm (only when ``patch_norm``); ``absolute_pos_embed``
  (1, img_size**2, embed_dim) only when ``ape`` (no released checkpoint uses it).
* ``layers.N`` residual Swin Transformer blocks (RSTB):
  ``layers.N.residual_group.blocks.M.{norm1, attn.relative_position_bias_table, attn.qkv,
  attn.proj, norm2, mlp.fc1, mlp.fc2}``, odd blocks use windows shifted by window_size // 2;
  then ``layers.N.conv`` (resi_connection ``"1conv"``) or ``layers.N.conv.{0,2,4}``
  (``"3conv"``: 3x3 to dim/4, 1x1, 3x3 back, LeakyReLU 0.2 between).
* ``norm`` LayerNorm, ``conv_after_body`` (1conv or 3conv, as above).
* Reconstruction by ``upsampler``:

  - ``"pixelshuffle"`` (classical SR): ``conv_before_upsample.0`` (embed_dim -> num_feat,
    LeakyReLU 0.01), ``upsample.{0,2,4}`` conv + PixelShuffle(2) per factor 2 (or one
    PixelShuffle(3) at x3), ``conv_last``.
  - ``"pixelshuffledirect"`` (lightweight SR): ``upsample.0`` conv to in_chans * s * s,
    then PixelShuffle(s).
  - ``"nearest+conv"`` (real-world SR): ``conv_before_upsample.0``, then per factor 2 a
    nearest x2 resize + ``conv_upK`` + LeakyReLU 0.2 (``conv_up1`` .. ``conv_up3`` for x2 .. x8),
    ``conv_hr``, ``conv_last``.
  - ``""`` (denoising / JPEG artefact removal, scale 1): ``conv_last`` embed_dim -> in_chans,
    added to the input.

The official ``relative_position_index`` and ``attn_mask`` buffers are derived data: this
module computes them itself (the index as a non-persistent buffer, the shifted-window mask
from the padded input size on every call), and :func:`adapt_state_dict` drops them.

I/O: RGB (or one channel) in [0, 1], img_range 1.0; the official DIV2K mean
(0.4488, 0.4371, 0.4040) is subtracted inside when in_chans == 3. ``forward`` reflect-pads
H and W up to a multiple of window_size (as the official ``check_image_size``) and crops the
output back to (H * scale, W * scale), so any input size works and the ONNX export keeps
batch, height and width dynamic (size_multiple 1). Exception: with ``ape`` the padded input
must be exactly img_size x img_size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.archs._blocks import make_upsampler, upsampler_scale
from sredge.models.archs._util import count_indexed, has_keys, shuffle_scale
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_RGB_MEAN = (0.4488, 0.4371, 0.4040)
_MASK_VALUE = -100.0  # the official code's additive mask for tokens of different regions
_UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
_DERIVED_BUFFERS = ("relative_position_index", "attn_mask")
# Parameter names allowed under one Swin block; anything else (Swin2SR's logit_scale/cpb_mlp,
# HAT's conv_block, ...) means another architecture.
_BLOCK_KEYS = frozenset(
    f"{m}.{p}"
    for m in ("norm1", "norm2", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
    for p in ("weight", "bias")
) | {"attn.relative_position_bias_table", *(f"attn.{b}" for b in _DERIVED_BUFFERS), "attn_mask"}


def _relative_position_index(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) index into the ((2ws-1)^2, heads) bias table (row-major, as the official)."""
    ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + ws - 1
    dx = xs[:, None] - xs[None, :] + ws - 1
    return dy * (2 * ws - 1) + dx


def _shifted_window_mask(hp, wp, ws: int, shift: int, like: torch.Tensor) -> torch.Tensor:
    """Additive attention mask (nW, ws*ws, ws*ws) for windows shifted by ``shift``.

    ``hp``, ``wp`` are the padded feature size (multiples of ws, possibly symbolic under
    torch.export). After the cyclic shift, rows [hp-ws, hp-shift) and [hp-shift, hp) (and the
    same columns) come from different image regions; tokens of different regions must not
    attend to each other. Built with tensor ops only, so the sizes stay symbolic.
    """
    rows = torch.arange(hp, device=like.device)
    cols = torch.arange(wp, device=like.device)
    row_region = (rows >= hp - ws).to(torch.int64) + (rows >= hp - shift).to(torch.int64)
    col_region = (cols >= wp - ws).to(torch.int64) + (cols >= wp - shift).to(torch.int64)
    region = row_region[:, None] * 3 + col_region[None, :]  # (hp, wp), 9 region labels
    win = region.reshape(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    differ = win[:, None, :] != win[:, :, None]
    zero = torch.zeros((), dtype=like.dtype, device=like.device)
    return torch.where(differ, zero + _MASK_VALUE, zero)


def _resi_conv(dim: int, kind: str) -> nn.Module:
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if kind == "3conv":
        q = dim // 4
        return nn.Sequential(
            nn.Conv2d(dim, q, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(q, q, 1, 1, 0),
            nn.LeakyReLU(0.2),
            nn.Conv2d(q, dim, 3, 1, 1),
        )
    raise ValueError(f"resi_connection must be '1conv' or '3conv', got {kind!r}")


class _WindowAttention(nn.Module):
    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool, qk_scale):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer(
            "relative_position_index", _relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x: (B*nW, N, C) tokens of each window; mask: (nW, N, N) additive or None.
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B*nW, heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(-1, nw, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.reshape(-1, self.num_heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _SwinBlock(nn.Module):
    def __init__(self, dim, num_heads, window_size, shift, mlp_ratio, qkv_bias, qk_scale):
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(dim)
        # int() as the official code; the epsilon only guards float error (60 * 2.0000001).
        self.mlp = _Mlp(dim, int(dim * mlp_ratio + 1e-6))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, Hp, Wp, C) channels-last, Hp and Wp multiples of window_size.
        b, hp, wp, c = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        nh, nw = hp // ws, wp // ws
        win = y.reshape(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        win = self.attn(win, mask if s else None)
        y = win.reshape(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class _BasicLayer(nn.Module):
    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale):
        super().__init__()
        self.blocks = nn.ModuleList(
            _SwinBlock(
                dim,
                num_heads,
                window_size,
                window_size // 2 if i % 2 else 0,  # odd blocks attend in shifted windows
                mlp_ratio,
                qkv_bias,
                qk_scale,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, mask)
        return x


class _RSTB(nn.Module):
    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, resi):
        super().__init__()
        self.residual_group = _BasicLayer(
            dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale
        )
        self.conv = _resi_conv(dim, resi)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, Hp, Wp, C); the conv runs channels-first.
        y = self.residual_group(x, mask).permute(0, 3, 1, 2)
        return self.conv(y).permute(0, 2, 3, 1) + x


class _PatchEmbed(nn.Module):
    """Holds ``patch_embed.norm`` (patch_size 1: embedding is only a reshape + optional norm)."""

    def __init__(self, dim: int, patch_norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if patch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class SwinIR(nn.Module):
    """SwinIR super-resolution (or, with ``upsampler=""``, restoration at scale 1).

    Input (N, in_chans, H, W) in [0, 1] (RGB when in_chans == 3), any H and W above
    window_size / 2 (the reflect padding needs it); output
    (N, in_chans, H*scale, W*scale), nominally in [0, 1] (not clamped).

    Args:
        scale: Upscaling factor: 2, 3, 4, 8 (pixelshuffle), any square factor
            (pixelshuffledirect), 2, 4, 8 (nearest+conv), 1 (``upsampler=""``).
        in_chans: Image channels (3 RGB, 1 grey).
        embed_dim: Transformer width.
        depths: Swin blocks per RSTB.
        num_heads: Attention heads per RSTB.
        window_size: Attention window side; inputs are reflect-padded to a multiple of it.
        mlp_ratio: MLP hidden width / embed_dim.
        qkv_bias: Bias in the qkv projection.
        qk_scale: Attention scale; None means head_dim ** -0.5.
        ape: Absolute position embedding (fixes the padded input size to img_size).
        patch_norm: LayerNorm after the patch embedding.
        img_size: Training patch size; only used for the ``ape`` embedding.
        img_range: Scale applied after mean subtraction (1.0 in every released model).
        upsampler: ``"pixelshuffle"``, ``"pixelshuffledirect"``, ``"nearest+conv"`` or ``""``.
        resi_connection: ``"1conv"`` or ``"3conv"``.
        num_feat: Width of the reconstruction convs (pixelshuffle, nearest+conv).
    """

    def __init__(
        self,
        scale: int = 4,
        in_chans: int = 3,
        embed_dim: int = 180,
        depths: tuple[int, ...] | list[int] = (6, 6, 6, 6, 6, 6),
        num_heads: tuple[int, ...] | list[int] = (6, 6, 6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        ape: bool = False,
        patch_norm: bool = True,
        img_size: int = 64,
        img_range: float = 1.0,
        upsampler: str = "pixelshuffle",
        resi_connection: str = "1conv",
        num_feat: int = 64,
    ):
        super().__init__()
        if upsampler not in _UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {_UPSAMPLERS}, got {upsampler!r}")
        if len(depths) != len(num_heads):
            raise ValueError(
                f"depths {list(depths)} and num_heads {list(num_heads)} differ in length"
            )
        if upsampler == "" and scale != 1:
            raise ValueError(f"upsampler '' is the scale-1 restoration head, got scale {scale}")
        if upsampler == "nearest+conv" and scale not in (2, 4, 8):
            raise ValueError(f"nearest+conv upsampler supports scales 2, 4, 8, got {scale}")
        self.scale = scale
        self.upsampler = upsampler
        self.window_size = window_size
        self.img_range = img_range
        self.ape = ape
        mean = _RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        # A plain attribute in the official code, so not part of its state dict.
        self.register_buffer("mean", torch.tensor(mean).reshape(1, -1, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = _PatchEmbed(embed_dim, patch_norm)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, img_size * img_size, embed_dim))
        self.layers = nn.ModuleList(
            _RSTB(embed_dim, d, h, window_size, mlp_ratio, qkv_bias, qk_scale, resi_connection)
            for d, h in zip(depths, num_heads)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)

        if upsampler in ("pixelshuffle", "nearest+conv"):
            # LeakyReLU's default slope 0.01 here, as the official code.
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU()
            )
        if upsampler == "pixelshuffle":
            self.upsample = make_upsampler(scale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, in_chans * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)
            )
        elif upsampler == "nearest+conv":
            self.n_up = int(math.log2(scale))
            for k in range(1, self.n_up + 1):
                setattr(self, f"conv_up{k}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # Written as ceil-to-multiple so the padded size is symbolically (n * ws) under export.
        ws = self.window_size
        h, w = x.shape[-2:]
        ph = (h + ws - 1) // ws * ws - h
        pw = (w + ws - 1) // ws * ws - w
        return F.pad(x, (0, pw, 0, ph), mode="reflect")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, Hp, Wp) -> same; transformer body runs channels-last.
        b, c, hp, wp = x.shape
        y = self.patch_embed(x.permute(0, 2, 3, 1))
        if self.ape:
            y = (y.reshape(b, -1, c) + self.absolute_pos_embed).reshape(b, hp, wp, c)
        ws = self.window_size
        mask = _shifted_window_mask(hp, wp, ws, ws // 2, y)
        for layer in self.layers:
            y = layer(y, mask)
        return self.norm(y).permute(0, 3, 1, 2)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = (self._pad(x) - self.mean) * self.img_range
        if self.upsampler == "":
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        else:
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            if self.upsampler == "pixelshuffle":
                x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
            elif self.upsampler == "pixelshuffledirect":
                x = self.upsample(x)
            else:
                x = self.conv_before_upsample(x)
                for k in range(1, self.n_up + 1):
                    conv = getattr(self, f"conv_up{k}")
                    x = self.lrelu(conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))
                x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + self.mean
        return x[:, :, : h * self.scale, : w * self.scale]


def _conv_kind(sd: StateDict, prefix: str) -> str | None:
    if f"{prefix}.weight" in sd:
        return "1conv"
    if has_keys(sd, (f"{prefix}.0.weight", f"{prefix}.2.weight", f"{prefix}.4.weight")):
        return "3conv"
    return None


def detect(sd: StateDict) -> HParams | None:
    blk0 = "layers.0.residual_group.blocks.0."
    if not has_keys(
        sd,
        (
            "conv_first.weight",
            "norm.weight",
            blk0 + "attn.relative_position_bias_table",
            blk0 + "attn.qkv.weight",
            blk0 + "mlp.fc1.weight",
        ),
    ):
        return None
    if any(k.startswith(blk0) and k[len(blk0) :] not in _BLOCK_KEYS for k in sd):
        return None
    embed_dim, in_chans = (int(v) for v in sd["conv_first.weight"].shape[:2])

    num_layers = count_indexed(sd, "layers.")
    depths, heads, windows = [], [], set()
    for i in range(num_layers):
        depths.append(count_indexed(sd, f"layers.{i}.residual_group.blocks."))
        table = sd.get(f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table")
        if table is None or depths[-1] == 0:
            return None
        side = round(math.sqrt(table.shape[0]))
        if side * side != table.shape[0] or side % 2 == 0:
            return None
        windows.add((side + 1) // 2)
        heads.append(int(table.shape[1]))
    if len(windows) != 1:
        return None
    window_size = windows.pop()

    resi = _conv_kind(sd, "conv_after_body")
    if resi is None or _conv_kind(sd, "layers.0.conv") != resi:
        return None
    hidden = int(sd[blk0 + "mlp.fc1.weight"].shape[0])

    hp: HParams = {
        "in_chans": in_chans,
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": heads,
        "window_size": window_size,
        "mlp_ratio": hidden / embed_dim,
        "qkv_bias": blk0 + "attn.qkv.bias" in sd,
        "ape": "absolute_pos_embed" in sd,
        "patch_norm": "patch_embed.norm.weight" in sd,
        "resi_connection": resi,
        "num_feat": 64,
        "qk_scale": None,  # not stored; every released model uses head_dim ** -0.5
        "img_size": 64,  # only matters with ape
        "img_range": 1.0,  # not stored; 1.0 in every released model
    }
    if hp["ape"]:
        n = int(sd["absolute_pos_embed"].shape[1])
        side = math.isqrt(n)
        if side * side != n:
            return None  # a non-square training patch; not expressible by img_size
        hp["img_size"] = side

    if "conv_up1.weight" in sd:
        hp["upsampler"] = "nearest+conv"
        hp["num_feat"] = int(sd["conv_before_upsample.0.weight"].shape[0])
        hp["scale"] = 2 ** sum(f"conv_up{k}.weight" in sd for k in (1, 2, 3))
    elif "conv_before_upsample.0.weight" in sd and "upsample.0.weight" in sd:
        hp["upsampler"] = "pixelshuffle"
        hp["num_feat"] = int(sd["conv_before_upsample.0.weight"].shape[0])
        hp["scale"] = upsampler_scale(sd, "upsample.", hp["num_feat"])
        if hp["scale"] is None:
            return None
    elif "upsample.0.weight" in sd:
        hp["upsampler"] = "pixelshuffledirect"
        hp["scale"] = shuffle_scale(int(sd["upsample.0.weight"].shape[0]), in_chans)
        if hp["scale"] is None:
            return None
    elif "conv_last.weight" in sd and sd["conv_last.weight"].shape[1] == embed_dim:
        hp["upsampler"] = ""
        hp["scale"] = 1
    else:
        return None
    return hp


def adapt_state_dict(sd: StateDict) -> dict:
    """Drop the official derived buffers (relative_position_index, attn_mask); keep the rest."""
    return {k: v for k, v in sd.items() if k.rsplit(".", 1)[-1] not in _DERIVED_BUFFERS}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("in_chans", 3)
    return ArchIO(c, c, "y" if c == 1 else "rgb", value_range=1.0, size_multiple=1, fp16_safe=True)


def _classical(scale: int) -> HParams:
    return {
        "scale": scale,
        "embed_dim": 180,
        "depths": [6] * 6,
        "num_heads": [6] * 6,
        "window_size": 8,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffle",
        "resi_connection": "1conv",
    }


def _lightweight(scale: int) -> HParams:
    return {
        "scale": scale,
        "embed_dim": 60,
        "depths": [6] * 4,
        "num_heads": [6] * 4,
        "window_size": 8,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffledirect",
        "resi_connection": "1conv",
    }


def _realsr(scale: int, large: bool = False) -> HParams:
    return {
        "scale": scale,
        "embed_dim": 240 if large else 180,
        "depths": [6] * (9 if large else 6),
        "num_heads": [8 if large else 6] * (9 if large else 6),
        "window_size": 8,
        "mlp_ratio": 2.0,
        "upsampler": "nearest+conv",
        "resi_connection": "3conv" if large else "1conv",
    }


ARCH = ArchSpec(
    name="swinir",
    title="SwinIR (Liang et al. 2021)",
    build=SwinIR,
    detect=detect,
    io=_io,
    scales=(1, 2, 3, 4, 8),
    variants={
        **{f"swinir_classical_x{s}": _classical(s) for s in (2, 3, 4, 8)},
        **{f"swinir_lightweight_x{s}": _lightweight(s) for s in (2, 3, 4)},
        "swinir_realsr_x2": _realsr(2),
        "swinir_realsr_x4": _realsr(4),
        "swinir_realsr_large_x4": _realsr(4, large=True),
    },
    test_config={
        "scale": 2,
        "embed_dim": 16,
        "depths": [2],
        "num_heads": [2],
        "window_size": 4,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffle",
        "resi_connection": "1conv",
        "num_feat": 16,
    },
    adapt_state_dict=adapt_state_dict,
)
