"""IMDN (and -RTC, -RTE), RFDN and RLFN against their authors' code: same random weights, same
output within 1e-5, at two input sizes (one odd).

Needs the authors' repositories under ``$SREDGE_REFERENCE_CODE`` (see tests/models/_reference.py);
skips otherwise. Files read: Zheng222/IMDN ``model/architecture.py`` + ``model/block.py``,
njulj/RFDN ``RFDN.py`` + ``block.py``, ofsoundof/NTIRE2022_ESR ``models/team04_rlfn.py``,
bytedance/RLFN ``model/rlfn.py``, ``model/rlfn_ntire.py`` + ``model/block.py``.
"""

from __future__ import annotations

import sys

import pytest
import torch

from sredge.models.loader import build_from_state_dict
from sredge.models.registry import detect
from tests.models._reference import load_reference

# Several of these repositories have a top-level ``block`` or ``model`` module: each load starts clean.
_SHADOWED = ("block", "model", "model.block")


def _load(repo, path, extra_paths=()):
    saved_path = list(sys.path)
    for name in _SHADOWED:
        sys.modules.pop(name, None)
    try:
        return load_reference(repo, path, extra_paths)
    finally:
        sys.path[:] = saved_path
        for name in _SHADOWED:
            sys.modules.pop(name, None)


def _imdn(cls, **kw):
    return getattr(_load("Zheng222/IMDN", "model/architecture.py"), cls)(**kw)


def _rfdn(**kw):
    return _load("njulj/RFDN", "RFDN.py").RFDN(**kw)


def _rlfn_ntire(**kw):
    return _load("ofsoundof/NTIRE2022_ESR", "models/team04_rlfn.py").RLFN_cut(**kw)


def _rlfn_bytedance(module, cls, **kw):
    return getattr(_load("bytedance/RLFN", f"model/{module}.py", extra_paths=("",)), cls)(**kw)


# (id, their network factory, expected arch, expected scale, input sizes)
CASES = [
    ("imdn-x2", lambda: _imdn("IMDN", nf=16, upscale=2), "imdn", 2),
    ("imdn-x3", lambda: _imdn("IMDN", nf=16, upscale=3), "imdn", 3),
    ("imdn-x4", lambda: _imdn("IMDN", nf=16, upscale=4), "imdn", 4),
    ("imdn_rtc-x2", lambda: _imdn("IMDN_RTC", nf=12, num_modules=3, upscale=2), "imdn_rtc", 2),
    ("imdn_rte-x2", lambda: _imdn("IMDN_RTE", upscale=2, nf=8), "imdn_rte", 2),
    ("rfdn-x4", lambda: _rfdn(nf=16), "rfdn", 4),
    ("rlfn_ntire-x4", lambda: _rlfn_ntire(nf=12, mf=16, upscale=4), "rlfn", 4),
    ("rlfn_ntire-x2", lambda: _rlfn_ntire(nf=12, mf=16, upscale=2), "rlfn", 2),
    ("rlfn_bytedance-x3", lambda: _rlfn_bytedance("rlfn", "RLFN", feature_channels=12, upscale=3), "rlfn", 3),
    ("rlfn_prune_bytedance-x4",
     lambda: _rlfn_bytedance("rlfn_ntire", "RLFN_Prune", feature_channels=10, mid_channels=12, upscale=4), "rlfn", 4),
]

SIZES = [(24, 32), (17, 23)]  # the second odd; ESA needs >= 15


@pytest.mark.parametrize(("make", "arch", "scale"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_authors_code(make, arch, scale):
    torch.manual_seed(0)
    theirs = make().eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = {k: v.clone() for k, v in theirs.state_dict().items()}

    found = detect(sd)  # no --arch: the detector alone must recognise the authors' layout
    assert found.spec.name == arch
    assert found.hparams["scale"] == scale
    ours = build_from_state_dict(found.spec, found.hparams, sd)

    for h, w in SIZES:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            ref, got = theirs(x.clone()), ours(x.clone())
        assert got.shape == ref.shape
        assert float(ref.std()) > 1e-3  # a live output, not a saturated constant
        if arch != "imdn_rte":  # RTE halves odd sides (rounding up), in their code and ours alike
            assert got.shape == (2, 3, h * scale, w * scale)
        diff = float((got - ref).abs().max())
        print(f"{arch} x{scale} {h}x{w}: max |ours - theirs| = {diff:.2e}")
        assert diff <= 1e-5, diff
