"""Shared fixtures: the real assets in ../shared/assets, real exported models, an in-process CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("SREDGE_ASSETS", ROOT.parent / "shared" / "assets"))


def synced_inodes(monkeypatch) -> set[int]:
    """The inodes every later ``os.fsync`` of this process flushes (the real fsync still runs); a file keeps its
    inode through a rename, so the final name tells whether its data was flushed under the temporary one."""
    seen: set[int] = set()
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.add(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def asset(rel: str) -> Path:
    """Path of a real test asset; skips the test (with the reason) when assets are absent."""
    path = ASSETS / rel
    if not path.exists():
        pytest.skip(f"real test assets not found at {ASSETS} (set SREDGE_ASSETS); {rel} is needed")
    return path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run a command's main in-process through the shared error handling; returns code/out/err."""

    def _run(module: str, *argv: str) -> CliResult:
        import importlib

        from sredge.cli._app import run

        mod = importlib.import_module(f"sredge.cli.{module}")
        code = run(mod.PROG, mod.main, [str(a) for a in argv])
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return _run


REAL = {
    "fsrcnn_x2": ("weights/fsrcnn/fsrcnn_x2.pth", {}),
    "fsrcnn_x3": ("weights/fsrcnn/fsrcnn_x3.pth", {}),
    "fsrcnn_x4": ("weights/fsrcnn/fsrcnn_x4.pth", {}),
    "espcn_x3": ("weights/espcn/espcn_x3.pt", {}),
    "anime_x4": ("weights/srvgg/realesr-animevideov3.pth", {}),
    "vdsr_x2": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 2}),
    "vdsr_x3": ("weights/vdsr/vdsr_model_epoch_50.pth", {"trust_pickle": True, "scale": 3}),
}


@pytest.fixture(scope="session")
def real_model(tmp_path_factory):
    """``real_model(name) -> (onnx_path, loaded)``: a real checkpoint loaded and exported by sredge (cached)."""
    cache = {}
    folder = tmp_path_factory.mktemp("onnx")

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
def exported(real_model):
    """``exported(name) -> Path`` of the real checkpoint exported to ONNX by sredge (the same cache)."""
    return lambda name: real_model(name)[0]
