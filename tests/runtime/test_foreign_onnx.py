"""Foreign ONNX files (no sredge metadata): what was assumed is said in one line, and a fixed batch
axis > 1 is filled (padded, run, the padding dropped) in sr-run and sr-bench alike."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sredge.imaging.io import read_image, write_image
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.base import InputSpec
from sredge.runtime.model import ModelOverrides, foreign_assumptions
from tests.conftest import asset

LOGGER = "sredge.runtime.model"


def _x2_onnx(path, channels, batch, hw=None):
    """A x2 network (3x3 conv near identity, then DepthToSpace(2) = PixelShuffle(2)) with the input
    shape ``batch x channels x H x W`` (None: dynamic), written with onnx.helper; no sredge metadata."""
    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.02, (channels * 4, channels, 3, 3)).astype(np.float32)
    for c in range(channels):
        w[c * 4:(c + 1) * 4, c, 1, 1] += 1.0  # every sub-pixel starts from its source pixel
    h, wd = hw if hw else ("h", "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, h, wd])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels, None, None])
    nodes = [helper.make_node("Conv", ["x", "w"], ["f"], pads=[1, 1, 1, 1]),
             helper.make_node("DepthToSpace", ["f"], ["y"], blocksize=2, mode="CRD")]
    g = helper.make_graph(nodes, "x2", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _foreign_desc(scale=2, channels=3, color="rgb", pre_upsample=False):
    return ModelDescriptor(arch="foreign", scale=scale, in_channels=channels, out_channels=channels,
                           color_space=color, value_range=1.0, pre_upsample=pre_upsample)


def test_assumptions_name_every_guess_and_only_guesses():
    spec = InputSpec(channels=3, height=None, width=None)
    note = foreign_assumptions(_foreign_desc(), ModelOverrides(), spec)
    assert note.startswith("assumed: scale x2 (probed), colour rgb (3 channels), range 0-1")
    assert "--scale/--color/--range" in note and "\n" not in note
    note = foreign_assumptions(_foreign_desc(), ModelOverrides(color="rgb"), spec)
    assert "colour" not in note and "--scale/--range" in note
    assert foreign_assumptions(_foreign_desc(), ModelOverrides(scale=2, color="rgb", value_range=1.0), spec) is None
    fixed = InputSpec(channels=1, height=28, width=28, max_batch=256, batch_fixed=True)
    note = foreign_assumptions(_foreign_desc(channels=1, color="y"), ModelOverrides(scale=2), fixed)
    assert "colour y (1 channel)" in note and "fixed batch of 256" in note and "scale" not in note
    pre = foreign_assumptions(_foreign_desc(scale=3, pre_upsample=True), ModelOverrides(scale=3), spec)
    assert "bicubic-upsampled input" in pre
    sredge_own = ModelDescriptor(arch="espcn", scale=2, in_channels=3, out_channels=3, color_space="rgb",
                                 value_range=1.0, pre_upsample=False)
    assert foreign_assumptions(sredge_own, ModelOverrides(), spec) is None


def test_sr_run_says_what_it_assumed_once(cli, tmp_path, caplog):
    model = _x2_onnx(tmp_path / "foreign.onnx", 3, 1)
    src = asset("realworld/0030.jpg")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cli("run", "--image", src, "--model", model, "-o", tmp_path / "a.png", "-q").code == 0
    notes = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(notes) == 1 and notes[0].startswith(
        "foreign.onnx: assumed: scale x2 (probed), colour rgb (3 channels), range 0-1")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        res = cli("run", "--image", src, "--model", model, "--scale", "2", "--color", "rgb", "--range", "1",
                  "-o", tmp_path / "b.png", "-q")
    assert res.code == 0 and not [r for r in caplog.records if r.name == LOGGER]  # nothing left to assume
    assert np.array_equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"))


@pytest.mark.parametrize("channels,batch,hw", [(3, 4, (32, 32)), (1, 256, (28, 28)), (3, 4, None)],
                         ids=["4x3x32x32", "256x1x28x28", "4x3xHxW"])
def test_fixed_batch_is_filled_in_sr_run_and_sr_bench(cli, tmp_path, caplog, channels, batch, hw):
    """The fixed-batch file gives exactly what the same network with a batch of 1 (same spatial shape)
    gives, in sr-run and in sr-bench; and, away from the image's last row and column (where a fixed-shape
    tile is reflect-padded, while a whole-image run sees the network's zero padding), what the fully
    dynamic network gives."""
    fixed = _x2_onnx(tmp_path / "fixed.onnx", channels, batch, hw)
    single = _x2_onnx(tmp_path / "single.onnx", channels, 1, hw)
    dynamic = _x2_onnx(tmp_path / "dynamic.onnx", channels, "n")  # same weights, every axis free
    src = tmp_path / "in.png"
    img = read_image(asset("realworld/0030.jpg"))[:70, :90]
    write_image(src, img if channels == 3 else img[..., 1])
    overlap = ["--tile-overlap", "4"]  # the fixed 28x28 / 32x32 tiles must exceed twice the overlap
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        res = cli("run", "--image", src, "--model", fixed, "-o", tmp_path / "f.png", "-q", *overlap)
    assert res.code == 0, res.err
    assert any(f"fixed batch of {batch} is filled" in r.getMessage() for r in caplog.records)
    for name, model in (("s", single), ("d", dynamic)):
        assert cli("run", "--image", src, "--model", model, "-o", tmp_path / f"{name}.png", "-q", *overlap).code == 0
    out = read_image(tmp_path / "f.png")
    assert out.shape[:2] == (140, 180)
    assert np.array_equal(out, read_image(tmp_path / "s.png"))
    assert np.array_equal(out[:-2, :-2], read_image(tmp_path / "d.png")[:-2, :-2])

    data = tmp_path / "set" / "HR"
    data.mkdir(parents=True)
    write_image(data / "a.png", img[:64, :80])
    rows = {}
    for name, model in (("fixed", fixed), ("single", single)):
        res = cli("bench", model, "--dataset", data.parent, "--size", "0", "--no-bicubic", "-q",
                  "--json", tmp_path / f"{name}.json", *overlap)
        assert res.code == 0, res.err
        rows[name] = json.loads((tmp_path / f"{name}.json").read_text())["rows"][0]["quality"]
    assert rows["fixed"] == rows["single"]


def test_batch_beyond_a_fixed_batch_is_one_line_exit_2(cli, tmp_path):
    fixed = _x2_onnx(tmp_path / "fixed.onnx", 3, 4, (32, 32))
    res = cli("run", "--image", asset("realworld/0030.jpg"), "--model", fixed, "--batch", "8",
              "--tile-overlap", "4", "-o", tmp_path / "o.png")
    assert res.code == 2 and "largest batch 4" in res.err and len(res.err.strip().splitlines()) == 1
