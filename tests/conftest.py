"""Shared fixtures: the real assets in ../shared/assets and an in-process CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("SREDGE_ASSETS", ROOT.parent / "shared" / "assets"))


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
