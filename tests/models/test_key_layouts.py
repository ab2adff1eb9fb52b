"""Foreign key layouts of architectures in the zoo: renamed onto ours, detected, exported identically.

Stand-in files are built here from the real shared checkpoints (or a zoo module) by renaming
keys into the foreign layout; no third-party file is committed.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sredge.errors import InputError
from sredge.export.onnx_export import export_onnx
from sredge.imaging.color import rgb_to_y
from sredge.imaging.io import read_image
from sredge.imaging.metrics import psnr
from sredge.models.archs.espcn import ESPCN
from sredge.models.archs.srcnn import ARCH as SRCNN
from sredge.models.checkpoint import load_state_dict
from sredge.models.loader import load_model
from sredge.models.registry import detect
from tests.conftest import asset

ESPCN_FOREIGN = {"conv_1.": "first_part.0.", "conv_2.": "first_part.2.", "conv_3.": "last_part.0."}
SRCNN_FOREIGN = {"conv1.": "features.0.", "conv2.": "map.0.", "conv3.": "reconstruction."}


def _rename(sd, ours_to_theirs):
    out = {}
    for k, v in sd.items():
        src = next(p for p in ours_to_theirs if k.startswith(p))
        out[ours_to_theirs[src] + k[len(src):]] = v
    return out


def _run_onnx(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _lr_image(scale: int, channels: int) -> np.ndarray:
    """A real Set5 LR image as (1, C, H, W) float32 in [0, 1] (Y when C == 1)."""
    rgb = read_image(asset(f"benchmarks/Set5/LR_bicubic/X{scale}/butterflyx{scale}.png")).astype(np.float32) / 255
    img = rgb_to_y(rgb)[..., None] if channels == 1 else rgb
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def _export_both(tmp_path, ours, theirs, **kwargs):
    a, b = load_model(ours, **kwargs), load_model(theirs, **kwargs)
    assert a.descriptor == b.descriptor and a.hparams == b.hparams
    pa = export_onnx(a.module, a.descriptor, tmp_path / "ours.onnx")
    pb = export_onnx(b.module, b.descriptor, tmp_path / "theirs.onnx")
    return a, pa, pb


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_espcn_first_part_last_part_layout_of_real_weights(tmp_path, scale):
    ours = asset(f"weights/espcn/espcn_x{scale}.pt")
    theirs = tmp_path / f"espcn_pytorch_x{scale}.pth"
    torch.save(_rename(load_state_dict(ours), ESPCN_FOREIGN), theirs)

    found = detect(load_state_dict(theirs))  # no --arch
    assert found.spec.name == "espcn"
    assert found.hparams == {"scale": scale, "num_channels": 3, "n1": 64, "n2": 32}

    loaded, pa, pb = _export_both(tmp_path, ours, theirs)
    x = _lr_image(scale, loaded.descriptor.in_channels)
    ya, yb = _run_onnx(pa, x), _run_onnx(pb, x)
    assert ya.shape == (1, 3, x.shape[2] * scale, x.shape[3] * scale)
    assert psnr(ya, yb) >= 120


def test_espcn_first_part_layout_with_one_channel_is_y():
    torch.manual_seed(0)
    sd = _rename(ESPCN(3, num_channels=1).state_dict(), ESPCN_FOREIGN)
    found = detect(sd)
    assert found.spec.name == "espcn" and found.hparams["num_channels"] == 1 and found.hparams["scale"] == 3
    io = found.spec.io(found.hparams)
    assert (io.in_channels, io.color_space) == (1, "y")


@pytest.mark.parametrize("f2", [1, 5], ids=["9-1-5", "9-5-5"])
def test_srcnn_features_map_reconstruction_layout(tmp_path, f2):
    torch.manual_seed(0)
    module = SRCNN.build(scale=3, f2=f2)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ours, theirs = tmp_path / "srcnn_x3.pth", tmp_path / "srcnn_lornatang_x3.pth"
    torch.save(module.state_dict(), ours)
    torch.save(_rename(module.state_dict(), SRCNN_FOREIGN), theirs)

    found = detect(load_state_dict(theirs))
    assert found.spec.name == "srcnn"
    assert found.hparams == {"scale": None, "num_channels": 1, "n1": 64, "n2": 32, "f1": 9, "f2": f2, "f3": 5}

    loaded, pa, pb = _export_both(tmp_path, ours, theirs)
    assert loaded.descriptor.variant == ("srcnn_915" if f2 == 1 else "srcnn_955")
    x = _lr_image(3, 1)  # the values are real; SRCNN keeps the size, so upsampling is not needed here
    assert psnr(_run_onnx(pa, x), _run_onnx(pb, x)) >= 120


def test_foreign_layouts_do_not_claim_each_other_or_the_real_fsrcnn():
    # FSRCNN's own keys also start with first_part.0 and last_part: it must stay FSRCNN.
    assert detect(load_state_dict(asset("weights/fsrcnn/fsrcnn_x3.pth"))).spec.name == "fsrcnn"
    # An extra key outside the layout means it is not this layout: unknown, not a silent partial load.
    sd = _rename(load_state_dict(asset("weights/espcn/espcn_x2.pt")), ESPCN_FOREIGN)
    sd["first_part.4.weight"] = torch.zeros(32, 32, 3, 3)
    with pytest.raises(InputError, match="unknown architecture"):
        detect(sd)


# --- Layouts renamed by index (FSRCNN Conv1..DeConv, VDSR features) or by prefix (VDSR trunk, BasicSR EDSR) ---
# Each stand-in is one of our modules with perturbed weights, its keys written in the foreign layout here
# (the inverse of the renaming under test, spelled out independently).


def _perturbed(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return module.eval()


def _fsrcnn_conv_deconv(sd, m):
    """Ours -> NicoCeresa/FSRCNN-2016: Conv1 = first_part, Conv2 = mid_part 0-1, Conv3 = the 2m mapping
    modules, Conv4 = the expand conv and its PReLU, DeConv = last_part."""
    out = {}
    for k, v in sd.items():
        part, _, rest = k.partition(".")
        if part == "first_part":
            out[f"Conv1.{rest}"] = v
        elif part == "last_part":
            out[f"DeConv.{rest}"] = v
        else:
            i, _, leaf = rest.partition(".")
            i = int(i)
            name, j = ("Conv2", i) if i < 2 else ("Conv3", i - 2) if i < 2 + 2 * m else ("Conv4", i - 2 - 2 * m)
            out[f"{name}.{j}.{leaf}"] = v
    return out


def _vdsr_trunk(sd, _):
    return _rename(sd, {"input.": "conv1.0.", "residual_layer.": "trunk.", "output.": "conv2."})


def _vdsr_features(sd, layers):
    out = {"features.0.weight": sd["input.weight"], f"features.{2 * layers + 2}.weight": sd["output.weight"]}
    out.update({f"features.{2 * i + 2}.weight": sd[f"residual_layer.{i}.conv.weight"] for i in range(layers)})
    return out


def _edsr_basicsr(sd, n_resblocks):
    out = {}
    for k, v in sd.items():
        if k.startswith(("sub_mean.", "add_mean.")):
            continue  # BasicSR keeps the mean in code, not in the file
        if k.startswith("head.0."):
            out["conv_first." + k[len("head.0."):]] = v
        elif k.startswith(f"body.{n_resblocks}."):
            out["conv_after_body." + k.split(".", 2)[2]] = v
        elif k.startswith("body."):
            _, n, _, j, leaf = k.split(".")
            out[f"body.{n}.conv{1 if j == '0' else 2}.{leaf}"] = v
        elif k.startswith("tail.0."):
            out["upsample." + k[len("tail.0."):]] = v
        else:
            out["conv_last." + k[len("tail.1."):]] = v
    return out


def _edsr_lornatang(sd, n_resblocks, std=(1.0, 1.0, 1.0)):
    """Ours -> Lornatang/EDSR-PyTorch: conv1, trunk.N.conv1/conv2, conv2, upsampling.K, conv3, and the
    mean/std buffers its forward pass uses instead of mean-shift convs."""
    basicsr = _edsr_basicsr(sd, n_resblocks)
    names = {"conv_first.": "conv1.", "body.": "trunk.", "conv_after_body.": "conv2.", "upsample.": "upsampling.",
             "conv_last.": "conv3."}
    out = _rename(basicsr, names)
    out["mean"] = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    out["std"] = torch.tensor(std).view(1, 3, 1, 1)
    return out


LAYOUT_CASES = {
    # id: (arch, hparams of the stand-in, ours -> theirs, extra argument, input channels)
    "fsrcnn-Conv1-DeConv-rgb": ("fsrcnn", {"scale": 3, "num_channels": 3, "d": 16, "s": 8, "m": 3},
                                _fsrcnn_conv_deconv, 3, 3),
    "vdsr-conv1-trunk-conv2": ("vdsr", {"scale": 2, "num_feat": 8, "num_layers": 4}, _vdsr_trunk, 4, 1),
    "vdsr-features": ("vdsr", {"scale": 2, "num_feat": 8, "num_layers": 4}, _vdsr_features, 4, 1),
    "edsr-basicsr-x2": ("edsr", {"scale": 2, "n_resblocks": 3, "n_feats": 16}, _edsr_basicsr, 3, 3),
    "edsr-basicsr-x4": ("edsr", {"scale": 4, "n_resblocks": 2, "n_feats": 16}, _edsr_basicsr, 2, 3),
    # Lornatang's EDSR is always 256 wide with residual scaling 0.1, on [0, 1].
    "edsr-lornatang-x2": ("edsr", {"scale": 2, "n_resblocks": 1, "n_feats": 256, "res_scale": 0.1, "rgb_range": 1.0},
                          _edsr_lornatang, 1, 3),
}


@pytest.mark.parametrize("case", list(LAYOUT_CASES))
def test_foreign_layout_detected_loaded_exactly_and_same_output(tmp_path, case):
    from sredge.models.registry import get_arch

    arch, hp, to_theirs, extra, channels = LAYOUT_CASES[case]
    spec = get_arch(arch)
    ours = _perturbed(spec.build(**hp))
    theirs = tmp_path / f"{case}.pth"
    torch.save(to_theirs(ours.state_dict(), extra), theirs)
    assert not set(load_state_dict(theirs)) & set(ours.state_dict())  # every key is renamed

    found = detect(load_state_dict(theirs))  # no --arch; fits exactly one architecture
    assert found.spec.name == arch
    expected = {k: v for k, v in hp.items() if not (k == "scale" and found.hparams["scale"] is None)}
    assert {k: found.hparams[k] for k in expected} == expected

    renamed = spec.adapt_state_dict(load_state_dict(theirs))
    assert renamed.keys() == ours.state_dict().keys()
    assert all(torch.equal(renamed[k], v) for k, v in ours.state_dict().items())

    loaded = load_model(theirs, scale=hp["scale"])
    assert loaded.descriptor.in_channels == channels
    assert loaded.descriptor.color_space == ("y" if channels == 1 else "rgb")
    x = torch.rand(1, channels, 12, 10) * loaded.descriptor.value_range
    with torch.no_grad():
        assert torch.equal(loaded.module(x), ours(x))


def test_edsr_basicsr_layout_computes_what_basicsr_computes(tmp_path):
    """BasicSR's EDSR: f(255 * (x - mean)) / 255 + mean on [0, 1]; ours takes [0, 255]. The forward pass
    below is BasicSR's, written with functional ops on the foreign tensors themselves."""
    import torch.nn.functional as F

    from sredge.models.archs.edsr import EDSR

    n = 2
    sd = _edsr_basicsr(_perturbed(EDSR(2, n_resblocks=n, n_feats=16)).state_dict(), n)
    torch.save(sd, tmp_path / "edsr_basicsr.pth")
    loaded = load_model(tmp_path / "edsr_basicsr.pth")
    assert loaded.descriptor.value_range == 255 and loaded.descriptor.scale == 2

    def conv(x, name):
        return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    x = torch.rand(1, 3, 11, 9)
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    with torch.no_grad():
        h = conv((x - mean) * 255, "conv_first")
        r = h
        for i in range(n):
            r = r + conv(F.relu(conv(r, f"body.{i}.conv1")), f"body.{i}.conv2")
        r = conv(r, "conv_after_body") + h
        y = conv(F.pixel_shuffle(conv(r, "upsample.0"), 2), "conv_last") / 255 + mean
        ours = loaded.module(x * 255) / 255
    assert torch.allclose(ours, y, atol=1e-5)


def test_fsrcnn_conv_deconv_layout_with_a_key_outside_it_is_unknown():
    from sredge.models.archs.fsrcnn import FSRCNN

    sd = _fsrcnn_conv_deconv(FSRCNN(3, num_channels=3, d=16, s=8, m=2).state_dict(), 2)
    sd["Conv5.0.weight"] = torch.zeros(1)
    with pytest.raises(InputError, match="unknown architecture"):
        detect(sd)


def test_edsr_lornatang_layout_computes_what_its_code_computes(tmp_path):
    """Lornatang's forward pass, (x - mean) / std in and y * std + mean out, written with functional ops on the
    foreign tensors themselves; a std other than 1 checks that the buffers, not constants, are used."""
    import torch.nn.functional as F

    from sredge.models.archs.edsr import EDSR

    n = 1
    sd = _edsr_lornatang(_perturbed(EDSR(3, n_resblocks=n, n_feats=256, res_scale=0.1, rgb_range=1.0)).state_dict(),
                         n, std=(0.5, 0.8, 1.25))
    torch.save({"state_dict": sd}, tmp_path / "edsr_lornatang_x3.pth")
    loaded = load_model(tmp_path / "edsr_lornatang_x3.pth")
    assert loaded.descriptor.value_range == 1 and loaded.descriptor.scale == 3
    assert loaded.hparams["res_scale"] == 0.1

    def conv(x, name):
        return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        h = conv((x - sd["mean"]) / sd["std"], "conv1")
        r = h
        for i in range(n):
            r = r + conv(F.relu(conv(r, f"trunk.{i}.conv1")), f"trunk.{i}.conv2") * 0.1
        r = conv(r, "conv2") + h
        y = conv(F.pixel_shuffle(conv(r, "upsampling.0"), 3), "conv3") * sd["std"] + sd["mean"]
        assert torch.allclose(loaded.module(x), y, atol=1e-4)


def test_unknown_weights_name_the_nearest_architecture_and_what_differs():
    """Weights that lost or renamed a layer were "unknown architecture" and a list of 24 names: the error now
    names the architecture whose layout is nearest and the top-level layers that differ."""
    from sredge.models.registry import get_arch

    spec = get_arch("fsrcnn")
    sd = spec.build(**spec.test_config).state_dict()
    cases = (
        ({k: v for k, v in sd.items() if not k.startswith("last_part")},
         "nearest: fsrcnn (these weights lack last_part.*)"),
        ({k.replace("last_part", "tail"): v for k, v in sd.items()},
         "nearest: fsrcnn (these weights lack last_part.*; have tail.* besides)"),
        ({k: v for k, v in sd.items() if k != "last_part.weight"},
         "nearest: fsrcnn (the same top-level layers; --arch fsrcnn shows what it expects)"),
    )
    for weights, needle in cases:
        with pytest.raises(InputError, match="unknown architecture") as err:
            detect(weights)
        assert needle in str(err.value), str(err.value)
    with pytest.raises(InputError) as err:
        detect({"foo.weight": torch.zeros(3, 3, 3, 3)})
    assert "nearest" not in str(err.value)
