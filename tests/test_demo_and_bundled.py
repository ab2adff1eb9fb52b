"""The bundled default models and the demo: sr-run works out of the box, with the core install only."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import av
import pytest

from sredge.demo import CLIP_SIZE, FRAMES, make_clip
from sredge.models.onnx_file import read_descriptor
from sredge.runtime.bundled import bundled_models, default_model, manifest

BLOCK = "import sys\nfor m in ('torch', 'onnxscript', 'onnxslim', 'safetensors', 'tensorrt'):\n    sys.modules[m] = None\n"


def test_demo_clip_is_a_real_video(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=12)
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == CLIP_SIZE
    a, b = frames[0].to_ndarray(format="rgb24"), frames[-1].to_ndarray(format="rgb24")
    assert abs(a.astype(int) - b.astype(int)).mean() > 5  # the camera moves
    assert FRAMES >= 24


def test_bundled_models_are_self_describing():
    models = bundled_models()
    assert {2, 4} <= set(models)
    for scale, path in models.items():
        desc = read_descriptor(path)
        assert desc is not None and desc.scale == scale
    assert default_model(None) == models[2]
    figures = {m["scale"]: m for m in manifest()}
    assert {2, 4} <= set(figures)
    for m in figures.values():
        assert m["set5_y_psnr"] > m["set5_bicubic"] + 1.0  # a real SR model, measured
        assert "sr-train" in m["train_command"]


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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
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


@pytest.mark.parametrize("scale", [3, 8])
def test_missing_bundled_scale_is_a_clear_error(cli, tmp_path, scale):
    res = cli("run", "--image", tmp_path / "x.png", "--scale", str(scale))
    assert res.code == 2 and "no bundled default model" in res.err


@pytest.mark.parametrize("scale,goal", [(2, 36.5), (4, 30.2)])
def test_bundled_models_meet_the_set5_goal_measured_by_sr_bench(cli, tmp_path, scale, goal):
    """Set5 Y-PSNR (crop = scale) of the shipped ONNX, measured by sr-bench here, not read from models.json."""
    import json

    from tests.conftest import asset

    path = bundled_models()[scale]
    res = cli("bench", path, "--dataset", asset("benchmarks/Set5"), "--size", "0", "--json", tmp_path / "r.json",
              "-q")
    assert res.code == 0, res.err
    bicubic, model = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert model["quality"]["mean"]["psnr"] >= goal
    assert model["quality"]["mean"]["psnr"] - bicubic["quality"]["mean"]["psnr"] > 2.0
