"""Scale resolution (pure) and descriptors of real checkpoints."""

from __future__ import annotations

import pytest

from sredge.errors import InputError
from sredge.models.checkpoint import training_record
from sredge.models.loader import load_model, resolve_scale, scale_from_name
from sredge.models.registry import get_arch
from tests.conftest import asset


@pytest.mark.parametrize(
    "name,scale",
    [("fsrcnn_x3.pth", 3), ("RealESRGAN_x4plus.pth", 4), ("4x_AnimeSharp.pth", 4), ("edsr_x2.pt", 2),
     ("001_classicalSR_DF2K_s64w8_SwinIR-M_x8.pth", 8), ("vdsr_model_epoch_50.pth", None), ("model_x64.pth", None),
     ("4x_fsrcnn_x3.pth", None), ("x2_to_x2.pth", 2)],  # two different hints: neither is believed
)
def test_scale_from_name(name, scale):
    assert scale_from_name(name) == scale


def test_resolve_scale_rules():
    fsrcnn, espcn = get_arch("fsrcnn"), get_arch("espcn")
    assert resolve_scale(espcn, 3, None, 2) == (3, "weights")  # weights beat the file name
    assert resolve_scale(espcn, 3, 3, None) == (3, "weights")
    with pytest.raises(InputError, match="--scale 2 contradicts the weights"):
        resolve_scale(espcn, 3, 2, None)
    assert resolve_scale(fsrcnn, None, 4, None) == (4, "--scale")
    assert resolve_scale(fsrcnn, None, 3, 3) == (3, "--scale")
    # The audit: fsrcnn_x2.pth --scale 3 exported and ran an x2 network as x3 (15.8 dB on Set5 bird), exit 0.
    with pytest.raises(InputError, match="--scale 4 contradicts the file name, which says x3; fsrcnn weights do not"):
        resolve_scale(fsrcnn, None, 4, 3)
    assert resolve_scale(get_arch("vdsr"), None, 4, 2, any_scale=True) == (4, "--scale")  # one file, every scale
    assert resolve_scale(fsrcnn, None, None, 3) == (3, "file name")
    with pytest.raises(InputError, match="pass --scale"):
        resolve_scale(fsrcnn, None, None, None)
    with pytest.raises(InputError, match="does not support x5"):
        resolve_scale(fsrcnn, None, 5, None)
    # An sr-train checkpoint's record stands in for weights that do not tell the scale.
    assert resolve_scale(fsrcnn, None, None, 2, recorded=3) == (3, "checkpoint")
    assert resolve_scale(fsrcnn, None, 3, None, recorded=3) == (3, "checkpoint")
    with pytest.raises(InputError, match="--scale 2 contradicts the checkpoint, which records a x3 fsrcnn"):
        resolve_scale(fsrcnn, None, 2, None, recorded=3)
    assert resolve_scale(espcn, 4, None, None, recorded=3) == (4, "weights")  # the weights themselves win
    vdsr = get_arch("vdsr")  # pre-upsampling: any scale the model files can record
    assert resolve_scale(vdsr, None, 5, None, any_scale=True) == (5, "--scale")
    for bad in (1, 17):
        with pytest.raises(InputError, match=f"vdsr takes any scale from 2 to 16, not x{bad}"):
            resolve_scale(vdsr, None, bad, None, any_scale=True)


def test_training_record_reads_sr_train_checkpoints_only():
    ours = {"params": {}, "arch": "fsrcnn", "hparams": {"scale": 3, "d": 56}, "train_options": {}}
    assert training_record(ours) == {"arch": "fsrcnn", "scale": 3}
    assert training_record({**ours, "hparams": {"scale": "3"}}) == {"arch": "fsrcnn"}
    # Other tools' top-level keys are not ours to read (BasicSR-style, a class name as "arch").
    assert training_record({"arch": "RRDBNet", "params": {}, "hparams": {"scale": 2}}) == {}
    assert training_record({"state_dict": {}}) == {} and training_record([1, 2]) == {}


@pytest.mark.parametrize(
    "rel,kwargs,expect",
    [
        ("weights/fsrcnn/fsrcnn_x2.pth", {}, dict(arch="fsrcnn", scale=2, in_channels=1, color_space="y",
                                                   pre_upsample=False, num_params=12_809)),
        ("weights/espcn/espcn_x4.pt", {}, dict(arch="espcn", scale=4, in_channels=3, color_space="ycbcr")),
        ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 3},
         dict(arch="vdsr", scale=3, in_channels=1, color_space="y", pre_upsample=True, num_params=664_704)),
        ("weights/srvgg/realesr-animevideov3.pth", {}, dict(arch="srvgg", scale=4, color_space="rgb",
                                                             variant="realesr_animevideov3")),
    ],
)
def test_real_checkpoint_descriptors(rel, kwargs, expect):
    desc = load_model(asset(rel), **kwargs).descriptor
    for k, v in expect.items():
        assert getattr(desc, k) == v, k


def test_a_name_whose_scale_the_weights_contradict_is_warned_about(tmp_path, caplog):
    """The checkpoint audit: x4 RFDN weights named rfdn_x2.pth loaded as x4 without a word, so sr-export's
    default output, rfdn_x2.onnx, carried x4 metadata under an x2 name."""
    import logging
    import shutil

    named = shutil.copy(asset("weights/efficient/rfdn_baseline_x4.pth"), tmp_path / "rfdn_x2.pth")
    with caplog.at_level(logging.WARNING, logger="sredge.models.loader"):
        loaded = load_model(named)
    assert loaded.descriptor.scale == 4
    assert any("rfdn_x2.pth: its name says x2, but its weights make it a x4" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sredge.models.loader"):
        load_model(asset("weights/efficient/rfdn_baseline_x4.pth"))
    assert not caplog.records
