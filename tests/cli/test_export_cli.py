"""sr-export: bad input gets one line on stderr and exit code 2; a failed check exits 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from sredge.runtime.bundled import default_model
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
    assert proc.returncode == 2, proc.stderr  # the documented code, not the interpreter's 1
    assert "Traceback" in proc.stderr and "InputError" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sr-export: error: ")


def test_usage_error_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "sredge.cli.export", "a.pth", "--scale", "x5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--scale" in proc.stderr


# -- calibration and validation inputs are checked before the FP32 file is written ------------------------


FSRCNN_X2 = "weights/fsrcnn/fsrcnn_x2.pth"


def _t91_copy(folder, n: int = 20):
    """``n`` real T91 images (enough crops for the default minimum of 16) in a folder of the test's own."""
    import shutil

    folder.mkdir()
    for src in sorted(asset("calibration/T91").iterdir())[:n]:
        shutil.copy(src, folder / src.name)
    return folder


def _huge_png(path):
    """A small PNG whose header declares 20000x20000 pixels (400 MP: over the default limit)."""
    from tests.robustness._hostile import huge_header

    path.write_bytes(huge_header("png", 20000, 20000))
    return path


def _truncated(src, dst):
    """A real image cut short: its header is whole, its pixels are not."""
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])
    return dst


def _bad_source(case: str, tmp_path) -> tuple[list, str]:
    """(extra sr-export arguments, what the error line says) for one bad --calib / --val."""
    t91 = asset("calibration/T91")
    if case == "calib-not-an-image":
        (tmp_path / "notimg.png").write_text("hello\n")
        return ["--calib", tmp_path / "notimg.png"], "neither a folder of images nor a video"
    if case == "calib-folder-with-a-text-png":
        folder = _t91_copy(tmp_path / "calib")
        (folder / "notes.png").write_text("hello\n")
        return ["--calib", folder], "notes.png: not a PNG, JPEG"
    if case == "calib-images-smaller-than-tile":
        return ["--calib", t91, "--calib-tile", "1000"], "only 0 crops of 1000x1000"
    if case == "calib-over-size-image":
        folder = _t91_copy(tmp_path / "calib")
        _huge_png(folder / "zz_big.png")
        return ["--calib", folder], "20000x20000 pixels (400 MP), over the limit"
    if case == "calib-truncated-image":  # found only by decoding: still before the FP32 file
        folder = _t91_copy(tmp_path / "calib")
        _truncated(t91 / "t9.png", folder / "zz_cut.png")
        return ["--calib", folder], "zz_cut.png is truncated or corrupt"
    if case == "calib-npz-among-sources":
        return ["--calib", t91, "--calib", tmp_path / "set.npz"], "is a saved set, which is used alone"
    if case == "calib-tile-0":
        return ["--calib", t91, "--calib-tile", "0"], "tile must be at least 1"
    if case == "calib-tile-8":  # the audit: RLFN's ESA blocks failed on 8-pixel crops (exit 3, FP32 file left)
        return ["--calib", t91, "--calib-tile", "8"], "tile 8 is too small: sr-run never feeds a network less"
    if case == "calib-too-few-images":  # none of the 10 is a tile big: no crop at all, of the 16 needed
        return (["--calib", _t91_copy(tmp_path / "calib", 10), "--calib-tile", "600"],
                "only 0 crops of 600x600 (calib: 0); at least 16")
    if case == "calib-crops-0":
        return ["--calib", t91, "--calib-crops", "0"], "--calib-crops must be at least 1"
    if case == "val-empty-folder":
        (tmp_path / "val").mkdir()
        return ["--calib", t91, "--val", tmp_path / "val"], "no images"
    if case == "val-over-size-image":
        (tmp_path / "val").mkdir()
        _huge_png(tmp_path / "val" / "big.png")
        return ["--calib", t91, "--val", tmp_path / "val"], "over the limit"
    if case == "val-truncated-image":  # found only by decoding: still before the FP32 file takes its name
        (tmp_path / "val").mkdir()
        _truncated(asset("benchmarks/Set5/HR/baby.png"), tmp_path / "val" / "baby.png")
        return ["--calib", t91, "--val", tmp_path / "val"], "baby.png is truncated or corrupt"
    raise AssertionError(case)


BAD_SOURCES = ["calib-not-an-image", "calib-folder-with-a-text-png", "calib-images-smaller-than-tile",
               "calib-over-size-image", "calib-truncated-image", "calib-npz-among-sources", "calib-tile-0",
               "calib-tile-8", "calib-crops-0", "val-empty-folder", "val-over-size-image", "val-truncated-image",
               "calib-too-few-images"]


@pytest.mark.parametrize("case", BAD_SOURCES)
def test_bad_calib_or_val_exits_2_and_writes_nothing(cli, tmp_path, case):
    """A bad --calib or --val is exit 2 with no file at any output name, so the corrected rerun is not
    blocked by a leftover FP32 file (docs/outputs.md)."""
    extra, says = _bad_source(case, tmp_path)
    if case == "calib-npz-among-sources":
        from sredge.calibration.sets import CalibrationOptions, build_calibration_set, save_calibration_set

        save_calibration_set(build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=48)),
                             tmp_path / "set.npz")
    out = tmp_path / "out"
    out.mkdir()
    res = cli("export", asset(FSRCNN_X2), "-o", out / "n.onnx", "--precision", "int8", "--bench-size", "off",
              *extra)
    line = _one_line_error(res)
    assert says in line, line
    assert list(out.iterdir()) == []  # neither n.onnx, n.int8.onnx nor a temporary


def test_asking_for_fewer_crops_than_the_minimum_takes_them(cli, tmp_path):
    """The audit: 10 images with --calib-crops 8 were refused (at least 16 crops needed), a minimum the
    option's help never named. Asking for N crops needs N."""
    out = tmp_path / "n.onnx"
    res = cli("export", asset(FSRCNN_X2), "-o", out, "--precision", "fp32,int8", "--bench-size", "off", "-q",
              "--calib", _t91_copy(tmp_path / "calib", 10), "--calib-crops", "8")
    assert res.code == 0, res.err
    assert (tmp_path / "n.int8.onnx").stat().st_size > 10_000


def test_header_checks_come_before_the_checkpoint_is_read(cli, tmp_path):
    """Cheap checks of --calib (listing, headers) run before anything heavy: a bad calibration folder is
    named even when the checkpoint is not a checkpoint."""
    bad = tmp_path / "model.pth"
    bad.write_bytes(_noise(3000))
    folder = _t91_copy(tmp_path / "calib")
    _huge_png(folder / "zz_big.png")
    line = _one_line_error(cli("export", bad, "-o", tmp_path / "n.onnx", "--precision", "int8", "--calib", folder))
    assert "over the limit" in line and "zz_big.png" in line


# -- --max-pixels --------------------------------------------------------------------------------------


def test_max_pixels_is_passed_to_the_calibration_reading(cli, tmp_path):
    folder = _t91_copy(tmp_path / "calib")
    _huge_png(folder / "zz_big.png")
    args = [asset(FSRCNN_X2), "-o", tmp_path / "n.onnx", "--precision", "int8", "--calib", folder,
            "--bench-size", "off"]
    line = _one_line_error(cli("export", *args))
    assert "pass --max-pixels 400M if you mean it" in line
    # what the message suggests is an option of sr-export: the limit is raised, and this header-only file
    # (no pixels behind its header) is then refused for what it is
    line = _one_line_error(cli("export", *args, "--max-pixels", "400M"))
    assert "zz_big.png is truncated or corrupt" in line and "over the limit" not in line
    # and lowered, it refuses the real images
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / "n.onnx", "--precision", "int8",
                               "--calib", asset("calibration/T91"), "--max-pixels", "10k"))
    assert "over the limit of 0.01 MP" in line
    assert not (tmp_path / "n.onnx").exists()


def test_max_pixels_is_passed_to_the_validation_reading(cli, tmp_path):
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / "n.onnx", "--precision", "int8",
                               "--calib", asset("calibration/T91"), "--val", asset("benchmarks/Set5"),
                               "--max-pixels", "200k", "--bench-size", "off"))  # T91's images are all smaller
    assert "baby.png is 512x512 pixels" in line and "over the limit of 0.2 MP" in line
    assert not (tmp_path / "n.onnx").exists()


def test_max_pixels_without_images_to_read_is_refused(cli, tmp_path):
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / "n.onnx", "--max-pixels", "500M"))
    assert "--max-pixels has no effect without --calib or --val" in line
    assert not (tmp_path / "n.onnx").exists()


# -- the output name -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,suggested", [("f.txt", "f.onnx"), ("model", "model.onnx"),
                                            ("m.onnx.bak", "m.onnx"), ("m.fp16.onnx", "m.onnx"),
                                            ("m.INT8.onnx", "m.onnx")])
def test_output_must_be_an_onnx_file(cli, tmp_path, name, suggested):
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / name, "--precision", "fp32,int8",
                               "--calib", asset("calibration/T91")))
    assert f"-o {tmp_path / name}" in line and line.endswith(f"use -o {tmp_path / suggested}"), line  # not m.onnx.onnx
    assert list(tmp_path.iterdir()) == []


def test_an_fp16_overflow_names_its_layers(cli, tmp_path):
    """The docs audit: when the validation image overflowed too, PyTorch's float16 scoring ran before the range
    check and the export ended "produced NaN or Inf ... FP16 overflow?" without naming a layer (docs: it names
    them). The range check now comes first."""
    sd = torch.load(asset("weights/fsrcnn/fsrcnn_x3.pth"), map_location="cpu", weights_only=True)
    sd["first_part.0.weight"] = sd["first_part.0.weight"] * 1e6
    ckpt = tmp_path / "big_x3.pth"
    torch.save(sd, ckpt)
    line = _one_line_error(cli("export", ckpt, "-o", tmp_path / "big_x3.onnx", "--precision", "fp32,fp16",
                               "--min-psnr", "0", "--bench-size", "off"), code=1)
    assert "FP16 would overflow" in line and "(Conv)" in line and "NaN" not in line, line
    assert not (tmp_path / "big_x3.fp16.onnx").exists()


def test_a_val_that_is_no_folder_says_which_it_is(cli, tmp_path):
    """The first-hour audit: `--val Set5` (a name, as docs/sr-calibrate.md wrote it) said "--val Set5 is not a
    folder (give a benchmark folder such as Set5)", contradicting itself."""
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / "m.onnx", "--precision", "fp32,int8",
                               "--calib", "sample", "--val", "Set5"))
    assert "--val Set5: no such folder" in line and "such as Set5" not in line, line
    (tmp_path / "f.png").write_bytes(b"x")
    line = _one_line_error(cli("export", asset(FSRCNN_X2), "-o", tmp_path / "m.onnx", "--precision", "fp32,int8",
                               "--calib", "sample", "--val", tmp_path / "f.png"))
    assert "f.png: not a folder" in line, line


def test_output_suffix_is_matched_whatever_its_case(cli, tmp_path):
    res = cli("export", asset(FSRCNN_X2), "-o", tmp_path / "M.ONNX", "-q")
    assert res.code == 0, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M.ONNX"]


# -- an INT8 file with no INT8 in it is not written ----------------------------------------------------


def test_int8_with_every_layer_kept_float_is_not_written(cli, tmp_path):
    """--max-psnr-drop 0 on FSRCNN: the sensitivity pass keeps every layer in float; that is no INT8 model.
    Exit 1, one line saying so and what to do; the FP32 file (its parity passed) stays."""
    out = tmp_path / "h.onnx"
    res = cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "-o", out, "--precision", "fp32,int8",
              "--calib", asset("calibration/T91"), "--calib-crops", "4", "--bench-size", "off",
              "--max-psnr-drop", "0")
    line = _one_line_error(res, code=1)
    assert "no layer could be quantized within --max-psnr-drop 0" in line
    assert "larger --max-psnr-drop" in line and "sr-train --qat" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.onnx"]
    # The file that stays is named, with how to rerun over it, and its row of the table is shown.
    assert line.endswith("(h.onnx written: add --overwrite to rerun)")
    assert any(ln.split()[:2] == ["fp32", "h.onnx"] for ln in res.out.splitlines())
    # The audit: a rerun over an earlier run's files left its h.int8.onnx beside the new h.onnx, unnamed.
    shutil.copyfile(default_model(2).with_name("sredge_x2.int8.onnx"), tmp_path / "h.int8.onnx")
    line = _one_line_error(cli("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "-o", out, "--precision",
                               "fp32,int8", "--calib", asset("calibration/T91"), "--calib-crops", "4",
                               "--bench-size", "off", "--max-psnr-drop", "0", "--overwrite"), code=1)
    assert line.endswith("add --overwrite to rerun; h.int8.onnx beside it: an earlier run's, not this one's)")


def test_a_large_int8_drop_without_a_budget_is_written_with_a_warning(cli, tmp_path, caplog):
    """Plain INT8 of FSRCNN x2 (cpu flavour) loses over 1 dB: the file is what was asked for, and a warning
    says how to keep the quality (a budget, another method, QAT)."""
    import logging

    out = tmp_path / "p.onnx"
    with caplog.at_level(logging.WARNING, logger="sredge.cli.export"):
        res = cli("export", asset("weights/fsrcnn/fsrcnn_x2.pth"), "-o", out, "--precision", "fp32,int8",
                  "--calib", asset("calibration/T91"), "--calib-crops", "16", "--bench-size", "off")
    assert res.code == 0, res.err
    drop = float(next(ln for ln in res.out.splitlines() if ln.split()[:1] == ["int8"]).split()[4])
    warned = [r.getMessage() for r in caplog.records if "INT8 drops" in r.getMessage()]
    assert drop > 1.0 and warned and "--max-psnr-drop" in warned[0] and "sr-train --qat" in warned[0]


def test_the_longest_name_the_output_rule_allows_is_written(cli, tmp_path):
    """The QAT audit's long names: sr-export wrote its ONNX through two nested temporary names (28 bytes over
    -o's), so a name the output check accepted (up to 241 bytes here) failed as an internal error after the
    export. It is written through one now, and one byte more is refused before any work."""
    ckpt = asset("weights/fsrcnn/fsrcnn_x3.pth")
    longest = tmp_path / ("e" * 236 + ".onnx")  # 241 bytes: + 14 for .NAME.XXXXXXXX.tmp is 255
    res = cli("export", ckpt, "-o", longest, "--bench-size", "off", "-q")
    assert res.code == 0 and longest.is_file(), res.err
    over = tmp_path / ("f" * 237 + ".onnx")
    res = cli("export", ckpt, "-o", over, "--bench-size", "off", "-q")
    assert res.code == 2 and "choose a shorter -o" in res.err and not over.exists(), res.err


@pytest.mark.parametrize("argv,needle", [
    (["."], "is a folder, not a checkpoint"),
    (["FIFO"], "is not a regular file: give the checkpoint file"),
    (["CKPT", "--precision", "fp16", "--bench-size", "100000x100000", "-o", "OUT"],
     "--bench-size 100000x100000: at most"),
    (["CKPT", "--min-psnr=nan", "-o", "OUT"], "--min-psnr must be a finite number of dB, not nan"),
    (["CKPT", "--min-psnr=inf", "-o", "OUT"], "--min-psnr must be a finite number of dB, not inf"),
    (["CKPT", "--bench-size", "320x180", "-o", "OUT"], "--bench-size has no effect without --precision int8 or fp16"),
    (["CKPT", "--calib-tile", "48", "-o", "OUT"], "--calib-tile has no effect without --calib (a folder or video)"),
    (["CKPT", "--int8-weight-bits", "7", "-o", "OUT"], "--int8-weight-bits has no effect without --precision int8"),
    (["CKPT", "--precision", "int8", "--calib", "SET", "--int8-weight-bits", "8", "-o", "OUT"],
     "the cpu flavour's weights are 7-bit"),
    (["CKPT", "--precision", "fp16", "--calib-tile", "48", "-o", "OUT"],
     "--calib-tile has no effect without --calib (a folder or video)"),
    (["CKPT", "--precision", "int8", "--calib", "SET", "--calib-tile", "48", "-o", "OUT"],
     "--calib-tile has no effect with a saved set (.npz): it keeps the tile it was cut with"),
])
def test_the_export_audits_exit_3s_and_unchecked_values_are_one_line_exit_2(cli, tmp_path, monkeypatch, argv, needle):
    """The export audit: a folder as the checkpoint was exit 3 ('PosixPath('.') has an empty name'), an oversized
    --bench-size exit 3 after writing the files, and --min-psnr nan reported a failed parity ('< nan dB')."""
    monkeypatch.chdir(tmp_path)
    ckpt = shutil.copy(asset("weights/fsrcnn/fsrcnn_x3.pth"), tmp_path / "f_x3.pth")
    fifo = "FIFO" in argv
    if fifo:  # the audit: a named pipe as the checkpoint blocked the reader for ever
        os.mkfifo(tmp_path / "f_x3.pth.fifo")
    argv = [ckpt if a == "CKPT" else tmp_path / "o.onnx" if a == "OUT" else tmp_path / "set.npz" if a == "SET"
            else tmp_path / "f_x3.pth.fifo" if a == "FIFO" else a for a in argv]
    res = cli("export", *argv)
    assert res.code == 2 and needle in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_x3.pth"] + ["f_x3.pth.fifo"] * fifo


def test_a_local_folder_named_sample_is_not_passed_over_silently(tmp_path, monkeypatch, capsys):
    from sredge.data.samples import folder_arg, sample_folder

    monkeypatch.chdir(tmp_path)
    assert folder_arg("sample") == sample_folder() and capsys.readouterr().err == ""
    (tmp_path / "sample").mkdir()
    assert folder_arg("sample") == sample_folder()
    assert "the sample folder here is not read (give ./sample for it)" in capsys.readouterr().err
    assert folder_arg("./sample").resolve() == (tmp_path / "sample").resolve()
