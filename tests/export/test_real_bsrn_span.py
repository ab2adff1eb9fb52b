"""The NTIRE BSRN-S (2022) and SPAN (2024) x4 checkpoints in ../shared/assets export through sr-export
without --arch, pass parity, and score on Set5 what the authors' own code scores on the same LR images.

The expected figures were measured by running the authors' networks in PyTorch (ofsoundof/NTIRE2022_ESR
``models/team18_bsrn.py`` ``BSRN(num_feat=48, num_block=5, upscale=4)``; Amazingren/NTIRE2024_ESR
``models/team38_SPAN.py`` ``SPAN30(3, 3, feature_channels=28, upscale=4)``) on these files and
scoring them with sredge.benchmarks.quality (Y-PSNR, crop = scale, Set5 ``LR_bicubic/X4``).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sredge.benchmarks.datasets import load_dataset
from sredge.benchmarks.quality import evaluate_y_psnr
from sredge.models.loader import load_model
from sredge.models.onnx_file import read_descriptor
from tests.conftest import asset

CASES = [
    # checkpoint, arch, variant, authors'-code Set5 x4 Y-PSNR (dB)
    ("weights/efficient/bsrn_ntire22_x4.pth", "bsrn", "bsrn_s_ntire22_x4", 32.0099),
    ("weights/efficient/span_ch28_ntire24_x4.pth", "span", "span_ch28_ntire24_x4", 31.7390),
]
TOL_DB = 0.05


@pytest.mark.parametrize(("rel", "arch", "variant", "authors_db"), CASES, ids=[c[1] for c in CASES])
def test_export_parity_and_set5_psnr_match_the_authors_code(cli, tmp_path, rel, arch, variant, authors_db):
    ckpt = asset(rel)
    out = tmp_path / "model.onnx"
    res = cli("export", ckpt, "-o", out)  # no --arch, no --scale
    assert res.code == 0, res.err
    assert f"detected   {arch} ({variant}), scale x4 (from weights)" in res.out
    assert "parity" in res.out
    desc = read_descriptor(out)
    assert (desc.arch, desc.scale, desc.color_space, desc.value_range) == (arch, 4, "rgb", 1.0)
    assert not any(n.op_type == "MatMul" for n in onnx.load(str(out)).graph.node)  # 1x1 layers are convs

    # sr-export's parity check already compared ONNX Runtime with PyTorch; score the ONNX file.
    pairs = load_dataset(asset("benchmarks/Set5"), 4)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    onnx_db = np.mean(list(evaluate_y_psnr(lambda x: sess.run(None, {name: x})[0], desc, pairs).values()))
    assert abs(onnx_db - authors_db) <= TOL_DB, f"Set5 x4: {onnx_db:.4f} dB, the authors' code {authors_db}"

    # Tiling: SPAN's attention is local (tiles with overlap give the whole-image output); BSRN's pools and
    # averages over the whole input, so tiles differ whatever the overlap, and sr-run says so once.
    import subprocess
    import sys

    import cv2

    lr = asset("benchmarks/Set5/LR_bicubic/X4/babyx4.png")
    runs = {tile: subprocess.run([sys.executable, "-m", "sredge.cli.run", "--image", str(lr), "--model", str(out),
                                  "--tile", tile, "--tile-overlap", "16", "-o", str(tmp_path / f"t{tile}.png")],
                                 capture_output=True, text=True) for tile in ("0", "48")}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    warned = "attends across the whole input" in runs["48"].stderr
    diff = np.abs(cv2.imread(str(tmp_path / "t0.png")).astype(int) - cv2.imread(str(tmp_path / "t48.png"))).max()
    assert warned == (arch == "bsrn") and "attends" not in runs["0"].stderr
    assert (diff > 2) == (arch == "bsrn"), diff


def test_loaded_descriptors():
    for rel, arch, variant, _ in CASES:
        desc = load_model(asset(rel)).descriptor
        assert (desc.arch, desc.variant, desc.scale, desc.fp16_safe, desc.size_multiple) == (arch, variant, 4, True, 1)
        assert 150_000 <= desc.num_params <= 157_000  # 156k (BSRN-S), 151k (SPAN ch28): ../shared/assets/README.md
