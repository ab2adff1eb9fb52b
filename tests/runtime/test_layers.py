"""Layers point one way: the runtime never imports the library above it (export, calibration, training,
benchmarks) or the CLI, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "sredge" / "runtime"
ABOVE = ("sredge.benchmarks", "sredge.cli", "sredge.export", "sredge.calibration", "sredge.train")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` names, with its line (relative imports resolved)."""
    package = "sredge." + ".".join(path.relative_to(RUNTIME.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found += [(node.lineno, name)] + [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


@pytest.mark.parametrize("path", sorted(RUNTIME.rglob("*.py")), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_runtime_module_imports_nothing_above_it(path):
    bad = [f"line {line}: {name}" for line, name in _imports(path)
           if any(name == top or name.startswith(top + ".") for top in ABOVE)]
    assert not bad, f"{path.name} imports a higher layer: {bad} (move what it needs down into the runtime)"


def test_the_check_sees_imports_inside_functions():
    probe = RUNTIME / "auto.py"
    assert any(name == "sredge.runtime.timing" for _, name in _imports(probe))  # a function-level import
