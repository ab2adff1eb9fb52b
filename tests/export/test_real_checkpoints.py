"""The real checkpoints in ../shared/assets export through sr-export, pass parity, and keep
their Set5 quality through ONNX Runtime (within 0.01 dB of PyTorch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sredge.benchmarks.datasets import load_dataset
from sredge.benchmarks.quality import evaluate_y_psnr
from sredge.models.loader import load_model
from sredge.models.onnx_file import read_descriptor
from tests.conftest import asset

# Set5 Y-PSNR (crop = scale) to expect from PyTorch, with tolerance: measured values
# recorded in ../shared/assets/README.md (FSRCNN), the VDSR paper (37.53 / 33.66 / 31.35).
CASES = [
    ("weights/fsrcnn/fsrcnn_x2.pth", [], 2, 37.14, 0.06),
    ("weights/fsrcnn/fsrcnn_x3.pth", [], 3, 32.60, 0.06),
    ("weights/fsrcnn/fsrcnn_x4.pth", [], 4, 30.51, 0.06),
    # ESPCN fed the YCbCr it was trained on beats its RGB figures (34.23 / 30.95 / 28.50) by 0.6-2 dB.
    ("weights/espcn/espcn_x2.pt", [], 2, 36.18, 0.05),
    ("weights/espcn/espcn_x3.pt", [], 3, 31.80, 0.05),
    ("weights/espcn/espcn_x4.pt", [], 4, 29.09, 0.05),
    ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "2"], 2, 37.53, 0.15),
    ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "3"], 3, 33.66, 0.15),
    ("weights/vdsr/vdsr_model_epoch_50.pth", ["--trust-pickle", "--scale", "4"], 4, 31.35, 0.15),
]


def _ort_runner(path):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


@pytest.mark.parametrize("rel,flags,scale,paper_db,tol", CASES, ids=[f"{c[0].split('/')[-1]}-x{c[2]}" for c in CASES])
def test_export_parity_and_set5_psnr(cli, tmp_path, rel, flags, scale, paper_db, tol):
    ckpt = asset(rel)
    out = tmp_path / "model.onnx"
    res = cli("export", ckpt, "-o", out, *flags)
    assert res.code == 0, res.err
    assert "parity" in res.out and f"scale x{scale}" in res.out
    desc = read_descriptor(out)
    assert desc is not None and desc.scale == scale

    model = onnx.load(str(out))
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2] == "height" and dims[3] == "width"
    assert model.opset_import[0].version >= 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    pairs = load_dataset(asset("benchmarks/Set5"), scale)
    loaded = load_model(ckpt, scale=scale, trust_pickle="--trust-pickle" in flags)
    assert dataclasses.replace(loaded.descriptor) == desc
    with torch.no_grad():
        torch_scores = evaluate_y_psnr(lambda x: loaded.module(torch.from_numpy(x)).numpy(), desc, pairs)
    onnx_scores = evaluate_y_psnr(_ort_runner(out), desc, pairs)
    t, o = np.mean(list(torch_scores.values())), np.mean(list(onnx_scores.values()))
    assert abs(t - o) <= 0.01, (t, o)
    assert abs(o - paper_db) <= tol, f"Set5 x{scale}: {o:.3f} dB, expected {paper_db} +- {tol}"


def test_realesr_animevideov3_exports_and_matches_pytorch(cli, tmp_path):
    out = tmp_path / "anime.onnx"
    res = cli("export", asset("weights/srvgg/realesr-animevideov3.pth"), "-o", out)
    assert res.code == 0, res.err
    assert "realesr_animevideov3" in res.out and "x4" in res.out
    desc = read_descriptor(out)
    assert (desc.arch, desc.scale, desc.color_space) == ("srvgg", 4, "rgb")


def test_default_output_path_is_next_to_the_checkpoint(cli, tmp_path):
    ckpt = tmp_path / "espcn_x3.pt"
    ckpt.write_bytes(asset("weights/espcn/espcn_x3.pt").read_bytes())
    res = cli("export", ckpt, "-q")
    assert res.code == 0, res.err
    assert res.out == ""
    assert (tmp_path / "espcn_x3.onnx").is_file()
