"""sr-bench end to end on real exported models: reports, the baseline gate, bad input."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from sredge.runtime.bundled import default_model
from tests.conftest import asset

FAST = ("--size", "64x64", "--warmup", "1", "--repeats", "2")


def _badly_calibrated_int8(src, dst):
    """A real INT8 copy calibrated on one flat dark patch: its activation ranges are far too narrow."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Flat(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"input": np.full((1, 1, 32, 32), 0.05, np.float32)}])

        def get_next(self):
            return next(self.data, None)

    quantize_static(str(src), str(dst), Flat(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return dst


@pytest.fixture(scope="module")
def baseline(exported, tmp_path_factory):
    """fsrcnn_x3 on Set5 x3 saved as a baseline (with a report folder)."""
    folder = tmp_path_factory.mktemp("bench")
    return exported("fsrcnn_x3"), folder


def test_report_folder_and_baseline_gate(cli, baseline, tmp_path):
    model, folder = baseline
    set5 = asset("benchmarks/Set5")
    res = cli("bench", model, "--dataset", set5, "--scale", "3", "--report", folder / "out",
              "--save-baseline", folder / "base.json", "--tile", "0,48", "--rgb", *FAST)
    assert res.code == 0, res.err
    assert "bicubic" in res.out and "fsrcnn_x3 [tile 48]" in res.out
    report = json.loads((folder / "out" / "report.json").read_text())
    assert report == json.loads((folder / "base.json").read_text())
    rows = {r["label"]: r for r in report["rows"]}
    whole, tiled = rows["fsrcnn_x3 [tile none]"], rows["fsrcnn_x3 [tile 48]"]
    # Tiles with enough overlap give the whole-image result; FSRCNN beats bicubic by > 2 dB.
    assert tiled["quality"]["mean"]["psnr"] == pytest.approx(whole["quality"]["mean"]["psnr"], abs=1e-3)
    assert whole["quality"]["mean"]["psnr"] - rows["bicubic"]["quality"]["mean"]["psnr"] > 2.0
    assert set(whole["quality"]["images"]) == {"baby", "bird", "butterfly", "head", "woman"}
    assert whole["latency"]["runs"] == 2 and whole["latency"]["relative"] > 0 and report["reference_ms"] > 0
    assert {"onnxruntime", "numpy", "python"} <= set(report["software"]) and report["machine"]["cpu_count"]
    md = (folder / "out" / "report.md").read_text()
    assert "- CPU flags (INT8/bf16 speed): " + (" ".join(report["machine"]["cpu_flags"]) or "none of note") in md
    for png in ("latency.png", "psnr.png", "crops/butterfly.png"):
        assert f"]({png})" in md
        img = cv2.imread(str(folder / "out" / png))
        assert img is not None and img.shape[0] > 50
    # bicubic | two tile rows | HR, each 96 px zoomed x2
    assert cv2.imread(str(folder / "out" / "crops" / "bird.png")).shape[1] >= 4 * 192

    same = cli("bench", model, "--dataset", set5, "--scale", "3", "--baseline", folder / "base.json",
               "--tile", "0,48", "--max-psnr-drop", "0.01", *FAST)
    assert same.code == 0, same.err
    assert "within budget" in same.out


def test_gate_names_a_degraded_model(cli, baseline, tmp_path):
    model, folder = baseline
    set5 = asset("benchmarks/Set5")
    assert cli("bench", model, "--dataset", set5, "--save-baseline", tmp_path / "b.json", *FAST).code == 0
    bad = _badly_calibrated_int8(model, tmp_path / "fsrcnn_x3.int8.onnx")
    res = cli("bench", bad, "--dataset", set5, "--scale", "3", "--baseline", tmp_path / "b.json",
              "--max-psnr-drop", "0.05", "--save-baseline", tmp_path / "next.json", *FAST)
    assert res.code == 1
    # the bench audit: the failing run was saved as the next baseline, which a rolling job would adopt
    assert not (tmp_path / "next.json").exists() and "next.json not written" in res.err.splitlines()[-1]
    assert "int8" in res.out  # the precision column
    lines = [ln for ln in res.err.splitlines() if ln.startswith("REGRESSION")]
    assert any("fsrcnn_x3.int8: mean: Y-PSNR" in ln and "->" in ln for ln in lines)
    assert any("fsrcnn_x3.int8: butterfly: Y-PSNR" in ln for ln in lines)
    assert "regression(s) beyond the budget" in res.err.splitlines()[-1]


def test_a_gate_with_nothing_to_hold_the_run_to_is_exit_2_not_a_pass(cli, baseline, tmp_path):
    """The audit: a baseline saved with --no-quality passed a degraded INT8 file ("within budget", exit 0);
    a latency baseline of 64x64 frames failed the same file timed at 256x256 and passed it the other way."""
    model, _ = baseline
    set5 = asset("benchmarks/Set5")
    noq, base = tmp_path / "noq.json", tmp_path / "b.json"
    assert cli("bench", model, "--dataset", set5, "--no-quality", "--save-baseline", noq, *FAST).code == 0
    assert cli("bench", model, "--dataset", set5, "--save-baseline", base, *FAST).code == 0
    bad = _badly_calibrated_int8(model, tmp_path / "fsrcnn_x3.int8.onnx")
    cases = {
        "has no quality figures": ("--baseline", noq, *FAST),
        "timed 64x64 frames, this run 128x128": ("--baseline", base, "--max-slowdown", "1.5", "--size", "128x128"),
        "timed 64x64 frames, this run none": ("--baseline", base, "--max-slowdown", "1.5", "--size", "0"),
    }
    for expected, argv in cases.items():
        res = cli("bench", bad, "--dataset", set5, "--scale", "3", *argv)
        err = res.err.strip().splitlines()
        assert res.code == 2 and expected in err[-1] and "within budget" not in res.out, (expected, res.err)
    ok = cli("bench", model, "--dataset", set5, "--baseline", noq, "--no-quality", "--max-slowdown", "50", *FAST)
    assert ok.code == 0 and "quality not gated" in ok.out, ok.err


def test_bad_input_is_one_line_and_exit_2(cli, baseline, tmp_path):
    model, folder = baseline
    set5, set14 = asset("benchmarks/Set5"), asset("benchmarks/Set14")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "no images": ("bench", model, "--dataset", empty, *FAST),
        "contradicts": ("bench", model, "--dataset", set5, "--scale", "2", *FAST),
        "does not exist": ("bench", tmp_path / "nope.onnx", "--dataset", set5, *FAST),
    }
    (tmp_path / "mismatch" / "LR_bicubic" / "X3").mkdir(parents=True)
    shutil.copytree(set5 / "HR", tmp_path / "mismatch" / "HR")
    for p in (set5 / "LR_bicubic" / "X2").glob("*.png"):
        shutil.copy(p, tmp_path / "mismatch" / "LR_bicubic" / "X3" / p.name.replace("x2", "x3"))
    cases["not an x3 pair"] = ("bench", model, "--dataset", tmp_path / "mismatch", *FAST)
    assert cli("bench", model, "--dataset", set14, "--size", "0", "--save-baseline", tmp_path / "s14.json").code == 0
    cases["not comparable"] = ("bench", model, "--dataset", set5, "--baseline", tmp_path / "s14.json", "--size", "0")
    for expected, argv in cases.items():
        res = cli(*argv)
        assert res.code == 2, (expected, res.err)
        err = res.err.strip().splitlines()
        assert expected in err[-1] and err[-1].startswith("sr-bench: error:"), (expected, err)


def test_vdsr_reproduces_its_paper_through_the_exported_onnx(cli, exported, tmp_path):
    """One VDSR export (pre-upsampling) serves every scale; Set5 Y-PSNR within 0.15 dB of the paper."""
    model = exported("vdsr_x2")
    paper = {2: 37.53, 3: 33.66, 4: 31.35}
    for scale in (3, 4):
        res = cli("bench", model, "--dataset", asset("benchmarks/Set5"), "--scale", scale, "--size", "0",
                  "--json", tmp_path / f"x{scale}.json", "-q")
        assert res.code == 0, res.err
        rows = json.loads((tmp_path / f"x{scale}.json").read_text())["rows"]
        assert rows[1]["quality"]["mean"]["psnr"] == pytest.approx(paper[scale], abs=0.15)


def test_rows_per_backend_and_precision(cli, baseline, tmp_path):
    pytest.importorskip("openvino", reason='OpenVINO is not installed (pip install "sredge[openvino]")')
    model, _ = baseline
    res = cli("bench", model, "--dataset", asset("benchmarks/Set5"), "--backend", "ort,openvino",
              "--precision", "fp32", "--json", tmp_path / "r.json", "-q", *FAST)
    assert res.code == 0, res.err
    rows = {r["label"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    ort_row, ov_row = rows["fsrcnn_x3 [ort]"], rows["fsrcnn_x3 [openvino]"]
    assert ov_row["backend"] == "openvino" and ov_row["precision"] == "fp32"
    assert ov_row["quality"]["mean"]["psnr"] == pytest.approx(ort_row["quality"]["mean"]["psnr"], abs=0.01)
    bad = cli("bench", model, "--dataset", asset("benchmarks/Set5"), "--precision", "fp8", *FAST)
    assert bad.code == 2 and "--precision fp8" in bad.err


def _same_stem_models(exported, folder):
    """``a/model.onnx`` (the bundled x2 model) and ``b/model.onnx`` (FSRCNN x2): one stem, two folders."""
    from sredge.runtime.bundled import default_model

    for sub, src in (("a", default_model(2)), ("b", exported("fsrcnn_x2"))):
        (folder / sub).mkdir(exist_ok=True)
        shutil.copy(src, folder / sub / "model.onnx")
    return folder / "a" / "model.onnx", folder / "b" / "model.onnx"


def test_same_stem_models_are_labelled_apart_and_the_gate_pairs_them(cli, exported, tmp_path):
    """Two ``model.onnx`` files in different folders: the labels are ``a/model`` and ``b/model``, and a
    regression of ``a/model`` is caught whether it is benched with ``b/model`` again or alone."""
    a, b = _same_stem_models(exported, tmp_path)
    set5 = asset("benchmarks/Set5")
    base = tmp_path / "base.json"
    res = cli("bench", a, b, "--dataset", set5, "--size", "0", "-q", "--save-baseline", base)
    assert res.code == 0, res.err
    rows = json.loads(base.read_text())["rows"]
    assert [r["label"] for r in rows] == ["bicubic", "a/model", "b/model"]
    assert rows[1]["quality"]["mean"]["psnr"] - rows[2]["quality"]["mean"]["psnr"] > 0.1  # bundled beats FSRCNN

    shutil.copy(b, a)  # a/model regresses to FSRCNN's quality
    # The same paths give the same labels; alone, a/model.onnx is "model" and pairs by its folder. Only a's
    # rows regress (b is unchanged), each compared with a's baseline figures.
    for argv, label in (((a, b), "a/model"), ((a,), "model")):
        res = cli("bench", *argv, "--dataset", set5, "--size", "0", "-q", "--baseline", base)
        assert res.code == 1, (argv, res.out, res.err)
        lines = [ln for ln in res.err.splitlines() if ln.startswith("REGRESSION")]
        assert lines and all(ln.startswith(f"REGRESSION {label}: ") for ln in lines), lines
        assert any(ln.startswith(f"REGRESSION {label}: mean: Y-PSNR 37.38") for ln in lines), lines

    # A baseline whose rows share a label (as sr-bench wrote them before) is refused, never half-matched.
    old = json.loads(base.read_text())
    for row in old["rows"][1:]:
        row["label"] = "model"
    (tmp_path / "old.json").write_text(json.dumps(old))
    res = cli("bench", a, "--dataset", set5, "--size", "0", "-q", "--baseline", tmp_path / "old.json")
    err = res.err.strip().splitlines()
    assert res.code == 2 and "both labelled 'model'" in err[-1] and "--save-baseline" in err[-1], res.err


def test_models_of_different_scales_are_named_as_such(cli, exported):
    """No --scale: the second model's own scale differs from the first's; the error says that, not '--scale'."""
    res = cli("bench", exported("fsrcnn_x3"), exported("fsrcnn_x2"), "--dataset", asset("benchmarks/Set5"),
              "--size", "0", "-q")
    err = res.err.strip().splitlines()
    assert res.code == 2 and len(err) == 1, res.err
    assert "--scale" not in err[0] and "fsrcnn_x2.onnx upscales x2" in err[0] and "separately" in err[0], err


def test_help_lists_every_backend():
    from sredge.cli.bench import build_parser
    from sredge.runtime.backends import BACKENDS

    text = " ".join(build_parser().format_help().split())
    assert f"auto, {', '.join(BACKENDS)}" in text and "openvino" in text


def _bundled_x2():
    from sredge.runtime.bundled import default_model

    return default_model(2)


def _one_error_line(res, expected: str) -> str:
    """The run was refused as bad input: exit 2, one ``sr-bench: error:`` line naming ``expected``, no warning."""
    err = res.err.strip().splitlines()
    assert res.code == 2 and len(err) == 1, (expected, res.code, res.err)
    assert err[0].startswith("sr-bench: error:") and expected in err[0], (expected, err)
    return err[0]


@pytest.mark.parametrize("argv,expected", [
    (("--max-ssim-drop", "nan"), "--max-ssim-drop nan: give a finite number >= 0"),
    (("--max-ssim-drop", "-1"), "--max-ssim-drop -1: give a finite number >= 0"),
    (("--max-ssim-drop", "inf"), "--max-ssim-drop inf: give a finite number >= 0"),
    (("--max-psnr-drop", "inf"), "--max-psnr-drop inf: give a finite number >= 0"),
    (("--max-psnr-drop", "nan"), "--max-psnr-drop nan: give a finite number >= 0"),
    (("--max-slowdown", "nan"), "--max-slowdown nan: give a finite number > 0"),
    (("--max-slowdown", "inf"), "--max-slowdown inf: give a finite number > 0"),
    (("--threads", "100000"), "--threads 100000 is more than this machine can use: at most"),
    (("--size", "99999x99999"), "--size 99999x99999 is 10000 MP, over --max-pixels 100 MP"),
    (("--size", "2000x2000", "--max-pixels", "1M"), "--size 2000x2000 is 4 MP, over --max-pixels 1 MP"),
], ids=["ssim-nan", "ssim-negative", "ssim-inf", "psnr-inf", "psnr-nan", "slowdown-nan", "slowdown-inf",
        "threads-huge", "size-huge", "size-over-max-pixels"])
def test_hostile_numbers_are_one_line_and_exit_2_before_any_work(cli, tmp_path, argv, expected):
    """The audit: --max-ssim-drop nan turned the SSIM gate off (exit 0, "within budget"), -1 reported
    regressions on identical results; --threads 100000 grew to 16 GB; --size 99999x99999 was an internal error."""
    base = tmp_path / "base.json"
    base.write_text("not read: the options are refused first")
    res = cli("bench", _bundled_x2(), "--dataset", asset("benchmarks/Set5"), "--baseline", base, "-q", *argv)
    _one_error_line(res, expected)


def test_threads_cap_is_named(cli):
    import os

    from sredge.cli._limits import max_threads

    assert max_threads() == max(64, 4 * os.cpu_count())
    res = cli("bench", _bundled_x2(), "--dataset", asset("benchmarks/Set5"), "--threads", max_threads() + 1, "-q")
    _one_error_line(res, f"at most {max_threads()}")


def test_ssim_gate_holds_with_a_budget_of_zero(cli, tmp_path):
    """--max-ssim-drop 0 on identical results passes (a negative budget used to flag them as regressions)."""
    model, set5 = _bundled_x2(), asset("benchmarks/Set5")
    base = tmp_path / "b.json"
    assert cli("bench", model, "--dataset", set5, "--size", "0", "-q", "--save-baseline", base).code == 0
    res = cli("bench", model, "--dataset", set5, "--size", "0", "-q", "--baseline", base, "--max-ssim-drop", "0")
    assert res.code == 0 and "Y-SSIM drop <= 0.0" in res.out, res.err


def _hr_folder(folder, extra: dict):
    """Set5's real HR images (copied, so the folder is writable) plus ``extra``: file name -> (h, w) noise image."""
    folder.mkdir()
    for p in (asset("benchmarks/Set5") / "HR").glob("*.png"):
        shutil.copyfile(p, folder / p.name)
    rng = np.random.default_rng(0)
    for name, hw in extra.items():
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (*hw, 3), dtype=np.uint8))
    return folder


def test_two_images_of_one_name_are_refused_naming_both(cli, tmp_path):
    """``baby.png`` beside a ``baby.bmp``: one image's scores were lost from the report, with exit 0."""
    src = cv2.imread(str(asset("benchmarks/Set5") / "HR" / "bird.png"))
    folder = _hr_folder(tmp_path / "ds", {})
    assert cv2.imwrite(str(folder / "baby.bmp"), src)
    res = cli("bench", _bundled_x2(), "--dataset", folder, "--size", "0", "-q")
    _one_error_line(res, f"{folder} has two images named baby (baby.bmp, baby.png): rename one")


@pytest.mark.parametrize("hw", [(2, 3), (13, 200)], ids=["3x2", "200x13"])
@pytest.mark.parametrize("no_quality", [False, True], ids=["quality", "no-quality"])
def test_an_image_too_small_to_score_is_named_not_an_internal_error(cli, tmp_path, hw, no_quality):
    """The audit: 'internal error: ValueError: SSIM needs at least 11x11 pixels, got (0, 0)' and numpy
    RuntimeWarnings, with --no-quality too (the bicubic row was always scored)."""
    folder = _hr_folder(tmp_path / "ds", {"strip.png": hw})
    argv = ("--no-quality", "--size", "32x32", "--repeats", "1", "--warmup", "0") if no_quality else ("--size", "0")
    for scale in ((), ("--scale", "2")):  # the dataset is listed after the model opens, or before
        res = cli("bench", _bundled_x2(), "--dataset", folder, "-q", *scale, *argv)
        _one_error_line(res, f"strip.png is {hw[1]}x{hw[0]} pixels, too small to score at x2")


def test_no_quality_scores_nothing_not_even_bicubic(cli, tmp_path):
    """--no-quality is "latency only": the bicubic row (quality only) is left out, as with --no-bicubic."""
    res = cli("bench", _bundled_x2(), "--dataset", asset("benchmarks/Set5"), "--no-quality", "-q",
              "--json", tmp_path / "r.json", *FAST)
    assert res.code == 0, res.err
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["label"] for r in rows] == ["sredge_x2"] and "quality" not in rows[0] and rows[0]["latency"]


def test_a_pickled_checkpoint_runs_with_trust_pickle(cli):
    """The error said '--trust-pickle loads it' but sr-bench had no such flag ('unrecognized arguments')."""
    pytest.importorskip("torch", reason='PyTorch is not installed (pip install "sredge[torch]")')
    vdsr, set5 = asset("weights/vdsr/vdsr_model_epoch_50.pth"), asset("benchmarks/Set5")
    refused = cli("bench", vdsr, "--dataset", set5, "--scale", "2", "--size", "0", "-q")
    _one_error_line(refused, "--trust-pickle loads it")
    res = cli("bench", vdsr, "--dataset", set5, "--scale", "2", "--size", "0", "-q", "--trust-pickle")
    assert res.code == 0, res.err
    row = next(ln for ln in res.out.splitlines() if ln.startswith("vdsr_model_epoch_50"))
    assert "torch" in row and "37.57" in row  # the paper's 37.53 dB, as through the exported ONNX


def test_a_linked_crops_folder_or_a_dangling_report_link_is_refused(cli, tmp_path):
    """The audit: `--report R --overwrite` with R/crops a link to a folder of photos deleted photos there
    and wrote crops over another; a --report naming a link to a missing folder was an internal error."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "coffee.png").write_bytes(b"a user's photo")
    report = tmp_path / "R"
    report.mkdir()
    (report / "crops").symlink_to(photos)
    res = cli("bench", _bundled_x2(), "--dataset", "sample", "--size", "0", "-q", "--report", report, "--overwrite")
    _one_error_line(res, f"{report / 'crops'} is a link")
    assert (photos / "coffee.png").read_bytes() == b"a user's photo" and not (report / "report.json").exists()
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "missing")
    res = cli("bench", _bundled_x2(), "--dataset", "sample", "--size", "0", "-q", "--report", dangling)
    _one_error_line(res, "is a link to a folder that does not exist")


def test_a_16_bit_provided_lr_is_refused_not_scored(cli, tmp_path):
    """The audit: a 16-bit LR beside 8-bit HR gave the bicubic row 5.2 dB, exit 0."""
    set5 = asset("benchmarks/Set5")
    (tmp_path / "ds" / "LR_bicubic" / "X2").mkdir(parents=True)
    shutil.copytree(set5 / "HR", tmp_path / "ds" / "HR")
    for p in (set5 / "LR_bicubic" / "X2").glob("*.png"):
        lr = cv2.imread(str(p)).astype(np.uint16) * 257
        assert cv2.imwrite(str(tmp_path / "ds" / "LR_bicubic" / "X2" / p.name), lr)
    res = cli("bench", _bundled_x2(), "--dataset", tmp_path / "ds", "--size", "0", "-q")
    _one_error_line(res, "babyx2.png: benchmark images must be 8-bit")


def test_an_exactly_reproduced_image_holds_the_gate(cli, tmp_path):
    """The audit: a baseline whose PSNR was Infinity (an image reproduced exactly) passed a model that
    halves every pixel. Flat images upscaled by a nearest-neighbour ONNX model score inf dB."""
    import onnx
    from onnx import TensorProto, helper

    def nearest_x2(path, gain):
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])
        nodes = [helper.make_node("Resize", ["input", "", "scales"], ["up"], mode="nearest"),
                 helper.make_node("Mul", ["up", "gain"], ["output"])]
        inits = [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]),
                 helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])]
        model = helper.make_model(helper.make_graph(nodes, "nn", [x], [y], inits),
                                  opset_imports=[helper.make_opsetid("", 18)])
        onnx.save(model, path)
        return path

    flat = tmp_path / "flat"
    flat.mkdir()
    for name, grey in (("a", 90), ("b", 160)):
        assert cv2.imwrite(str(flat / f"{name}.png"), np.full((48, 64, 3), grey, np.uint8))
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    opts = ("--color", "rgb", "--range", "1", "--scale", "2", "--dataset", flat, "--size", "0", "-q")
    base = tmp_path / "base.json"
    res = cli("bench", nearest_x2(tmp_path / "v1" / "m.onnx", 1.0), *opts, "--save-baseline", base)
    assert res.code == 0, res.err
    assert next(ln for ln in res.out.splitlines() if ln.startswith("m ")).split()[4] == "inf", res.out
    res = cli("bench", nearest_x2(tmp_path / "v2" / "m.onnx", 0.5), *opts, "--baseline", base)
    assert res.code == 1 and "REGRESSION" in res.out + res.err, (res.code, res.out, res.err)
    # The file is strict JSON (jq and JSON.parse refuse Infinity): the exact PSNR is null there.
    def refuse(name):
        raise AssertionError(f"{base} holds {name}, which is not JSON")

    saved = json.loads(base.read_text(), parse_constant=refuse)
    row = next(r for r in saved["rows"] if not r.get("bicubic"))
    scores = [row["quality"]["mean"], *row["quality"]["images"].values()]
    assert all(s["psnr"] is None for s in scores), row
    # A baseline an older sredge wrote, with Infinity, is read as it was.
    old = base.read_text().replace('"psnr": null', '"psnr": Infinity')
    assert "Infinity" in old
    base.write_text(old)
    res = cli("bench", nearest_x2(tmp_path / "v2" / "m.onnx", 0.5), *opts, "--baseline", base)
    assert res.code == 1 and "REGRESSION" in res.out + res.err, (res.code, res.out, res.err)
    res = cli("bench", nearest_x2(tmp_path / "v1" / "m.onnx", 1.0), *opts, "--baseline", base)
    assert res.code == 0, (res.code, res.out, res.err)


@pytest.mark.parametrize("argv,needle", [
    (["--repeats", "0"], "--repeats 0: must be >= 1"),
    (["--warmup=-1"], "--warmup -1: must be >= 0"),
    (["--threads=-1"], "--threads -1: must be >= 0"),
    (["--scale", "99999"], "--scale must be an integer from 1 to 16, not 99999"),  # was judged by the photos' size
])
def test_a_bad_count_names_its_option_and_value(cli, tmp_path, argv, needle):
    """The bench audit: all three said "--repeats must be >= 1; --warmup, --threads and --tile-overlap >= 0"."""
    res = cli("bench", default_model(2), "--dataset", "sample", *argv)
    assert res.code == 2 and needle in res.err and len(res.err.strip().splitlines()) == 1, res.err


def test_a_folder_given_as_the_model_is_not_called_missing(cli, tmp_path):
    res = cli("bench", tmp_path, "--dataset", "sample", "--size", "0")
    assert res.code == 2 and "is not a file" in res.err and "does not exist" not in res.err, res.err
