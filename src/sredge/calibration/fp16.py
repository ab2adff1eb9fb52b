"""FP16 ONNX for GPU targets, and a check that the activations fit the float16 range.

The conversion is small and done here with ``onnx`` alone (onnxconverter-common would add a
dependency for the same few steps): float32 initializers and constants become float16, casts
to float32 inside the graph cast to float16, and the graph keeps float32 input and output by
default (a Cast at each end) so callers need not change; ``fp16_io`` makes the input and output
float16 too. Inputs that ONNX requires to stay float32 (Resize's ``roi`` and ``scales``) are left
alone.

float16 tops out at 65504. A network whose activations exceed that on real data produces inf
and then black (or NaN) frames on a GPU, so :func:`fp16_overflows` runs the FP32 model with every
intermediate tensor exposed on the calibration set and names the tensors that would overflow.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import descriptor_of, write_descriptor

log = logging.getLogger(__name__)

FP16_MAX = 65504.0
"""Largest finite float16."""

# op type -> input positions that must stay float32 whatever the data type
_FLOAT32_INPUTS = {"Resize": (1, 2), "Upsample": (1,)}


@dataclass(frozen=True)
class Fp16Options:
    """How to convert to FP16."""

    fp16_io: bool = False
    """Make the model's input and output float16 too (saves a cast on GPUs that feed float16);
    default keeps them float32, so the file is a drop-in replacement."""


def _must_stay_float32(graph: onnx.GraphProto) -> set[str]:
    keep = set()
    for node in graph.node:
        for i in _FLOAT32_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i]:
                keep.add(node.input[i])
    return keep


def _half(arr: np.ndarray, name: str) -> np.ndarray:
    big = float(np.max(np.abs(arr))) if arr.size else 0.0
    if big > FP16_MAX:
        log.warning("constant %s has values up to %.3g, beyond float16: clipped to +-%g", name, big, FP16_MAX)
    return np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)


def convert_to_fp16(model: onnx.ModelProto, options: Fp16Options = Fp16Options(),
                    desc: ModelDescriptor | None = None) -> onnx.ModelProto:
    """An FP16 copy of a float32 model (see the module docstring).

    Args:
        model: The FP32 model (not modified).
        options: ``fp16_io``.
        desc: Descriptor to embed with ``precision="fp16"`` (None: the model's own, updated).

    Returns:
        The converted model, checked by ``onnx.checker``.
    """
    m = copy.deepcopy(model)
    g = m.graph
    keep = _must_stay_float32(g)
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            init.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(init), init.name), init.name))
    for node in g.node:
        if node.op_type == "Constant" and node.output[0] not in keep:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(attr.t), node.output[0])))
        if node.op_type in ("Cast", "ConstantOfShape", "RandomNormal", "RandomUniform", "EyeLike"):
            for attr in node.attribute:
                if attr.name in ("to", "dtype") and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(attr.t), node.name)))

    if options.fp16_io:
        for vi in list(g.input) + list(g.output):
            if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
                vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    else:
        _cast_io(g)
    del g.value_info[:]
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    if desc is None:
        desc = descriptor_of(m)
    if desc is not None:
        write_descriptor(m, replace(desc, precision="fp16"))
    onnx.checker.check_model(m, full_check=True)
    return m


def _rename(names, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a repeated string field (a node's inputs or outputs), in place."""
    for i, name in enumerate(names):
        if name == old:
            names[i] = new


def _cast_io(g: onnx.GraphProto) -> None:
    """Keep float32 graph inputs/outputs: Cast to float16 after each input, to float32 before each output."""
    casts_in = []
    for inp in g.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = inp.name + "_fp16"
        for node in g.node:
            _rename(node.input, inp.name, half)
        casts_in.append(helper.make_node("Cast", [inp.name], [half], to=TensorProto.FLOAT16,
                                         name=f"{inp.name}_to_fp16"))
    casts_out = []
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = out.name + "_fp16"
        for node in g.node:
            _rename(node.output, out.name, half)
            _rename(node.input, out.name, half)  # later consumers of the output tensor
        casts_out.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT, name=f"{out.name}_to_fp32"))
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)


@dataclass(frozen=True)
class RangeReport:
    """Largest |activation| per tensor of the FP32 model on the calibration set."""

    max_abs: dict[str, float]
    """Tensor name -> max |x| over the calibration set (graph order)."""
    producers: dict[str, str]
    """Tensor name -> ``"NodeName (OpType)"`` that produces it."""

    @property
    def overflows(self) -> list[tuple[str, float]]:
        """(tensor, max |x|) of the tensors beyond float16's range, largest first."""
        return sorted(((k, v) for k, v in self.max_abs.items() if not v <= FP16_MAX), key=lambda kv: -kv[1])

    @property
    def peak(self) -> tuple[str, float]:
        """The tensor with the largest |x| and that value."""
        return max(self.max_abs.items(), key=lambda kv: kv[1])

    def describe_overflows(self) -> str:
        """One line naming the overflowing tensors and their producers ("" when none)."""
        return "; ".join(f"{self.producers.get(t, t)} -> {t}: max |x| {v:.3g}" for t, v in self.overflows)


def activation_ranges(fp32_model: str | Path, inputs: np.ndarray, batch: int = 8) -> RangeReport:
    """Run the FP32 model with every float intermediate tensor exposed and record max |x| per tensor.

    Args:
        fp32_model: The FP32 ONNX file.
        inputs: (N, C, H, W) float32 network inputs in the model's value range (the calibration set).
        batch: Inputs per run.
    """
    import onnxruntime as ort

    m = onnx.load(str(fp32_model))
    m = onnx.shape_inference.infer_shapes(m)
    float_types = {vi.name for vi in list(m.graph.value_info) + list(m.graph.output)
                   if vi.type.tensor_type.elem_type == TensorProto.FLOAT}
    existing = {o.name for o in m.graph.output}
    producers = {}
    for node in m.graph.node:
        for o in node.output:
            if o in float_types:
                producers[o] = f"{node.name} ({node.op_type})"
                if o not in existing:
                    m.graph.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # Graph optimizations would fuse away (and so hide) intermediate tensors.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    peak = dict.fromkeys(producers, 0.0)
    for i in range(0, len(inputs), batch):
        outs = sess.run(None, {in_name: np.ascontiguousarray(inputs[i:i + batch], np.float32)})
        for name, val in zip(names, outs):
            if name in peak and val.size:
                peak[name] = max(peak[name], float(np.max(np.abs(val))))
    return RangeReport(peak, producers)


def torch_runner(module):
    """``run(x) -> y`` for a PyTorch SR module in float32: (1, C, H, W) float32 in [0, 1] -> its output, float32.

    torch is imported lazily (export side only).
    """
    import torch

    module = module.eval().float()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()

    return run


def torch_half_runner(module):
    """``run(x) -> y`` computing in float16 on the CPU: weights and every tensor between layers are
    float16, as on a GPU; input (1, C, H, W) float32, output cast back to float32 for scoring.

    The module (modified in place: pass a copy) is put in channels-last layout. PyTorch's contiguous
    float16 convolutions take about 60 s for one 128x128 VDSR pass on a 2-core AVX2 CPU; channels-last
    goes through oneDNN in about 1 s, with the same float16 tensors between layers.
    """
    import torch

    module = module.eval().half().to(memory_format=torch.channels_last)

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).half().contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            y = module(t)
        if y.dtype != torch.float16:
            raise RuntimeError(f"the float16 module returned {y.dtype}: some layer left float16")
        return y.float().numpy()

    return run
