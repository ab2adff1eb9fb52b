"""sr-train: patches, a short real training run, exact resume, and export of the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sredge.errors import InputError
from sredge.models.loader import load_model
from sredge.models.registry import get_arch
from sredge.train.data import PatchOptions, PatchSampler
from sredge.train.loop import TrainOptions, train
from tests.conftest import asset

HP = {"scale": 2, "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_conv": 2}


def _sampler(seed=0):
    return PatchSampler(asset("calibration/T91"), PatchOptions(scale=2, lr_patch=16), seed=seed)


def test_patches_are_aligned_and_deterministic():
    a, b = _sampler(3), _sampler(3)
    lr, hr = a.batch(4)
    lr2, hr2 = b.batch(4)
    assert lr.shape == (4, 1, 16, 16) and hr.shape == (4, 1, 32, 32)
    assert np.array_equal(lr, lr2) and np.array_equal(hr, hr2)
    # LR is the bicubic shrink of its HR patch (away from the patch border)
    from sredge.imaging.resize import imresize

    down = imresize(hr[0, 0], scale=0.5)
    assert np.abs(down[3:-3, 3:-3] - lr[0, 0, 3:-3, 3:-3]).mean() < 0.01


def test_training_lowers_the_loss_and_resume_is_exact(tmp_path):
    spec = get_arch("srvgg")
    opts = TrainOptions(steps=24, batch=4, val_every=12, threads=1)
    straight = train(spec, HP, _sampler(), tmp_path / "a.pth", opts)
    # the same run interrupted after 12 steps, then resumed
    with pytest.raises(KeyboardInterrupt):
        train(spec, HP, _sampler(), tmp_path / "b.pth", opts, on_step=_stop_at(12))
    train(spec, HP, _sampler(), tmp_path / "b.pth", opts, resume=True)
    a = torch.load(tmp_path / "a.pth", weights_only=True)
    b = torch.load(tmp_path / "b.pth", weights_only=True)
    assert a["step"] == b["step"] == 24
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    assert np.isfinite(straight.loss)


def _stop_at(step):
    """A progress callback that presses Ctrl-C after ``step``."""

    def cb(state):
        if state.step == step:
            raise KeyboardInterrupt

    return cb


def test_interrupted_run_then_resume(tmp_path):
    """Ctrl-C after a checkpoint: the checkpoint on disk is whole and resumes."""
    spec = get_arch("srvgg")
    opts = TrainOptions(steps=10, batch=2, val_every=5, threads=1)
    with pytest.raises(KeyboardInterrupt):
        train(spec, HP, _sampler(), tmp_path / "c.pth", opts, on_step=_stop_at(7))
    ck = torch.load(tmp_path / "c.pth", weights_only=True)
    assert ck["step"] == 5
    done = train(spec, HP, _sampler(), tmp_path / "c.pth", opts, resume=True)
    assert done.step == 10


def test_checkpoint_loads_with_sr_export_machinery(tmp_path):
    spec = get_arch("srvgg")
    train(spec, HP, _sampler(), tmp_path / "m_x2.pth", TrainOptions(steps=2, batch=2, val_every=2, threads=1))
    loaded = load_model(tmp_path / "m_x2.pth")
    d = loaded.descriptor
    assert (d.arch, d.scale, d.in_channels, d.color_space) == ("srvgg", 2, 1, "y")


def test_resume_refuses_another_configuration(tmp_path):
    spec = get_arch("srvgg")
    train(spec, HP, _sampler(), tmp_path / "m.pth", TrainOptions(steps=2, batch=2, val_every=2, threads=1))
    with pytest.raises(InputError, match="cannot resume"):
        train(spec, {**HP, "num_feat": 4}, _sampler(), tmp_path / "m.pth",
              TrainOptions(steps=4, batch=2, val_every=2, threads=1), resume=True)


def test_cli_refuses_overwriting_without_resume(cli, tmp_path):
    out = tmp_path / "m.pth"
    out.write_bytes(b"x")
    res = cli("train", "--data", asset("calibration/T91"), "--steps", "1", "-o", out)
    assert res.code == 2 and "--resume" in res.err


def test_distillation_moves_the_student_towards_the_teacher(cli, tmp_path):
    """--teacher: no ground truth; the student learns the real FSRCNN x2's outputs on real frames."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("0014.jpg", "0030.jpg", "ADE_val_00000114.jpg"):
        (frames / name).write_bytes(asset(f"realworld/{name}").read_bytes())
    out = tmp_path / "student_x2.pth"
    res = cli("train", "--arch", "srvgg", "--feats", "8", "--convs", "2", "--scale", "2", "--data", frames,
              "--teacher", asset("weights/fsrcnn/fsrcnn_x2.pth"), "--steps", "60", "--batch", "8",
              "--patch", "24", "--val-every", "60", "--threads", "1", "-o", out, "-q")
    assert res.code == 0, res.err
    from sredge.train.data import InputPatchSampler
    from sredge.train.loop import TeacherSampler

    teacher = load_model(asset("weights/fsrcnn/fsrcnn_x2.pth"))
    batches = TeacherSampler(InputPatchSampler(frames, 24, luma=True, seed=9), teacher.module,
                             teacher.descriptor, channels=1)
    x, target = batches.batch(8)
    student = load_model(out).module
    untrained = get_arch("srvgg").build(**HP)
    with torch.no_grad():
        err_trained = float((student(torch.from_numpy(x)) - torch.from_numpy(target)).abs().mean())
        err_untrained = float((untrained(torch.from_numpy(x)) - torch.from_numpy(target)).abs().mean())
    assert err_trained < err_untrained * 0.8


def test_teacher_channels_must_match(cli, tmp_path):
    res = cli("train", "--data", asset("realworld"), "--teacher", asset("weights/srvgg/realesr-animevideov3.pth"),
              "--scale", "4", "--channels", "1", "--steps", "1", "-o", tmp_path / "s.pth")
    assert res.code == 2 and "--channels 3" in res.err
    res = cli("train", "--data", asset("realworld"), "--teacher", asset("weights/espcn/espcn_x2.pt"),
              "--steps", "1", "-o", tmp_path / "s.pth")
    assert res.code == 2 and "RGB or Y" in res.err


def test_student_takes_the_teachers_channels_by_default(cli, tmp_path):
    """The issue's example: an RGB x4 teacher, no --channels: an RGB student."""
    res = cli("train", "--arch", "srvgg", "--feats", "8", "--convs", "2", "--scale", "4",
              "--teacher", asset("weights/srvgg/realesr-animevideov3.pth"), "--data", asset("realworld"),
              "--steps", "2", "--batch", "2", "--patch", "16", "--val-every", "2", "--threads", "1",
              "-o", tmp_path / "student.pth", "-q")
    assert res.code == 0, res.err
    d = load_model(tmp_path / "student.pth").descriptor
    assert (d.in_channels, d.color_space, d.scale) == (3, "rgb", 4)
