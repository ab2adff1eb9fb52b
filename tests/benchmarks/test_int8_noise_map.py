"""benchmarks/int8_noise_map.py on the bundled x2 pair and the sample photos: its regions partition
each image, its dB column follows from its error columns, and the INT8 file does add error."""

from __future__ import annotations

import math
import subprocess
import sys

from tests.conftest import ROOT

MODELS = ROOT / "src" / "sredge" / "data" / "models"


def _rows(*extra: str) -> dict[tuple[str, str], tuple[float, float, float, float]]:
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "int8_noise_map.py"),
                          str(MODELS / "sredge_x2.onnx"), str(MODELS / "sredge_x2.int8.onnx"),
                          "--dataset", str(ROOT / "src" / "sredge" / "data" / "sample"), *extra],
                         capture_output=True, text=True, timeout=300, check=True)
    rows = {}
    for line in res.stdout.splitlines()[1:]:
        name, region, *numbers = line.split()
        rows[(name, region)] = tuple(float(v) for v in numbers)
    return rows


def test_regions_partition_each_image_and_int8_adds_error():
    rows = _rows()
    names = {name for name, _ in rows}
    assert names == {"chelsea", "coffee", "rocket"}
    for name in names:
        share_all, mse, added, drop = rows[(name, "all")]
        share_in, mse_in, added_in, _ = rows[(name, "inside")]
        share_band, mse_band, added_band, _ = rows[(name, "band")]
        assert share_all == 1.0 and math.isclose(share_in + share_band, 1.0, abs_tol=0.011)
        # The whole image's figures are the share-weighted means of its two regions' (to print rounding).
        assert math.isclose(mse, share_in * mse_in + share_band * mse_band, rel_tol=0.01, abs_tol=0.02)
        assert math.isclose(added, share_in * added_in + share_band * added_band, rel_tol=0.05, abs_tol=0.01)
        assert math.isclose(drop, 10 * math.log10((mse + added) / mse), abs_tol=0.002)
        assert 0 < added < mse and 0 < drop < 0.5, (name, added, drop)


def test_a_band_wider_than_the_image_leaves_no_inside_row():
    rows = _rows("--band", "10000")
    assert {region for _, region in rows} == {"all", "band"}
