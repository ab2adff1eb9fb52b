"""BSRN and SPAN: detection round trips at every scale and in every form, the NTIRE 2022 ``nn.Linear``
layout, SPAN's two forms and its exact collapse (the module and through sr-export).

Every named variant's detection and the test configs' ONNX export are covered by test_zoo.py."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sredge.imaging.metrics import psnr
from sredge.models.archs import bsrn, span
from sredge.models.loader import build_from_state_dict, constructor_defaults
from sredge.models.registry import all_archs, detect

CONFIGS = {
    "bsrn": {"scale": 4, "num_feat": 16, "num_block": 2, "block": "esdb"},
    "bsrn_s": {"scale": 4, "num_feat": 16, "num_block": 2, "block": "rfdb"},
    "span": {"scale": 4, "feature_channels": 8},
    "span_training": {"scale": 4, "feature_channels": 8, "training_form": True},
}
SPECS = {"bsrn": bsrn.ARCH, "bsrn_s": bsrn.ARCH, "span": span.ARCH, "span_training": span.ARCH}
CASES = [(name, s) for name in CONFIGS for s in SPECS[name].scales]


def _perturbed(spec, cfg, seed=0):
    torch.manual_seed(seed)
    model = spec.build(**cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_round_trip_at_every_scale(name, scale):
    spec, cfg = SPECS[name], {**CONFIGS[name], "scale": scale}
    model = _perturbed(spec, cfg)
    sd = model.state_dict()
    found = detect(sd)  # no --arch: unambiguous among every registered architecture
    assert found.spec is spec
    assert found.hparams == {**constructor_defaults(spec), **cfg}
    fresh = build_from_state_dict(spec, dict(found.hparams), sd)
    x = torch.rand(1, 3, 17, 15)  # odd sizes; 15 is BSRN's smallest (its ESA pools 7x7 after a stride 2)
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(fresh(x), y, rtol=0, atol=0)
    assert y.shape == (1, 3, 17 * scale, 15 * scale)


def test_bsrn_s_ntire22_linear_layout_loads_onto_conv_1x1():
    """The challenge code writes every 1x1 layer as nn.Linear: (out, in) weights, same keys."""
    model = _perturbed(bsrn.ARCH, CONFIGS["bsrn_s"])
    sd = model.state_dict()
    linear = {k: v[:, :, 0, 0] if v.ndim == 4 and v.shape[2:] == (1, 1) else v for k, v in sd.items()}
    assert linear["B1.c1_d.weight"].ndim == 2 and linear["c1.weight"].ndim == 2 and linear["B1.cw"].shape == (1, 16)
    found = detect(linear)
    assert found.spec is bsrn.ARCH and found.hparams["block"] == "rfdb"
    fresh = build_from_state_dict(bsrn.ARCH, dict(found.hparams), linear)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_bsrn_detector_rejects_mixed_blocks():
    sd = dict(_perturbed(bsrn.ARCH, CONFIGS["bsrn"]).state_dict())
    sd["B1.cw"] = torch.ones(1, 16)  # an RFDB weight in an ESDB checkpoint
    assert bsrn.detect(sd) is None
    sd = dict(_perturbed(bsrn.ARCH, CONFIGS["bsrn_s"]).state_dict())
    del sd["B2.c5.weight"], sd["B2.c5.bias"]
    sd = {k.replace("B2.", "B3."): v for k, v in sd.items()}  # a gap in B1..Bn
    assert bsrn.detect(sd) is None
    sd = dict(_perturbed(bsrn.ARCH, CONFIGS["bsrn"]).state_dict())
    sd["fea_conv.dw.weight"], sd["fea_conv.dw.bias"] = torch.zeros(12, 1, 3, 3), torch.zeros(12)  # depthwise first
    assert bsrn.detect(sd) is None


def test_other_architectures_reject_these_weights_and_these_reject_theirs():
    ours = {name: _perturbed(SPECS[name], cfg).state_dict() for name, cfg in CONFIGS.items()}
    for spec in all_archs():
        for name, sd in ours.items():
            if spec is not SPECS[name]:
                assert spec.detect(sd) is None, f"{spec.name} claims {name}"
        if spec not in (bsrn.ARCH, span.ARCH):
            theirs = spec.build(**spec.test_config).state_dict()
            assert bsrn.detect(theirs) is None and span.detect(theirs) is None, spec.name


def test_io_contracts():
    for name, cfg in CONFIGS.items():
        io = SPECS[name].io(cfg)
        assert (io.in_channels, io.out_channels, io.color_space, io.value_range) == (3, 3, "rgb", 1.0)
        assert io.size_multiple == 1 and not io.pre_upsample and io.fp16_safe


# --- SPAN: two forms and the collapse -------------------------------------------------


def _authors_training_checkpoint(model):
    """Our training-form weights plus the ``eval_conv`` copies the authors' Conv3XC also saves (stale here)."""
    sd = dict(model.state_dict())
    for name, conv in model.named_modules():
        if isinstance(conv, span.Conv3XC):
            cout, cin = conv.sk.weight.shape[:2]
            sd[f"{name}.eval_conv.weight"] = torch.randn(cout, cin, 3, 3)
            sd[f"{name}.eval_conv.bias"] = torch.randn(cout)
    return sd


def test_span_training_checkpoint_with_stale_eval_conv_loads_the_branches():
    model = _perturbed(span.ARCH, CONFIGS["span_training"])
    sd = _authors_training_checkpoint(model)
    found = detect(sd)
    assert found.spec is span.ARCH and found.hparams["training_form"] is True and found.hparams["gain"] == 2
    fresh = build_from_state_dict(span.ARCH, dict(found.hparams), sd)
    assert not any(".eval_conv." in k for k in fresh.state_dict())
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_span_mixed_forms_are_rejected():
    train = _perturbed(span.ARCH, CONFIGS["span_training"]).state_dict()
    evalf = _perturbed(span.ARCH, CONFIGS["span"]).state_dict()
    mixed = {**{k: v for k, v in evalf.items() if not k.startswith("conv_1.")},
             **{k: v for k, v in train.items() if k.startswith("conv_1.")}}
    assert span.detect(mixed) is None
    # The NTIRE 2024 file's other blocks: a learnable activation, a grouped (groups=2) Conv3XC.
    assert span.detect({**evalf, "block_1.act1.alpha": torch.ones(1, 8, 1, 1)}) is None
    assert span.detect({**evalf, "block_1.c1_r.eval_conv.weight": torch.zeros(8, 4, 3, 3)}) is None
    assert span.detect(evalf) is not None


def test_span_collapse_is_exact_and_leaves_the_training_module_alone():
    model = _perturbed(span.ARCH, CONFIGS["span_training"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flat = model.collapse()
    assert not flat.training and flat.collapse() is flat
    assert all(".eval_conv." in k or k.startswith(("conv_cat.", "upsampler.")) for k in flat.state_dict())
    hp = span.detect(flat.state_dict())
    assert hp == {**constructor_defaults(span.ARCH), **CONFIGS["span"]}
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for h, w in ((24, 32), (17, 23)):
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            y, z = model(x), flat(x)
        # Features are scaled by 255 inside SPAN; the fold rounds once in float32.
        err = float((y - z).abs().max())
        assert err <= 1e-5 * max(1.0, float(y.abs().max())), err


def test_sr_export_collapses_a_training_form_checkpoint(cli, tmp_path):
    model = _perturbed(span.ARCH, {**CONFIGS["span_training"], "scale": 2})
    ckpt = tmp_path / "span_train_x2.pth"
    torch.save({"params": _authors_training_checkpoint(model)}, ckpt)
    out = tmp_path / "span.onnx"
    res = cli("export", ckpt, "-o", out)
    assert res.code == 0, res.err
    assert "detected   span" in res.out and "scale x2" in res.out

    graph = onnx.load(str(out)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 20 + 2  # one per Conv3XC (conv_1, 6 x 3, conv_2), conv_cat, upsampler
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 29, 31), dtype=np.float32)
    onnx_y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        torch_y = model(torch.from_numpy(x)).numpy()  # the training form, branches and all
    peak = max(1.0, float(np.abs(torch_y).max()))
    assert psnr(onnx_y / peak, torch_y / peak) >= 60
