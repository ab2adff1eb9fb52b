"""Export a PyTorch SR network to a self-describing, simplified, dynamic-shape ONNX file."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sredge._lazy import require
from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import InputError, SredgeError
from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import write_descriptor
from sredge.models.reparam import collapsed

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 18
MIN_OPSET = 17


def max_opset() -> int:
    """The newest opset the installed exporter writes: the installed onnx's own (torch converts its opset-18
    graph to it with onnx's version converter, and silently writes opset 18 for anything newer)."""
    onnx = require("onnx")
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> None:
    """Refuse an opset the exporter cannot write (never write another one than asked for).

    Raises:
        InputError: Below :data:`MIN_OPSET` or above :func:`max_opset`.
    """
    top = max_opset()
    if not MIN_OPSET <= opset <= top:
        raise InputError(f"--opset {opset}: this exporter writes opset {MIN_OPSET} to {top} "
                         f"(default {DEFAULT_OPSET})")


@dataclass(frozen=True)
class ExportOptions:
    """How to export."""

    opset: int = DEFAULT_OPSET
    """ONNX opset (17 or newer; 18 is what the torch.export-based exporter emits natively)."""
    simplify: bool = True
    """Run onnxslim (constant folding, fusions) after export."""
    sample_hw: tuple[int, int] = (32, 40)
    """Trace input size (height, width); rounded up to the model's size multiple. Any
    size works afterwards: the height and width axes are dynamic."""
    sample_batch: int = 2
    """Trace batch size. Not 1: torch.export specialises axes of size 0 and 1."""


def export_onnx_proto(module: Any, desc: ModelDescriptor, options: ExportOptions = ExportOptions()) -> Any:
    """Export ``module`` to an in-memory ``onnx.ModelProto`` (checked, with metadata).

    The graph has one input ``input`` (N, C, H, W) float32 in [0, value_range] and one
    output ``output`` (N, C, H*s, W*s); N, H and W are dynamic. Weights are embedded.

    Raises:
        MissingDependencyError: torch / onnxscript / onnxslim are not installed.
        SredgeError: The exporter failed (the message carries its first line).
    """
    torch = require("torch")
    require("onnxscript")
    onnx = require("onnx")
    check_opset(options.opset)
    m = max(desc.size_multiple, 1)
    h, w = (-(-v // m) * m for v in options.sample_hw)
    in_h, in_w = (h * desc.scale, w * desc.scale) if desc.pre_upsample else (h, w)
    sample = torch.rand(options.sample_batch, desc.in_channels, in_h, in_w) * desc.value_range
    dyn = torch.export.Dim.DYNAMIC
    # Re-parameterizable networks (SPAN's training form) are written in their collapsed form.
    module = collapsed(module).eval()
    with _quiet_exporter(), torch.no_grad():
        try:
            program = torch.onnx.export(
                module,
                (sample,),
                dynamo=True,
                opset_version=options.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: dyn, 2: dyn, 3: dyn}},
                external_data=False,
                optimize=True,
            )
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SredgeError(f"ONNX export of {desc.arch} failed: {first[:300]}") from exc
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != options.opset:
        raise SredgeError(f"the exporter wrote opset {written}, not the {options.opset} asked for; "
                          f"use --opset {written}")
    if options.simplify:
        onnxslim = require("onnxslim")
        with _quiet_exporter():
            proto = onnxslim.slim(proto)
    _name_dynamic_axes(proto)
    proto.producer_name = "sredge"
    write_descriptor(proto, desc)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(module: Any, desc: ModelDescriptor, path: str | Path, options: ExportOptions = ExportOptions()) -> Path:
    """Export to ``path`` atomically (single file, weights embedded); returns the path.

    Raises:
        InputError: ``path`` cannot be written (a missing or read-only folder, a directory), checked before the
            export (see :func:`sredge.atomic.check_writable`); and as :func:`export_onnx_proto`.
    """
    path = check_writable(path)  # before the export, which takes seconds to minutes (was OSError after it)
    proto = export_onnx_proto(module, desc, options)
    return write_bytes_atomic(path, proto.SerializeToString())


def _name_dynamic_axes(proto: Any) -> None:
    """Give the input's dynamic axes readable names (batch, height, width)."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    renames = {}
    for d, name in zip(dims, ("batch", None, "height", "width")):
        if name and d.dim_param:
            renames[d.dim_param] = name
            d.dim_param = name
    for out in proto.graph.output:
        for d in out.type.tensor_type.shape.dim:
            for old, new in renames.items():
                if d.dim_param:
                    d.dim_param = _replace_symbol(d.dim_param, old, new)


def _replace_symbol(expr: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, expr)


@contextlib.contextmanager
def _quiet_exporter():
    """Keep the exporter's progress chatter and known-harmless warnings off the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)
        if sink.getvalue().strip():
            log.debug("exporter output:\n%s", sink.getvalue())
