"""Foreign key layouts of architectures in the zoo: renamed onto ours, detected, exported identically.

Stand-in files are built here from the real shared checkpoints (or a zoo module) by renaming
keys into the foreign layout; no third-party file is committed.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sredge.export.onnx_export import export_onnx
from sredge.errors import InputError
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
