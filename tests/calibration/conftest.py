"""Real exported models and a small real calibration set, shared by the calibration tests (built once)."""

from __future__ import annotations

import pytest

from tests.conftest import asset

REAL = {
    "fsrcnn_x2": ("weights/fsrcnn/fsrcnn_x2.pth", {}),
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", {}),
    "fsrcnn_x4": ("weights/fsrcnn/fsrcnn_x4.pth", {}),
    "espcn_x3": ("weights/espcn/espcn_x3.pt", {}),
    "vdsr_x3": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 3}),
}


@pytest.fixture(scope="session")
def real_model(tmp_path_factory):
    """``real_model(name) -> (onnx_path, loaded)`` of a real checkpoint exported by sredge (cached)."""
    cache = {}
    folder = tmp_path_factory.mktemp("calib-onnx")

    def get(name: str):
        if name not in cache:
            rel, kwargs = REAL[name]
            ckpt = asset(rel)
            from sredge.export.onnx_export import export_onnx
            from sredge.models.loader import load_model

            loaded = load_model(ckpt, **kwargs)
            cache[name] = (export_onnx(loaded.module, loaded.descriptor, folder / f"{name}.onnx"), loaded)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def t91_set():
    """48 crops of 48x48 from T91 (seed 0): small enough for fast tests, real content."""
    from sredge.calibration.sets import CalibrationOptions, build_calibration_set

    return build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=48, seed=0))
