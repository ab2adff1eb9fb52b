"""benchmarks/qat_long.py (the time-boxed QAT runs prepared for a GPU), on the CPU with a tiny budget:
it probes, plans whole validation intervals, runs sr-train --qat and reads its result line."""

from __future__ import annotations

import json
import subprocess
import sys

from onnx import load

from sredge.models.onnx_file import read_descriptor
from tests.conftest import ROOT, asset


def test_a_tiny_budget_plans_one_interval_and_reads_the_result(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "qat_long.py"), "--model", asset("weights/fsrcnn/fsrcnn_x3.pth"),
         "--data", "sample", "--device", "cpu", "--threads", "1", "--budget", "0.01", "--probe-steps", "3",
         "--val-every", "4", "--variants", "fp32-target-b16-lr3e-4", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((out / "qat_long.json").read_text())
    (row,) = summary["runs"]
    assert row["variant"] == "fp32-target-b16-lr3e-4" and row["exit"] == 0
    assert row["steps"] == 4  # a budget shorter than one interval still runs one whole interval
    assert summary["probe_steps_per_s"]["fp32-target-b16-lr3e-4"] > 0
    assert isinstance(row["val_drop_db"], float) and row["best_step"] in (0, 4)
    written = out / row["file"]
    assert read_descriptor(written).psnr_drop_db == row["val_drop_db"]
    assert any(n.op_type == "QuantizeLinear" for n in load(written).graph.node)
    assert sorted(p.name for p in out.iterdir()) == ["fp32-target-b16-lr3e-4.int8.onnx", "qat_long.json"]
