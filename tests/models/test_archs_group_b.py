"""RCAN, RDN, RRDBNet and SRResNet: detection round trips at every scale, key layouts.

Every variant's detection and each architecture's ONNX export are covered by test_zoo.py."""

from __future__ import annotations

import re

import pytest
import torch

from sredge.models.archs import rcan, rdn, rrdbnet, srresnet
from sredge.models.archs.fsrcnn import ARCH as FSRCNN_ARCH
from sredge.models.loader import constructor_defaults

SPECS = {s.name: s for s in (rcan.ARCH, rdn.ARCH, rrdbnet.ARCH, srresnet.ARCH)}
SCALE_CASES = [(name, scale) for name, spec in SPECS.items() for scale in spec.scales]


def _full(spec, hp):
    """Constructor defaults overlaid with ``hp``: what ``detect`` must recover."""
    return {**constructor_defaults(spec), **hp}


def _config(name, scale=None):
    cfg = dict(SPECS[name].test_config)
    if scale is not None:
        cfg["scale"] = scale
    return cfg


def _input(spec, hp, n, h, w):
    io = spec.io(hp)
    return torch.rand(n, io.in_channels, h, w) * io.value_range


@pytest.mark.parametrize(("name", "scale"), SCALE_CASES)
def test_round_trip(name, scale):
    spec = SPECS[name]
    torch.manual_seed(0)
    cfg = _config(name, scale)
    model = spec.build(**cfg).eval()
    sd = model.state_dict()

    hp = spec.detect(sd)
    assert hp == _full(spec, cfg)

    fresh = spec.build(**hp).eval()
    fresh.load_state_dict(spec.adapt_state_dict(sd), strict=True)
    x = _input(spec, hp, 1, 11, 9)  # odd sizes: x1/x2 RRDBNet pad internally
    with torch.no_grad():
        y, y2 = model(x), fresh(x)
    assert y.shape == (1, spec.io(hp).out_channels, 11 * scale, 9 * scale)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


def test_io_contracts():
    assert rcan.ARCH.io(_config("rcan")).value_range == 255.0
    assert rdn.ARCH.io(_config("rdn")).value_range == 255.0
    for name in ("rrdbnet", "srresnet"):
        io = SPECS[name].io(_config(name))
        assert (io.value_range, io.in_channels, io.out_channels, io.color_space) == (1.0, 3, 3, "rgb")
        assert io.size_multiple == 1 and not io.pre_upsample
    assert rrdbnet.ARCH.io(_config("rrdbnet")).fp16_safe


def test_rcan_rgb_range_is_read_from_mean_shift():
    sd = rcan.ARCH.build(**_config("rcan"), rgb_range=1.0).state_dict()
    hp = rcan.ARCH.detect(sd)
    assert hp["rgb_range"] == 1.0
    assert rcan.ARCH.io(hp).value_range == 1.0


# --- foreign key layouts ---------------------------------------------------------------


def _edsr_pytorch_edsr():
    """EDSR-PyTorch EDSR (8 features, 2 resblocks, x2): the layout RCAN extends."""
    shapes = {
        "sub_mean.weight": (3, 3, 1, 1),
        "sub_mean.bias": (3,),
        "head.0.weight": (8, 3, 3, 3),
        "head.0.bias": (8,),
        "body.2.weight": (8, 8, 3, 3),
        "body.2.bias": (8,),
        "tail.0.0.weight": (32, 8, 3, 3),
        "tail.0.0.bias": (32,),
        "tail.1.weight": (3, 8, 3, 3),
        "tail.1.bias": (3,),
        "add_mean.weight": (3, 3, 1, 1),
        "add_mean.bias": (3,),
    }
    for n in range(2):
        for i in (0, 2):
            shapes[f"body.{n}.body.{i}.weight"] = (8, 8, 3, 3)
            shapes[f"body.{n}.body.{i}.bias"] = (8,)
    return shapes


FOREIGN_SHAPES = {
    "edsr": _edsr_pytorch_edsr(),
    "srvgg": {
        "body.0.weight": (16, 3, 3, 3),
        "body.0.bias": (16,),
        "body.1.weight": (16,),
        "body.2.weight": (16, 16, 3, 3),
        "body.2.bias": (16,),
        "body.3.weight": (16,),
        "body.4.weight": (48, 16, 3, 3),
        "body.4.bias": (48,),
    },
    "espcn": {
        "conv_1.weight": (64, 1, 5, 5),
        "conv_2.weight": (32, 64, 3, 3),
        "conv_3.weight": (4, 32, 3, 3),
    },
    "srcnn": {
        "conv1.weight": (64, 1, 9, 9),
        "conv1.bias": (64,),
        "conv2.weight": (32, 64, 5, 5),
        "conv2.bias": (32,),
        "conv3.weight": (1, 32, 5, 5),
        "conv3.bias": (1,),
    },
    "vdsr": {
        "input.weight": (64, 1, 3, 3),
        "residual_layer.0.conv.weight": (64, 64, 3, 3),
        "output.weight": (1, 64, 3, 3),
    },
    "swinir": {
        "conv_first.weight": (60, 3, 3, 3),
        "conv_first.bias": (60,),
        "patch_embed.norm.weight": (60,),
        "layers.0.residual_group.blocks.0.norm1.weight": (60,),
        "layers.0.conv.weight": (60, 60, 3, 3),
        "conv_after_body.weight": (60, 60, 3, 3),
        "conv_before_upsample.0.weight": (64, 60, 3, 3),
        "upsample.0.weight": (256, 64, 3, 3),
        "conv_last.weight": (3, 64, 3, 3),
        "conv_last.bias": (3,),
    },
}


def _foreign_dicts():
    yield "fsrcnn", FSRCNN_ARCH.build(**FSRCNN_ARCH.test_config).state_dict()
    for name, shapes in FOREIGN_SHAPES.items():
        yield name, {k: torch.zeros(s) for k, s in shapes.items()}


@pytest.mark.parametrize("name", list(SPECS))
def test_detectors_reject_other_layouts(name):
    spec = SPECS[name]
    for other in SPECS:
        if other != name:
            for scale in SPECS[other].scales:
                assert spec.detect(SPECS[other].build(**_config(other, scale)).state_dict()) is None, other
    for other, sd in _foreign_dicts():
        assert spec.detect(sd) is None, other


# --- original ESRGAN layouts ---------------------------------------------------------


def _to_old_arch(sd, num_block, n_up):
    """Rename a BasicSR RRDBNet dict to xinntao's original flattened ``model.N`` layout."""
    names = {"conv_first": 0, "conv_hr": 3 * n_up + 2, "conv_last": 3 * n_up + 4}
    names.update({f"conv_up{i + 1}": 3 + 3 * i for i in range(n_up)})
    out = {}
    for k, v in sd.items():
        head, _, tail = k.partition(".")
        if m := re.match(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)$", k):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = v
        elif head == "conv_body":
            out[f"model.1.sub.{num_block}.{tail}"] = v
        else:
            out[f"model.{names[head]}.{tail}"] = v
    return out


def _to_trunk(sd):
    """Rename a BasicSR RRDBNet dict to the ESRGAN repository's ``RRDB_trunk`` layout."""
    ren = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = {}
    for k, v in sd.items():
        head, _, tail = k.partition(".")
        if m := re.match(r"body\.(\d+)\.rdb(\d)\.(.*)$", k):
            out[f"RRDB_trunk.{m[1]}.RDB{m[2]}.{m[3]}"] = v
        else:
            out[f"{ren.get(head, head)}.{tail}"] = v
    return out


@pytest.mark.parametrize(("layout", "scale"), [("old", 4), ("old", 8), ("trunk", 4)])
def test_rrdbnet_original_esrgan_layouts(layout, scale):
    spec = rrdbnet.ARCH
    cfg = {**_config("rrdbnet", scale), "num_block": 2}
    model = spec.build(**cfg).eval()
    sd = model.state_dict()
    legacy = _to_old_arch(sd, 2, 3 if scale == 8 else 2) if layout == "old" else _to_trunk(sd)
    assert "body.0.rdb1.conv1.weight" not in legacy and "conv_body.weight" not in legacy
    if layout == "old":
        assert {"model.0.weight", "model.1.sub.0.RDB1.conv5.0.weight", "model.1.sub.2.weight"} <= set(legacy)
        assert f"model.{3 * (scale.bit_length() - 1) + 4}.weight" in legacy

    hp = spec.detect(legacy)
    assert hp == _full(spec, cfg)
    fresh = spec.build(**hp).eval()
    fresh.load_state_dict(spec.adapt_state_dict(legacy), strict=True)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    for other in ("rcan", "rdn", "srresnet"):
        assert SPECS[other].detect(legacy) is None
