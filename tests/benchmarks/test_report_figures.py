"""report.md figures a user can trust: PSNR bars from a meaningful zero, speed with its spread, the
latency paragraph; and the drawing itself (bar lengths proportional to values)."""

from __future__ import annotations

import numpy as np
import pytest

from sredge.benchmarks.plots import _PALETTE, grouped_bars
from sredge.benchmarks.report import format_table, latency_notes, psnr_series, table_rows, write_report_dir


def _bar_heights(img: np.ndarray, colour: tuple[int, int, int]) -> list[int]:
    """Pixel height of each run of columns painted ``colour`` (one entry per bar, left to right)."""
    mask = (img[:-30] == np.array(colour, np.uint8)).all(axis=2)  # above the legend
    cols = mask.sum(axis=0)
    heights, inside = [], False
    for c in cols:
        if c and not inside:
            heights.append(int(c))
        inside = bool(c)
    return heights


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [30.0, 31.0, 32.0]])
def test_bars_start_at_zero_so_lengths_are_proportional(values):
    img = grouped_bars(["a", "b", "c"], {"model": values}, "t", "dB")
    h = _bar_heights(img, _PALETTE[0])
    assert len(h) == 3
    for v, hv in zip(values, h):
        assert hv == pytest.approx(h[-1] * v / values[-1], abs=2)  # 30 vs 32 dB: 94 %, not a third


def test_negative_gains_go_below_the_zero_line():
    img = grouped_bars(["a", "b"], {"m": [-1.0, 1.0]}, "t", "dB")
    mask = (img == np.array(_PALETTE[0], np.uint8)).all(axis=2)
    rows = np.nonzero(mask[:, : img.shape[1] // 2].any(axis=1) & ~mask[:, img.shape[1] // 2:].any(axis=1))[0]
    ups = np.nonzero(mask.any(axis=1))[0]
    assert len(rows) and rows.min() > ups.min()  # the negative bar hangs below where the positive one rises


def _report(with_bicubic: bool = True, speedup: dict | None = None) -> dict:
    images = ["baby", "bird"]

    def q(a, b):
        return {"mean": {"psnr": (a + b) / 2, "ssim": 0.9},
                "images": {"baby": {"psnr": a, "ssim": 0.9}, "bird": {"psnr": b, "ssim": 0.9}}}

    lat = {"runs": 10, "median_ms": 10.0, "p95_ms": 11.0, "p99_ms": 12.0, "min_ms": 9.0, "fps": 100.0,
           "mpix_per_s": 1.0, "relative": 2.0, "relative_iqr": [1.9, 2.1]}
    rows = [{"label": "bicubic", "bicubic": True, "quality": q(30.0, 31.0), "latency": None}] if with_bicubic else []
    rows += [{"label": "fp32", "bicubic": False, "backend": "ort", "precision": "fp32", "tile": None,
              "quality": q(32.0, 32.5), "latency": lat | {"speedup": {"median": 1.0, "low": 1.0, "high": 1.0,
                                                                     "rounds": 10, "conclusive": False}}},
             {"label": "int8", "bicubic": False, "backend": "ort", "precision": "int8-cpu", "tile": None,
              "quality": q(31.9, 32.4),
              "latency": lat | {"median_ms": 8.0, "speedup": speedup or {"median": 1.25, "low": 1.2, "high": 1.3,
                                                                          "rounds": 10, "conclusive": True}}}]
    return {"sredge_report": 1,
            "dataset": {"name": "Set5", "scale": 3, "images": images, "lr_source": "MATLAB bicubic"},
            "settings": {"latency_hw": [90, 160], "warmup": 2, "repeats": 10,
                         "reference_workload": "bundled x2 model, 128x128, ORT CPU"},
            "reference_ms": 5.0, "rows": rows, "created": "now",
            "software": {"sredge": "0"}, "machine": {"processor": "cpu", "cpu_count": 2, "platform": "linux"}}


def test_psnr_chart_is_the_gain_over_bicubic():
    series, title = psnr_series(_report())
    assert series == {"fp32": [pytest.approx(2.0), pytest.approx(1.5)],
                      "int8": [pytest.approx(1.9), pytest.approx(1.4)]}
    assert "over bicubic" in title
    series, title = psnr_series(_report(with_bicubic=False))
    assert series["fp32"] == [32.0, 32.5] and "over bicubic" not in title


def test_speed_column_shows_the_spread_and_says_inconclusive():
    header, cells = table_rows(_report())
    speed = header.index("speed")
    assert [c[speed] for c in cells] == ["-", "-", "1.25x (1.20-1.30)"]
    wide = {"median": 1.1, "low": 0.9, "high": 1.4, "rounds": 10, "conclusive": False}
    header, cells = table_rows(_report(speedup=wide))
    assert cells[-1][speed] == "1.10x (0.90-1.40, inconclusive)"
    old = _report()
    del old["rows"][2]["latency"]["speedup"]  # a baseline saved before interleaved timing
    assert table_rows(old)[1][-1][speed] == "1.25x (no spread)"
    assert "interleaved rounds (interquartile range)" in format_table(_report())


def test_report_md_explains_latency_and_pipeline_depth(tmp_path):
    text = latency_notes(_report())
    assert "interleaved" in text and "inconclusive" in text and "frames in flight" in text
    written = write_report_dir(tmp_path / "r", _report(), {})
    md = (tmp_path / "r" / "report.md").read_text()
    assert text in md and {p.name for p in written} >= {"report.md", "psnr.png", "latency.png", "report.json"}


def test_run_bench_times_rows_and_reference_interleaved(tmp_path):
    """Two rows of one model (labelled apart) and the reference workload, timed in the same rounds."""
    from sredge.benchmarks.bench import BenchOptions, run_bench
    from sredge.runtime.bundled import default_model
    from tests.conftest import asset

    model = default_model(2)
    opts = BenchOptions(dataset=asset("benchmarks/Set5"), quality=False, bicubic=False, latency_hw=(24, 32),
                        warmup=1, repeats=3, tiles=(None,))
    report = run_bench([model, model], opts).report
    rows = report["rows"]
    assert [r["label"] for r in rows] == [model.stem, f"{model.stem} #2"]
    for r in rows:
        lat = r["latency"]
        assert lat["runs"] == 3 and lat["relative"] > 0 and len(lat["relative_iqr"]) == 2
        assert lat["relative_iqr"][0] <= lat["relative"] <= lat["relative_iqr"][1]
        assert lat["speedup"]["rounds"] == 3 and lat["speedup"]["over"] == model.stem
    assert rows[0]["latency"]["speedup"]["median"] == 1.0  # the first row against itself
    assert report["reference_ms"] > 0
    assert "interleaved" in format_table(report)


def _crops(names):
    panel = np.full((8, 8, 3), 128, np.uint8)
    return {n: [("bicubic", panel), ("model", panel)] for n in names}


def test_a_report_that_fails_midway_leaves_the_previous_one_whole(tmp_path):
    """The audit: a stopped `sr-bench --report DIR --overwrite` left new report.json and psnr.png beside the
    old report.md and crops. The files of one report are committed together or not at all."""
    folder = tmp_path / "r"
    write_report_dir(folder, _report(), _crops(["bird", "baby"]))
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    broken = _report()
    del broken["machine"]  # fails after report.json, the figures and the crops were drawn
    with pytest.raises(KeyError):
        write_report_dir(folder, broken, _crops(["other"]))
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before and [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(KeyError):  # into a new folder: nothing, not even the folder
        write_report_dir(tmp_path / "new", broken, {})
    assert not (tmp_path / "new").exists()


def test_a_new_report_replaces_the_previous_ones_crops_and_figures(tmp_path):
    folder = tmp_path / "r"
    write_report_dir(folder, _report(), _crops(["bird", "baby"]))
    (folder / "notes.txt").write_text("mine")  # not the report's: kept
    no_latency = _report()
    for r in no_latency["rows"]:
        r.pop("latency", None)
    written = write_report_dir(folder, no_latency, _crops(["woman"]))
    assert sorted(p.name for p in (folder / "crops").iterdir()) == ["woman.png"]
    assert not (folder / "latency.png").exists() and (folder / "notes.txt").read_text() == "mine"
    assert all(p.is_file() and p.parent in (folder, folder / "crops") for p in written)


def test_only_what_an_earlier_sr_bench_report_wrote_is_replaced(tmp_path):
    """The audit: any file named report.json marked every crops/*.png as the previous report's, so
    `--report DIR --overwrite` deleted a user's pictures there (and, through a linked crops folder,
    in the folder it linked to)."""
    import json

    folder = tmp_path / "r"
    (folder / "crops").mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"rows": [], "dataset": {"images": ["holiday"]}}))  # not ours
    (folder / "crops" / "holiday.png").write_bytes(b"mine")
    (folder / "latency.png").write_bytes(b"mine too")
    no_latency = _report()
    for r in no_latency["rows"]:
        r.pop("latency", None)
    write_report_dir(folder, no_latency, _crops(["baby", "bird"]))
    assert (folder / "crops" / "holiday.png").read_bytes() == b"mine"
    assert (folder / "latency.png").read_bytes() == b"mine too"
    (folder / "crops" / "holiday.png").write_bytes(b"still mine")  # beside a real sr-bench report now
    write_report_dir(folder, _report(), _crops(["bird"]))
    assert sorted(p.name for p in (folder / "crops").iterdir()) == ["bird.png", "holiday.png"]
    assert (folder / "crops" / "holiday.png").read_bytes() == b"still mine"


def test_every_image_gets_its_own_crop_file(tmp_path):
    """The audit: images `b c` and `b_c` wrote one crop file, the second over the first ("6 files")."""
    from sredge.benchmarks.report import crop_names

    assert crop_names(["b c", "b_c", "B_C", "a"]) == {"b c": "b_c.png", "b_c": "b_c-2.png", "B_C": "B_C-3.png",
                                                       "a": "a.png"}
    written = write_report_dir(tmp_path / "r", _report(), _crops(["b c", "b_c"]))
    assert sorted(p.name for p in written if p.parent.name == "crops") == ["b_c-2.png", "b_c.png"]
    assert sorted(p.name for p in (tmp_path / "r" / "crops").iterdir()) == ["b_c-2.png", "b_c.png"]


def test_the_reference_workload_runs_as_stored_and_rows_say_which_graph_ran(tmp_path):
    """The video/bench audit: the reference workload (the bundled x2 model) ran rewritten once ONNX Runtime's PReLU
    rewrite came, 0.74x as long as in baselines saved before it, so an unchanged FSRCNN read x1.34 slower against
    such a baseline from another machine; and no report said which graph a row ran."""
    import cv2
    import onnx

    from sredge.benchmarks.bench import BenchOptions, run_bench
    from sredge.runtime.bundled import default_model

    model = default_model(2)
    opts = BenchOptions(dataset=tmp_path, quality=False, bicubic=False, latency_hw=(24, 32), warmup=1, repeats=1,
                        tiles=(None,), threads=1)
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((48, 64, 3), 100, np.uint8))
    report = run_bench([model], opts).report
    assert report["settings"]["reference_workload"] == "bundled x2 model, 128x128, ORT CPU, graph as stored"
    prelus = sum(n.op_type == "PRelu" for n in onnx.load(str(model)).graph.node)
    (row,) = report["rows"]
    assert row["graph"] == f"{prelus} PReLUs rewritten as depthwise convolutions"
    assert row["backend_detail"].endswith(f", graph {row['graph']}")
