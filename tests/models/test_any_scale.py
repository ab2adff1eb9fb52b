"""``--scale N``: any integer from 2 to 16 for pre-upsampling networks (SRCNN, VDSR), the listed
scales for the others."""

from __future__ import annotations

import pytest
import torch

from sredge.errors import InputError
from sredge.imaging.io import read_image, write_image
from sredge.models.archs.espcn import ARCH as ESPCN
from sredge.models.archs.fsrcnn import ARCH as FSRCNN
from sredge.models.archs.vdsr import ARCH as VDSR
from sredge.models.loader import resolve_scale
from sredge.models.onnx_file import read_descriptor
from tests.conftest import asset


def test_resolve_scale_any_for_pre_upsampling_only():
    assert resolve_scale(VDSR, None, 9, None, any_scale=True) == (9, "--scale")
    assert resolve_scale(VDSR, None, 16, None, any_scale=True) == (16, "--scale")
    with pytest.raises(InputError, match="any scale from 2 to 16, not x17"):
        resolve_scale(VDSR, None, 17, None, any_scale=True)
    with pytest.raises(InputError, match="does not support x9"):
        resolve_scale(ESPCN, None, 9, None)
    # The first-hour audit: the hint for VDSR weights without a scale named 2/3/4/8, --help "any from 2 to 16".
    with pytest.raises(InputError, match=r"pass --scale N \(any from 2 to 16\)"):
        resolve_scale(VDSR, None, None, None, any_scale=True)
    with pytest.raises(InputError, match=r"pass --scale N \(2/3/4/8\)"):
        resolve_scale(ESPCN, None, None, None)


@pytest.fixture
def vdsr_ckpt(tmp_path):
    torch.manual_seed(2)
    module = VDSR.build(**VDSR.test_config)
    path = tmp_path / "vdsr_tiny.pth"
    torch.save(module.state_dict(), path)
    return path


def test_export_and_run_a_pre_upsampling_network_at_x9(cli, tmp_path, vdsr_ckpt):
    onnx_path = tmp_path / "vdsr_x9.onnx"
    res = cli("export", vdsr_ckpt, "--scale", "9", "-o", onnx_path, "-q")
    assert res.code == 0, res.err
    desc = read_descriptor(onnx_path)
    assert desc.scale == 9 and desc.pre_upsample

    src = tmp_path / "in.png"
    write_image(src, read_image(asset("realworld/0030.jpg"))[:20, :27])
    res = cli("run", "--image", src, "--model", onnx_path, "-o", tmp_path / "out.png", "-q")
    assert res.code == 0, res.err
    assert read_image(tmp_path / "out.png").shape[:2] == (180, 243)

    # The torch backend reads the checkpoint at x9 too, and gives the same pixels.
    res = cli("run", "--image", src, "--model", vdsr_ckpt, "--scale", "9", "-o", tmp_path / "t.png", "-q")
    assert res.code == 0, res.err
    a, b = read_image(tmp_path / "out.png").astype(int), read_image(tmp_path / "t.png").astype(int)
    assert a.shape == b.shape and abs(a - b).max() <= 1

    # A pre-upsampling file made for x9 runs at another factor too (its metadata's scale is replaced).
    res = cli("run", "--image", src, "--model", onnx_path, "--scale", "12", "-o", tmp_path / "o12.png", "-q")
    assert res.code == 0, res.err
    assert read_image(tmp_path / "o12.png").shape[:2] == (240, 324)


@pytest.mark.parametrize("scale,match", [("9", "does not support x9"), ("17", "from 1 to 16"), ("0", "from 1 to 16")])
def test_other_scales_are_one_line_exit_2(cli, tmp_path, scale, match):
    torch.manual_seed(2)
    path = tmp_path / "fsrcnn.pth"
    torch.save(FSRCNN.build(scale=3, d=8, s=4, m=1).state_dict(), path)  # its weights do not tell the scale
    res = cli("export", path, "--scale", scale, "-o", tmp_path / "e.onnx")
    assert res.code == 2 and match in res.err and len(res.err.strip().splitlines()) == 1
