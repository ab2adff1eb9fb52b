"""Every registered architecture and variant: build, detect, load, export, ONNX Runtime parity."""

from __future__ import annotations

import pytest
import torch

from sredge.export.onnx_export import export_onnx
from sredge.export.parity import check_parity
from sredge.models.loader import build_from_state_dict, constructor_defaults, describe, resolve_scale
from sredge.models.onnx_file import read_descriptor
from sredge.models.registry import ARCH_NAMES, all_archs, detect, get_arch, list_variants

SPECS = all_archs()


def test_registry_lists_every_arch_module():
    assert [s.name for s in SPECS] == list(ARCH_NAMES)
    assert len(list_variants()) >= len(ARCH_NAMES)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_round_trip_build_detect_load_export_parity(spec, tmp_path):
    torch.manual_seed(0)
    built = spec.build(**spec.test_config)
    # Perturb every float parameter so a wrong key mapping cannot pass by accident.
    with torch.no_grad():
        for p in built.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    sd = built.state_dict()

    found = detect(sd)  # no --arch: detection must be unambiguous
    assert found.spec.name == spec.name
    hp = dict(found.hparams)
    expected = {**constructor_defaults(spec), **spec.test_config}
    weights_scale = hp.get("scale")
    hp["scale"], _ = resolve_scale(spec, weights_scale, spec.test_config["scale"], None)
    for k, v in hp.items():
        assert expected.get(k, v) == v, f"{spec.name}: detected {k}={v}, built with {expected.get(k)}"

    module = build_from_state_dict(spec, hp, sd)
    for k, v in module.state_dict().items():
        assert torch.equal(v, sd[k]), k
    desc = describe(spec, hp, sum(p.numel() for p in module.parameters()))

    path = export_onnx(module, desc, tmp_path / f"{spec.name}.onnx")
    assert read_descriptor(path) == desc
    report = check_parity(module, desc, path, sizes=spec.export_sizes)
    assert report.passed, report
    assert report.worst_psnr_db >= 60
    # Two different sizes, one not a multiple of 8 (unless the model needs one), and a batch of 2.
    sizes = {(c.height, c.width) for c in report.cases}
    assert len(sizes) == 2
    assert any(c.batch == 2 for c in report.cases)


VARIANTS = sorted(list_variants().items())


@pytest.mark.parametrize("name,entry", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_named_variant_is_detected_with_its_hparams(name, entry):
    arch, hp = entry
    spec = get_arch(arch)
    with torch.device("meta"):  # shapes only: full-size variants cost nothing to build here
        sd = spec.build(**hp).state_dict()
    found = detect(sd)
    assert found.spec.name == arch
    full = {**constructor_defaults(spec), **hp}
    for k, v in found.hparams.items():
        if k == "scale" and v is None:
            continue  # this architecture's weights do not tell the scale
        assert full[k] == v, f"{name}: detected {k}={v}, variant has {full[k]}"


def test_cross_detection_is_exclusive():
    """Each architecture's detector rejects every other architecture's weights."""
    dicts = {s.name: s.build(**s.test_config).state_dict() for s in SPECS}
    for spec in SPECS:
        for other, sd in dicts.items():
            if other != spec.name:
                assert spec.detect(sd) is None, f"{spec.name} claims {other}'s weights"
