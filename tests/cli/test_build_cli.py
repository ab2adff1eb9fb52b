"""sr-build: refusals and the missing-TensorRT error everywhere; a real build where TensorRT exists.

The real-build tests skip with the reason on machines without TensorRT (and a GPU); they
have never run on the machine this was written on.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from sredge.errors import MissingDependencyError
from sredge.export.engine_build import (
    build_engine,
    calibration_fingerprint,
    calibration_images,
    calibration_inputs,
    read_onnx_facts,
)
from sredge.export.engine_plan import BuildOptions, parse_batch
from sredge.runtime.bundled import default_model

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
needs_trt = pytest.mark.skipif(
    not HAVE_TRT, reason='TensorRT is not installed (pip install "sredge[trt]" on a machine with an NVIDIA GPU)'
)
no_trt = pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here; this checks a machine without it")


@pytest.fixture
def onnx_model(tmp_path):
    """The bundled x2 model (a real sredge export), copied so engines land in tmp_path."""
    dst = tmp_path / "sredge_x2.onnx"
    dst.write_bytes(default_model(2).read_bytes())
    return dst


def test_help_lists_the_build_options(cli):
    with pytest.raises(SystemExit) as exc:
        cli("build", "--help")
    assert exc.value.code == 0


def test_help_text(capsys):
    from sredge.cli.build import build_parser

    text = build_parser().format_help()
    for flag in ("--tile", "--max-tile", "--batch", "--fp16", "--int8", "--calib", "--calib-cache", "--dla-core",
                 "--timing-cache", "--force"):
        assert flag in text


@no_trt
def test_without_tensorrt_exits_2_naming_the_extra(cli, onnx_model):
    res = cli("build", onnx_model, "--tile", "256", "--max-tile", "512", "--batch", "1:4:8")
    assert res.code == 2
    assert 'pip install "sredge[trt]"' in res.err and res.err.strip().count("\n") == 0
    assert not onnx_model.with_suffix(".engine").exists()


def test_without_tensorrt_in_a_bare_process(onnx_model):
    """What a core install sees: tensorrt (and torch) unimportable."""
    code = textwrap.dedent(f"""
        import sys
        for m in ('tensorrt', 'torch', 'cuda'):
            sys.modules[m] = None
        from sredge.cli._app import run
        from sredge.cli.build import PROG, main
        sys.exit(run(PROG, main, [{str(onnx_model)!r}, '--batch', '1:4:8']))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("sr-build: error: tensorrt is not installed")
    assert 'pip install "sredge[trt]"' in proc.stderr


def test_library_call_without_tensorrt_raises_missing_dependency(monkeypatch, onnx_model):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "sredge\[trt\]"'):
        build_engine(onnx_model, onnx_model.with_suffix(".engine"))


@pytest.mark.parametrize("args,match", [
    (["--batch", "4:2:8"], "min <= opt <= max"),
    (["--batch", "x"], "whole numbers"),
])
def test_bad_batch_is_refused_before_tensorrt(cli, onnx_model, args, match):
    res = cli("build", onnx_model, *args)
    assert res.code == 2 and match in res.err


@pytest.mark.parametrize("args,match", [
    (["--tile", "0"], "must be positive"),
    (["--min-tile", "512", "--tile", "256"], "need --min-tile 512 <= --tile 256"),
    (["--no-gpu-fallback"], "--no-gpu-fallback applies only with --dla-core"),
    (["--dla-core", "-1", "--fp16"], "--dla-core must be >= 0"),
    (["--dla-core", "0"], "the DLA runs FP16 or INT8 only"),
    (["--workspace", "-1"], "--workspace must be at least 1 MiB"),
    (["--calib", "nothere/", "--int8"], "--calib nothere: not a folder of images"),
    (["--int8"], "needs calibration data"),
    (["--calib-cache", "nothere.cache", "--int8"], "--calib-cache nothere.cache does not exist"),
    # the TensorRT audit: a folder was "does not exist"; --tile 100000 went on to TensorRT; --max-tile alone named
    # a --tile 256 never given
    (["--tile", "100000"], "10,000,000,000 pixels per call, over the limit of 100,000,000"),
    (["--min-tile", "300", "--max-tile", "200"], "need --min-tile 300 <= the default tile 200 <= --max-tile 200"),
])
def test_bad_options_are_refused_before_tensorrt(cli, onnx_model, monkeypatch, args, match):
    """Each gives its own line, not "tensorrt is not installed": a user learns of it before installing TensorRT."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without TensorRT, wherever this runs
    monkeypatch.chdir(onnx_model.parent)
    res = cli("build", onnx_model, *args)
    assert res.code == 2, res.err
    assert match in res.err and "tensorrt is not installed" not in res.err and res.err.strip().count("\n") == 0
    assert not onnx_model.with_suffix(".engine").exists()


def test_files_that_are_not_sredge_build_outputs_are_not_replaced(cli, onnx_model, monkeypatch):
    """The audit: any X.engine with an X.engine.json beside it was taken for sr-build's own and replaced, and
    an existing file named as --calib-cache (an sr-calibrate .npz, easily mixed up) would have been
    overwritten by the calibration cache, both without --overwrite; a --calib-cache to read that is no
    calibration cache reached TensorRT."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.chdir(onnx_model.parent)
    engine, sidecar = onnx_model.parent / "theirs.engine", onnx_model.parent / "theirs.engine.json"
    engine.write_bytes(b"someone's engine")
    sidecar.write_text('{"note": "mine"}')
    res = cli("build", onnx_model, "-o", engine)
    assert res.code == 2 and "exists" in res.err and "--overwrite" in res.err, res.err
    assert engine.read_bytes() == b"someone's engine"
    calib_set = onnx_model.parent / "set.npz"
    calib_set.write_bytes(b"PK\x03\x04 an sr-calibrate set")
    images = onnx_model.parent / "imgs"
    images.mkdir(exist_ok=True)
    from tests.conftest import asset

    for name in ("0030.jpg", "0014.jpg"):
        (images / name).write_bytes(asset(f"realworld/{name}").read_bytes())
    res = cli("build", onnx_model, "--int8", "--calib", images, "--calib-cache", calib_set)
    assert res.code == 2 and "exists" in res.err and "--overwrite" in res.err, res.err
    res = cli("build", onnx_model, "--int8", "--calib-cache", calib_set)
    assert res.code == 2 and "is not a TensorRT calibration cache" in res.err, res.err
    assert calib_set.read_bytes() == b"PK\x03\x04 an sr-calibrate set"
    assert not onnx_model.with_suffix(".engine").exists()


@pytest.fixture(scope="module")
def cpu_flavour_int8(tmp_path_factory):
    """FSRCNN x3 exported by sr-export to INT8 in its default (ONNX Runtime CPU) flavour, 16 T91 crops."""
    pytest.importorskip("torch")
    from sredge.cli import export
    from sredge.cli._app import run
    from tests.conftest import asset

    ckpt, calib = asset("weights/fsrcnn/fsrcnn_x3.pth"), asset("calibration/T91")
    folder = tmp_path_factory.mktemp("cpu_int8")
    argv = [str(ckpt), "-o", str(folder / "fs3.onnx"), "--precision", "int8", "--calib", str(calib),
            "--calib-crops", "16", "--calib-tile", "32", "--bench-size", "off", "-q"]
    assert run(export.PROG, export.main, argv) == 0
    return folder / "fs3.int8.onnx"


def test_cpu_flavour_int8_is_refused_naming_the_trt_flavour(cli, cpu_flavour_int8, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert read_onnx_facts(cpu_flavour_int8).precision == "int8"  # Q/DQ, but not TensorRT's encoding
    res = cli("build", cpu_flavour_int8)
    assert res.code == 2 and res.err.strip().count("\n") == 0, res.err
    assert "sr-export --precision int8 --int8-flavour trt" in res.err and "tensorrt is not" not in res.err
    assert not cpu_flavour_int8.with_suffix(".engine").exists()


def test_missing_and_wrong_inputs(cli, tmp_path, onnx_model):
    res = cli("build", tmp_path / "nope.onnx")
    assert res.code == 2 and "no such ONNX file" in res.err
    res = cli("build", tmp_path / "model.pth")
    assert res.code == 2 and "sr-export" in res.err
    res = cli("build", onnx_model, "-o", tmp_path / "missing" / "m.engine")
    assert res.code == 2 and "does not exist" in res.err
    res = cli("build", onnx_model, "-o", tmp_path / "m.onnx")  # the audit: an engine named .onnx was taken
    assert res.code == 2 and "name the engine NAME.engine or NAME.plan" in res.err
    assert not (tmp_path / "m.onnx").exists()
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.zeros((16, 16, 3), np.uint8))
    res = cli("run", "--image", img, "--model", onnx_model, "--backend", "trt", "-o", tmp_path / "out.png")
    assert res.code == 2 and "(build one from it with sr-build)" in res.err, res.err


# ---------------------------------------------------------------- inputs of a build (no TensorRT needed)


def test_read_onnx_facts_of_a_real_export(onnx_model):
    f = read_onnx_facts(onnx_model)
    assert len(f.sha256) == 64 and f.precision == "fp32"
    assert f.descriptor is not None and f.descriptor.scale == 2
    assert f.input_shape[1] == f.descriptor.in_channels


def test_read_onnx_facts_refuses_non_onnx(tmp_path):
    from sredge.errors import InputError

    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(InputError):
        read_onnx_facts(bad)
    bad.write_bytes(b"")  # parses as a model with nothing in it: the audit's "the ONNX has 0 inputs"
    with pytest.raises(InputError, match=r"x.onnx is not an ONNX model \(an empty file\)"):
        read_onnx_facts(bad)


def test_calibration_inputs_from_real_images(onnx_model):
    from tests.conftest import asset

    folder = asset("calibration/T91")
    images = calibration_images(folder)[:5]
    desc = read_onnx_facts(onnx_model).descriptor
    batches = list(calibration_inputs(images, desc, tile=64, batch=2))
    assert len(batches) == 2  # 5 images, batch 2: the short last batch is dropped
    for b in batches:
        assert b.shape == (2, desc.in_channels, 64, 64) and b.dtype == np.float32 and b.flags.c_contiguous
        assert 0.0 <= b.min() and b.max() <= desc.value_range and b.std() > 0.01  # real image content
    fp = calibration_fingerprint(images, None)
    assert fp == calibration_fingerprint(list(reversed(images)), None)
    assert fp != calibration_fingerprint(images[:4], None)


def test_calibration_cache_fingerprint(tmp_path):
    cache = tmp_path / "calib.cache"
    assert calibration_fingerprint(None, cache) is None
    cache.write_bytes(b"TRT-100-EntropyCalibration2\ninput: 3c010a14\n")
    a = calibration_fingerprint(None, cache)
    cache.write_bytes(b"TRT-100-EntropyCalibration2\ninput: 3c010a15\n")
    assert a is not None and a != calibration_fingerprint(None, cache)


def test_calibration_folder_refusals(tmp_path):
    from sredge.errors import InputError

    with pytest.raises(InputError, match="not a folder"):
        calibration_images(tmp_path / "none")
    with pytest.raises(InputError, match="no images"):
        calibration_images(tmp_path)


# ---------------------------------------------------------------- real TensorRT (GPU machines only)


@needs_trt
def test_real_build_runs_in_sr_run_and_is_cached(cli, onnx_model, tmp_path):
    engine = tmp_path / "m.engine"
    tc = tmp_path / "timing.cache"
    res = cli("build", onnx_model, "-o", engine, "--tile", "64", "--max-tile", "128", "--batch", "1:2:4",
              "--timing-cache", tc)
    assert res.code == 0, res.err
    assert engine.is_file() and engine.with_name("m.engine.json").is_file() and tc.is_file()
    again = cli("build", onnx_model, "-o", engine, "--tile", "64", "--max-tile", "128", "--batch", "1:2:4",
                "--timing-cache", tc)
    assert again.code == 0 and "up to date" in again.out

    from tests.conftest import asset

    img = asset("realworld/0014.jpg")
    out_trt, out_ort = tmp_path / "trt.png", tmp_path / "ort.png"
    assert cli("run", "--image", img, "--model", engine, "--tile", "128", "-o", out_trt, "-q").code == 0
    assert cli("run", "--image", img, "--model", onnx_model, "--tile", "128", "--device", "cpu", "-o", out_ort,
               "-q").code == 0
    from sredge.imaging.io import read_image

    a, b = read_image(out_trt).astype(int), read_image(out_ort).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() <= 2


@needs_trt
def test_real_build_with_other_options_rebuilds(onnx_model, tmp_path):
    engine = tmp_path / "m.engine"
    first = build_engine(onnx_model, engine, BuildOptions(tile=64, batch=parse_batch("2")),
                         timing_cache=tmp_path / "t.cache")
    second = build_engine(onnx_model, engine, BuildOptions(tile=64, batch=parse_batch("2")),
                          timing_cache=tmp_path / "t.cache")
    third = build_engine(onnx_model, engine, BuildOptions(tile=64, batch=parse_batch("4")),
                         timing_cache=tmp_path / "t.cache")
    assert first.built and not second.built and third.built and third.key != first.key


def test_an_onnx_without_its_external_data_is_refused_before_tensorrt(cli, onnx_model, monkeypatch, tmp_path):
    import onnx

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    onnx.save(onnx.load(str(onnx_model)), str(ext), save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    (ext.parent / "m.onnx.data").unlink()
    res = cli("build", ext)
    assert res.code == 2 and "keeps its weights in m.onnx.data, which is not beside it" in res.err, res.err


def test_a_folder_as_the_calibration_cache_is_named_a_folder(cli, onnx_model, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    (tmp_path / "caches").mkdir()
    res = cli("build", onnx_model, "--int8", "--calib-cache", tmp_path / "caches", "-o", tmp_path / "m.engine")
    assert res.code == 2 and "caches is a folder; name the cache file" in res.err, res.err
