"""BSRN and SPAN against the authors' code (outside the project; see tests/models/_reference.py).

The authors' network is built at a small configuration with randomly perturbed weights, its state dict
goes through our detection and loader, and both run on the same random inputs (two sizes, one odd).
Skips unless $SREDGE_REFERENCE_CODE holds the authors' repositories:

- xiaom233/BSRN ``basicsr/archs/BSRN_arch.py`` (BSRN; ESDB blocks),
- ofsoundof/NTIRE2022_ESR ``models/team18_bsrn.py`` (BSRN-S as entered in NTIRE 2022),
- hongyuanyu/SPAN ``basicsr/archs/span_arch.py`` (SPAN, training form with ``eval_conv``),
- Amazingren/NTIRE2024_ESR ``models/team38_SPAN.py`` (``SPAN30``, the re-parameterized form).
"""

from __future__ import annotations

import pytest
import torch

from sredge.models.archs import bsrn, span
from sredge.models.loader import build_from_state_dict
from sredge.models.registry import detect
from tests.models._reference import load_reference

SIZES = ((24, 32), (17, 23))  # BSRN needs at least 15x15
TOL = 1e-5
FOLD_REL = 1e-6
"""A folded conv against branches: max abs difference relative to the output's peak."""


def _perturb(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _ours(theirs_sd, arch):
    found = detect(theirs_sd)
    assert found.spec is arch
    return build_from_state_dict(found.spec, dict(found.hparams), dict(theirs_sd)), found.hparams


def _max_diff(a: torch.nn.Module, b: torch.nn.Module, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for h, w in SIZES:
        x = torch.rand(2, 3, h, w, generator=g)
        with torch.no_grad():
            worst = max(worst, float((a(x) - b(x)).abs().max()))
    return worst


def _peak(model: torch.nn.Module, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return max(float(model(torch.rand(2, 3, h, w, generator=g)).abs().max()) for h, w in SIZES)


@pytest.mark.parametrize("scale", [2, 4])
def test_bsrn_matches_xiaom233(scale):
    ref = load_reference("xiaom233/BSRN", "basicsr/archs/BSRN_arch.py")
    theirs = _perturb(ref.BSRN(num_in_ch=3, num_feat=16, num_block=8, num_out_ch=3, upscale=scale), 1)
    ours, hp = _ours(theirs.state_dict(), bsrn.ARCH)
    assert (hp["block"], hp["num_block"], hp["num_feat"], hp["scale"]) == ("esdb", 8, 16, scale)
    assert _max_diff(ours, theirs, 2) <= TOL


def test_bsrn_s_matches_ntire22_team18():
    ref = load_reference("ofsoundof/NTIRE2022_ESR", "models/team18_bsrn.py")
    theirs = _perturb(ref.BSRN(num_in_ch=3, num_feat=16, num_block=5, num_out_ch=3, upscale=4), 3)
    ours, hp = _ours(theirs.state_dict(), bsrn.ARCH)
    assert (hp["block"], hp["num_block"], hp["num_feat"]) == ("rfdb", 5, 16)
    assert _max_diff(ours, theirs, 4) <= TOL


def test_span_training_form_matches_hongyuanyu_in_both_modes():
    ref = load_reference("hongyuanyu/SPAN", "basicsr/archs/span_arch.py")
    # Perturbing every parameter also makes the saved eval_conv copies stale, as in a training checkpoint.
    theirs = _perturb(ref.SPAN(3, 3, feature_channels=8, upscale=2), 5)
    ours, hp = _ours(theirs.state_dict(), span.ARCH)
    assert hp["training_form"] is True and hp["feature_channels"] == 8 and hp["scale"] == 2
    theirs.train()  # their training mode runs the branches, as our training form does
    assert _max_diff(ours, theirs, 6) <= TOL
    # Their eval mode re-folds the branches into one conv at every call, as our collapse() does once.
    # With random weights SPAN's outputs reach ~40 (features are scaled by 255), and a fold rounds
    # differently from the branches: their own two modes differ by ~2e-5 here (5e-7 of the peak).
    theirs.eval()
    flat = ours.collapse()
    assert _max_diff(flat, theirs, 7) <= FOLD_REL * _peak(theirs, 7)
    assert _max_diff(ours, theirs, 8) <= FOLD_REL * _peak(theirs, 8)


def test_span_reparameterized_form_matches_ntire24_team38():
    ref = load_reference("Amazingren/NTIRE2024_ESR", "models/team38_SPAN.py")
    theirs = _perturb(ref.SPAN30(3, 3, feature_channels=8, upscale=4), 9)
    ours, hp = _ours(theirs.state_dict(), span.ARCH)
    assert hp["training_form"] is False and hp["scale"] == 4
    assert _max_diff(ours, theirs, 10) <= TOL
