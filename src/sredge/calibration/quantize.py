"""INT8 by explicit quantization: a Q/DQ ONNX made with ONNX Runtime's static quantizer.

TensorRT deprecated implicit INT8 calibrators in 10.1 and TensorRT 11 has none, so the INT8
artefact is an ONNX file whose QuantizeLinear/DequantizeLinear pairs carry the scales. Two
flavours, because the fastest encoding differs by target:

* ``cpu`` (ONNX Runtime CPU): uint8 activations, int8 per-channel weights, *reduced range*
  weights (7 bits). x86 CPUs without VNNI multiply u8 x s8 with ``vpmaddubsw``, whose 16-bit
  pair sums saturate with full-range weights; on the real FSRCNN x3 that saturation alone cost
  2.06 dB of Set5 PSNR against 0.50 dB with 7-bit weights (ONNX Runtime's own advice).
* ``trt`` (TensorRT): symmetric int8 activations and weights (zero points 0), per-channel
  weights, Q/DQ only on the inputs of convolutions (activation and weight), as TensorRT's
  explicit-quantization guide places them; biases in float and transposed convolutions'
  weights scaled per input channel, the only forms TensorRT's parser and kernels take
  (:func:`dequantize_biases`, :func:`deconv_weights_per_input_channel`). Its weights are full
  range (|q| <= 127) unless ``weight_bits=7`` narrows them to |q| <= 64 like the cpu flavour's:
  still INT8 for TensorRT, and then computed exactly by OpenVINO on x86 CPUs without VNNI too
  (the bundled models' INT8 files are made so).

Calibration runs once (:func:`calibrate`) and the resulting ranges are reused for every
quantization of the same model (:func:`quantize_int8`), so a sensitivity search that tries many
sets of float layers does not re-run the calibration data.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import write_descriptor

log = logging.getLogger(__name__)

FLAVOURS = ("cpu", "trt")
METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "ConvTranspose")
"""Layers the sensitivity pass reasons about (the arithmetic-heavy ones)."""


@dataclass(frozen=True)
class Int8Options:
    """How to calibrate and quantize."""

    flavour: str = "cpu"
    """``"cpu"`` (ONNX Runtime: uint8 activations, int8 per-channel 7-bit weights) or ``"trt"``
    (TensorRT: symmetric int8 activations and weights)."""
    method: str = "minmax"
    """Activation range estimate: ``"minmax"`` (observed extremes), ``"entropy"`` (KL-divergence
    threshold) or ``"percentile"`` (clip the ``percentile`` tails)."""
    num_bins: int = 2048
    """Histogram bins of the entropy and percentile methods. ONNX Runtime's entropy default (128,
    the same as its quantized bins) leaves nothing to choose, making entropy equal to min-max."""
    num_quantized_bins: int = 128
    """Target bins of the entropy method (128: the positive half of int8)."""
    percentile: float = 99.999
    """Percentile of ``|x|`` kept by the percentile method."""
    batch: int = 8
    """Crops per calibration batch (memory: the calibrator keeps every intermediate tensor of a batch)."""
    weight_bits: int | None = None
    """Magnitude of the weights' integers: 7 (|q| <= 64, ONNX Runtime's ``reduce_range``: no ``vpmaddubsw``
    saturation on x86 CPUs without VNNI, in ONNX Runtime's u8 x s8 kernels and OpenVINO's) or 8 (|q| <= 127);
    None: the flavour's own, 7 for cpu (which takes no other), 8 for trt."""

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise InputError(f"unknown INT8 flavour {self.flavour!r}: {' or '.join(FLAVOURS)}")
        if self.weight_bits not in (None, 7, 8):
            raise InputError(f"weight bits must be 7 or 8, not {self.weight_bits}")
        if self.flavour == "cpu" and self.weight_bits == 8:
            raise InputError("the cpu flavour's weights are 7-bit (x86 CPUs without VNNI saturate full-range ones "
                             "with its uint8 activations); 8-bit weights are the trt flavour's")
        if self.method not in METHODS:
            raise InputError(f"unknown calibration method {self.method!r}: {', '.join(METHODS)}")
        if not 0 < self.percentile <= 100:
            raise InputError(f"--percentile must be in (0, 100], not {self.percentile}")

    @property
    def weight_qmax(self) -> int:
        """Largest weight integer magnitude: 64 (7 bits) or 127 (8 bits)."""
        return 127 if (self.weight_bits or (7 if self.flavour == "cpu" else 8)) == 8 else 64

    @property
    def precision(self) -> str:
        """The descriptor's ``precision`` for this flavour: ``"int8-cpu"`` or ``"int8-trt"``."""
        return f"int8-{self.flavour}"


@dataclass(frozen=True)
class Ranges:
    """Activation ranges from one calibration of one FP32 model (ONNX Runtime ``TensorsData``)."""

    data: Any
    """``onnxruntime.quantization.TensorsData``: per tensor name, its (lowest, highest)."""
    options: Int8Options

    def bounds(self) -> dict[str, tuple[float, float]]:
        """Tensor name -> (lowest, highest) as floats."""
        out = {}
        for name, td in self.data.data.items():
            lo, hi = td.range_value
            out[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
        return out


MIN_ORT_FOR_INT8 = "1.27"
"""The first ONNX Runtime whose quantization package has ``save_tensors_data`` (checked on 1.26.0 and 1.27.0)."""


def _quantization():
    import onnxruntime
    import onnxruntime.quantization as q

    if not hasattr(q, "save_tensors_data"):
        from sredge.errors import MissingDependencyError

        raise MissingDependencyError(
            f"INT8 quantization needs ONNX Runtime >= {MIN_ORT_FOR_INT8} (this is {onnxruntime.__version__}): "
            f'pip install -U "onnxruntime>={MIN_ORT_FOR_INT8}"'
        )
    return q


def _method(name: str):
    cm = _quantization().CalibrationMethod
    return {"minmax": cm.MinMax, "entropy": cm.Entropy, "percentile": cm.Percentile}[name]


def _calibrator_options(options: Int8Options) -> dict:
    symmetric = options.flavour == "trt"
    if options.method == "minmax":
        return {"symmetric": symmetric}
    extra = {"num_bins": options.num_bins, "symmetric": symmetric}
    if options.method == "entropy":
        extra["num_quantized_bins"] = options.num_quantized_bins
    else:
        extra["percentile"] = options.percentile
    return extra


class _Batches:
    """ONNX Runtime CalibrationDataReader over an array, ``batch`` crops at a time."""

    def __init__(self, name: str, x: np.ndarray, batch: int):
        self.name, self.x, self.batch, self.i = name, x, batch, 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.x):
            return None
        chunk = self.x[self.i:self.i + self.batch]
        self.i += self.batch
        return {self.name: np.ascontiguousarray(chunk, np.float32)}

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch)


def calibrate(fp32_model: str | Path, inputs: np.ndarray, options: Int8Options = Int8Options()) -> Ranges:
    """Run the calibration data through the FP32 model and estimate every activation's range.

    Args:
        fp32_model: The FP32 ONNX file (one input).
        inputs: (N, C, H, W) float32 network inputs in the model's value range
            (see :func:`sredge.calibration.sets.model_inputs`).
        options: Method, histogram settings, flavour (``trt`` makes ranges symmetric).

    Raises:
        InputError: The model file is missing or not ONNX; no calibration inputs, or inputs that are not the
            model's (N, C, H, W) floats in its value range (8-bit crops, RGB crops for a luma-only model).
    """
    inputs = np.asarray(inputs)
    if len(inputs) == 0:
        raise InputError("the calibration set is empty")
    q = _quantization()
    reference = int8_reference(fp32_model, options.flavour)
    _check_inputs(inputs, reference, fp32_model)
    name = reference.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="sredge-calib-") as tmp:
        # Every float tensor is calibrated (None): the CPU flavour also quantizes the Add, Mul, ...
        # between convolutions, and a calibration serves both flavours' quantizers.
        calibrator = q.create_calibrator(
            _private_copy(reference, tmp),
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(options.method),
            providers=["CPUExecutionProvider"],
            extra_options=_calibrator_options(options),
        )
        chatter = io.StringIO()  # the histogram calibrators print progress to stdout
        with contextlib.redirect_stdout(chatter):
            calibrator.collect_data(_Batches(name, inputs, options.batch))
            data = calibrator.compute_data()
        del calibrator
        log.debug("calibrator output: %s", chatter.getvalue().strip())
    return Ranges(data, options)


def _check_inputs(inputs: np.ndarray, model: onnx.ModelProto, path: str | Path) -> None:
    """Refuse calibration inputs the model would misread: ONNX Runtime cast 8-bit crops to float silently (ranges
    255 times too wide: a useless INT8 model) and failed on another layout with its own traceback."""
    from sredge.models.onnx_file import descriptor_of

    dims = model.graph.input[0].type.tensor_type.shape.dim
    channels = dims[1].dim_value if len(dims) == 4 and dims[1].HasField("dim_value") else None
    try:
        desc = descriptor_of(model)
    except ValueError:
        desc = None  # damaged metadata: int8_reference (trt) or the quantized model's descriptor says so
    top = desc.value_range if desc is not None else None
    how = "make them with sredge.calibration.sets.model_inputs(cset, desc)"
    want = f"(N, {channels or 'C'}, H, W) floats in [0, {top:g}]" if top else f"(N, {channels or 'C'}, H, W) floats"
    if inputs.ndim != 4 or (channels and inputs.shape[1] != channels) or not np.issubdtype(inputs.dtype, np.floating):
        raise InputError(f"{Path(path).name} calibrates on {want}, not {inputs.dtype} {inputs.shape}: {how}")
    if top is not None and float(inputs.max()) > top * 1.001:
        raise InputError(f"{Path(path).name} calibrates on {want}; these go up to {float(inputs.max()):g}: {how}")


def int8_reference(fp32_model: str | Path, flavour: str) -> onnx.ModelProto:
    """The FP32 graph a flavour quantizes: for ``trt`` the image is centred before the first convolutions
    (:func:`sredge.calibration.centering.center_input`, exact; symmetric int8 then reads it in steps of
    1/255, not 1/127); for ``cpu`` (asymmetric uint8) the model as it is.

    Args:
        fp32_model: The FP32 ONNX file (with sredge metadata for the value range; without, unchanged).
        flavour: ``"cpu"`` or ``"trt"``.

    Raises:
        InputError: The file is missing or not ONNX, or its external-data files are missing or cut short.
    """
    from sredge.calibration.centering import center_input
    from sredge.models.onnx_file import descriptor_of, external_data_files, load_onnx

    model = load_onnx(fp32_model)  # a missing or non-ONNX file in one line (onnx.load's was a traceback)
    if external_data_files(model, fp32_model):
        onnx.load_external_data_for_model(model, str(Path(fp32_model).parent))
    if flavour != "trt":
        return model
    try:
        desc = descriptor_of(model)
    except ValueError as exc:
        raise InputError(f"{fp32_model}: {exc}") from exc
    if desc is None:
        return model
    return center_input(model, desc.value_range / 2)[0]


def flavour_of(qdq: onnx.ModelProto) -> str:
    """``"trt"`` when the activations are quantized to int8 (zero point 0), else ``"cpu"`` (uint8)."""
    inits = {i.name: i for i in qdq.graph.initializer}
    for n in qdq.graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits:
            return "trt" if inits[n.input[2]].data_type == onnx.TensorProto.INT8 else "cpu"
    return "cpu"


def _private_copy(model: onnx.ModelProto, folder: str) -> Path:
    """The graph to quantize (:func:`int8_reference`), written into ``folder``: ONNX Runtime's quantizer
    writes ``NAME-inferred.onnx`` beside the model it reads (then deletes it), which must never happen
    beside a user's input, in a read-only install, or in a folder two processes share."""
    copy = Path(folder) / "fp32.onnx"
    onnx.save(model, str(copy))
    return copy


def _quant_args(options: Int8Options) -> dict:
    qt = _quantization().QuantType
    if options.flavour == "cpu":
        return dict(activation_type=qt.QUInt8, weight_type=qt.QInt8, per_channel=True, reduce_range=True,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    # Q/DQ on the inputs of convolutions only, not on their outputs (TensorRT's recommended placement:
    # it fuses the output scale into the next layer's input). ONNX Runtime's default also rounded each
    # conv output to int8 before its activation: on FSRCNN x3 that cost 8.16 dB of Set5 PSNR, 0.43 dB without.
    return dict(activation_type=qt.QInt8, weight_type=qt.QInt8, per_channel=True,
                reduce_range=options.weight_qmax < 127,
                op_types_to_quantize=list(QUANTIZED_OPS),
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                               "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)})


def quantize_int8(
    fp32_model: str | Path,
    ranges: Ranges,
    desc: ModelDescriptor | None = None,
    keep_float: Sequence[str] = (),
) -> onnx.ModelProto:
    """Quantize an FP32 ONNX model to Q/DQ INT8 with calibrated ranges.

    Args:
        fp32_model: The FP32 ONNX file that ``ranges`` were calibrated on.
        ranges: From :func:`calibrate`; its options give the flavour.
        desc: Descriptor to embed (with ``precision`` set); None keeps the file's own metadata.
        keep_float: Node names to leave in float (see :mod:`sredge.calibration.sensitivity`). They
            also read their activations unrounded (:func:`read_float_inputs`).

    Returns:
        The quantized model (in memory, metadata set).
    """
    model, reference = _ort_quantize(fp32_model, ranges, keep_float)
    if ranges.options.flavour == "trt":
        dequantize_biases(model)
        deconv_weights_per_input_channel(model, reference, ranges.options.weight_qmax)
    if desc is None:
        from sredge.models.onnx_file import read_descriptor

        desc = read_descriptor(fp32_model)
    if desc is not None:
        write_descriptor(model, replace(desc, precision=ranges.options.precision))
    return model


def _ort_quantize(fp32_model: str | Path, ranges: Ranges,
                  keep_float: Sequence[str]) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """ONNX Runtime's Q/DQ model of :func:`int8_reference` (its own encoding, float paths restored), and
    that reference."""
    q = _quantization()
    args = _quant_args(ranges.options)
    reference = int8_reference(fp32_model, ranges.options.flavour)
    with tempfile.TemporaryDirectory(prefix="sredge-int8-") as tmp:
        cache, out = Path(tmp) / "ranges.json", Path(tmp) / "int8.onnx"
        q.save_tensors_data(ranges.data, cache)
        with _quiet_quantizer():
            q.quantize_static(
                str(_private_copy(reference, tmp)), str(out), None,
                quant_format=q.QuantFormat.QDQ,
                calibrate_method=_method(ranges.options.method),
                calibration_cache_path=str(cache),
                nodes_to_exclude=list(keep_float),
                **args,
            )
        model = onnx.load(str(out))
    float_output_path(model, reference)
    if keep_float:
        read_float_inputs(model, keep_float, reference)
    return model, reference


def read_float_inputs(model: onnx.ModelProto, nodes: Sequence[str], reference: onnx.ModelProto) -> int:
    """Make ``nodes`` read the float tensors behind their activation Q/DQ pairs, in place.

    ONNX Runtime's quantizer leaves an excluded node in float but lets it read the *dequantized*
    copy of a tensor that other nodes quantize: VDSR's global residual ``Add`` (excluded) still read
    the image input and the last convolution's output rounded to 8 bits, which alone cost 0.15 dB
    of Set5 PSNR at x2. Each input of ``nodes`` that is ``DequantizeLinear(QuantizeLinear(t))`` of
    an activation ``t`` is rewired to ``t``; Q/DQ pairs left without readers are removed.

    A tensor is rewired only when it means what it meant in the float model: a graph input, or
    produced by the same kind of node as in ``reference``. The CPU flavour folds a ReLU into the
    uint8 quantization that follows its convolution (zero point 0 clamps the negatives), so there
    ``t`` is the convolution's output before the ReLU, and reading it would skip the ReLU.

    Args:
        model: The Q/DQ model (changed in place).
        nodes: Names of the nodes kept in float.
        reference: The FP32 model it was quantized from.

    Returns:
        How many inputs were rewired.
    """
    inits = {i.name for i in model.graph.initializer}
    produced_by = {o: n for n in model.graph.node for o in n.output}
    ref_op = _ops_by_tensor(reference)
    wanted, rewired = set(nodes), 0
    for n in model.graph.node:
        if n.name not in wanted:
            continue
        for i, name in enumerate(n.input):
            t = _unrounded(name, produced_by, inits, ref_op)
            if t is not None:
                n.input[i] = t
                rewired += 1
    _prune_dead_qdq(model)
    return rewired


def _ops_by_tensor(reference: onnx.ModelProto) -> dict[str, str]:
    """Tensor name -> the op type that produces it in ``reference`` (``<input>`` for a graph input)."""
    ops = {o: n.op_type for n in reference.graph.node for o in n.output}
    ops.update({i.name: "<input>" for i in reference.graph.input})
    return ops


def _unrounded(name: str, produced_by: dict, inits: set[str], ref_op: dict[str, str]) -> str | None:
    """``t`` when ``name`` is ``DequantizeLinear(QuantizeLinear(t))`` of an activation ``t`` that is produced by
    the same kind of node as in the float model (see :func:`read_float_inputs`), else None."""
    dq = produced_by.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = produced_by.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear" or q.input[0] in inits:
        return None
    t = q.input[0]
    now = produced_by[t].op_type if t in produced_by else "<input>"
    return t if ref_op.get(t) == now else None


def float_output_path(model: onnx.ModelProto, reference: onnx.ModelProto) -> int:
    """Run the operations between the last convolutions and the output on unrounded tensors, in place.

    ONNX Runtime's CPU quantizer rounds every tensor to 8 bits, including the image itself on its
    way to the output: the input's upsampled skip, the pixel shuffle's copy of the last convolution's
    output, the sum the network returns. None of these does arithmetic worth doing in INT8, but each
    rounding adds noise to the picture (on the bundled x2 model 0.07 dB of Set5 PSNR). Here the
    graph output is not quantized when a non-convolution produces it, and the non-convolution nodes
    that lead to it (``Add``, ``DepthToSpace``, ``Resize``, ...) read the float tensors behind their
    Q/DQ pairs, up to the graph input and the convolutions. Each convolution's output stays
    quantized, which is what keeps it a single INT8 operator (``QLinearConv``) in ONNX Runtime. The
    trt flavour, with Q/DQ only on convolution inputs, is left as it is.

    A tensor is read unrounded only when it means what it meant in ``reference`` (see
    :func:`read_float_inputs`: a ReLU folded into a quantization must not be skipped).

    Args:
        model: The Q/DQ model (changed in place).
        reference: The FP32 model it was quantized from.

    Returns:
        How many tensors now stay float (the output counted once).
    """
    inits = {i.name for i in model.graph.initializer}
    ref_op = _ops_by_tensor(reference)

    def producers() -> dict[str, onnx.NodeProto]:
        return {o: n for n in model.graph.node for o in n.output}

    changed = 0
    produced_by = producers()
    for out in model.graph.output:
        dq = produced_by.get(out.name)
        q = produced_by.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in produced_by:
            continue
        t = q.input[0]  # the quantizer renames the output's producer: compare it with the output's in reference
        if produced_by[t].op_type in QUANTIZED_OPS or produced_by[t].op_type != ref_op.get(out.name):
            continue
        model.graph.node.remove(dq)
        model.graph.node.remove(q)
        for n in model.graph.node:
            n.output[:] = [out.name if o == t else o for o in n.output]
            n.input[:] = [out.name if i == t else i for i in n.input]
        changed += 1
        produced_by = producers()
    todo = [produced_by[o.name] for o in model.graph.output if o.name in produced_by]
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen or node.op_type in QUANTIZED_OPS or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        seen.add(id(node))
        for k, name in enumerate(node.input):
            t = _unrounded(name, produced_by, inits, ref_op)
            if t is not None and (t not in produced_by or produced_by[t].op_type not in QUANTIZED_OPS):
                node.input[k] = name = t
                changed += 1
            if name in produced_by:
                todo.append(produced_by[name])
    _prune_dead_qdq(model)
    return changed


def _prune_dead_qdq(model: onnx.ModelProto) -> None:
    """Drop Q/DQ nodes whose outputs nobody reads (repeatedly: a dead DQ can leave its Q dead)."""
    outputs = {o.name for o in model.graph.output}
    while True:
        read = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node
                if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    _drop_unread(model, {i.name for i in model.graph.initializer})


def dequantize_biases(model: onnx.ModelProto) -> int:
    """Give each convolution its bias in float instead of through an int32 ``DequantizeLinear``, in place.

    ONNX Runtime's quantizer stores a bias as int32 at the scale input scale x weight scale and
    dequantizes it in the graph. TensorRT's ONNX parser takes ``DequantizeLinear`` of int8 (fp8, int4)
    only ("only activation types allowed as input to this layer"); its INT8 convolutions add a float
    bias themselves. Each such node becomes the float32 initializer it computes, ``(q - zero) x scale``
    (one float32 product per element, as the node does), so the model's output is unchanged bit for bit.

    Returns:
        How many biases were replaced.
    """
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    done, folded = 0, set()
    for n in list(model.graph.node):
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        if (inits[n.input[0]].data_type != onnx.TensorProto.INT32 or n.input[1] not in inits
                or inits[n.input[1]].data_type != onnx.TensorProto.FLOAT):
            continue  # (a float16 scale would dequantize to float16: left as it is)
        q = numpy_helper.to_array(inits[n.input[0]])
        scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        zero = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] in inits else 0
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.size > 1:
            shape[axis % q.ndim] = scale.size
        values = (q.astype(np.int64) - np.asarray(zero, np.int64).reshape(shape if np.size(zero) > 1 else ())
                  ).astype(np.float32) * scale.reshape(shape if scale.size > 1 else ())
        model.graph.node.remove(n)
        model.graph.initializer.append(numpy_helper.from_array(values.astype(np.float32), n.output[0]))
        folded.update(i for i in n.input if i)
        done += 1
    _drop_unread(model, folded)
    return done


def deconv_weights_per_input_channel(model: onnx.ModelProto, reference: onnx.ModelProto, qmax: int = 127) -> int:
    """Quantize each ``ConvTranspose`` weight per *input* channel (axis 0), as TensorRT takes it, in place.

    ONNX Runtime's quantizer scales a transposed convolution's weight (C_in, C_out / group, kH, kW) per
    output channel (axis 1). TensorRT's deconvolution kernels take per-channel weight scales along the
    input channels only: NVIDIA's answer on NVIDIA/TensorRT#2380 ("we don't support per-output-channel quant
    for ConvTranspose"), its QAT toolkits (pytorch-quantization, Model Optimizer) quantize ConvTranspose
    weights on axis 0, and axis 1 built engines with wrong outputs (NVIDIA/TensorRT#1694). Each such
    weight is quantized again from the float weight of ``reference`` with the quantizer's own symmetric
    rule (scale max|w| / qmax per input channel, integers in [-qmax, qmax], zero point 0). Its bias must
    already be float (:func:`dequantize_biases`): an int32 bias's scale is the input scale times a
    per-output weight scale, which no longer exists.

    Args:
        model: A ``trt``-flavour Q/DQ model, changed in place.
        reference: The FP32 graph it was quantized from (:func:`int8_reference`): same node names.
        qmax: Largest integer magnitude (:attr:`Int8Options.weight_qmax`): 127, or 64 for 7-bit weights.

    Returns:
        How many weights were quantized again.
    """
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    produced = {o: n for n in model.graph.node for o in n.output}
    ref_nodes = {n.name: n for n in reference.graph.node}
    ref_inits = {i.name: i for i in reference.graph.initializer}
    done = 0
    for n in model.graph.node:
        dq = produced.get(n.input[1]) if n.op_type == "ConvTranspose" and len(n.input) > 1 else None
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        if len(n.input) > 2 and n.input[2] and n.input[2] not in inits:
            raise InputError(f"{n.name}: a quantized bias is read before the weight moves to axis 0")
        ref = ref_nodes.get(n.name) if n.name else None
        float_name = (ref.input[1] if ref is not None and ref.op_type == "ConvTranspose" and len(ref.input) > 1
                      else dq.input[0].removesuffix("_quantized"))  # the quantizer's own naming
        if float_name not in ref_inits or tuple(ref_inits[float_name].dims) != tuple(inits[dq.input[0]].dims):
            raise InputError(f"{n.name or 'a ConvTranspose'}: its float weight is not in the FP32 graph it was "
                             "quantized from")
        w = numpy_helper.to_array(ref_inits[float_name]).astype(np.float32)
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = np.where(absmax > 0, absmax / np.float32(qmax), np.float32(1)).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax).astype(np.int8)
        names = [dq.input[0], f"{dq.input[0]}_scale_axis0", f"{dq.input[0]}_zero_point_axis0"]
        arrays = [q, scale, np.zeros(w.shape[0], np.int8)]
        for name, array in zip(names, arrays):
            tensor = numpy_helper.from_array(array, name)
            if name in inits:
                inits[name].CopyFrom(tensor)
            else:
                model.graph.initializer.append(tensor)
                inits[name] = model.graph.initializer[-1]
        old = set(dq.input[1:])
        del dq.input[1:]
        dq.input.extend(names[1:])
        for a in [a for a in dq.attribute if a.name == "axis"]:
            dq.attribute.remove(a)
        dq.attribute.append(onnx.helper.make_attribute("axis", 0))
        _drop_unread(model, old)
        done += 1
    return done


def _drop_unread(model: onnx.ModelProto, names: set[str]) -> None:
    """Remove the initializers among ``names`` that no node, graph input or output reads any longer."""
    read = {i for n in model.graph.node for i in n.input}
    read |= {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    for init in [i for i in model.graph.initializer if i.name in names and i.name not in read]:
        model.graph.initializer.remove(init)


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write a model (single file, weights embedded) atomically.

    Raises:
        InputError: ``path`` cannot be written (a missing or read-only folder, a directory: was an OSError).
    """
    return write_bytes_atomic(check_writable(path), model.SerializeToString())


def quantized_nodes(model: onnx.ModelProto, op_types: Sequence[str] = QUANTIZED_OPS) -> list[str]:
    """Names of ``op_types`` nodes whose weight input comes through DequantizeLinear (i.e. run in INT8)."""
    produced_by = {o: n for n in model.graph.node for o in n.output}
    names = []
    for n in model.graph.node:
        if n.op_type in op_types and len(n.input) > 1:
            src = produced_by.get(n.input[1])
            if src is not None and src.op_type == "DequantizeLinear":
                names.append(n.name)
    return names


def activation_scales(model: onnx.ModelProto) -> dict[str, float]:
    """Scale of every activation QuantizeLinear in a Q/DQ model: quantized tensor name -> scale."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and n.input[1] in inits:
            out[n.input[0]] = float(np.asarray(inits[n.input[1]]).ravel()[0])
    return out


class _quiet_quantizer:
    """Keep ONNX Runtime's quantizer advice ('consider pre-processing') off the terminal."""

    def __enter__(self):
        self._root = logging.getLogger()
        self._level = self._root.level
        self._root.setLevel(max(self._level, logging.ERROR))
        return self

    def __exit__(self, *exc: object) -> None:
        self._root.setLevel(self._level)
