"""The regression gate's decisions (pure functions over report dicts)."""

from __future__ import annotations

import pytest

from sredge.benchmarks.gate import Budget, compare, pair_rows
from sredge.errors import InputError


def _report(label: str, psnrs: dict[str, float], median_ms: float = 10.0, ref: float = 5.0,
            fingerprint: str = "abc") -> dict:
    images = {k: {"psnr": v, "ssim": 0.9} for k, v in psnrs.items()}
    mean = sum(psnrs.values()) / len(psnrs)
    return {
        "dataset": {"name": "Set5", "scale": 2, "lr_source": "provided", "images": list(psnrs),
                    "fingerprint": fingerprint},
        "reference_ms": ref,
        "rows": [
            {"label": "bicubic", "bicubic": True, "quality": {"mean": {"psnr": 30.0, "ssim": 0.8}, "images": {}}},
            {"label": label, "bicubic": False, "quality": {"mean": {"psnr": mean, "ssim": 0.9}, "images": images},
             "latency": {"median_ms": median_ms}},
        ],
    }


def test_unchanged_run_passes_and_a_drop_names_model_image_metric():
    base = _report("m", {"a": 30.0, "b": 31.0})
    assert compare(base, _report("m", {"a": 29.97, "b": 31.0}), Budget(max_psnr_drop=0.05)) == []
    found = compare(base, _report("m.int8", {"a": 29.0, "b": 31.0}), Budget(max_psnr_drop=0.05))
    assert [(r.model, r.image, r.metric) for r in found] == [("m.int8", "mean", "Y-PSNR"), ("m.int8", "a", "Y-PSNR")]
    assert "30 dB -> 29 dB" in found[1].describe()


def test_latency_is_judged_relative_to_each_runs_reference():
    base = _report("m", {"a": 30.0}, median_ms=10.0, ref=5.0)
    busier = _report("m", {"a": 30.0}, median_ms=20.0, ref=10.0)  # everything twice as slow today
    assert compare(base, busier, Budget(max_slowdown=1.1)) == []
    slower = _report("m", {"a": 30.0}, median_ms=20.0, ref=5.0)
    (reg,) = compare(base, slower, Budget(max_slowdown=1.1))
    assert reg.metric == "latency" and reg.ratio == pytest.approx(2.0)
    assert compare(base, slower, Budget()) == []  # latency is gated only when asked


def test_other_dataset_and_unpaired_rows_are_refused():
    base = _report("m", {"a": 30.0})
    with pytest.raises(InputError, match="not comparable"):
        compare(base, _report("m", {"a": 30.0}, fingerprint="other"), Budget())
    two = _report("m", {"a": 30.0})
    two["rows"].append(dict(two["rows"][1], label="n"))
    with pytest.raises(InputError, match="no row for x"):
        pair_rows(two, _report("x", {"a": 30.0}))
    with pytest.raises(InputError, match="not an sr-bench report"):
        compare({"hello": 1}, base, Budget())
