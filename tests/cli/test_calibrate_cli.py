"""sr-calibrate build/show and sr-export --precision: real checkpoints, real calibration data."""

from __future__ import annotations

import pytest

from sredge.models.onnx_file import read_descriptor
from tests.conftest import asset


def test_calibrate_build_and_show(cli, tmp_path):
    out = tmp_path / "calib.npz"
    res = cli("calibrate", "build", "--from", asset("calibration/T91"), "--from", asset("video/onepiece_demo.mp4"),
              "--frames", "8", "--tile", "64", "-o", out)
    assert res.code == 0, res.err
    assert "99 crops of 64x64 (91 from T91, 8 from onepiece_demo.mp4)" in res.out and out.is_file()
    res = cli("calibrate", "show", out)
    assert res.code == 0 and "99 crops" in res.out and "frames 8" in res.out


def test_calibrate_too_few_crops_is_one_line_exit_2(cli, tmp_path):
    res = cli("calibrate", "build", "--from", asset("calibration/T91"), "--tile", "300", "--crops-per-image", "1",
              "-o", tmp_path / "c.npz")
    assert res.code == 2 and res.err.count("\n") == 1 and "only 13 crops" in res.err
    assert not (tmp_path / "c.npz").exists()


@pytest.mark.parametrize("flags,msg", [
    (["--precision", "int8"], "needs calibration data"),
    (["--fp16-io"], "--fp16-io has no effect without --precision fp16"),
    (["--precision", "fp32,int4"], "unknown precision int4"),
    (["--precision", "fp16", "--max-psnr-drop", "0.1"], "--max-psnr-drop has no effect"),
])
def test_export_precision_flag_errors(cli, tmp_path, flags, msg):
    res = cli("export", asset("weights/fsrcnn/fsrcnn_x2.pth"), "-o", tmp_path / "m.onnx", *flags)
    assert res.code == 2 and msg in res.err and res.err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.assets
def test_export_fp16_and_int8_with_table(cli, tmp_path):
    calib = tmp_path / "calib.npz"
    assert cli("calibrate", "build", "--from", asset("calibration/T91"), "--tile", "48", "-o", calib).code == 0
    out = tmp_path / "fsrcnn_x3.onnx"
    res = cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "-o", out, "--precision", "fp32,fp16,int8",
              "--calib", calib, "--calib-crops", "32", "--val", asset("benchmarks/Set5"), "--max-psnr-drop", "0.1",
              "--bench-size", "96x64")
    assert res.code == 0, res.err
    for name, precision in (("fsrcnn_x3.onnx", "fp32"), ("fsrcnn_x3.fp16.onnx", "fp16"),
                            ("fsrcnn_x3.int8.onnx", "int8-cpu")):
        assert read_descriptor(tmp_path / name).precision == precision
    rows = {line.split()[0]: line.split() for line in res.out.splitlines()[-3:]}
    assert set(rows) == {"fp32", "fp16", "int8"}
    assert float(rows["fp16"][4]) <= 0.02 and float(rows["int8"][4]) <= 0.1  # drop column
    # The FP16 figure is computed in float16 (ONNX Runtime on x86 would compute the file in float32).
    fp16_line = res.out.splitlines()[-2]
    assert "PSNR computed in float16 by PyTorch" in fp16_line
    assert read_descriptor(tmp_path / "fsrcnn_x3.fp16.onnx").precision == "fp16"
    assert rows["int8"][6].endswith("x")  # speedup column
