"""sr-export: bad input gets one line on stderr and exit code 2; a failed check exits 1."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import asset


def _one_line_error(res, code=2):
    assert res.code == code, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert lines[0].startswith("sr-export: error: ")
    assert "Traceback" not in res.err
    return lines[0]


def test_missing_file(cli, tmp_path):
    line = _one_line_error(cli("export", tmp_path / "nope.pth"))
    assert "no such file" in line


def _noise(n: int) -> bytes:
    """Deterministic random bytes (seeded, so a run cannot draw a real file signature by chance)."""
    return np.random.default_rng(1234).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    "content",
    [lambda: _noise(3000), lambda: asset("realworld/0014.jpg").read_bytes(),
     lambda: asset("weights/fsrcnn/fsrcnn_x3.pth").read_bytes()[:30000]],
    ids=["random-bytes", "an-image", "truncated-pth"],
)
def test_not_a_checkpoint(cli, tmp_path, content):
    bad = tmp_path / "model.pth"
    bad.write_bytes(content())
    line = _one_line_error(cli("export", bad, "-o", tmp_path / "m.onnx"))
    assert str(bad) in line
    assert not (tmp_path / "m.onnx").exists()


def test_git_lfs_pointer_says_git_lfs_pull(cli, tmp_path):
    ptr = tmp_path / "RealESRGAN_x4plus.pth"
    ptr.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1\n"
        "size 67040989\n"
    )
    line = _one_line_error(cli("export", ptr, "-o", tmp_path / "m.onnx"))
    assert str(ptr) in line and "Git LFS pointer" in line and "git lfs pull" in line
    assert "not a PyTorch" not in line
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_architecture_lists_known_and_names_arch_flag(cli, tmp_path):
    ckpt = tmp_path / "mystery.pth"
    torch.save({"encoder.weight": torch.zeros(8, 3, 3, 3), "decoder.weight": torch.zeros(3, 8, 3, 3)}, ckpt)
    line = _one_line_error(cli("export", ckpt))
    assert "unknown architecture" in line and "--arch" in line
    assert "edsr" in line and "swinir" in line and "encoder.weight" in line


def test_arch_that_does_not_fit(cli, tmp_path):
    line = _one_line_error(cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "--arch", "edsr",
                               "-o", tmp_path / "m.onnx"))
    assert "do not have the layout of edsr" in line
    assert "edsr expects keys sub_mean.*, head.*, body.*, tail.*" in line


def test_arch_accepts_a_known_foreign_layout(cli, tmp_path):
    from sredge.models.checkpoint import load_state_dict

    theirs = {"conv_1.": "first_part.0.", "conv_2.": "first_part.2.", "conv_3.": "last_part.0."}
    sd = load_state_dict(asset("weights/espcn/espcn_x3.pt"))
    renamed = {theirs[k[:7]] + k[7:]: v for k, v in sd.items()}
    ckpt = tmp_path / "espcn_pytorch.pth"
    torch.save({"net": renamed, "optimizer": {}, "epoch": 7}, ckpt)
    res = cli("export", ckpt, "--arch", "espcn", "-o", tmp_path / "m.onnx", "-q")
    assert res.code == 0, res.err
    assert (tmp_path / "m.onnx").exists()


def test_arch_with_an_unknown_renaming_lists_the_expected_keys(cli, tmp_path):
    ckpt = tmp_path / "espcn_renamed.pth"
    torch.save({f"layer{i}.weight": torch.zeros(4, 4, 3, 3) for i in range(3)}, ckpt)
    line = _one_line_error(cli("export", ckpt, "--arch", "espcn", "-o", tmp_path / "m.onnx"))
    assert "layer0.weight" in line
    assert "conv_1.*, conv_2.*, conv_3.* or first_part.0.*, first_part.2.*, last_part.0.*" in line


def test_unknown_arch_name_is_a_usage_error(cli, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "--arch", "resnet50")
    assert exc.value.code == 2


def test_scale_contradicting_weights(cli, tmp_path):
    line = _one_line_error(cli("export", asset("weights/espcn/espcn_x3.pt"), "--scale", "2", "-o", tmp_path / "m.onnx"))
    assert "--scale 2 contradicts" in line and "x3" in line


def test_scale_needed_when_neither_weights_nor_name_tell(cli, tmp_path):
    line = _one_line_error(cli("export", asset("weights/vdsr/vdsr_model_epoch_50.pth"), "--trust-pickle",
                               "-o", tmp_path / "m.onnx"))
    assert "pass --scale" in line


def test_pickled_code_needs_trust_pickle(cli, tmp_path):
    line = _one_line_error(cli("export", asset("weights/vdsr/vdsr_model_epoch_50.pth"), "--scale", "3",
                               "-o", tmp_path / "m.onnx"))
    assert "--trust-pickle" in line and "arbitrary code" in line


@pytest.mark.parametrize("where", ["missing-dir", "parent-is-file", "is-a-dir"])
def test_unwritable_output(cli, tmp_path, where):
    (tmp_path / "afile").write_text("x")
    out = {"missing-dir": tmp_path / "no" / "such" / "m.onnx",
           "parent-is-file": tmp_path / "afile" / "m.onnx",
           "is-a-dir": tmp_path}[where]
    line = _one_line_error(cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "-o", out))
    assert "cannot write" in line


def test_output_would_overwrite_checkpoint(cli, tmp_path):
    ckpt = tmp_path / "m.onnx"
    ckpt.write_bytes(asset("weights/espcn/espcn_x3.pt").read_bytes())
    line = _one_line_error(cli("export", ckpt))
    assert "overwrite" in line
    assert ckpt.read_bytes() == asset("weights/espcn/espcn_x3.pt").read_bytes()


def test_failed_parity_exits_1_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "m.onnx"
    res = cli("export", asset("weights/espcn/espcn_x3.pt"), "-o", out, "--min-psnr", "1000")
    line = _one_line_error(res, code=1)
    assert "parity check failed" in line
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary is left


def test_debug_env_shows_traceback(tmp_path):
    env = {**os.environ, "SREDGE_DEBUG": "1"}
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.export", str(tmp_path / "nope.pth")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_usage_error_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.export", "a.pth", "--scale", "x5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--scale" in proc.stderr
