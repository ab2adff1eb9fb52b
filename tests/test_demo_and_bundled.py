"""The bundled default models and the demo: sr-run works out of the box, with the core install only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import av
import pytest

from sredge.demo import CLIP_SIZE, FRAMES, make_clip
from sredge.models.onnx_file import read_descriptor
from sredge.runtime.bundled import bundled_models, default_model, manifest

BLOCK = ("import sys\nfor m in ('torch', 'onnxscript', 'onnxslim', 'safetensors', 'tensorrt'):\n"
         "    sys.modules[m] = None\n")


def test_demo_clip_is_a_real_video(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=12)
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == CLIP_SIZE
    a, b = frames[0].to_ndarray(format="rgb24"), frames[-1].to_ndarray(format="rgb24")
    assert abs(a.astype(int) - b.astype(int)).mean() > 5  # the camera moves
    assert FRAMES >= 24


HEAVY = ("torch", "openvino", "onnxscript", "onnxslim", "safetensors", "tensorrt", "matplotlib")

# Runs `python -m sredge.demo` as a core-only install would: every import of a heavy optional package
# is recorded and fails, as it would where the package is not installed.
DEMO_IN_CORE_ONLY = """
import runpy, sys
HEAVY = {heavy!r}
tried = []

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HEAVY:
            tried.append(name)
            raise ModuleNotFoundError(f'{{name}} is blocked: not in the core install')
        return None

sys.meta_path.insert(0, Block())
sys.argv = ['sredge.demo', {folder!r}, '--frames', '6']
try:
    runpy.run_module('sredge.demo', run_name='__main__')
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print('TRIED', sorted(set(tried)))
sys.exit(code)
"""


def test_demo_runs_on_the_core_install_and_writes_its_results(tmp_path):
    """`python -m sredge.demo` with torch, OpenVINO ... unimportable: the upscaled video and bicubic | sredge."""
    from sredge.demo import OUTPUTS, SCALE
    from sredge.imaging.io import read_rgb

    out = tmp_path / "demo out"
    code = DEMO_IN_CORE_ONLY.format(heavy=HEAVY, folder=str(out))
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TRIED []" in proc.stdout, proc.stdout  # not even an optional attempt at a heavy package
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    video = out / "demo_clip_x2.mp4"
    compare = out / "demo_compare.png"
    assert str(video) in proc.stdout and str(compare) in proc.stdout  # the paths are printed
    with av.open(str(video)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (CLIP_SIZE[0] * SCALE, CLIP_SIZE[1] * SCALE)
    img = read_rgb(compare)
    w, h = CLIP_SIZE[0] * SCALE, CLIP_SIZE[1] * SCALE
    assert img.shape[1] > 2 * w and img.shape[0] > h  # bicubic | sredge, under a label bar
    left, right = (img[-h:, :w].astype(int), img[-h:, -w:].astype(int))
    # The right-hand panel is a frame of the upscaled video (up to x264's loss), the left-hand one is not.
    shown = min(frames, key=lambda f: abs(f.to_ndarray(format="rgb24").astype(int) - right).mean())
    shown = shown.to_ndarray(format="rgb24").astype(int)
    assert abs(shown - right).mean() < abs(shown - left).mean()


def test_demo_runs_again_over_its_own_results(tmp_path):
    """A second `make demo` replaces the demo's own files and touches nothing else in the folder."""
    from sredge.demo import main

    (tmp_path / "notes.txt").write_text("mine")
    assert main([str(tmp_path), "--frames", "2"]) == 0
    first = (tmp_path / "demo_clip_x2.mp4").stat().st_mtime_ns
    assert main([str(tmp_path), "--frames", "2"]) == 0
    assert (tmp_path / "demo_clip_x2.mp4").stat().st_mtime_ns >= first
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_bundled_models_are_self_describing():
    models = bundled_models()
    assert {2, 3, 4} <= set(models)
    for scale, path in models.items():
        desc = read_descriptor(path)
        assert desc is not None and desc.scale == scale and desc.precision == "fp32"
        int8 = path.with_name(f"sredge_x{scale}.int8.onnx")
        assert read_descriptor(int8).precision == "int8-trt"  # symmetric int8: OpenVINO's (and TensorRT's) own
        assert read_descriptor(int8).psnr_drop_db is not None  # --max-psnr-drop can choose it
    assert default_model(None) == models[2]
    figures = {m["scale"]: m for m in manifest()}
    assert {2, 3, 4} <= set(figures)
    for m in figures.values():
        assert m["set5_y_psnr"] > m["set5_bicubic"] + 1.0  # a real SR model, measured
        assert "sr-train" in m["train_command"] and "--qat" in m["qat_command"]


def test_bundled_int8_files_keep_no_layer_in_float():
    """Every convolution of each shipped INT8 file reads quantized activations and quantized weights."""
    import onnx

    for scale in (2, 3, 4):
        graph = onnx.load(str(bundled_models()[scale].with_name(f"sredge_x{scale}.int8.onnx"))).graph
        made_by = {o: n.op_type for n in graph.node for o in n.output}
        convs = [n for n in graph.node if n.op_type == "Conv"]
        assert convs
        for n in convs:
            assert made_by.get(n.input[0]) == "DequantizeLinear", n.name
            assert made_by.get(n.input[1]) == "DequantizeLinear", n.name


def test_sr_run_video_without_model_on_the_core_install(tmp_path):
    """`sr-run --video clip.mp4` with no --model, torch unavailable: the bundled x2 model, a derived name."""
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    code = BLOCK + textwrap.dedent(f"""
        from sredge.cli._app import run
        from sredge.cli.run import PROG, main
        code = run(PROG, main, ['--video', {str(clip)!r}, '-q'])
        assert sys.modules.get('torch') is None
        sys.exit(code)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "clip_x2.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 8 and (frames[0].width, frames[0].height) == (CLIP_SIZE[0] * 2, CLIP_SIZE[1] * 2)


def test_scale_4_picks_the_bundled_x4(cli, tmp_path):
    import numpy as np

    from sredge.imaging.io import read_image, write_image

    src = write_image(tmp_path / "a.png", np.full((20, 30, 3), 128, np.uint8))
    res = cli("run", "--image", src, "--scale", "4", "-q")
    assert res.code == 0, res.err
    assert read_image(tmp_path / "a_x4.png").shape == (80, 120, 3)


def test_sr_models_lists_them(cli):
    res = cli("models")
    assert res.code == 0
    assert "x2" in res.out and "x4" in res.out and "dB" in res.out


@pytest.mark.parametrize("scale", [5, 8])
def test_missing_bundled_scale_is_a_clear_error(cli, tmp_path, scale):
    res = cli("run", "--image", tmp_path / "x.png", "--scale", str(scale))
    assert res.code == 2 and "no bundled default model" in res.err


SET5_GOAL = {2: 37.35, 3: 33.3, 4: 31.0}
"""dB, Y channel, crop = scale: the bundled models' quality goals (issue 17), above FSRCNN's 37.10 / 32.60 / 30.51."""


def _bench(cli, tmp_path, models, dataset):
    import json

    from tests.conftest import asset

    out = tmp_path / f"{dataset}.json"
    res = cli("bench", *models, "--dataset", asset(f"benchmarks/{dataset}"), "--size", "0", "--tile", "0",
              "--json", out, "-q")
    assert res.code == 0, res.err
    return [r["quality"]["mean"]["psnr"] for r in json.loads(out.read_text())["rows"]]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bundled_models_and_their_int8_measured_by_sr_bench(cli, tmp_path, scale):
    """Set5 and Set14 Y-PSNR (crop = scale) of the shipped FP32 and INT8 files, measured here by sr-bench:
    the FP32 figure is the one models.json records, and the INT8 file stays within its recorded drop."""
    fp32 = bundled_models()[scale]
    int8 = fp32.with_name(f"sredge_x{scale}.int8.onnx")
    m = {e["scale"]: e for e in manifest()}[scale]
    for dataset in ("Set5", "Set14"):
        bicubic, f, q = _bench(cli, tmp_path, [fp32, int8], dataset)
        key = dataset.lower()
        assert abs(f - m[f"{key}_y_psnr"]) < 0.01, (dataset, f)
        if dataset == "Set5":
            assert f >= SET5_GOAL[scale], f
        assert f - bicubic > (2.0 if dataset == "Set5" else 1.5)
        drop = f - q
        assert drop <= 0.1 and drop <= m["int8"][f"{key}_drop"] + 0.01, (dataset, drop)


# ----------------------------------------------------------------------------- the bundled sample set


def test_sample_set_is_small_licensed_and_usable():
    """Every sample photo is listed with its licence, is 8-bit RGB and big enough for every command's defaults."""
    from importlib import resources

    from sredge.data.samples import sample_folder
    from sredge.imaging.io import read_image

    folder = sample_folder()
    files = sorted(folder.iterdir())
    assert len(files) >= 3
    assert sum(f.stat().st_size for f in files) < 400_000  # the package stays small
    notes = (resources.files("sredge.data") / "README.md").read_text()
    for f in files:
        assert f"`sample/{f.name}`" in notes, f"{f.name} has no source and licence in sredge/data/README.md"
        img = read_image(f)
        assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3
        assert min(img.shape[:2]) >= 128  # sr-train's x4 HR patch, sr-calibrate's default tile
    rows = [line for line in notes.splitlines() if line.startswith("  | `sample/")]
    assert len(rows) == len(files) and all("CC0" in r or "public domain" in r for r in rows)


def test_the_word_sample_names_the_bundled_set_and_dot_slash_a_folder(cli, tmp_path, monkeypatch):
    """`--dataset sample` is the bundled photos; `./sample` is the user's own folder of that name."""
    import json

    import numpy as np

    from sredge.data.samples import folder_arg, sample_folder
    from sredge.imaging.io import write_image

    assert folder_arg("sample") == sample_folder()
    assert folder_arg("./sample") == Path("sample") and folder_arg("samples") == Path("samples")
    mine = tmp_path / "sample"
    mine.mkdir()
    rng = np.random.default_rng(0)
    write_image(mine / "mine.png", (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    model = bundled_models()[2]
    for arg, names in (("sample", sorted(p.stem for p in sample_folder().iterdir())), ("./sample", ["mine"])):
        out = tmp_path / f"{len(names)}.json"
        res = cli("bench", model, "--dataset", arg, "--size", "0", "--json", out, "-q")
        assert res.code == 0, res.err
        assert json.loads(out.read_text())["dataset"]["images"] == names


def test_sr_bench_on_the_sample_set_beats_bicubic(cli, tmp_path):
    """The bundled x2 model on the sample photos (LR by MATLAB bicubic), measured here."""
    import json

    res = cli("bench", bundled_models()[2], "--dataset", "sample", "--size", "0", "--json", tmp_path / "r.json", "-q")
    assert res.code == 0, res.err
    bicubic, model = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert model["quality"]["mean"]["psnr"] > bicubic["quality"]["mean"]["psnr"] + 1.0


def test_sr_calibrate_from_the_sample_set(cli, tmp_path):
    from sredge.calibration.sets import load_calibration_set

    res = cli("calibrate", "build", "--from", "sample", "--crops-per-image", "6", "--tile", "64",
              "-o", tmp_path / "c.npz")
    assert res.code == 0, res.err
    cset = load_calibration_set(tmp_path / "c.npz")
    assert "18 crops" in cset.describe()  # 3 photos x 6 crops


def test_sr_train_on_the_sample_set(cli, tmp_path):
    pytest.importorskip("torch", reason='sr-train needs torch (pip install "sredge[export]")')
    res = cli("train", "--data", "sample", "--val", "sample", "--steps", "2", "--batch", "2", "--val-every", "2",
              "--threads", "1", "-o", tmp_path / "t.pth", "-q")
    assert res.code == 0, res.err
    assert (tmp_path / "t.pth").stat().st_size > 0


def test_the_demo_folder_given_as_a_file_is_one_line(tmp_path):
    """``python -m sredge.demo afile``: exit 2 and one line, not a traceback (a folder holding the user's
    files is fine: see test_demo_runs_again_over_its_own_results)."""
    (tmp_path / "afile").write_text("x")
    res = subprocess.run([sys.executable, "-m", "sredge.demo", str(tmp_path / "afile"), "--frames", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "is a file" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "x"
