"""Reading and writing the ModelDescriptor in an ONNX file's ``metadata_props`` (torch-free)."""

from __future__ import annotations

from pathlib import Path

import onnx

from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor


def write_descriptor(model: onnx.ModelProto, desc: ModelDescriptor) -> None:
    """Replace any ``sredge.*`` metadata in ``model`` with ``desc`` (in place)."""
    props = {p.key: p.value for p in model.metadata_props if not p.key.startswith("sredge.")}
    props.update(desc.to_metadata())
    onnx.helper.set_model_props(model, props)


def read_descriptor(path: str | Path) -> ModelDescriptor | None:
    """The descriptor stored in an ONNX file, or None for a file sredge did not export.

    Only the model header is parsed, not the weights' meaning, so this is cheap.

    Raises:
        InputError: The file is missing, not ONNX, or its sredge metadata is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / google.protobuf errors
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from exc
    try:
        return ModelDescriptor.from_metadata({p.key: p.value for p in model.metadata_props})
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc
