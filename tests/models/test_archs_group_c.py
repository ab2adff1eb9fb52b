"""PAN, EFDN, SRGAN, HAN and CSNLN: detection round trips at every scale, key layouts, I/O contracts.

Every variant's detection and each architecture's ONNX export are covered by test_zoo.py;
equivalence with the authors' code by test_reference_group_c.py."""

from __future__ import annotations

import importlib

import pytest
import torch

from sredge.models.loader import constructor_defaults
from sredge.models.registry import ARCH_NAMES, all_archs, detect

GROUP = ("pan", "efdn", "srgan", "han", "csnln")
SPECS = {n: importlib.import_module(f"sredge.models.archs.{n}").ARCH for n in GROUP}
# HAN is not registered yet: RCAN's detector (rcan.py) claims HAN's weights, which hold all of
# RCAN's keys plus HAN's attention; registering it needs rcan.detect to refuse la.* / csa.* keys.
EXTRA = {"srgan": [{"flavor": "leftthomas", "num_rcb": 5}]}  # second flavor, besides test_config
CASES = [
    (name, scale, extra)
    for name, spec in SPECS.items()
    for extra in [{}, *EXTRA.get(name, [])]
    for scale in spec.scales
]
SIZE = {"efdn": (17, 19)}  # EFDN's attention pools 7x7 after a stride 2: at least 15 pixels


def _detect(name, sd):
    """Hyper-parameters by the registry's detection (unambiguous) or, unregistered, the module's own."""
    if name in ARCH_NAMES:
        found = detect(sd)
        assert found.spec.name == name
        return dict(found.hparams)
    hp = SPECS[name].detect(sd)
    assert hp is not None
    return dict(hp)


def _config(name, scale, extra=None):
    return {**SPECS[name].test_config, **(extra or {}), "scale": scale}


def _perturbed(spec, cfg, seed=0):
    torch.manual_seed(seed)
    model = spec.build(**cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model


@pytest.mark.parametrize(("name", "scale", "extra"), CASES, ids=[f"{n}-x{s}-{len(e)}" for n, s, e in CASES])
def test_round_trip(name, scale, extra):
    spec = SPECS[name]
    cfg = _config(name, scale, extra)
    model = _perturbed(spec, cfg)
    sd = model.state_dict()

    hp = _detect(name, sd)  # no --arch: unambiguous among every registered architecture
    full = {**constructor_defaults(spec), **cfg}
    if name == "pan" and scale in (2, 3):
        assert hp["scale"] is None  # x2 and x3 PAN weights have the same shapes
        hp["scale"] = scale
    assert hp == full

    fresh = spec.build(**hp).eval()
    fresh.load_state_dict(spec.adapt_state_dict(sd), strict=True)
    io = spec.io(hp)
    m = io.size_multiple  # CSNLN: 2 or 3
    h, w = (-(-v // m) * m for v in SIZE.get(name, (11, 9)))
    x = torch.rand(1, io.in_channels, h, w) * io.value_range
    with torch.no_grad():
        y, y2 = model(x), fresh(x)
    assert y.shape == (1, io.out_channels, h * scale, w * scale)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


def test_io_contracts():
    for name, spec in SPECS.items():
        io = spec.io(spec.test_config)
        assert (io.in_channels, io.out_channels, io.color_space) == (3, 3, "rgb"), name
        assert not io.pre_upsample, name
    for name in ("pan", "efdn", "srgan"):
        assert SPECS[name].io(SPECS[name].test_config).value_range == 1.0
    for name in ("han", "csnln"):
        io = SPECS[name].io(SPECS[name].test_config)
        assert io.value_range == 255.0 and not io.fp16_safe
    assert [SPECS["csnln"].io({"scale": s}).size_multiple for s in (2, 3, 4)] == [2, 3, 2]


def test_rgb_range_is_read_from_mean_shift():
    for name in ("han", "csnln"):
        spec = SPECS[name]
        sd = spec.build(**spec.test_config, rgb_range=1.0).state_dict()
        assert spec.detect(sd)["rgb_range"] == 1.0
        assert spec.io(spec.detect(sd)).value_range == 1.0


def test_group_detectors_reject_every_other_architecture():
    """Ours never claim another registered architecture's weights (test_zoo covers every pair too)."""
    others = {s.name: s.build(**s.test_config).state_dict() for s in all_archs()}
    for name, spec in SPECS.items():
        for other, sd in others.items():
            if other != name:
                assert spec.detect(sd) is None, f"{name} claims {other}'s weights"


def test_efdn_and_srgan_outputs_stay_in_range():
    """EFDN and Lornatang's generator clamp to [0, 1]; leftthomas's maps tanh to (0, 1)."""
    for name, extra in (("efdn", {}), ("srgan", {}), ("srgan", {"flavor": "leftthomas", "num_rcb": 5})):
        spec = SPECS[name]
        model = _perturbed(spec, _config(name, 2, extra))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(20.0)  # large weights push the raw output far outside [0, 1]
            y = model(torch.rand(1, 3, 17, 17))
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0, (name, extra)
        assert float(y.max()) > float(y.min())


def _old_lornatang(sd):
    """Lornatang/SRGAN-PyTorch's names before commit 35c279b renamed them."""
    old = {"conv1.": "conv_block1.", "conv2.": "conv_block2.", "conv3.": "conv_block3."}
    out = {}
    for k, v in sd.items():
        prefix = next((p for p in old if k.startswith(p)), "")
        out[old.get(prefix, "") + k[len(prefix):]] = v
    return out


@pytest.mark.parametrize("scale", [2, 4])
def test_srgan_earlier_lornatang_layout(scale):
    spec = SPECS["srgan"]
    cfg = _config("srgan", scale)
    model = _perturbed(spec, cfg)
    legacy = _old_lornatang(model.state_dict())
    assert any(k.startswith("conv_block1.") for k in legacy)
    assert not any(k.startswith("conv1.") for k in legacy)

    found = detect(legacy)
    assert found.spec.name == "srgan"
    assert found.hparams == {**constructor_defaults(spec), **cfg}
    fresh = spec.build(**found.hparams).eval()
    fresh.load_state_dict(spec.adapt_state_dict(legacy), strict=True)
    x = torch.rand(1, 3, 8, 10)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_srgan_leftthomas_needs_its_fixed_shape():
    with pytest.raises(ValueError, match="5 residual blocks"):
        SPECS["srgan"].build(scale=4, flavor="leftthomas", num_rcb=16)
    with pytest.raises(ValueError, match="flavor"):
        SPECS["srgan"].build(scale=4, flavor="nope")
    with pytest.raises(ValueError, match="2, 4 and 8"):
        SPECS["srgan"].build(scale=3)


def test_efdn_training_form_is_not_claimed():
    """A training-form EFDN block (EDBB branches not yet fused) is not mistaken for the deploy form."""
    sd = dict(SPECS["efdn"].build(**SPECS["efdn"].test_config).state_dict())
    sd["cells.0.conv2.conv1x1_sbx.k0"] = torch.zeros(8, 8, 1, 1)
    for spec in SPECS.values():
        assert spec.detect(sd) is None, spec.name


# --- checkpoint files as the authors save them, through sredge's loader ------------------


def _save(obj, path):
    torch.save(obj, path)
    return path


def test_checkpoint_files_in_the_authors_formats(tmp_path):
    from sredge.errors import InputError
    from sredge.models.loader import load_model

    pan = _perturbed(SPECS["pan"], _config("pan", 3)).state_dict()
    # PAN's x2 and x3 weights look alike: the scale comes from --scale or a file name like pan_x3.pth
    # (the authors' PANx3_DF2K.pth is not read as x3: "x3" follows a letter).
    with pytest.raises(InputError, match="--scale"):
        load_model(_save(pan, tmp_path / "PANx3_DF2K.pth"))
    loaded = load_model(tmp_path / "PANx3_DF2K.pth", scale=3)
    assert (loaded.descriptor.arch, loaded.descriptor.scale, loaded.scale_source) == ("pan", 3, "--scale")
    loaded = load_model(_save(pan, tmp_path / "pan_x3.pth"))
    assert (loaded.descriptor.scale, loaded.scale_source) == (3, "file name")

    # Lornatang saves {"epoch", "best_psnr", "state_dict", ...} in .pth.tar files.
    lorn = _perturbed(SPECS["srgan"], _config("srgan", 4)).state_dict()
    path = _save({"epoch": 3, "best_psnr": 27.5, "state_dict": lorn}, tmp_path / "SRGAN_x4-ImageNet.pth.tar")
    loaded = load_model(path)
    assert (loaded.descriptor.arch, loaded.descriptor.scale, loaded.hparams["flavor"]) == ("srgan", 4, "lornatang")

    # leftthomas saves the bare generator state dict as netG_epoch_<scale>_<epoch>.pth.
    left = _perturbed(SPECS["srgan"], _config("srgan", 8, EXTRA["srgan"][0])).state_dict()
    loaded = load_model(_save(left, tmp_path / "netG_epoch_8_100.pth"))
    assert (loaded.descriptor.scale, loaded.hparams["flavor"], loaded.scale_source) == (8, "leftthomas", "weights")
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        y = loaded.module(x)
    assert y.shape == (1, 3, 48, 40) and 0 < float(y.min()) and float(y.max()) < 1
