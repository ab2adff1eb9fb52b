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
    name, flags = cpu_model_and_flags()
    machine = {"platform": platform.platform(), "processor": name, "cpu_flags": flags, "cpu_count": os.cpu_count(),
               "threads": threads or None}
    return software, machine


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sredge")
    except PackageNotFoundError:
        return "unknown"


INFERENCE_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "asimddp", "i8mm")
"""CPU flags that change INT8 and bf16 inference speed (x86 AVX-512 VNNI/BF16, AMX; Arm dot products)."""


def cpu_model_and_flags(text: str | None = None) -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`INFERENCE_FLAGS` it has.

    Args:
        text: ``/proc/cpuinfo``'s text (None: read it; where it cannot be read, the platform's processor
            name and no flags).

    Returns:
        ``(name, flags)``: e.g. ``("Intel(R) Xeon(R) Processor", ["avx2", "avx512f", "avx512_vnni"])``,
        the flags in :data:`INFERENCE_FLAGS` order.
    """
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    name, have = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and name is None:
            name = value.strip()
        elif key in ("flags", "Features") and not have:
            have = set(value.split())
    return name or platform.processor() or platform.machine(), [f for f in INFERENCE_FLAGS if f in have]


def describe_cpu() -> str:
    """One line for a report: ``Intel(R) Xeon(R) Processor, 2 cores, flags avx2 avx512f ...``."""
    name, flags = cpu_model_and_flags()
    return f"{name}, {os.cpu_count()} cores, flags {' '.join(flags) or 'none of ' + '/'.join(INFERENCE_FLAGS)}"
