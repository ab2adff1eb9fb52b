"""The default models shipped inside the package, and their measured figures."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from sredge.errors import InputError

PACKAGE = "sredge.data.models"
DEFAULT_SCALE = 2


def bundled_models() -> dict[int, Path]:
    """The bundled ONNX models by scale (files named ``sredge_x{scale}.onnx``)."""
    found: dict[int, Path] = {}
    for entry in resources.files(PACKAGE).iterdir():
        name = entry.name
        if name.startswith("sredge_x") and name.endswith(".onnx") and name[8:-5].isdigit():
            found[int(name[8:-5])] = Path(str(entry))
    return found


def manifest() -> list[dict]:
    """Measured figures of the bundled models (``models.json``): one dict per model, by scale."""
    entry = resources.files(PACKAGE) / "models.json"
    if not entry.is_file():
        return []
    return sorted(json.loads(entry.read_text())["models"], key=lambda m: m["scale"])


def default_model(scale: int | None) -> Path:
    """The bundled model for ``scale`` (default x2).

    Raises:
        InputError: None is bundled for that scale.
    """
    models = bundled_models()
    want = scale or DEFAULT_SCALE
    if want in models:
        return models[want]
    have = ", ".join(f"x{s}" for s in sorted(models)) or "none"
    raise InputError(f"no bundled default model for x{want} (bundled: {have}); pass --model FILE.onnx")
