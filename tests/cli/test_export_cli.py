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
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.export", "a.pth", "--scale", "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--scale" in proc.stderr
