"""SwinIR: detection from the official key layout, strict loading, window maths.

Variants and the dynamic ONNX export are covered by test_zoo.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sredge.models.archs import swinir
from sredge.models.archs.fsrcnn import ARCH as FSRCNN_ARCH
from sredge.models.archs.swinir import ARCH
from sredge.models.loader import constructor_defaults

TINY = {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4}
# Every upsampler, 1conv/3conv, several layers, optional parts off. num_feat is stored only
# by the pixelshuffle and nearest+conv heads, so only those set it.
CASES = {
    "test_config": dict(ARCH.test_config),
    "classical_x3_two_layers": {
        **TINY,
        "scale": 3,
        "depths": [2, 3],
        "num_heads": [2, 3],
        "upsampler": "pixelshuffle",
        "num_feat": 8,
    },
    "classical_x8_3conv_bare": {
        **TINY,
        "scale": 8,
        "upsampler": "pixelshuffle",
        "num_feat": 8,
        "resi_connection": "3conv",
        "patch_norm": False,
        "qkv_bias": False,
        "mlp_ratio": 1.5,
    },
    "lightweight_x3": {**TINY, "scale": 3, "upsampler": "pixelshuffledirect", "window_size": 8},
    "lightweight_x4_3conv": {
        **TINY,
        "scale": 4,
        "upsampler": "pixelshuffledirect",
        "resi_connection": "3conv",
    },
    "realsr_x2": {**TINY, "scale": 2, "upsampler": "nearest+conv", "num_feat": 8},
    "realsr_x4_3conv": {
        **TINY,
        "scale": 4,
        "upsampler": "nearest+conv",
        "resi_connection": "3conv",
        "num_feat": 8,
    },
    "realsr_x8": {**TINY, "scale": 8, "upsampler": "nearest+conv", "num_feat": 8},
    "denoise_gray_x1": {**TINY, "scale": 1, "upsampler": "", "in_chans": 1},
}


def _full(hp):
    """Constructor defaults overlaid with ``hp``: what ``detect`` must recover."""
    return {**constructor_defaults(ARCH), **hp}


def _random_model(hp, seed=0):
    """A built model with every parameter random, so bias tables and norms all matter."""
    torch.manual_seed(seed)
    model = ARCH.build(**hp).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def _with_official_buffers(model):
    """The model's state dict plus the derived buffers the official code saves."""
    sd = dict(model.state_dict())
    for name, mod in model.named_modules():
        if isinstance(mod, swinir._WindowAttention):
            sd[f"{name}.relative_position_index"] = mod.relative_position_index.clone()
        if isinstance(mod, swinir._SwinBlock) and mod.shift:
            n = mod.window_size**2
            sd[f"{name}.attn_mask"] = torch.zeros(4, n, n)  # official: (nW of img_size, N, N)
    return sd


def _input(hp, n, h, w):
    return torch.rand(n, ARCH.io(hp).in_channels, h, w)


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(case):
    hp = CASES[case]
    model = _random_model(hp)
    sd = model.state_dict()
    assert not any(k.endswith(("relative_position_index", "attn_mask", "mean")) for k in sd)

    found = ARCH.detect(sd)
    assert found == _full(hp)

    fresh = ARCH.build(**found).eval()
    fresh.load_state_dict(ARCH.adapt_state_dict(sd), strict=True)
    x = _input(hp, 2, 13, 10)  # neither a multiple of 4 nor of 8
    with torch.no_grad():
        y, y2 = model(x), fresh(x)
    s = hp["scale"]
    assert y.shape == (2, x.shape[1], 13 * s, 10 * s)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


def test_official_buffers_are_detected_and_dropped():
    hp = CASES["realsr_x4_3conv"]
    model = _random_model(hp)
    sd = _with_official_buffers(model)
    assert "layers.0.residual_group.blocks.1.attn_mask" in sd
    assert "layers.0.residual_group.blocks.0.attn.relative_position_index" in sd

    assert ARCH.detect(sd) == _full(hp)
    adapted = ARCH.adapt_state_dict(sd)
    assert set(adapted) == set(model.state_dict())
    fresh = ARCH.build(**ARCH.detect(sd)).eval()
    fresh.load_state_dict(adapted, strict=True)
    # The official index buffer is exactly what the module computes itself.
    idx = sd["layers.0.residual_group.blocks.0.attn.relative_position_index"]
    assert torch.equal(fresh.layers[0].residual_group.blocks[0].attn.relative_position_index, idx)


def test_detect_rejects_other_architectures():
    assert ARCH.detect(FSRCNN_ARCH.build(**FSRCNN_ARCH.test_config).state_dict()) is None
    edsr_like = {
        "head.0.weight": torch.zeros(16, 3, 3, 3),
        "body.0.body.0.weight": torch.zeros(16, 16, 3, 3),
        "tail.0.0.weight": torch.zeros(64, 16, 3, 3),
        "tail.1.weight": torch.zeros(3, 16, 3, 3),
    }
    assert ARCH.detect(edsr_like) is None
    assert ARCH.detect({}) is None
    # Swin2SR shares the layout but adds keys a SwinIR block does not have.
    sd = dict(_random_model(ARCH.test_config).state_dict())
    sd["layers.0.residual_group.blocks.0.attn.logit_scale"] = torch.zeros(2, 1, 1)
    assert ARCH.detect(sd) is None


def test_io_contract():
    io = ARCH.io(ARCH.test_config)
    assert (io.in_channels, io.out_channels, io.color_space, io.value_range) == (3, 3, "rgb", 1.0)
    assert io.size_multiple == 1 and io.fp16_safe and not io.pre_upsample
    assert ARCH.io(CASES["denoise_gray_x1"]).in_channels == 1


def test_mean_is_subtracted_inside():
    # An all-zero network returns its input mean back: output == mean everywhere.
    model = ARCH.build(**ARCH.test_config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        y = model(torch.rand(1, 3, 8, 8))
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(y, mean.expand_as(y))


def test_internal_padding_is_reflect_then_crop():
    hp = CASES["classical_x3_two_layers"]
    model = _random_model(hp)
    x = torch.rand(1, 3, 9, 14)
    with torch.no_grad():
        y = model(x)
        y_padded = model(F.pad(x, (0, 2, 0, 3), mode="reflect"))  # to 12 x 16, multiples of 4
    torch.testing.assert_close(y, y_padded[:, :, :27, :42], rtol=0, atol=0)


@pytest.mark.parametrize(("hp", "wp", "ws"), [(8, 12, 4), (16, 8, 8), (4, 4, 4)])
def test_shift_mask_matches_region_slices(hp, wp, ws):
    shift = ws // 2
    # The official construction: label the three row/column bands by slices, then window them.
    labels = torch.zeros(hp, wp)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, hs in enumerate(bands):
        for j, wsl in enumerate(bands):
            labels[hs, wsl] = 3 * i + j
    win = labels.reshape(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = win[:, None, :] - win[:, :, None]
    expected = torch.where(diff != 0, -100.0, 0.0)
    got = swinir._shifted_window_mask(hp, wp, ws, shift, torch.zeros(()))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_relative_position_index_matches_definition():
    ws = 4
    idx = swinir._relative_position_index(ws)
    pos = [(r, c) for r in range(ws) for c in range(ws)]
    for a, (ra, ca) in enumerate(pos):
        for b, (rb, cb) in enumerate(pos):
            assert idx[a, b] == (ra - rb + ws - 1) * (2 * ws - 1) + (ca - cb + ws - 1)
