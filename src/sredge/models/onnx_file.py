"""An ONNX file as sredge reads it, torch-free: its stored ModelDescriptor and the facts the TensorRT
planner and the runtime need (input, precision). Lives with the descriptor so that the runtime, the
export tools and the benchmarks all read ONNX files one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor


def write_descriptor(model: onnx.ModelProto, desc: ModelDescriptor) -> None:
    """Replace any ``sredge.*`` metadata in ``model`` with ``desc`` (in place)."""
    props = {p.key: p.value for p in model.metadata_props if not p.key.startswith("sredge.")}
    props.update(desc.to_metadata())
    onnx.helper.set_model_props(model, props)


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """The ``onnx.ModelProto`` of an ONNX file, external weights not loaded.

    Raises:
        InputError: The file is missing or not ONNX.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / google.protobuf errors
        raise InputError(f"{path} is not an ONNX model ({type(exc).__name__})") from exc
    if not model.HasField("graph"):  # any bytes without a graph field parse, an empty file included
        raise InputError(f"{path} is not an ONNX model ({'an empty file' if path.stat().st_size == 0 else 'no graph'})")
    return model


def external_data_ends(model: onnx.ModelProto, path: str | Path) -> dict[Path, int]:
    """The files an ONNX keeps its weights in, besides itself (``save_as_external_data``), each with the byte its
    weights end at (pure: nothing is read from disk).

    Args:
        model: The model loaded from ``path`` without its external data (:func:`load_onnx`).
        path: Its file: external locations are relative to its folder.
    """
    folder = Path(path).parent
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    ends: dict[Path, int] = {}
    for t in tensors:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entry = {e.key: e.value for e in t.external_data}
        if "location" in entry:
            where = folder / entry["location"]
            ends[where] = max(ends.get(where, 0), int(entry.get("offset") or 0) + int(entry.get("length") or 0))
    return ends


def external_data_files(model: onnx.ModelProto, path: str | Path) -> list[Path]:
    """The files an ONNX keeps its weights in, besides itself, sorted (see :func:`external_data_ends`).

    Raises:
        InputError: A named file is missing, or shorter than the weights it holds (cut short by a copy):
            TensorRT's parser and ONNX Runtime would fail on it.
    """
    ends = external_data_ends(model, path)
    files = sorted(ends)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{path} keeps its weights in {missing[0].name}, which is not beside it: copy the ONNX "
                         "with its external-data files")
    for f in files:
        if f.stat().st_size < ends[f]:
            raise InputError(f"{path} keeps its weights in {f.name}, which is {f.stat().st_size:,} bytes while they "
                             f"end at byte {ends[f]:,}: it was cut short; copy it again")
    return files


def read_descriptor(path: str | Path) -> ModelDescriptor | None:
    """The descriptor stored in an ONNX file, or None for a file sredge did not export.

    Only the model header is parsed, not the weights' meaning, so this is cheap.

    Raises:
        InputError: The file is missing, not ONNX, or its sredge metadata is damaged.
    """
    model = load_onnx(path)
    try:
        return descriptor_of(model)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc


def descriptor_of(model: onnx.ModelProto) -> ModelDescriptor | None:
    """The descriptor in a loaded model's metadata, or None (see :func:`read_descriptor`).

    Raises:
        ValueError: The sredge metadata is damaged.
    """
    return ModelDescriptor.from_metadata({p.key: p.value for p in model.metadata_props})


@dataclass(frozen=True)
class OnnxFacts:
    """What the planner needs to know about the ONNX file (see :func:`onnx_facts`)."""

    sha256: str
    """Checksum of the ONNX file's bytes."""
    input_name: str
    """Name of the image input."""
    input_shape: tuple[int | None, ...]
    """(N, C, H, W) of the input; None on dynamic axes."""
    input_dtype: str
    """``"float32"`` or ``"float16"``."""
    has_qdq: bool
    """The graph has QuantizeLinear/DequantizeLinear nodes (explicit INT8)."""
    has_fp16: bool
    """The graph computes in float16 (float16 I/O, initializers or casts to float16)."""
    descriptor: ModelDescriptor | None
    """The sredge metadata, or None for a foreign ONNX."""

    @property
    def precision(self) -> str:
        """``"int8"`` (Q/DQ), ``"fp16"`` or ``"fp32"``: what the ONNX itself asks for."""
        return "int8" if self.has_qdq else "fp16" if self.has_fp16 else "fp32"


_FLOAT, _FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT / FLOAT16
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def onnx_facts(model, sha256: str) -> OnnxFacts:
    """Facts about a loaded ONNX model (pure: reads only the proto).

    Args:
        model: ``onnx.ModelProto`` (weights need not be loaded).
        sha256: Checksum of the file's bytes.

    Raises:
        InputError: Not exactly one graph input (besides initializers), not 4-D, not float32/float16,
            or damaged sredge metadata.
    """
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"the ONNX has {len(inputs)} inputs; an SR network has exactly one image input")
    tt = inputs[0].type.tensor_type
    dims = tuple((d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None) for d in tt.shape.dim)
    if len(dims) != 4:
        raise InputError(f"the ONNX input {inputs[0].name!r} has {len(dims)} axes; expected (N, C, H, W)")
    if tt.elem_type not in (_FLOAT, _FLOAT16):
        raise InputError(f"the ONNX input {inputs[0].name!r} is not float32 or float16 (type {tt.elem_type})")
    if dims[1] is None:
        raise InputError(f"the ONNX input {inputs[0].name!r} has a dynamic channel axis; it must be 1 or 3")
    ops = {n.op_type for n in graph.node}
    casts_to_half = any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == _FLOAT16 for a in n.attribute) for n in graph.node
    )
    has_fp16 = (
        tt.elem_type == _FLOAT16
        or any(t.data_type == _FLOAT16 for t in graph.initializer)
        or casts_to_half
    )
    try:
        desc = descriptor_of(model)
    except ValueError as exc:
        raise InputError(f"the ONNX's sredge metadata is damaged: {exc}") from exc
    return OnnxFacts(
        sha256=sha256,
        input_name=inputs[0].name,
        input_shape=dims,
        input_dtype="float16" if tt.elem_type == _FLOAT16 else "float32",
        has_qdq=bool(ops & _QDQ_OPS),
        has_fp16=has_fp16,
        descriptor=desc,
    )
