"""Quantization-aware training (QAT) on the deployed Q/DQ graph itself.

Post-training INT8 keeps its quality on small SR networks only by keeping layers in float
(:mod:`sredge.calibration.sensitivity`). QAT instead fine-tunes the weights and the activation
scales so that the network is good *as quantized*. To train exactly what will run, sredge does
not rebuild the network in PyTorch with its own idea of where quantization happens: it takes
the Q/DQ ONNX file that ONNX Runtime's quantizer makes (:func:`sredge.calibration.quantize.quantize_int8`,
either flavour), and runs that graph in PyTorch (:class:`QdqGraph`), where

* every activation ``QuantizeLinear``/``DequantizeLinear`` pair is a fake quantizer whose scale
  is learned (LSQ: the rounding passes gradients straight through, the scale gets its gradient
  from the quantization error); zero points stay as calibrated;
* every quantized weight is a float parameter (initialised from the FP32 model) quantized on the
  fly per output channel (a trt-flavour transposed convolution's per input channel, as TensorRT
  takes it), with a learned per-channel scale that starts at the quantizer's own
  (max|w| / q, q from the flavour's integer range: 64 for the cpu flavour's 7 bits, 127 for trt),
  so the exported integers are exactly what training saw;
* biases train in float; the cpu flavour stores them as int32 at the scale ``input scale x weight
  scale``, whose rounding is below 1e-6 of an activation, the trt flavour in float.

:func:`export_qdq` writes the trained weights and scales back into the same graph: same nodes,
same placement, new numbers. The result is an INT8 file like any other (sr-run, sr-bench and
sr-build read it), with no layer left in float.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from sredge.calibration.quantize import QUANTIZED_OPS, flavour_of, int8_reference
from sredge.errors import InputError
from sredge.runtime.backends import BackendOptions, open_backend
from sredge.train.loop import refit_cosine

log = logging.getLogger(__name__)

QAT_TARGETS = ("fp32", "ground-truth")


@dataclass(frozen=True)
class QatOptions:
    """How to fine-tune a Q/DQ model."""

    steps: int = 2000
    """Optimiser steps."""
    batch: int = 16
    """Patches per step."""
    lr: float = 1e-4
    """Adam learning rate of the weights (cosine schedule to zero)."""
    scale_lr: float = 1e-3
    """Adam learning rate of the activation scales (each a factor of its calibrated value)."""
    val_every: int = 250
    """Steps between validations of the exported file (the best one is kept)."""
    target: str = "fp32"
    """What the quantized network learns to output: ``"fp32"`` (the FP32 model's own output on the
    same patch: the signal is the quantization error alone), ``"ground-truth"`` (the HR patch),
    ``"model"`` (the output of ``target_model``, a stronger network, on the same patch: distillation) or
    ``"teacher"`` (the third member of each sampler batch: a teacher's output on the whole LR image, see
    :class:`sredge.train.data.PatchSampler`)."""
    target_model: str | None = None
    """``target="model"``: the ONNX file whose output is the target (same scale, channels and value range)."""
    device: str = "cpu"
    """torch device the fake-quantized graph trains on (``"cpu"``, ``"cuda"``); the FP32 target and the
    validation run on ONNX Runtime on the CPU either way."""
    stop_after: int | None = None
    """End at this step (validated and checkpointed) although the schedule runs to ``steps``."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.val_every < 1 or (self.stop_after is not None
                                                                       and self.stop_after < 1):
            raise InputError("--steps, --batch, --val-every and --stop-after must be positive")
        if self.target not in (*QAT_TARGETS, "model", "teacher"):
            raise InputError(f"unknown QAT target {self.target!r}: {', '.join(QAT_TARGETS)} or a model file")
        if (self.target == "model") != (self.target_model is not None):
            raise InputError("a QAT target model goes with target 'model', and only with it")
        if not (self.lr > 0 and self.scale_lr > 0):
            raise InputError("learning rates must be positive")


def _torch():
    from sredge._lazy import require

    return require("torch")


def _int_range(dtype: int) -> tuple[int, int]:
    return {onnx.TensorProto.UINT8: (0, 255), onnx.TensorProto.INT8: (-128, 127)}[dtype]


@dataclass(frozen=True)
class _WeightQ:
    """One per-channel quantized weight: where its numbers live in the Q/DQ graph."""

    float_name: str  # the FP32 initializer it came from (its parameter name here)
    int_name: str  # the integer initializer in the Q/DQ graph
    scale_name: str
    axis: int
    lo: int  # the integer range of the weights (symmetric, from the quantizer's max|w| rule)
    hi: int


@dataclass(frozen=True)
class _BiasQ:
    float_name: str
    int_name: str
    scale_name: str
    input_scale: str  # activation scale initializer of the layer's input
    weight: str  # float_name of the layer's weight


def qdq_graph(qdq: onnx.ModelProto, fp32: onnx.ModelProto):
    """Wrap a Q/DQ model (from :func:`sredge.calibration.quantize.quantize_int8`) for training.

    Args:
        qdq: The quantized model: its structure, zero points and initial scales.
        fp32: The FP32 model it was quantized from: the float weights to start from.

    Returns:
        A ``torch.nn.Module``: ``module(x)`` takes (N, C, H, W) float32 in the model's value
        range, like the ONNX input, and returns the graph's output computed with fake
        quantization. It has ``weights`` (ParameterDict of float
        weights and biases), ``scales`` (ParameterDict of activation scales) and
        :meth:`state` for :func:`export_qdq`.

    Raises:
        InputError: The graph uses an operator QAT does not implement, or a quantized constant
            is not a convolution's weight or bias (not a file sredge quantized).
    """
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    floats = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    produced = {o: n for n in qdq.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in qdq.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    weights: dict[str, _WeightQ] = {}
    biases: dict[str, _BiasQ] = {}
    act_scales: set[str] = set()
    for n in qdq.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            users = consumers.get(n.output[0], [])
            layer = next((u for u in users if u.op_type in QUANTIZED_OPS), None)
            if layer is None:
                raise InputError(f"QAT: a quantized constant {n.input[0]!r} feeds no Conv; not a file sredge quantized")
            slot = list(layer.input).index(n.output[0])
            fname = n.input[0].removesuffix("_quantized")
            if fname not in floats:
                raise InputError(f"QAT: the FP32 model has no initializer {fname!r} behind {n.input[0]!r}")
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if slot == 1:
                w, s = floats[fname], inits[n.input[1]].astype(np.float64)
                dlo, dhi = _int_range(_dtype_of(qdq, n.input[0]))
                absmax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
                ok = absmax > 0
                ratio = np.median(absmax[ok] / s[ok]) if ok.any() else 127.0
                qmax = round(float(ratio) * 2) / 2  # 64 (7-bit, cpu) or 127 (trt)
                # Learned scales may shrink below max|w| / qmax: keep the integers in the range the
                # quantizer used (the cpu flavour's 7 bits avoid vpmaddubsw saturation).
                lo, hi = max(dlo, -round(qmax)), min(dhi, round(qmax))
                weights[fname] = _WeightQ(fname, n.input[0], n.input[1], axis, lo, hi)
            else:
                in_dq = produced.get(layer.input[0])
                if in_dq is None or in_dq.op_type != "DequantizeLinear":
                    raise InputError(f"QAT: layer {layer.name!r} has a quantized bias but a float input")
                w_dq = produced[layer.input[1]]
                biases[fname] = _BiasQ(fname, n.input[0], n.input[1], in_dq.input[1],
                                       w_dq.input[0].removesuffix("_quantized"))
        elif n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            act_scales.add(n.input[1])
    # A quantized layer's float bias (the trt flavour's: TensorRT adds it in float) trains too, from the
    # file's own values, so an untrained export is the file bit for bit.
    float_biases = {n.input[2] for n in qdq.graph.node
                    if n.op_type in QUANTIZED_OPS and len(n.input) > 2 and n.input[2] in inits
                    and n.input[1] in produced and produced[n.input[1]].op_type == "DequantizeLinear"}
    unsupported = sorted({n.op_type for n in qdq.graph.node} - set(_OPS))
    if unsupported:
        raise InputError(f"QAT does not implement ONNX op(s) {', '.join(unsupported)} yet")

    class _Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = nn.ParameterDict()
            self.key = {}
            for i, name in enumerate(sorted({*weights, *biases, *float_biases})):
                self.key[name] = f"p{i}"
                start = inits[name] if name in float_biases else floats[name]
                self.weights[f"p{i}"] = nn.Parameter(torch.from_numpy(start.astype(np.float32).copy()))
            # Each activation scale is (initial scale) x (a learned factor starting at exactly 1), so one
            # learning rate suits scales of any magnitude and an untrained export is bit-exact.
            self.scales = nn.ParameterDict()
            self.scale0 = {}
            for i, name in enumerate(sorted(act_scales)):
                self.key[name] = f"s{i}"
                self.scale0[name] = torch.tensor(np.asarray(inits[name], np.float32).ravel()[0])
                self.scales[f"s{i}"] = nn.Parameter(torch.tensor(1.0))
            # Per-channel weight scales are learned the same way (LSQ), from the quantizer's absmax rule.
            self.wscale0 = {}
            for i, (name, wq) in enumerate(sorted(weights.items())):
                shape = [1] * floats[name].ndim
                shape[wq.axis] = floats[name].shape[wq.axis]
                self.key["w:" + name] = f"w{i}"
                self.wscale0[name] = torch.from_numpy(
                    np.asarray(inits[wq.scale_name], np.float32).reshape(shape).copy())
                self.scales[f"w{i}"] = nn.Parameter(torch.ones(shape))
            self.consts = {k: torch.from_numpy(np.array(v)) for k, v in inits.items()}

        def to_device(self, device):
            """Move the parameters and the fixed tensors (initial scales, constants) to ``device``."""
            self.to(device)
            for table in (self.scale0, self.wscale0, self.consts):
                for k, v in table.items():
                    table[k] = v.to(device)
            return self

        def weight(self, fname: str):
            """The fake-quantized weight (or the float bias) as the graph sees it."""
            p = self.weights[self.key[fname]]
            if fname in biases:
                return p
            wq = weights[fname]
            scale = self.weight_scale(fname)
            q = torch.clamp(_round_ste(torch, p / scale), wq.lo, wq.hi)
            return q * scale

        def weight_scale(self, fname: str):
            return self.wscale0[fname] * torch.clamp(self.scales[self.key["w:" + fname]], min=1e-3)

        def act_scale(self, name: str):
            return self.scale0[name] * torch.clamp(self.scales[self.key[name]], min=1e-3)

        def state(self) -> dict[str, np.ndarray]:
            """Float weights and activation scales by their ONNX initializer names."""
            out = {n: self.weights[self.key[n]].detach().cpu().numpy() for n in {*weights, *biases, *float_biases}}
            out.update({n: (self.scale0[n] * torch.clamp(self.scales[self.key[n]].detach(), min=1e-3)).cpu().numpy()
                        for n in act_scales})
            out.update({"w:" + n: self.weight_scale(n).detach().cpu().numpy().ravel() for n in weights})
            return out

        def forward(self, x):
            env: dict = {qdq.graph.input[0].name: x}
            for n in qdq.graph.node:
                args = [self._value(env, i) if i else None for i in n.input]
                outs = _OPS[n.op_type](torch, F, self, n, args)
                for o, v in zip(n.output, outs if isinstance(outs, tuple) else (outs,)):
                    env[o] = v
            return env[qdq.graph.output[0].name]

        def _value(self, env, name):
            if name in env:
                return env[name]
            if name in act_scales:
                return ("scale", name)
            if name in float_biases:
                return self.weights[self.key[name]]
            if name in inits:
                return ("const", name) if name in graph_ints else self.consts[name]
            raise InputError(f"QAT: tensor {name!r} is read before it is computed")

    graph_ints = {w.int_name for w in weights.values()} | {b.int_name for b in biases.values()}
    graph = _Graph()
    graph.int_to_float = {w.int_name: w.float_name for w in weights.values()}
    graph.int_to_float.update({b.int_name: b.float_name for b in biases.values()})
    graph.weight_q, graph.bias_q = weights, biases
    return graph


def _dtype_of(model: onnx.ModelProto, name: str) -> int:
    return next(i.data_type for i in model.graph.initializer if i.name == name)


def _round_ste(torch, x):
    return x + (torch.round(x) - x).detach()


def _attrs(n: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def _scale_of(graph, ref):
    return graph.act_scale(ref[1]) if isinstance(ref, tuple) else ref.float()


def _op_quantize(torch, F, graph, n, a):
    x, ref, zp = a[0], a[1], a[2]
    if isinstance(ref, tuple) and ref[0] == "const":
        raise InputError(f"QAT: node {n.name!r} quantizes a constant at run time")
    scale = _scale_of(graph, ref)
    lo, hi = (0, 255) if zp.dtype == torch.uint8 else (-128, 127)
    z = zp.float()
    return torch.clamp(_round_ste(torch, x / scale) + z, lo, hi)


def _op_dequantize(torch, F, graph, n, a):
    src = a[0]
    if isinstance(src, tuple) and src[0] == "const":  # a quantized weight or bias: train its float
        return graph.weight(graph.int_to_float[src[1]])
    scale = _scale_of(graph, a[1])
    return (src - a[2].float()) * scale


def _pads(attrs, dims=2):
    p = list(attrs.get("pads", [0] * 2 * dims))
    if p[:dims] != p[dims:]:
        raise InputError("QAT: asymmetric convolution padding is not implemented")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise InputError("QAT: auto_pad convolutions are not implemented")
    return p[:dims]


def _op_conv(torch, F, graph, n, a):
    at = _attrs(n)
    return F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=at.get("strides", [1, 1]),
                    padding=_pads(at), dilation=at.get("dilations", [1, 1]), groups=at.get("group", 1))


def _op_conv_transpose(torch, F, graph, n, a):
    at = _attrs(n)
    if "output_shape" in at:
        raise InputError("QAT: ConvTranspose with output_shape is not implemented")
    return F.conv_transpose2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=at.get("strides", [1, 1]),
                              padding=_pads(at), output_padding=at.get("output_padding", [0, 0]),
                              groups=at.get("group", 1), dilation=at.get("dilations", [1, 1]))


def _op_prelu(torch, F, graph, n, a):
    slope = a[1].float()
    return torch.where(a[0] >= 0, a[0], a[0] * slope)


def _op_depth_to_space(torch, F, graph, n, a):
    at = _attrs(n)
    mode = at.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    b = at["blocksize"]
    x = a[0]
    N, C, H, W = x.shape
    if mode == "CRD":
        return F.pixel_shuffle(x, b)
    x = x.reshape(N, b, b, C // (b * b), H, W).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(N, C // (b * b), H * b, W * b)


def _op_resize(torch, F, graph, n, a):
    at = _attrs(n)
    mode = at.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "nearest":
        raise InputError(f"QAT: Resize mode {mode!r} is not implemented (nearest only)")
    scales = a[2] if len(a) > 2 and a[2] is not None and a[2].numel() else None
    if scales is not None:
        return F.interpolate(a[0], scale_factor=[float(scales[2]), float(scales[3])], mode="nearest")
    sizes = a[3]
    return F.interpolate(a[0], size=[int(sizes[2]), int(sizes[3])], mode="nearest")


def _op_pad(torch, F, graph, n, a):
    mode = _attrs(n).get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = [int(v) for v in a[1]]
    if mode != "constant" or len(pads) != 8 or any(pads[:2]) or any(pads[4:6]) or len(a) > 3 and a[3] is not None:
        raise InputError("QAT: only constant Pad of the last two axes is implemented")
    value = float(a[2]) if len(a) > 2 and a[2] is not None else 0.0
    return F.pad(a[0], (pads[3], pads[7], pads[2], pads[6]), value=value)


def _op_clip(torch, F, graph, n, a):
    """Clip: bounds as inputs (opset 11 on, either may be absent) or as attributes (older opsets)."""
    at = _attrs(n)
    lo = a[1] if len(a) > 1 and a[1] is not None else at.get("min")
    hi = a[2] if len(a) > 2 and a[2] is not None else at.get("max")
    return torch.clamp(a[0], min=lo, max=hi)


def _binary(fn):
    return lambda torch, F, graph, n, a: fn(a[0], a[1])


_OPS: dict[str, Callable] = {
    "QuantizeLinear": _op_quantize,
    "DequantizeLinear": _op_dequantize,
    "Conv": _op_conv,
    "ConvTranspose": _op_conv_transpose,
    "PRelu": _op_prelu,
    "Relu": lambda torch, F, graph, n, a: F.relu(a[0]),
    "Tanh": lambda torch, F, graph, n, a: torch.tanh(a[0]),
    "Sigmoid": lambda torch, F, graph, n, a: torch.sigmoid(a[0]),
    "Identity": lambda torch, F, graph, n, a: a[0],
    "Add": _binary(lambda x, y: x + y),
    "Sub": _binary(lambda x, y: x - y),
    "Mul": _binary(lambda x, y: x * y),
    "Div": _binary(lambda x, y: x / y),
    "DepthToSpace": _op_depth_to_space,
    "Resize": _op_resize,
    "Concat": lambda torch, F, graph, n, a: torch.cat(a, dim=_attrs(n)["axis"]),
    "Pad": _op_pad,
    "Clip": _op_clip,
}


def export_qdq(qdq: onnx.ModelProto, graph) -> onnx.ModelProto:
    """The Q/DQ model with the trained weights and activation scales written in (a copy).

    Weights are re-quantized per channel with the rule training used; biases become int32 at
    ``input scale x weight scale``; zero points and the graph's structure are unchanged.

    Args:
        qdq: The Q/DQ model ``graph`` was built from.
        graph: The trained module from :func:`qdq_graph`.
    """
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    state = graph.state()
    values: dict[str, np.ndarray] = {}
    w_scales: dict[str, np.ndarray] = {}
    for fname, wq in graph.weight_q.items():
        w = state[fname].astype(np.float64)
        shape = [1] * w.ndim
        shape[wq.axis] = w.shape[wq.axis]
        scale = np.maximum(state["w:" + fname], 1e-12).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(shape)), wq.lo, wq.hi)
        values[wq.int_name] = q.astype(np.int8 if wq.lo < 0 else np.uint8)
        values[wq.scale_name] = scale
        w_scales[fname] = scale.astype(np.float64)
    dims = {i.name: tuple(i.dims) for i in qdq.graph.initializer}
    for name in {n for n in state if n not in graph.weight_q and n not in graph.bias_q and not n.startswith("w:")}:
        values[name] = np.asarray(state[name], np.float32).reshape(dims[name])
    for fname, bq in graph.bias_q.items():
        s_in = float(np.asarray(state[bq.input_scale]).ravel()[0])
        scale = (s_in * w_scales[bq.weight]).astype(np.float32)
        values[bq.int_name] = np.round(state[fname].astype(np.float64) / scale).astype(np.int32)
        values[bq.scale_name] = scale
    for init in out.graph.initializer:
        if init.name in values:
            init.CopyFrom(numpy_helper.from_array(values[init.name], init.name))
    return out


@dataclass(frozen=True)
class QatCheckpoint:
    """Everything a QAT run needs to continue exactly where it was (what :func:`finetune` hands to its
    ``on_checkpoint`` at each validation, and takes back as ``resume``); :mod:`sredge.train.qat_state`
    stores it in a file."""

    step: int
    """Steps done."""
    steps: int
    """The length of the cosine schedule those steps followed."""
    ptq: bytes
    """The plain INT8 model the trained graph was built from (serialized ONNX): a resumed run trains the
    same graph without calibrating again."""
    graph: dict
    """The trained module's ``state_dict`` (float weights, learned scale factors), on the CPU."""
    optimizer: dict
    scheduler: dict
    sampler_rng: dict
    """The patch sampler's numpy bit-generator state."""
    torch_rng: object
    """``torch.get_rng_state()``."""
    best: bytes
    """The best model so far (serialized ONNX, no quality metadata yet)."""
    best_db: float
    best_step: int
    fp32_db: float
    ptq_db: float


@dataclass(frozen=True)
class QatResult:
    """The outcome of :func:`finetune`."""

    model: onnx.ModelProto
    """The best Q/DQ model found (trained weights and scales; metadata as the PTQ file)."""
    fp32_db: float
    """Validation Y-PSNR of the FP32 model."""
    ptq_db: float
    """Validation Y-PSNR of plain post-training INT8 (every layer quantized), the starting point."""
    qat_db: float
    """Validation Y-PSNR of :attr:`model`."""
    best_step: int
    """The step whose weights were kept (0: QAT did not beat PTQ)."""
    steps_done: int = 0
    """The steps run: ``options.steps``, or fewer when a stop ended the run."""

    @property
    def drop_db(self) -> float:
        """FP32 minus QAT Y-PSNR (dB)."""
        return self.fp32_db - self.qat_db


def finetune(
    fp32_path,
    qdq: onnx.ModelProto,
    sampler,
    validate: Callable[[onnx.ModelProto | str], float],
    options: QatOptions = QatOptions(),
    value_range: float = 1.0,
    seed: int = 0,
    on_step: Callable[[int, float, float | None], None] | None = None,
    stop: threading.Event | None = None,
    resume: QatCheckpoint | None = None,
    on_checkpoint: Callable[[QatCheckpoint], None] | None = None,
) -> QatResult:
    """Fine-tune a Q/DQ model's weights and activation scales on (LR, HR) patches.

    Args:
        fp32_path: The FP32 ONNX file ``qdq`` was quantized from (its float weights start training).
        qdq: Plain post-training INT8 of it (:func:`sredge.calibration.quantize.quantize_int8`, no
            layer kept in float), either flavour.
        sampler: ``sampler.batch(n) -> (lr, hr)``: (N, C, p, p) and (N, C, p*s, p*s) float32 in
            [0, 1] in the model's colour space (:class:`sredge.train.data.PatchSampler`); with target
            ``"teacher"``, ``(lr, hr, teacher's output)``, the third shaped as ``hr``.
        validate: Mean validation Y-PSNR (dB) of an ONNX model (file path or in-memory), run by
            ONNX Runtime: the file is judged as it will run, not by the PyTorch simulation.
        options: Steps, batch, learning rates, validation interval.
        value_range: The model's input/output range (1 or 255); patches are scaled into it.
        seed: Torch seed.
        on_step: ``on_step(step, loss, last validation dB or None)`` progress callback.
        stop: Set (by a stop signal) to end after the step in progress, which is validated and checkpointed like
            the last step: the best model so far is returned (``steps_done`` says how far it got).
        resume: A checkpoint of this run (same ``qdq``, which must be ``resume.ptq``; same options but
            ``steps``, ``stop_after``, ``val_every`` and ``device``; same sampler and seed): training continues
            from its step with its weights, optimiser, schedule and random states, so the run ends as an
            uninterrupted one would. Another ``options.steps`` refits the cosine schedule
            (:func:`~sredge.train.loop.refit_cosine`).
        on_checkpoint: Called at each validation (every ``val_every`` steps, the last step, a stop) with
            what ``resume`` needs to continue from there.

    Returns:
        The best model by validation (PTQ itself when no step beats it).
    """
    torch = _torch()
    torch.manual_seed(seed)
    device = torch.device(options.device)
    graph = qdq_graph(qdq, int8_reference(fp32_path, flavour_of(qdq))).to_device(device)
    opt = torch.optim.Adam([{"params": list(graph.weights.parameters()), "lr": options.lr},
                            {"params": list(graph.scales.parameters()), "lr": options.scale_lr}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=options.steps)
    if resume is None:
        fp32_db, ptq_db = float(validate(str(fp32_path))), float(validate(qdq))
        best, best_db, best_step, start = qdq, ptq_db, 0, 0
    else:
        graph.load_state_dict(resume.graph)
        opt.load_state_dict(resume.optimizer)
        sched.load_state_dict(resume.scheduler)
        if resume.steps != options.steps:
            refit_cosine(opt, sched, options.steps, resume.step)
        sampler.rng.bit_generator.state = resume.sampler_rng
        torch.set_rng_state(resume.torch_rng)
        fp32_db, ptq_db = resume.fp32_db, resume.ptq_db
        best, best_db, best_step, start = onnx.load_from_string(resume.best), resume.best_db, resume.best_step, \
            resume.step
    end = min(options.steps, options.stop_after or options.steps)
    last_db: float | None = None
    # The FP32 target is the FP32 file (or the target model) as ONNX Runtime runs it (one thread: training has
    # the other).
    target_file = {"fp32": fp32_path, "model": options.target_model}.get(options.target)
    fp32_target = (open_backend("ort", target_file, BackendOptions(device="cpu", threads=1))
                   if target_file is not None else contextlib.nullcontext())
    step = start
    with fp32_target as teacher:
        for step in range(start + 1, end + 1):
            lr_np, hr_np, *taught = sampler.batch(options.batch)
            x = np.ascontiguousarray(lr_np * value_range, np.float32)
            wanted = taught[0] if options.target == "teacher" else hr_np
            target = teacher.run(x) if teacher is not None else wanted * value_range
            pred = graph(torch.from_numpy(x).to(device))
            target = torch.from_numpy(np.asarray(target, np.float32)).to(device)
            loss = torch.nn.functional.l1_loss(pred, target) / value_range
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            stopping = stop is not None and stop.is_set()
            validated = step % options.val_every == 0 or step == end or stopping
            if validated:
                candidate = export_qdq(qdq, graph)
                last_db = float(validate(candidate))
                log.info("QAT step %d: %.3f dB (PTQ %.3f, FP32 %.3f)", step, last_db, ptq_db, fp32_db)
                if last_db > best_db:
                    best, best_db, best_step = candidate, last_db, step
                if on_checkpoint is not None:
                    on_checkpoint(QatCheckpoint(
                        step, sched.T_max, qdq.SerializeToString(),
                        {k: v.detach().cpu().clone() for k, v in graph.state_dict().items()},
                        copy.deepcopy(opt.state_dict()), sched.state_dict(), sampler.rng.bit_generator.state,
                        torch.get_rng_state(),
                        best.SerializeToString(), best_db, best_step, fp32_db, ptq_db))
            if on_step is not None:
                on_step(step, float(loss.detach()), last_db)
            if stopping or (validated and stop is not None and stop.is_set()):  # (a stop during the validation)
                break
    return QatResult(best, fp32_db, ptq_db, best_db, best_step, step)

