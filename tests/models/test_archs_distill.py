"""IMDN (-RTC, -RTE), RFDN and RLFN: detection round trips at every scale, the bytedance/RLFN
key layout, exclusive detection within the family, I/O contracts.

Export and ONNX parity of each test_config are covered by test_zoo.py, equivalence with the
authors' code by test_reference_distill.py, the real checkpoints by tests/export/test_real_distill.py."""

from __future__ import annotations

import re

import pytest
import torch

from sredge.errors import InputError
from sredge.models.archs import imdn, rfdn, rlfn
from sredge.models.loader import build_from_state_dict, constructor_defaults
from sredge.models.registry import detect

SPECS = {s.name: s for s in (imdn.ARCH, imdn.RTC_ARCH, imdn.RTE_ARCH, rfdn.ARCH, rlfn.ARCH)}
SCALE_CASES = [(name, scale) for name, spec in SPECS.items() for scale in spec.scales]


def _config(name, scale=None):
    cfg = dict(SPECS[name].test_config)
    if scale is not None:
        cfg["scale"] = scale
    return cfg


def _perturbed(spec, cfg):
    torch.manual_seed(0)
    model = spec.build(**cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize(("name", "scale"), SCALE_CASES)
def test_round_trip_at_every_scale(name, scale):
    spec = SPECS[name]
    cfg = _config(name, scale)
    model = _perturbed(spec, cfg)
    sd = model.state_dict()

    found = detect(sd)  # among every registered architecture
    assert found.spec.name == name
    assert found.hparams == {**constructor_defaults(spec), **cfg}

    fresh = build_from_state_dict(spec, found.hparams, sd)
    x = torch.rand(1, 3, 18, 22) * spec.io(found.hparams).value_range
    with torch.no_grad():
        y, y2 = model(x), fresh(x)
    assert y.shape == (1, 3, 18 * scale, 22 * scale)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


def test_block_count_and_widths_follow_the_weights():
    for spec, cfg in [
        (imdn.ARCH, {"scale": 3, "nf": 32, "num_modules": 3}),
        (imdn.RTC_ARCH, {"scale": 2, "nf": 12, "num_modules": 4}),
        (imdn.RTE_ARCH, {"scale": 2, "nf": 12, "num_modules": 3}),
        (rfdn.ARCH, {"scale": 4, "nf": 20, "num_modules": 3}),
        (rlfn.ARCH, {"scale": 4, "nf": 10, "mf": 14, "num_blocks": 3, "esa_channels": 6}),
    ]:
        with torch.device("meta"):
            sd = spec.build(**cfg).state_dict()
        assert spec.detect(sd) == {**constructor_defaults(spec), **cfg}, spec.name


def test_io_contracts():
    for name in ("imdn", "imdn_rtc"):
        io = SPECS[name].io(_config(name))
        facts = (io.in_channels, io.out_channels, io.color_space, io.value_range, io.size_multiple)
        assert facts == (3, 3, "rgb", 1.0, 1)
    assert SPECS["imdn_rte"].io(_config("imdn_rte")).size_multiple == 2  # works at half resolution
    for name in ("rfdn", "rlfn"):  # the published checkpoints take [0, 255]
        io = SPECS[name].io(_config(name))
        assert (io.color_space, io.value_range, io.size_multiple) == ("rgb", 255.0, 1)


def test_rte_halves_then_shuffles_by_twice_the_scale():
    model = imdn.IMDN_RTE(scale=2, nf=8, num_modules=1)
    assert model.fea_conv[2].stride == (2, 2) and model.fea_conv[2].bias is None
    assert model.upsampler[1].upscale_factor == 4


# --- the bytedance/RLFN release's key names ------------------------------------------------


def _to_bytedance(sd):
    ren = {"fea_conv": "conv_1", "LR_conv": "conv_2", "upsampler": "upsampler"}
    out = {}
    for k, v in sd.items():
        head, _, tail = k.partition(".")
        m = re.fullmatch(r"B(\d+)", head)
        out[f"block_{m[1]}.{tail}" if m else f"{ren[head]}.{tail}"] = v
    return out


@pytest.mark.parametrize("scale", rlfn.ARCH.scales)
def test_rlfn_bytedance_layout(scale):
    cfg = {**_config("rlfn", scale), "num_blocks": 3}
    model = _perturbed(rlfn.ARCH, cfg)
    theirs = _to_bytedance(model.state_dict())
    assert {"conv_1.weight", "block_3.esa.conv4.weight", "conv_2.bias"} <= set(theirs)
    assert not any(k.startswith(("B1.", "fea_conv.")) for k in theirs)

    found = detect(theirs)
    assert found.spec.name == "rlfn"
    assert found.hparams == {**constructor_defaults(rlfn.ARCH), **cfg}
    fresh = build_from_state_dict(found.spec, found.hparams, theirs)
    x = torch.rand(1, 3, 16, 19) * 255
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_rlfn_adapter_leaves_other_layouts_alone():
    espcn_like = {"conv_1.weight": torch.zeros(8, 3, 5, 5), "conv_2.weight": torch.zeros(4, 8, 3, 3),
                  "conv_3.weight": torch.zeros(12, 4, 3, 3)}
    assert rlfn.adapt_state_dict(espcn_like) == espcn_like
    mixed = _to_bytedance(rlfn.ARCH.build(**_config("rlfn")).state_dict())
    mixed["extra.weight"] = torch.zeros(1)
    assert rlfn.adapt_state_dict(mixed).keys() == mixed.keys()
    assert rlfn.ARCH.detect(mixed) is None


# --- exclusive detection -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPECS))
def test_detectors_reject_each_others_layouts(name):
    spec = SPECS[name]
    for other, other_spec in SPECS.items():
        if other != name:
            for scale in other_spec.scales:
                sd = other_spec.build(**_config(other, scale)).state_dict()
                assert spec.detect(sd) is None, f"{name} claims {other} x{scale}"


def test_a_missing_or_extra_key_is_refused():
    sd = rfdn.ARCH.build(**_config("rfdn")).state_dict()
    less = {k: v for k, v in sd.items() if k != "B2.esa.conv3_.bias"}
    more = {**sd, "B1.esa.extra.weight": torch.zeros(1)}
    for bad in (less, more):
        assert rfdn.ARCH.detect(bad) is None
        with pytest.raises(InputError, match="unknown architecture"):
            detect(bad)


def test_rfdn_esa_without_max_branch_is_not_rfdn():
    """RLFN's light ESA inside an RFDN body (a different network) is claimed by neither."""
    sd = rfdn.ARCH.build(**_config("rfdn")).state_dict()
    light = {k: v for k, v in sd.items() if ".esa.conv_max." not in k and ".esa.conv3_." not in k}
    assert rfdn.ARCH.detect(light) is None and rlfn.ARCH.detect(light) is None


def test_esa_needs_fifteen_pixels():
    model = rlfn.ARCH.build(**_config("rlfn")).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 15, 15)).shape == (1, 3, 30, 30)
        with pytest.raises(RuntimeError):
            model(torch.rand(1, 3, 14, 14))
