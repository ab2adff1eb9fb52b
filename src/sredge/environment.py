"""What a measurement ran on: software versions and the machine, for every report sredge writes."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def software_and_machine(threads: int = 0) -> tuple[dict, dict]:
    """``(software, machine)`` dicts for a report.

    Args:
        threads: The inference threads asked for (0: the library's default, reported as None).

    Returns:
        software: sredge, Python, numpy, ONNX Runtime and OpenCV versions, plus torch, OpenVINO and
            TensorRT when this process has imported them. machine: platform, CPU model, CPU count, threads.
    """
    import cv2
    import numpy
    import onnxruntime

    software = {"sredge": _version(), "python": platform.python_version(), "numpy": numpy.__version__,
                "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__}
    for name in ("torch", "openvino", "tensorrt"):
        mod = sys.modules.get(name)
        if mod is not None:
            software[name] = getattr(mod, "__version__", "?")
    machine = {"platform": platform.platform(), "processor": _cpu_name(), "cpu_count": os.cpu_count(),
               "threads": threads or None}
    return software, machine


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sredge")
    except PackageNotFoundError:
        return "unknown"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
