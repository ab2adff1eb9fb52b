"""sr-bench's row labels: unique within a report, and the same for the same files in every run."""

from __future__ import annotations

import pytest

from sredge.benchmarks.bench import BenchOptions, model_labels, run_bench
from sredge.errors import InputError


def test_labels_are_stems_unless_two_models_share_one(tmp_path):
    assert model_labels([tmp_path / "fsrcnn_x2.onnx", tmp_path / "fsrcnn_x2.int8.onnx"]) == [
        "fsrcnn_x2", "fsrcnn_x2.int8"]
    a, b = tmp_path / "a" / "model.onnx", tmp_path / "b" / "model.onnx"
    assert model_labels([a, b]) == ["a/model", "b/model"]
    assert model_labels([b, a]) == ["b/model", "a/model"]  # the order of the models does not matter
    # Only the folders that tell them apart: x/a/model and y/a/model need two, b/model one.
    xa, ya = tmp_path / "x" / "a" / "model.onnx", tmp_path / "y" / "a" / "model.onnx"
    assert model_labels([xa, ya, b]) == ["x/a/model", "y/a/model", "b/model"]
    # Files that differ only by their extension keep it; "bicubic" is the baseline row's label.
    assert model_labels([a, a.with_suffix(".pth")]) == ["model.onnx", "model.pth"]
    assert model_labels([tmp_path / "bicubic.onnx"]) == [f"{tmp_path.name}/bicubic"]


def test_relative_and_absolute_paths_name_a_model_alike(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = tmp_path / "a" / "model.onnx"
    assert model_labels([a, tmp_path / "b" / "model.onnx"]) == model_labels([a.relative_to(tmp_path),
                                                                             tmp_path / "b" / "model.onnx"])
    # One file given twice (an A/A check of the timing), however it is spelled: numbered, not refused.
    assert model_labels([a, a.relative_to(tmp_path), a]) == ["model", "model #2", "model #3"]
    with pytest.raises(InputError, match="cannot name .* apart"):
        model_labels([a, a, a.with_name("model #2.onnx")])


@pytest.mark.parametrize(("field", "values", "said"), [
    ("tiles", (None, 48, None), "tile setting none is given twice"),
    ("backends", ("ort", "ort"), "backend ort is given twice"),
    ("precisions", ("fp32", "fp32"), "precision fp32 is given twice"),
])
def test_a_setting_given_twice_is_refused(tmp_path, field, values, said):
    from sredge.runtime.bundled import default_model

    opts = BenchOptions(dataset=tmp_path, **{field: values})
    with pytest.raises(InputError, match=said):
        run_bench([default_model(2)], opts)
