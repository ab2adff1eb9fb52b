"""tools/gpu_check.py, the prepared GPU check, as far as a machine without a GPU can run it.

``--device cpu`` runs the PyTorch half against the CPU itself (the script's code path, not a GPU
result); ``--device cuda`` here must refuse with exit 2; the comparison that decides part 2 must tell
equal, changed and short outputs apart. The GPU results come only from running it on a GPU machine
(docs/tensorrt.md, "The GPU check").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

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


def _gpu_check_module():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return gpu_check


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def test_the_sr_run_comparison_sees_a_changed_image_and_a_missing_frame(tmp_path):
    """Part 2 (GPU only) decides by this comparison; here it must tell equal, changed and short apart."""
    gpu_check = _gpu_check_module()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    for folder in ("ref", "same", "changed"):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(images):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), img)
    img = images[1].copy()
    img[10:20, 10:20] = 255 - img[10:20, 10:20]
    cv2.imwrite(str(tmp_path / "changed" / "1.png"), img)

    same = gpu_check._compare(tmp_path / "ref", tmp_path / "same", 2)
    changed = gpu_check._compare(tmp_path / "ref", tmp_path / "changed", 2)
    assert sorted(same) == ["0.png", "1.png"] and min(same.values()) == float("inf")
    assert changed["0.png"] == float("inf") and changed["1.png"] < gpu_check.MIN_PSNR

    _write_video(tmp_path / "ref.mkv", images + images)
    _write_video(tmp_path / "short.mkv", images)
    frames = gpu_check._compare(tmp_path / "ref.mkv", tmp_path / "ref.mkv", 2)
    assert len(frames) == 4 and min(frames.values()) == float("inf")
    with pytest.raises(ValueError, match="2 frames, the CPU reference 4"):
        gpu_check._compare(tmp_path / "ref.mkv", tmp_path / "short.mkv", 2)
