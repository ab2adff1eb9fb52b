"""Shared by the benchmark scripts: the assets folder and ``sr-export`` of an FP32 + INT8 family."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
BIN = Path(sys.executable).parent


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
