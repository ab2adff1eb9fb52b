"""The real RFDN and RLFN checkpoints (NTIRE 2022 efficient SR, x4) export without --arch, pass
parity, and score on Set5 through sr-bench what their authors' code scores.

Expected figures: the authors' networks (njulj/RFDN ``RFDN.py``; ofsoundof/NTIRE2022_ESR
``models/team04_rlfn.py``) run in PyTorch on the same LR images, inputs in [0, 255] as the
challenge's ``test_demo.py`` feeds them, scored by ``sredge.benchmarks.quality.evaluate_y_psnr``
(Y-PSNR, crop 4). Per image (baby, bird, butterfly, head, woman):
RFDN 33.759 34.890 28.641 32.956 30.549; RLFN 33.737 34.636 28.534 32.911 30.668.
"""

from __future__ import annotations

import json

import pytest

from sredge.models.onnx_file import read_descriptor
from tests.conftest import asset

# checkpoint, variant, parameters, Set5 x4 Y-PSNR of the authors' code (dB)
CASES = [
    ("weights/efficient/rfdn_baseline_x4.pth", "rfdn", "rfdn_x4", 433_448, 32.159),
    ("weights/efficient/rlfn_ntire22_x4.pth", "rlfn", "rlfn_ntire22_x4", 317_218, 32.097),
]


@pytest.mark.parametrize(("rel", "arch", "variant", "params", "authors_db"), CASES, ids=[c[1] for c in CASES])
def test_export_parity_and_set5_psnr_match_authors(cli, tmp_path, rel, arch, variant, params, authors_db):
    ckpt = asset(rel)
    out = tmp_path / f"{arch}.onnx"
    res = cli("export", ckpt, "-o", out)  # no --arch: detection alone
    assert res.code == 0, res.err
    assert "parity" in res.out and "scale x4" in res.out
    desc = read_descriptor(out)
    assert (desc.arch, desc.scale, desc.variant, desc.num_params) == (arch, 4, variant, params)
    assert (desc.color_space, desc.value_range, desc.in_channels, desc.out_channels) == ("rgb", 255.0, 3, 3)

    report = tmp_path / "bench.json"
    res = cli("bench", out, "--dataset", asset("benchmarks/Set5"), "--scale", "4", "--size", "0",
              "--no-bicubic", "--json", report, "-q")
    assert res.code == 0, res.err
    (row,) = json.loads(report.read_text())["rows"]
    psnr = row["quality"]["mean"]["psnr"]
    assert abs(psnr - authors_db) <= 0.05, f"Set5 x4: sredge {psnr:.3f} dB, authors' code {authors_db} dB"
    assert psnr > 28.43 + 3  # far above bicubic (28.43 dB), so a wrong value range cannot pass
