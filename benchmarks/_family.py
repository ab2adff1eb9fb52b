"""Shared by the benchmarks: the assets folder, its real checkpoints and ``sr-export`` of an FP32 + INT8 family."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("SREDGE_ASSETS", ROOT.parent / "shared" / "assets"))
"""The real assets folder: ``SREDGE_ASSETS``, else ``../shared/assets`` beside the checkout (as the tests find it)."""
BIN = Path(sys.executable).parent
CHECKPOINTS = {
    "fsrcnn_x2": ("weights/fsrcnn/fsrcnn_x2.pth", {}),
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", {}),
    "fsrcnn_x4": ("weights/fsrcnn/fsrcnn_x4.pth", {}),
    "espcn_x3": ("weights/espcn/espcn_x3.pt", {}),
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 2}),
    "vdsr_x3": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 3}),
    "vdsr_x4": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 4}),
}
"""The real checkpoints under ASSETS: name -> (path, ``sredge.models.loader.load_model`` keyword arguments)."""


def export_family(ckpt: Path, extra: list[str], budget: float, check: bool = True) -> Path:
    """``sr-export CKPT --precision fp32,int8`` (32 T91 crops of 48x48, Set5 budget ``budget`` dB) beside ``ckpt``.

    Returns the FP32 file; the INT8 file is ``NAME.int8.onnx`` when it met the budget. With ``check``
    a failed export (e.g. INT8 over budget) raises; without, the caller looks for the files.
    """
    subprocess.run([str(BIN / "sr-export"), str(ckpt), *extra, "--precision", "fp32,int8", "--calib",
                    str(ASSETS / "calibration/T91"), "--calib-crops", "32", "--calib-tile", "48", "--val",
                    str(ASSETS / "benchmarks/Set5"), "--max-psnr-drop", str(budget), "--bench-size", "off",
                    "-q"], check=check)
    return ckpt.with_suffix(".onnx")
