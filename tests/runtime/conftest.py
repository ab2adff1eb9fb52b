"""Real exported models shared by the runtime tests (exported once per test session)."""

from __future__ import annotations

import pytest

from tests.conftest import asset

REAL = {
    "fsrcnn_x2": ("weights/fsrcnn/fsrcnn_x2.pth", {}),
    "espcn_x3": ("weights/espcn/espcn_x3.pt", {}),
    "anime_x4": ("weights/srvgg/realesr-animevideov3.pth", {}),
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 2}),
}


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(name) -> Path`` of the real checkpoint exported to ONNX by sredge (cached)."""
    cache = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(name: str):
        if name not in cache:
            rel, kwargs = REAL[name]
            ckpt = asset(rel)
            from sredge.export.onnx_export import export_onnx
            from sredge.models.loader import load_model

            loaded = load_model(ckpt, **kwargs)
            cache[name] = export_onnx(loaded.module, loaded.descriptor, folder / f"{name}.onnx")
        return cache[name]

    return get
