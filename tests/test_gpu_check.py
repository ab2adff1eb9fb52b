"""tools/gpu_check.py, the prepared GPU check, as far as a machine without a GPU can run it.

``--device cpu`` runs the PyTorch half against the CPU itself (the script's code path, not a GPU
result); ``--device cuda`` here must refuse with exit 2. The GPU results come only from running it
on a GPU machine (README, "What has run where").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ASSETS, asset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.py"


def test_cpu_smoke_run_compares_with_the_golden_output(tmp_path):
    asset("weights/fsrcnn/fsrcnn_x3.pth")
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--models", "fsrcnn_x3", "--images", "1",
                           "--assets", str(ASSETS), "--report", str(report)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(report.read_text())
    (row,) = r["torch_checks"]
    assert row["model"] == "fsrcnn_x3" and row["precision"] == "fp32" and row["ok"] is True
    assert row["min_y_psnr"] >= 50 and row["images"] == ["babyx3.png"]
    assert r["cuda_buffers"] == {"skipped": "--device cpu"}


def test_without_a_gpu_the_cuda_check_refuses_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not (tmp_path / "r.json").exists()
