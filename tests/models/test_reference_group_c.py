"""PAN, EFDN, SRGAN, HAN and CSNLN against the authors' code on random weights (max |diff| <= 1e-5).

Runs only where ``$SREDGE_REFERENCE_CODE`` holds the authors' files (see tests/models/_reference.py);
skips with the reason otherwise. Their network is built at a small configuration, its weights and
batch-norm statistics are perturbed, and the same state dict goes through our detection and
strict loading; both run in eval mode on the same random input at two sizes, one odd.
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import torch

from sredge.models.loader import build_from_state_dict
from sredge.models.registry import ARCH_NAMES, detect
from tests.models._reference import load_reference as _load_reference

TOL = 1e-5


def load_reference(repo: str, path: str):
    """The authors' module, without leaving their folder on ``sys.path``: two of these files are
    named ``model.py``, which would shadow another repository's ``model`` package in later tests."""
    saved = list(sys.path)
    try:
        return _load_reference(repo, path)
    finally:
        sys.path[:] = saved


def _perturb(model, seed: int, scale: float = 0.05):
    """Random weights: every float tensor moved; batch-norm variances kept positive."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.add_(torch.randn(t.shape, generator=gen) * scale)
    return model.eval()


def _detect(arch: str, sd):
    """(spec, hparams) by the registry's detection (unambiguous among all), or by the module's own
    detector for an architecture not registered yet (HAN: see test_archs_group_c.py)."""
    if arch in ARCH_NAMES:
        found = detect(sd)
        assert found.spec.name == arch
        return found.spec, dict(found.hparams)
    spec = importlib.import_module(f"sredge.models.archs.{arch}").ARCH
    hp = spec.detect(sd)
    assert hp is not None
    return spec, dict(hp)


def _compare(theirs, arch: str, sizes, scale: int, hint_scale: bool = False, value_range: float = 1.0,
             dtype=torch.float32, batch: int = 1):
    """Max |ours - theirs| over ``sizes`` after loading their state dict through our detection.

    Returns:
        (max abs difference, fraction of output values their network did not clamp).
    """
    sd = theirs.state_dict()
    spec, hp = _detect(arch, sd)
    if hint_scale:  # weights that do not tell the scale (PAN x2 / x3)
        assert hp["scale"] in (None, scale)
        hp["scale"] = scale
    assert hp["scale"] == scale
    ours = build_from_state_dict(spec, hp, sd).eval().to(dtype)
    theirs = theirs.to(dtype)
    worst, inside = 0.0, []
    gen = torch.Generator().manual_seed(1)
    for h, w in sizes:
        x = (torch.rand(batch, 3, h, w, generator=gen) * value_range).to(dtype)
        with torch.no_grad():
            ref, out = theirs(x.clone()), ours(x.clone())
        assert out.shape == ref.shape == (batch, 3, h * scale, w * scale)
        worst = max(worst, float((out - ref).abs().max()))
        inside.append(float(((ref > 0) & (ref < 1)).float().mean()))
    return worst, min(inside)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pan_matches_authors(scale):
    ref = load_reference("zhaohengyuan1/PAN", "codes/models/archs/PAN_arch.py")
    theirs = _perturb(ref.PAN(in_nc=3, out_nc=3, nf=8, unf=8, nb=2, scale=scale), seed=scale)
    diff, _ = _compare(theirs, "pan", [(16, 16), (13, 11)], scale, hint_scale=True)
    assert diff <= TOL, diff


def _tame_output(conv, bias: float = 0.5):
    """Small last-layer weights so the outputs stay mostly inside the clamp (a clamp hides differences)."""
    with torch.no_grad():
        conv.weight.mul_(0.01)
        conv.bias.fill_(bias)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_efdn_matches_authors(scale):
    ref = load_reference("icandle/EFDN", "models/EFDN_deploy.py")
    theirs = _perturb(ref.EFDN(scale=scale, in_channels=3, n_feats=8, out_channels=3), seed=scale)
    _tame_output(theirs.tail[0])
    diff, inside = _compare(theirs, "efdn", [(24, 24), (19, 23)], scale)
    assert inside > 0.9, inside
    assert diff <= TOL, diff


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srgan_lornatang_matches_authors(scale):
    ref = load_reference("Lornatang/SRGAN-PyTorch", "model.py")
    theirs = _perturb(ref.SRResNet(in_channels=3, out_channels=3, channels=16, num_rcb=2, upscale_factor=scale), scale)
    _tame_output(theirs.conv3)
    diff, inside = _compare(theirs, "srgan", [(12, 12), (9, 7)], scale)
    assert inside > 0.9, inside
    assert diff <= TOL, diff


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srgan_leftthomas_matches_authors(scale):
    ref = load_reference("leftthomas/SRGAN", "model.py")
    theirs = _perturb(ref.Generator(scale), seed=scale)
    _tame_output(theirs.block8[-1], bias=0.0)
    diff, inside = _compare(theirs, "srgan", [(8, 8), (7, 5)], scale)
    assert inside > 0.9, inside
    assert diff <= TOL, diff


def _edsr_args(scale: int, **kw):
    """The EDSR-PyTorch ``args`` namespace their constructors read."""
    return types.SimpleNamespace(scale=[scale], rgb_range=255, n_colors=3, res_scale=1, **kw)


def _gammas(model, *modules):
    """Attention scales start at 0 (attention off): give them weight so the test exercises it."""
    with torch.no_grad():
        for i, m in enumerate(modules):
            m.gamma.fill_(0.5 + 0.2 * i)
    return model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_han_matches_authors(scale):
    ref = load_reference("wwlCape/HAN", "src/model/han.py")
    # Their last_conv is hard-coded for 10 residual groups.
    args = _edsr_args(scale, n_resgroups=10, n_resblocks=1, n_feats=8, reduction=4)
    theirs = _perturb(ref.HAN(args), seed=scale)
    _gammas(theirs, theirs.la, theirs.csa)
    diff, _ = _compare(theirs, "han", [(12, 12), (9, 7)], scale, value_range=255.0)
    assert diff <= TOL, diff


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_csnln_matches_authors(scale):
    """In float64: at [0, 255] their float32 outputs (~120) differ from ours by float32 rounding
    (a few 1e-5, the order of the sums differs); in float64 the two agree to ~1e-13."""
    ref = load_reference("SHI-Labs/Cross-Scale-Non-Local-Attention", "src/model/csnln.py")
    # Their attention modules are hard-coded to 128 channels.
    theirs = _perturb(ref.CSNLN(_edsr_args(scale, n_feats=128, depth=1)), seed=scale, scale=0.01)
    m = 3 if scale == 3 else 2  # their cross-scale attention needs sizes divisible by this
    sizes = [(4 * m, 4 * m), (5 * m, 3 * m)]  # 15x9 at x3 (odd); x2/x4 cannot take odd sizes
    diff, _ = _compare(theirs, "csnln", sizes, scale, value_range=255.0, dtype=torch.float64, batch=2)
    assert diff <= TOL, diff
