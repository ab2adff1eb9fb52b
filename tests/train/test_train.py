"""sr-train: patches, a short real training run, exact resume, and export of the result."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sredge.errors import InputError
from sredge.imaging.metrics import psnr
from sredge.models.loader import load_model
from sredge.models.registry import get_arch
from sredge.train.data import PatchOptions, PatchSampler
from sredge.train.loop import TrainOptions, train
from tests.conftest import asset

ROOT = Path(__file__).resolve().parents[2]
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


def test_a_stop_before_the_first_validation_checkpoints_the_step_reached_and_resumes_exactly(tmp_path):
    """The first-hour audit: Ctrl-C before the first --val-every checkpoint lost every step done. A stop (the
    event sr-train's signal handler sets) now ends the run where it is, checkpointed as --stop-after would."""
    import threading

    spec = get_arch("srvgg")
    opts = TrainOptions(steps=24, batch=4, val_every=1000, threads=1)
    straight = train(spec, HP, _sampler(), tmp_path / "a.pth", opts)
    stop = threading.Event()

    def press_at_7(state):
        if state.step == 7:
            stop.set()

    stopped = train(spec, HP, _sampler(), tmp_path / "b.pth", opts, on_step=press_at_7, stop=stop)
    assert stopped.step == 8 and torch.load(tmp_path / "b.pth", weights_only=True)["step"] == 8  # the step in hand
    train(spec, HP, _sampler(), tmp_path / "b.pth", opts, resume=True)
    a = torch.load(tmp_path / "a.pth", weights_only=True)
    b = torch.load(tmp_path / "b.pth", weights_only=True)
    assert a["step"] == b["step"] == 24 and straight.step == 24
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k


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


def test_a_missing_data_folder_is_named_as_missing(cli, tmp_path):
    """The first-hour audit: --data nothere said "no training images in nothere"."""
    res = cli("train", "--data", tmp_path / "nothere", "--steps", "1", "-o", tmp_path / "m.pth")
    assert res.code == 2 and f"--data {tmp_path / 'nothere'}: no such folder" in res.err, res.err
    (tmp_path / "a.png").write_bytes(b"")
    res = cli("train", "--data", tmp_path / "a.png", "--steps", "1", "-o", tmp_path / "m.pth")
    assert res.code == 2 and "not a folder of images" in res.err, res.err


def test_resume_of_a_checkpoint_not_there_yet_starts_and_says_so(cli, tmp_path):
    """The audit: --resume with a mistyped -o started from scratch in silence. One command for the first run
    and every rerun stays (a preempted job's loop), but the run says it starts at step 0."""
    out = tmp_path / "new.pth"
    res = cli("train", "--arch", "fsrcnn", "--scale", "2", "--data", asset("calibration/T91"), "--steps", "2",
              "--batch", "2", "--patch", "16", "--threads", "1", "-o", out, "--resume")
    assert res.code == 0 and out.is_file(), res.err
    assert f"{out} does not exist yet, so this run starts at step 0" in res.err, res.err
    res = cli("train", "--arch", "fsrcnn", "--scale", "2", "--data", asset("calibration/T91"), "--steps", "2",
              "--batch", "2", "--patch", "16", "--threads", "1", "-o", out, "--resume")
    assert res.code == 0 and "does not exist yet" not in res.err, res.err


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
    from sredge.train.teacher import Teacher

    teacher = load_model(asset("weights/fsrcnn/fsrcnn_x2.pth"))
    batches = TeacherSampler(InputPatchSampler(frames, 24, luma=True, seed=9),
                             Teacher(teacher.module, teacher.descriptor, 2, "y"))
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


def test_student_takes_the_teachers_channels_by_default(cli, tmp_path):
    """The issue's example: an RGB x4 teacher, no --channels: an RGB student."""
    res = cli("train", "--arch", "srvgg", "--feats", "8", "--convs", "2", "--scale", "4",
              "--teacher", asset("weights/srvgg/realesr-animevideov3.pth"), "--data", asset("realworld"),
              "--steps", "2", "--batch", "2", "--patch", "16", "--val-every", "2", "--threads", "1",
              "-o", tmp_path / "student.pth", "-q")
    assert res.code == 0, res.err
    d = load_model(tmp_path / "student.pth").descriptor
    assert (d.in_channels, d.color_space, d.scale) == (3, "rgb", 4)


# --- distillation from a pre-upsampling teacher (VDSR), on ground truth and on unlabeled images ---------

VDSR = "weights/vdsr/vdsr_model_epoch_50.pth"


def _two_t91(tmp_path):
    folder = tmp_path / "t91"
    folder.mkdir()
    for name in ("t1.png", "t10.png"):
        (folder / name).write_bytes(asset(f"calibration/T91/{name}").read_bytes())
    return folder


def test_vdsr_teacher_targets_beat_bicubic_on_ground_truth(tmp_path):
    """Ground-truth mode: the teacher (pickled VDSR, fed MATLAB-bicubic-upsampled Y) runs once per image,
    and its targets are a real SR result (well above bicubic against the HR), aligned with the HR crops."""
    from sredge.imaging.resize import imresize
    from sredge.train.teacher import Teacher

    loaded = load_model(asset(VDSR), scale=3, trust_pickle=True)
    teacher = Teacher(loaded.module, loaded.descriptor, 3, "y")
    sampler = PatchSampler(_two_t91(tmp_path), PatchOptions(scale=3, lr_patch=24), seed=1, teacher=teacher)
    lr, hr, t = sampler.batch(6)
    assert lr.shape == (6, 1, 24, 24) and hr.shape == t.shape == (6, 1, 72, 72)
    c = 6  # away from the crops' borders, where a bicubic of the crop alone differs
    bic = np.stack([imresize(p[0], scale=3) for p in lr])[:, None]
    gain = psnr(t[..., c:-c, c:-c], hr[..., c:-c, c:-c]) - psnr(bic[..., c:-c, c:-c], hr[..., c:-c, c:-c])
    assert gain > 1.0, gain


def test_unlabeled_targets_are_the_centres_of_the_teachers_wider_view():
    """Unlabeled mode: the teacher sees a margin around each patch; the student's patch and target are the centres."""
    from sredge.train.data import InputPatchSampler
    from sredge.train.loop import TeacherSampler
    from sredge.train.teacher import Teacher

    loaded = load_model(asset("weights/fsrcnn/fsrcnn_x2.pth"))
    teacher = Teacher(loaded.module, loaded.descriptor, 2, "y")
    wide = InputPatchSampler(asset("realworld"), 16 + 2 * 4, luma=True, seed=5)
    x, t = TeacherSampler(wide, teacher, margin=4).batch(3)
    ref_x = InputPatchSampler(asset("realworld"), 16 + 2 * 4, luma=True, seed=5).batch(3)
    assert x.shape == (3, 1, 16, 16) and t.shape == (3, 1, 32, 32)
    assert np.array_equal(x, ref_x[:, :, 4:-4, 4:-4])
    assert np.allclose(t, teacher(ref_x)[:, :, 8:-8, 8:-8])


def test_cli_distils_from_vdsr_with_ground_truth(cli, tmp_path):
    out = tmp_path / "s.pth"
    res = cli("train", "--arch", "sesr", "--feats", "8", "--convs", "2", "--expand", "16", "--scale", "2",
              "--data", _two_t91(tmp_path), "--teacher", asset(VDSR), "--trust-pickle", "--teacher-mode",
              "ground-truth", "--teacher-weight", "0.5", "--steps", "3", "--batch", "2", "--patch", "16",
              "--val-every", "3", "--threads", "1", "-o", out)
    assert res.code == 0, res.err
    ck = torch.load(out, weights_only=True)
    assert ck["train_options"]["teacher_weight"] == 0.5 and ck["arch"] == "sesr"
    # stderr is not a terminal: no '\r' redraws; the teacher's pass is sr-run's progress line with the time
    # remaining, every few seconds (none for these two images)
    assert "\r" not in res.err and "teacher outputs" not in res.err, res.err


@pytest.mark.parametrize("args,msg", [
    (["--teacher-mode", "ground-truth"], "give --teacher"),
    (["--teacher", "T", "--teacher-weight", "2"], "--teacher-mode ground-truth"),
    (["--teacher", "T", "--teacher-mode", "ground-truth", "--teacher-weight", "0"], "must be a finite number > 0"),
])
def test_teacher_options_need_each_other(cli, tmp_path, args, msg):
    args = [str(tmp_path / "t.pth") if a == "T" else a for a in args]
    res = cli("train", "--data", "sample", "--steps", "1", "-o", tmp_path / "s.pth", *args)
    assert res.code == 2 and msg in res.err, res.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal needs a machine without it")
@pytest.mark.parametrize("qat", [False, True])
def test_device_cuda_without_a_gpu_is_one_line_before_any_work(cli, tmp_path, qat):
    extra = ["--qat", asset("weights/fsrcnn/fsrcnn_x3.pth")] if qat else []
    out = tmp_path / ("m.int8.onnx" if qat else "m.pth")
    res = cli("train", "--data", "sample", "--steps", "1", "--device", "cuda", *extra, "-o", out)
    assert res.code == 2 and "PyTorch sees no CUDA device" in res.err and len(res.err.strip().splitlines()) == 1
    assert not out.exists()



def test_an_fsrcnn_checkpoint_exports_with_no_flags(cli, tmp_path):
    """FSRCNN's weights do not tell its scale; sr-train's checkpoint records it, and sr-export reads it."""
    out = tmp_path / "mine.pth"  # no scale in the name either
    res = cli("train", "--arch", "fsrcnn", "--scale", "3", "--data", "sample", "--steps", "2", "--batch", "2",
              "--val-every", "2", "-q", "-o", out)
    assert res.code == 0, res.err
    loaded = load_model(out)
    assert (loaded.descriptor.arch, loaded.descriptor.scale, loaded.scale_source) == ("fsrcnn", 3, "checkpoint")
    res = cli("export", out, "-o", tmp_path / "mine.onnx")
    assert res.code == 0 and "scale x3 (from checkpoint)" in res.out, res.err
    res = cli("export", out, "--scale", "2", "-o", tmp_path / "x2.onnx")
    assert res.code == 2 and "contradicts the checkpoint" in res.err


# --- --resume: the options that define a run stay; a new --steps refits the schedule -----------------------

TINY = ["--feats", "8", "--convs", "2", "--batch", "2", "--patch", "16", "--threads", "1"]


def _tiny_run(cli, out, *extra):
    return cli("train", "--data", "sample", *TINY, "-o", out, *extra)


def test_resume_refuses_options_that_define_another_run(cli, tmp_path):
    """The audit: --resume --lr 0.5 ran at the checkpoint's 0.002 and recorded 0.5. Every option that defines
    the run is now refused when it differs, naming both values, before any work; the checkpoint is untouched."""
    out = tmp_path / "m.pth"
    assert _tiny_run(cli, out, "--steps", "4", "--val-every", "4", "-q").code == 0
    before = out.read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    (other / "t1.png").write_bytes(asset("calibration/T91/t1.png").read_bytes())
    cases = [(["--lr", "0.5"], "--lr 0.5, but the run it continues used --lr 0.002"),
             (["--batch", "3"], "--batch 3, but the run it continues used --batch 2"),
             (["--patch", "20"], "--patch 20, but the run it continues used --patch 16"),
             (["--loss", "l2"], "--loss l2, but the run it continues used --loss l1"),
             (["--seed", "1"], "--seed 1, but the run it continues used --seed 0"),
             (["--feats", "4"], "--feats 4, but the run it continues used --feats 8"),
             (["--scale", "3"], "--scale 3, but the run it continues used --scale 2"),
             (["--arch", "sesr"], "--arch sesr, but the run it continues used --arch srvgg"),
             (["--data", other], f"--data {other}, but the run it continues used --data "),
             (["--teacher", asset("weights/fsrcnn/fsrcnn_x2.pth")], "the run it continues had no --teacher")]
    for extra, msg in cases:  # the later of two repeated flags wins (argparse): each case overrides one value
        res = _tiny_run(cli, out, "--resume", "--steps", "8", *extra)
        assert res.code == 2, (extra, res.err)
        assert msg in res.err and len(res.err.strip().splitlines()) == 1, (extra, res.err)
    assert out.read_bytes() == before


def test_resume_with_more_steps_continues_as_the_longer_run(cli, tmp_path):
    """The audit: a larger --steps on --resume kept the old cosine (its LR climbed back up from ~0) and recorded
    steps that did not run. Now the schedule continues as a run of the new length would from the step reached."""
    from sredge.train.loop import cosine_lr

    out = tmp_path / "m.pth"
    assert _tiny_run(cli, out, "--steps", "8", "--val-every", "4", "-q").code == 0
    res = _tiny_run(cli, out, "--steps", "12", "--stop-after", "10", "--val-every", "5", "--resume")
    assert res.code == 0, res.err
    longer = TrainOptions(steps=12, lr=2e-3)
    note = [line for line in res.err.splitlines() if "cosine" in line]
    assert len(note) == 1 and "stretched to 12 steps" in note[0] and "from step 8" in note[0], res.err
    assert f"continues at {cosine_lr(longer, 8):.3g}" in note[0], note
    ck = torch.load(out, weights_only=True)
    assert ck["step"] == 10 and ck["scheduler"]["T_max"] == 12
    assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(cosine_lr(longer, 10), rel=1e-9)
    assert ck["train_options"]["steps"] == 12 and ck["train_options"]["lr"] == 2e-3
    assert ck["schedule"] == [[0, 8], [8, 12]]
    assert _tiny_run(cli, out, "--steps", "12", "--val-every", "4", "--resume", "-q").code == 0
    ck = torch.load(out, weights_only=True)
    assert ck["step"] == 12 and ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-6, rel=1e-6)


def test_resume_with_fewer_steps_than_done(cli, tmp_path):
    out = tmp_path / "m.pth"
    assert _tiny_run(cli, out, "--steps", "4", "--val-every", "4", "-q").code == 0
    before = out.read_bytes()
    res = _tiny_run(cli, out, "--steps", "3", "--resume")
    assert res.code == 2 and "--steps 3, but it has done 4 steps already; give --steps 4 or more" in res.err, res.err
    res = _tiny_run(cli, out, "--steps", "4", "--resume")
    assert res.code == 0 and "has done 4 steps; nothing left to train" in res.out, (res.out, res.err)
    assert out.read_bytes() == before


def test_library_resume_refuses_another_learning_rate(tmp_path):
    spec = get_arch("srvgg")
    train(spec, HP, _sampler(), tmp_path / "m.pth", TrainOptions(steps=2, batch=2, val_every=2, threads=1))
    with pytest.raises(InputError, match="--lr 0.01, but the run it continues used --lr 0.002"):
        train(spec, HP, _sampler(), tmp_path / "m.pth",
              TrainOptions(steps=4, batch=2, val_every=2, threads=1, lr=0.01), resume=True)


# --- the student's scale follows the teacher's; -o names what is written; exit codes --------------------------


def test_student_takes_the_teachers_scale_when_scale_is_not_given(cli, tmp_path):
    """The audit: an x4 teacher without --scale said '--scale 2 contradicts the weights' (2 was the default)."""
    teacher = asset("weights/efficient/rfdn_baseline_x4.pth")
    out = tmp_path / "s.pth"
    res = cli("train", "--teacher", teacher, "--arch", "fsrcnn", "--feats", "8", "--data", "sample", "--steps", "1",
              "--batch", "1", "--patch", "8", "--val-every", "1", "--threads", "1", "-o", out)
    assert res.code == 0, res.err
    assert "training x4, the teacher's scale (told by its weights)" in res.err
    assert load_model(out).descriptor.scale == 4
    res = cli("train", "--teacher", teacher, "--scale", "2", "--data", "sample", "--steps", "1",
              "-o", tmp_path / "b.pth")
    assert res.code == 2 and "--scale 2 contradicts the weights" in res.err, res.err
    # a teacher that takes any scale says nothing of it: the student's scale must be given
    res = cli("train", "--teacher", asset(VDSR), "--trust-pickle", "--data", "sample", "--steps", "1",
              "-o", tmp_path / "c.pth")
    assert res.code == 2 and "pass --scale 2, 3 or 4 (the scales sr-train trains)" in res.err, res.err
    assert "2/3/4/8" not in res.err, res.err


@pytest.mark.parametrize("name", ["x.onnx", "x", "x.int8.onnx", "x.pth.tmp"])
def test_output_that_is_not_a_checkpoint_name_is_refused(cli, tmp_path, name):
    """The audit: -o x.onnx without --qat wrote a torch pickle named .onnx."""
    res = cli("train", "--data", "sample", "--steps", "1", "-o", tmp_path / name)
    assert res.code == 2 and "give -o NAME.pth (or .pt)" in res.err and len(res.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_pt_output_is_a_checkpoint(cli, tmp_path):
    res = _tiny_run(cli, tmp_path / "m.PT", "--steps", "1", "-q")
    assert res.code == 0, res.err
    assert load_model(tmp_path / "m.PT").descriptor.arch == "srvgg"


def test_help_lists_every_exit_code():
    """The audit: --help listed 0 and 2 only (docs/outputs.md: 1, 3, 130, 143, 129 too)."""
    from sredge.cli.train import build_parser

    text = " ".join(build_parser().format_help().split())
    codes = text[text.index("Exit codes:"):]
    for code in ("0 trained", "1 training diverged", "2 bad input", "3 internal error", "130, 143, 129 stopped"):
        assert code in codes, code


@pytest.mark.parametrize("val,lr", [(True, "1e30"), (False, "1e30"), (False, "1e38")])
def test_diverged_training_is_exit_1_and_writes_no_nan_checkpoint(cli, tmp_path, val, lr):
    """Exit 1 of --help: a learning rate that blows the weights up. Without --val a NaN checkpoint was written
    (exit 0); with it, the NaN output was blamed on FP16. --lr 1e38 overflowed Adam's step: exit 3."""
    out = tmp_path / "m.pth"
    res = _tiny_run(cli, out, "--steps", "3", "--val-every", "3", "--lr", lr, *(["--val", "sample"] if val else []))
    assert res.code == 1 and "training diverged" in res.err and "lower --lr" in res.err, res.err
    assert not out.exists()


# --- every network trains in the colour space its descriptor declares (a 3-channel ESPCN: YCbCr) ---------------


def _y_psnr(loaded, color_space=None) -> float:
    """Mean Y-PSNR on the bundled photos through sredge's inference (Upscaler), fed in ``color_space``
    (default: the one the descriptor declares, as sr-run and sr-bench feed it)."""
    import dataclasses

    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_y_psnr
    from sredge.data.samples import folder_arg

    desc = loaded.descriptor if color_space is None else dataclasses.replace(loaded.descriptor,
                                                                            color_space=color_space)
    with torch.no_grad():
        scores = evaluate_y_psnr(lambda x: loaded.module(torch.from_numpy(x)).numpy(), desc,
                                 load_dataset(folder_arg("sample"), desc.scale))
    return float(np.mean(list(scores.values())))


def test_a_3_channel_espcn_trains_in_the_ycbcr_its_descriptor_declares(cli, tmp_path):
    """The audit: `--arch espcn --channels 3` trained on RGB patches, but the descriptor (and so validation,
    sr-export, sr-run) says ycbcr, as the public ESPCN weights need. Run through sredge's inference, the
    network must do clearly better in the colour space it declares than in the other one (before the fix it
    was the other way round: 27.9 dB as declared, 30.8 dB fed RGB)."""
    out = tmp_path / "e3.pth"
    res = cli("train", "--arch", "espcn", "--channels", "3", "--feats", "16", "--data", "sample", "--val", "sample",
              "--steps", "600", "--batch", "8", "--val-every", "600", "--seed", "1", "--threads", "1", "-o", out, "-q")
    assert res.code == 0, res.err
    loaded = load_model(out)
    assert loaded.descriptor.color_space == "ycbcr"
    declared, other = _y_psnr(loaded), _y_psnr(loaded, "rgb")
    assert declared > other + 3, (declared, other)
    assert declared == pytest.approx(torch.load(out, weights_only=True)["val_psnr"], abs=1e-6)


@pytest.mark.parametrize("color_space", ["ycbcr", "bgr"])
def test_patches_are_converted_as_inference_converts_images(color_space):
    """LR and HR patches in a network's colour space are the imaging conversion of the RGB patches
    (sredge.imaging.color.rgb_to_ycbcr, what sredge.imaging.model_io feeds a ycbcr network with)."""
    from sredge.data.samples import folder_arg
    from sredge.imaging.color import rgb_to_ycbcr

    def patches(space):
        return PatchSampler(folder_arg("sample"), PatchOptions(scale=2, lr_patch=12, color_space=space),
                            seed=4).batch(3)

    rgb, converted = patches("rgb"), patches(color_space)
    for a, b in zip(rgb, converted):
        if color_space == "ycbcr":
            expected = rgb_to_ycbcr(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        else:
            expected = a[:, ::-1]
        # the same function, on whole images rather than patches: cv2.transform's vector and scalar paths
        # may round the last bit differently
        assert b.shape == a.shape
        np.testing.assert_allclose(b, expected, rtol=0, atol=1e-6)


def test_a_ycbcr_teacher_gives_what_inference_gives():
    """The public ESPCN x3 (ycbcr) as a teacher: fed and read as sredge's inference feeds and reads it
    (image_to_input / output_to_image), for an RGB student; a ycbcr student gets its YCbCr output as it is."""
    from sredge.imaging.model_io import image_to_input, output_to_image
    from sredge.train.data import InputPatchSampler
    from sredge.train.teacher import Teacher

    loaded = load_model(asset("weights/espcn/espcn_x3.pt"))
    desc = loaded.descriptor
    assert desc.color_space == "ycbcr"
    rgb = InputPatchSampler(asset("realworld"), 20, luma=False, seed=2).batch(1)  # (1, 3, 20, 20) RGB
    with torch.no_grad():
        raw = loaded.module(torch.from_numpy(image_to_input(rgb[0].transpose(1, 2, 0), desc))).numpy()
    as_run = output_to_image(raw, desc).transpose(2, 0, 1)[None]  # the RGB image sr-run would write
    assert np.array_equal(Teacher(loaded.module, desc, 3, "rgb")(rgb), as_run)
    assert np.array_equal(Teacher(loaded.module, desc, 3, "ycbcr")(rgb), np.clip(raw, 0.0, 1.0))


def test_an_rgb_teacher_gives_ycbcr_targets_to_an_espcn_student(tmp_path):
    """An RGB teacher (RFDN x4) distilling into a 3-channel ESPCN: the teacher takes the RGB image, the
    student's LR, HR and teacher's targets are all the YCbCr of their RGB versions."""
    from sredge.imaging.color import rgb_to_ycbcr
    from sredge.train.data import InputPatchSampler
    from sredge.train.loop import TeacherSampler
    from sredge.train.teacher import Teacher

    loaded = load_model(asset("weights/efficient/rfdn_baseline_x4.pth"))
    assert loaded.descriptor.color_space == "rgb"

    def ycc(a):
        return rgb_to_ycbcr(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    folder = _two_t91(tmp_path)

    def triples(space):
        teacher = Teacher(loaded.module, loaded.descriptor, 4, space)
        return PatchSampler(folder, PatchOptions(scale=4, lr_patch=12, color_space=space), seed=3,
                            teacher=teacher).batch(2)

    rgb, ycbcr = triples("rgb"), triples("ycbcr")
    for a, b in zip(rgb, ycbcr):
        np.testing.assert_allclose(b, ycc(a), rtol=0, atol=1e-6)  # converted whole, not as patches (see above)
    # unlabeled: the inputs are cut in RGB, the teacher runs on them, the student's patches are converted after
    def unlabeled(space):
        wide = InputPatchSampler(asset("realworld"), 12 + 2 * 2, luma=False, seed=5)
        return TeacherSampler(wide, Teacher(loaded.module, loaded.descriptor, 4, space), margin=2).batch(2)

    for a, b in zip(unlabeled("rgb"), unlabeled("ycbcr")):
        np.testing.assert_allclose(b, ycc(a), rtol=0, atol=1e-6)


@pytest.mark.parametrize("teacher,arch,space", [("weights/espcn/espcn_x2.pt", "srvgg", "rgb"),
                                                ("weights/espcn/espcn_x2.pt", "espcn", "ycbcr"),
                                                ("weights/efficient/rfdn_baseline_x4.pth", "espcn", "ycbcr")])
def test_cli_distils_across_colour_spaces(cli, tmp_path, teacher, arch, space):
    """A ycbcr teacher was refused ('teachers must work on RGB or Y'); an RGB teacher into an ESPCN student
    trained it on RGB targets. Both train now, in the student's declared colour space."""
    out = tmp_path / "s.pth"
    convs = ["--convs", "2"] if arch == "srvgg" else []  # ESPCN has no body convolutions to count
    res = cli("train", "--teacher", asset(teacher), "--arch", arch, "--feats", "8", *convs, "--data", "sample",
              "--steps", "2", "--batch", "2", "--patch", "8", "--val-every", "2", "--threads", "1", "-o", out, "-q")
    assert res.code == 0, res.err
    d = load_model(out).descriptor
    assert (d.arch, d.in_channels, d.color_space) == (arch, 3, space)


# --- --stop-after, --val-every; --qat's refusals; the page's defaults -------------------------------------------


def test_stop_after_any_step_writes_a_checkpoint_that_resumes_exactly(cli, tmp_path):
    """--stop-after 7 with --val-every 5 writes step 7 (--help said it had to be a multiple); resumed, the run
    ends bit for bit where an uninterrupted one does."""
    straight, stopped = tmp_path / "a.pth", tmp_path / "b.pth"
    assert _tiny_run(cli, straight, "--steps", "10", "--val-every", "5", "-q").code == 0
    assert _tiny_run(cli, stopped, "--steps", "10", "--val-every", "5", "--stop-after", "7", "-q").code == 0
    assert torch.load(stopped, weights_only=True)["step"] == 7
    assert _tiny_run(cli, stopped, "--steps", "10", "--val-every", "5", "--resume", "-q").code == 0
    a, b = torch.load(straight, weights_only=True), torch.load(stopped, weights_only=True)
    assert a["step"] == b["step"] == 10
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    from sredge.cli.train import build_parser

    help_text = " ".join(build_parser().format_help().split())
    assert "multiple of --val-every" not in help_text and "any step" in help_text
    page = " ".join((ROOT / "docs" / "sr-train.md").read_text().split())
    assert "multiple of `--val-every`" not in page


@pytest.mark.parametrize("extra", [["--stop-after", "0"], ["--stop-after", "-3"], ["--val-every", "0"]])
def test_steps_below_one_are_refused(cli, tmp_path, extra):
    """--stop-after -3 said 'wrote m.pth after 0 steps' and wrote nothing; --val-every 0 was an internal error."""
    out = tmp_path / "m.pth"
    res = _tiny_run(cli, out, "--steps", "5", *extra)
    assert res.code == 2 and "must be >= 1" in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert not out.exists()


FSRCNN_X2 = "weights/fsrcnn/fsrcnn_x2.pth"
THREADS_MAX = max(64, 4 * (os.cpu_count() or 1))


@pytest.mark.parametrize("extra,expected", [
    (["--lr", "-0.001"], "--lr -0.001: must be a finite number > 0"),
    (["--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (["--lr", "inf"], "--lr inf: must be a finite number > 0"),
    (["--lr", "0"], "--lr 0.0: must be a finite number > 0"),
    (["--arch", "fsrcnn", "--convs", "3"], "--convs applies to --arch srvgg and sesr only, not --arch fsrcnn"),
    (["--expand", "7"], "--expand applies to --arch sesr only, not --arch srvgg"),  # were silently ignored
    (["--threads", "-2"], "--threads -2: must be >= 0"),
    (["--threads", "100000"], f"--threads 100000 is more than this machine can use: at most {THREADS_MAX}"),
    (["--feats", "-1"], "--feats -1: must be >= 1"),
    (["--feats", "0"], "--feats 0: must be >= 1"),
    (["--convs", "-1"], "--convs -1: must be >= 1"),
    (["--convs", "0"], "--convs 0: must be >= 1"),
    # 324 TB for one convolution: refused by its size now (the second train audit), before anything is built
    (["--feats", "3000000"], "--feats 3000000: must be <= 4096"),
    (["--feats", "4096", "--convs", "512"], "(--feats 4096, --convs 512) has 77,"),
    (["--arch", "sesr", "--expand", "0"], "--expand 0: must be >= 1"),
    # ran for ever building its patches: refused by a rough count of what training would hold
    (["--batch", "100000000"], "--batch 100000000 of --patch 16 needs about"),
    (["--teacher", "TEACHER", "--teacher-mode", "ground-truth", "--teacher-weight", "nan"],
     "--teacher-weight nan: must be a finite number > 0"),
    (["--teacher", "TEACHER", "--teacher-mode", "ground-truth", "--teacher-weight", "inf"],
     "--teacher-weight inf: must be a finite number > 0"),
    (["--seed", "-3"], "--seed -3: must be >= 0"),
    (["--seed", str(2**64)], f"--seed {2**64}: must be <= {2**64 - 1}"),
    (["--qat", FSRCNN_X2, "--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (["--qat", FSRCNN_X2, "--threads", "-1"], "--threads -1: must be >= 0"),
])
def test_numbers_out_of_range_are_one_line_before_any_work(cli, tmp_path, extra, expected):
    """The audit: --lr -0.001 or nan, --threads -2, --feats -1, --seed -3 were internal errors (exit 3); --threads
    100000 crashed torch; --feats 1000000 was an allocator's error; --convs -1 and --expand 0 trained (a checkpoint
    recording num_conv -1); --feats 0 and --convs 0 silently became the defaults; --teacher-weight nan or inf was
    'training diverged ... lower --lr'."""
    qat = "--qat" in extra
    extra = [str(asset(FSRCNN_X2)) if a in ("TEACHER", FSRCNN_X2) else a for a in extra]
    out = tmp_path / ("m.int8.onnx" if qat else "m.pth")
    sizes = TINY[4:] if qat else TINY  # --qat refuses --feats and --convs
    res = cli("train", "--data", "sample", *sizes, "--steps", "2", "--val-every", "2", "-o", out, *extra)
    assert res.code == 2 and expected in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert list(tmp_path.iterdir()) == []


def test_page_table_gives_the_qat_defaults_that_help_gives():
    """--help says '(default 20000; --qat 2000)'; the options table of docs/sr-train.md gave 20000 only."""
    import re

    from sredge.cli.train import build_parser

    rows = {}
    for line in (ROOT / "docs" / "sr-train.md").read_text().splitlines():
        if line.startswith("| `"):
            for flag in re.findall(r"(--[\w-]+)", line.split("|")[1]):
                rows.setdefault(flag, line)
    checked = 0
    for action in build_parser()._actions:
        for qat_default in re.findall(r"--qat (\d[\w.-]*)\)", action.help or ""):
            flag = max(action.option_strings, key=len)
            assert f"--qat {qat_default}" in rows[flag].replace("`", ""), (flag, rows[flag])
            checked += 1
    assert checked == 4



def test_cli_distils_an_rgb_teacher_into_espcn_on_ycbcr_targets(cli, tmp_path):
    """The CLI's run is the library's on YCbCr patches and targets (before: RGB ones, in a network declared ycbcr):
    same seed, one thread, bit-identical weights."""
    from sredge.cli.train import TEACHER_MARGIN
    from sredge.train.data import InputPatchSampler
    from sredge.train.loop import TeacherSampler
    from sredge.train.teacher import Teacher

    teacher_path = asset("weights/efficient/rfdn_baseline_x4.pth")
    out = tmp_path / "s.pth"
    res = cli("train", "--teacher", teacher_path, "--arch", "espcn", "--feats", "8", "--data", "sample", "--steps", "2",
              "--batch", "2", "--patch", "8", "--val-every", "2", "--threads", "1", "--device", "cpu", "-o", out, "-q")
    assert res.code == 0, res.err
    from sredge.data.samples import folder_arg

    loaded = load_model(teacher_path)
    hp = {"scale": 4, "num_channels": 3, "n1": 8, "n2": 4}

    def library_run(space, path):
        wide = InputPatchSampler(folder_arg("sample"), 8 + 2 * TEACHER_MARGIN, luma=False, seed=0)
        sampler = TeacherSampler(wide, Teacher(loaded.module, loaded.descriptor, 4, space), margin=TEACHER_MARGIN)
        train(get_arch("espcn"), hp, sampler, path, TrainOptions(steps=2, batch=2, val_every=2, threads=1))
        return torch.load(path, weights_only=True)["params"]

    cli_params = torch.load(out, weights_only=True)["params"]
    ycbcr, rgb = library_run("ycbcr", tmp_path / "y.pth"), library_run("rgb", tmp_path / "r.pth")
    assert all(torch.equal(cli_params[k], ycbcr[k]) for k in cli_params)
    assert not all(torch.equal(cli_params[k], rgb[k]) for k in cli_params)


def test_a_val_folder_that_cannot_be_scored_fails_before_training(cli, tmp_path):
    """The audit: a --val folder holding a 200x13 image failed at the first validation, after --val-every
    steps (and the teacher's pass), with no checkpoint; it is refused before any work now."""
    import cv2

    val = tmp_path / "val"
    val.mkdir()
    (val / "baby.png").write_bytes(asset("benchmarks/Set5/HR/baby.png").read_bytes())
    cv2.imwrite(str(val / "strip.png"), np.full((13, 200, 3), 128, np.uint8))
    out = tmp_path / "m.pth"
    res = _tiny_run(cli, out, "--val", val, "--steps", "100000", "--val-every", "100000")
    assert res.code == 2 and "strip.png is 200x13 pixels, too small to score" in res.err, res.err
    assert not out.exists() and "step" not in res.err


def test_quiet_still_warns_below_bicubic_and_a_weights_file_is_not_resumed(cli, tmp_path):
    """The audit: -q also hid 'no better than bicubic' (a warning, not progress); --resume over a public
    checkpoint said 'it was trained as None None'."""
    out = tmp_path / "w.pth"
    res = _tiny_run(cli, out, "--steps", "2", "--val", "sample", "--val-every", "2", "-q")
    assert res.code == 0 and "is no better than bicubic upscaling" in res.err, res.err
    public = tmp_path / "r.pth"
    public.write_bytes(asset("weights/fsrcnn/fsrcnn_x2.pth").read_bytes())
    res = _tiny_run(cli, public, "--steps", "2", "--resume")
    assert res.code == 2 and "holds weights but not an sr-train run" in res.err, res.err


def test_resume_refuses_data_that_changed_under_the_same_path(cli, tmp_path):
    """The sr-train audit: --resume after the --data images were replaced (same folder) went on silently, as
    another run."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("t1.png", "t2.png"):
        (data / name).write_bytes(asset(f"calibration/T91/{name}").read_bytes())
    out = tmp_path / "m.pth"
    run = ["--data", data, "--arch", "srvgg", "--feats", "8", "--convs", "2", "--batch", "2", "--patch", "16",
           "--threads", "1", "-o", out, "--val-every", "2", "-q"]
    assert cli("train", *run, "--steps", "4", "--stop-after", "2").code == 0
    (data / "t2.png").unlink()
    (data / "t3.png").write_bytes(asset("calibration/T91/t3.png").read_bytes())
    res = cli("train", *run, "--steps", "4", "--resume")
    assert res.code == 2 and "the images in --data" in res.err and "changed since the run began" in res.err, res.err
    (data / "t3.png").unlink()
    (data / "t2.png").write_bytes(asset("calibration/T91/t2.png").read_bytes())
    assert cli("train", *run, "--steps", "4", "--resume").code == 0  # restored: it continues


def test_the_second_train_audit_sizes_and_messages(cli, tmp_path):
    """--convs 100000 filled 17 GB for 85 s before a refusal naming --batch; --feats 1e20 was an internal error; a
    folder as -o was told to pass --resume or --overwrite; --teacher-arch without --teacher was ignored."""
    base = ["--data", "sample", "--steps", "2", "--batch", "2", "--patch", "16", "--threads", "1", "-q"]
    (tmp_path / "adir.pth").mkdir()
    for extra, needle in ((["--arch", "sesr", "--convs", "100000"], "--convs 100000: must be <= 4096"),
                          (["--feats", "99999999999999999999"], "--feats 99999999999999999999: must be <= 4096"),
                          (["--arch", "srvgg", "--feats", "4096", "--convs", "4096"],
                           "parameters; training them needs about"),
                          (["-o", tmp_path / "adir.pth"], "is a folder: name the file to write"),
                          (["--teacher-arch", "fsrcnn"], "apply to distillation: give --teacher CKPT")):
        argv = base + extra + ([] if "-o" in extra else ["-o", tmp_path / "m.pth"])
        res = cli("train", *argv)
        assert res.code == 2 and needle in res.err and len(res.err.strip().splitlines()) == 1, (extra, res.err)


def test_images_smaller_than_the_patch_are_named_when_others_remain(cli, tmp_path, caplog):
    """The sr-train audit: they were skipped without a word."""
    import cv2

    data = _two_t91(tmp_path)
    cv2.imwrite(str(data / "tiny.png"), np.zeros((10, 12, 3), np.uint8))
    with caplog.at_level("WARNING", logger="sredge.train.data"):
        res = cli("train", "--data", data, *TINY, "--steps", "2", "-o", tmp_path / "m.pth", "-q")
    assert res.code == 0, res.err
    assert "1 of 3 images are smaller than the 32x32 HR patch and are not used" in caplog.text, caplog.text


def test_detection_errors_name_only_flags_sr_train_has(cli, tmp_path):
    """sr-train has no --key-map, and --qat no --arch: their detection errors sent users to those flags."""
    odd = tmp_path / "odd.pth"
    torch.save({"foo.weight": torch.zeros(3, 3, 3, 3), "bar.bias": torch.zeros(3)}, odd)
    base = ["--data", "sample", "--steps", "2", "--batch", "2", "--patch", "16", "--threads", "1", "-q"]
    teacher = cli("train", *base, "--teacher", odd, "-o", tmp_path / "m.pth")
    arch = cli("train", *base, "--teacher", odd, "--teacher-arch", "fsrcnn", "-o", tmp_path / "m.pth")
    qat = cli("train", *base, "--qat", odd, "-o", tmp_path / "m.int8.onnx")
    for res in (teacher, arch, qat):
        assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert "unknown architecture" in teacher.err and "--key-map" not in teacher.err
    assert "--teacher-arch NAME lists the keys" in teacher.err and " --arch" not in teacher.err
    assert "check --teacher-arch" in arch.err and "--key-map" not in arch.err
    assert "export the checkpoint with sr-export odd.pth --arch NAME" in qat.err
    assert "give the .onnx to --qat" in qat.err
    assert "rename them with --key-map" not in qat.err
    assert not (tmp_path / "m.pth").exists() and not (tmp_path / "m.int8.onnx").exists()
