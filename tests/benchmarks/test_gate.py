"""The regression gate's decisions (pure functions over report dicts)."""

from __future__ import annotations

import pytest

from sredge.benchmarks.gate import Budget, check_baseline, compare, model_names, pair_rows
from sredge.errors import InputError


def _report(label: str, psnrs: dict[str, float], median_ms: float = 10.0, ref: float = 5.0,
            fingerprint: str = "abc") -> dict:
    images = {k: {"psnr": v, "ssim": 0.9} for k, v in psnrs.items()}
    mean = sum(psnrs.values()) / len(psnrs)
    return {
        "dataset": {"name": "Set5", "scale": 2, "lr_source": "provided", "images": list(psnrs),
                    "fingerprint": fingerprint},
        "reference_ms": ref,
        "settings": {"latency_hw": [64, 64]},
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


def _two_models(labels: tuple[str, str], paths: tuple[str, str], psnrs: tuple[float, float]) -> dict:
    """A report of two model rows (each with its model path), as sr-bench writes them."""
    report = _report(labels[0], {"a": psnrs[0]})
    report["rows"][1]["model"] = paths[0]
    report["rows"].append(dict(_report(labels[1], {"a": psnrs[1]})["rows"][1], model=paths[1]))
    return report


def test_rows_sharing_a_label_are_never_matched():
    """A baseline with two rows labelled "model" (sr-bench before labels were unique) is refused, whichever
    row the new run's "model" would have met: silently pairing with the last one hid a regression."""
    old = _two_models(("model", "model"), ("a/model.onnx", "b/model.onnx"), (37.383, 37.100))
    new = _report("model", {"a": 37.100})
    with pytest.raises(InputError, match="two model rows labelled 'model'"):
        compare(old, new, Budget())
    with pytest.raises(InputError, match=r"rows\[1\] and rows\[2\] are both labelled 'model'.*--save-baseline"):
        check_baseline(old)
    with pytest.raises(InputError, match="this run has two model rows labelled 'model'"):
        pair_rows(_report("model", {"a": 37.0}), old)
    check_baseline(_two_models(("a/model", "b/model"), ("a/model.onnx", "b/model.onnx"), (37.383, 37.1)))


def test_a_row_pairs_with_the_baseline_row_of_its_path():
    """a/model.onnx benched alone is labelled "model"; the baseline named it "a/model" next to "b/model"."""
    base = _two_models(("a/model", "b/model"), ("/w/a/model.onnx", "/w/b/model.onnx"), (37.383, 37.100))
    new = _report("model", {"a": 37.100})
    new["rows"][1]["model"] = "a/model.onnx"
    (reg, *_) = compare(base, new, Budget(max_psnr_drop=0.05))
    assert (reg.model, reg.before, reg.after) == ("model", 37.383, 37.100)
    assert pair_rows(base, new)[0][0]["label"] == "a/model"
    # The setting must match too: "model [tile 48]" pairs with "a/model [tile 48]", not with "a/model".
    tiled = _two_models(("a/model [tile 48]", "a/model [tile none]"), ("/w/a/model.onnx",) * 2, (37.0, 36.0))
    new["rows"][1]["label"] = "model [tile none]"
    assert pair_rows(tiled, new)[0][0]["label"] == "a/model [tile none]"
    # A model whose path fits none of the baseline's rows is refused, naming them.
    new["rows"][1]["model"] = "c/model.onnx"
    new["rows"][1]["label"] = "model"
    with pytest.raises(InputError, match="no row for model .it has: a/model, b/model"):
        pair_rows(base, new)
    # Two baseline rows that both fit the path: the very file where both recorded it, else refused.
    both = _two_models(("a/model", "x/a/model"), ("/w/a/model.onnx", "/w/x/a/model.onnx"), (37.0, 36.0))
    new["rows"][1]["model"] = "/w/x/a/model.onnx"
    assert pair_rows(both, new)[0][0]["label"] == "x/a/model"
    new["rows"][1]["model"] = "/v/x/a/model.onnx"  # another machine's checkout
    with pytest.raises(InputError, match="could be the baseline's a/model or x/a/model"):
        pair_rows(both, new)


def test_a_row_never_pairs_with_another_files_baseline_row():
    """The baseline benched /w/a/model.onnx alone ("model"); a run of a/model.onnx and b/model.onnx compares
    a/model with it, and b/model with nothing: refused, not compared with a's figures."""
    base = _report("model", {"a": 37.383})
    base["rows"][1]["model"] = "/w/a/model.onnx"
    new = _two_models(("a/model", "b/model"), ("/w/a/model.onnx", "/w/b/model.onnx"), (37.383, 37.100))
    with pytest.raises(InputError, match="a/model and b/model would both be compared with the baseline's model"):
        pair_rows(base, new)
    new["rows"] = new["rows"][:2]  # bicubic and a/model
    assert [(o["label"], n["label"]) for o, n in pair_rows(base, new)] == [("model", "a/model")]
    other = _two_models(("model", "other"), ("/w/a/model.onnx", "/w/other.onnx"), (37.383, 30.0))
    new = _two_models(("a/model", "b/model"), ("/w/a/model.onnx", "/w/b/model.onnx"), (37.383, 37.100))
    with pytest.raises(InputError, match="no row for b/model"):
        pair_rows(other, new)


def test_model_names_grow_from_the_stem():
    assert model_names("/w/x/a/model.onnx") == ["model", "a/model", "x/a/model", "w/x/a/model", "model.onnx",
                                                "a/model.onnx", "x/a/model.onnx", "w/x/a/model.onnx"]
    assert model_names("m.onnx") == ["m", "m.onnx"]
    assert model_names("a/../b/m.onnx") == ["m", "b/m", "m.onnx", "b/m.onnx"]


def test_a_gate_with_nothing_to_compare_is_refused_not_passed():
    """The audit: a baseline saved with --no-quality passed a 3.1 dB INT8 drop, and one saved with --size 0
    passed --max-slowdown, each printing "within budget"; latencies of other frame sizes were compared."""
    from sredge.benchmarks.gate import check_measurable, gated_pairs

    base, new = _report("m", {"a": 30.0}), _report("m", {"a": 27.0})
    no_quality = _report("m", {"a": 30.0})
    del no_quality["rows"][1]["quality"]
    with pytest.raises(InputError, match="the baseline has no quality figures for m"):
        compare(no_quality, new, Budget())
    assert compare(no_quality, new, Budget(max_psnr_drop=None, max_slowdown=2.0)) == []  # latency alone: fine
    with pytest.raises(InputError, match="this run has no quality figures"):
        compare(base, no_quality, Budget())
    no_latency = _report("m", {"a": 30.0})
    del no_latency["rows"][1]["latency"]
    for old, run in ((no_latency, base), (base, no_latency)):
        with pytest.raises(InputError, match="no latency for m"):
            compare(old, run, Budget(max_slowdown=1.5))
    assert [r.metric for r in compare(no_latency, new, Budget())] == ["Y-PSNR", "Y-PSNR"]  # PSNR alone: gated

    sized = base
    with pytest.raises(InputError, match="the baseline timed 64x64 frames, this run 256x256"):
        gated_pairs(sized, {**base, "settings": {"latency_hw": [256, 256]}}, Budget(max_slowdown=1.5))
    with pytest.raises(InputError, match="timed no frames"):
        check_measurable({**base, "settings": {"latency_hw": None}}, Budget(max_slowdown=1.5), (64, 64))
    check_measurable(sized, Budget(max_slowdown=1.5), (64, 64))
    check_measurable(sized, Budget(), (256, 256))  # latency not gated: any size
    with pytest.raises(InputError, match="the baseline has no quality figures"):  # told before measuring
        check_measurable(no_quality, Budget(), (64, 64))
    check_measurable(no_quality, Budget(max_psnr_drop=None, max_slowdown=2.0), (64, 64))
    for bad in (None, {"latency_hw": 64}, {"latency_hw": [64, "64"]}):
        with pytest.raises(InputError, match="settings"):
            check_baseline({**base, "settings": bad})


def test_an_infinite_or_missing_figure_never_passes_the_gate():
    """The audit: an image reproduced exactly scores PSNR Infinity (sr-bench writes it so), and a figure
    that was not finite, or not there, was skipped: a model halving every pixel passed against it."""
    exact = _report("m", {"a": float("inf"), "b": 31.0})
    worse = _report("m", {"a": 18.4, "b": 31.0})
    assert [(r.image, r.metric) for r in compare(exact, worse, Budget())] == [("mean", "Y-PSNR"), ("a", "Y-PSNR")]
    assert compare(exact, exact, Budget()) == []  # still exact: no drop
    assert compare(worse, exact, Budget()) == []  # better
    check_baseline(exact)
    for key, value in (("psnr", float("nan")), ("psnr", float("-inf")), ("ssim", float("nan"))):
        damaged = _report("m", {"a": 30.0})
        damaged["rows"][1]["quality"]["images"]["a"][key] = value
        with pytest.raises(InputError, match=rf"rows\[1\].quality.images.a.{key} must be"):
            check_baseline(damaged)
    for where in ("median_ms", "reference_ms"):
        damaged = _report("m", {"a": 30.0})
        (damaged["rows"][1]["latency"] if where == "median_ms" else damaged)[where] = float("nan")
        with pytest.raises(InputError, match=f"{where} must be a positive number"):
            check_baseline(damaged)
    unscored = _report("m", {"a": 30.0, "b": 31.0})
    del unscored["rows"][1]["quality"]["images"]["b"]
    with pytest.raises(InputError, match="must score every image of dataset.images"):
        check_baseline(unscored)
    no_model = _report("m", {"a": 30.0})
    del no_model["rows"][1]
    with pytest.raises(InputError, match="no model row"):
        check_baseline(no_model)
    missing = _report("m", {"a": 30.0, "b": 31.0})
    del missing["rows"][1]["quality"]["images"]["b"]  # a run that did not score an image fails on it
    assert [r.image for r in compare(_report("m", {"a": 30.0, "b": 31.0}), missing, Budget())] == ["b"]


def test_notes_name_what_the_gate_did_not_hold_the_run_to():
    """The audit: a baseline of fp32 and int8 gated a run of fp32 alone without a word about int8, and a
    --tile 0 baseline gated a --tile 16 run as if measured alike."""
    from sredge.benchmarks.gate import gate_notes

    base = _two_models(("a/model", "b/model"), ("a/model.onnx", "b/model.onnx"), (37.3, 37.1))
    base["settings"] |= {"threads": 2}
    run = _report("a/model", {"a": 37.3})
    run["rows"][1] |= {"model": "a/model.onnx", "tile": 16}
    run["settings"] |= {"threads": 1}
    notes = gate_notes(base, run, pair_rows(base, run))
    assert notes[0] == "the baseline's b/model was not measured in this run, so it was not gated"
    assert notes[1].startswith("a/model is compared with the baseline's a/model measured otherwise: ")
    assert "tile none -> 16" in notes[1] and "threads 2 -> 1" in notes[1]  # (the bench audit: "None")
    assert gate_notes(base, base, pair_rows(base, base)) == []
    no_ref = {**base, "reference_ms": None}
    assert gate_notes(no_ref, base, pair_rows(no_ref, base), Budget()) == []  # latency not gated
    (note,) = gate_notes(no_ref, base, pair_rows(no_ref, base), Budget(max_slowdown=1.2))
    assert note.startswith("latency is compared in plain milliseconds")


def test_on_the_baselines_machine_a_slowdown_must_show_in_milliseconds_too():
    """The bench audit: the 128x128 reference workload's own noise (9.8-16 ms between runs) made an unchanged
    model read x1.17 slower while its milliseconds had not moved; 3 of 4 gates of an unchanged model failed."""
    from sredge.benchmarks.gate import gate_notes, latency_ratio

    xeon = {"processor": "Xeon", "cpu_flags": ["avx2", "avx512_vnni"], "cpu_count": 2}
    base = {**_report("m", {"a": 30.0}, median_ms=40.0, ref=10.0), "machine": xeon}
    noisy_ref = {**_report("m", {"a": 30.0}, median_ms=39.7, ref=8.5), "machine": xeon}
    assert compare(base, noisy_ref, Budget(max_slowdown=1.1)) == []
    assert latency_ratio(base["rows"][1], noisy_ref["rows"][1], base, noisy_ref)[1] == (
        "in milliseconds, the smaller of that and the ratio to the reference workload")
    # a real slowdown shows both ways and fails; a busier machine (both slower alike) passes
    slower = {**_report("m", {"a": 30.0}, median_ms=60.0, ref=10.0), "machine": xeon}
    (reg,) = compare(base, slower, Budget(max_slowdown=1.1))
    assert reg.ratio == pytest.approx(1.5) and "x1.5 relative to the reference workload" in reg.describe()
    busier = {**_report("m", {"a": 30.0}, median_ms=60.0, ref=15.0), "machine": xeon}
    assert compare(base, busier, Budget(max_slowdown=1.1)) == []
    # another machine: the reference alone judges, and a note says what it cannot cancel
    other = {**_report("m", {"a": 30.0}, median_ms=39.7, ref=8.5), "machine": {**xeon, "cpu_flags": ["avx2"]}}
    (reg,) = compare(base, other, Budget(max_slowdown=1.1))
    assert reg.ratio == pytest.approx((39.7 / 8.5) / 4.0)
    notes = gate_notes(base, other, pair_rows(base, other), Budget(max_slowdown=1.1))
    assert any("with other CPU features" in n and "VNNI" in n for n in notes), notes
    assert not any("VNNI" in n for n in gate_notes(base, noisy_ref, pair_rows(base, noisy_ref),
                                                  Budget(max_slowdown=1.1)))


def test_a_baseline_that_lost_an_images_score_is_refused_not_passed():
    """The bench audit: an image deleted from the baseline row (and from dataset.images) went ungated: exit 0
    where the intact baseline failed the run on that image."""
    base = _report("m", {"a": 30.0, "b": 31.0})
    edited = _report("m", {"a": 30.0})
    edited["dataset"] = base["dataset"]
    del edited["dataset"]["images"]
    with pytest.raises(InputError, match="has no Y-PSNR for b, which this run scored"):
        compare(edited, _report("m", {"a": 30.0, "b": 20.0}), Budget(max_psnr_drop=0.05))


def test_a_baseline_from_before_the_prelu_rewrite_is_noted_as_another_graph():
    """The video/bench audit: a row ONNX Runtime now runs rewritten (PReLU as depthwise convolutions) timed 0.74x
    of its baseline from before the rewrite with nothing saying why; a report without ``graph`` ran the file as
    stored."""
    from sredge.benchmarks.gate import gate_notes

    base = _report("m", {"a": 30.0})
    run = _report("m", {"a": 30.0})
    assert gate_notes(base, run, pair_rows(base, run)) == []
    run["rows"][1]["graph"] = "as stored"
    assert gate_notes(base, run, pair_rows(base, run)) == []  # a report from before: as stored too
    run["rows"][1]["graph"] = "10 PReLUs rewritten as depthwise convolutions"
    (note,) = gate_notes(base, run, pair_rows(base, run))
    assert note.endswith("measured otherwise: graph as stored -> 10 PReLUs rewritten as depthwise convolutions")
