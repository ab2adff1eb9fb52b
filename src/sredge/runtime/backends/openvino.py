"""OpenVINO backend (CPU) for ONNX models, with the precision made explicit.

OpenVINO picks bfloat16 by itself on CPUs that have it (``INFERENCE_PRECISION_HINT``
defaults to bf16 there), which changes outputs without anyone asking. This backend always
sets the hint: ``f32`` unless bf16 was requested, and refuses bf16 on a CPU whose
``OPTIMIZATION_CAPABILITIES`` lack ``BF16`` (OpenVINO would accept the hint there and quietly
run float32). ``int8`` means the ONNX's own Q/DQ scales (an INT8 ONNX from sr-export or sr-train --qat);
OpenVINO does not quantize a float model here.

INT8 is exact only on CPUs with VNNI (or AMX): elsewhere x86 multiplies u8 x s8 with ``vpmaddubsw``, whose
16-bit pair sums saturate with 8-bit weights, and OpenVINO halves the weights of a convolution with signed
activations. 7-bit weights (the cpu flavour's; the trt flavour's with ``weight_bits=7``, as the bundled models'
are) are exact everywhere; a file with 8-bit weights computes otherwise than its Q/DQ graph there (the bundled x2
model when its weights were 8-bit: Set5 drop 0.112 dB, not 0.073), which
:func:`int8_exact_here` finds and the backend says (a warning, and ``describe()``).

Shapes: the model is compiled for each input shape it meets (static shapes are what the
CPU plugin optimizes best) and a few compiled shapes are kept (:data:`SHAPE_CACHE`), so a
video, whose tiles all share one shape, compiles once and a second tile shape once more,
never per frame.

Decisions are pure functions (:func:`ov_device`, :func:`plan_precision`) tested without
OpenVINO; the backend is tested against real OpenVINO in ``tests/runtime/test_backend_openvino.py``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.base import FP16_ON_CPU, BackendOptions, InputSpec, check_batch, warn_fp16_on_cpu

log = logging.getLogger(__name__)

OPENVINO_INSTALL_HINT = 'pip install "sredge[openvino]"'
PRECISIONS = ("fp32", "bf16", "int8")
SHAPE_CACHE = 4
"""Compiled models kept, one per input shape (least recently used goes first)."""
EXACT_WEIGHT_MAX = 64
"""Largest |int8 weight| a CPU without VNNI multiplies exactly (2 x 255 x 64 < 2**15; sr-export's cpu flavour
keeps its weights within it)."""


@dataclass(frozen=True)
class OvPrecision:
    """The precision a model runs in on OpenVINO."""

    name: str
    """``"fp32"``, ``"bf16"`` or ``"int8"``."""
    hint: str
    """``INFERENCE_PRECISION_HINT`` for the layers the ONNX does not type itself: ``"f32"`` or ``"bf16"``."""


def ov_device(device: str) -> str:
    """OpenVINO device for a ``--device`` request (pure).

    Raises:
        InputError: ``cuda``/``tensorrt`` or an unknown device.
    """
    if device in ("auto", "cpu"):
        return "CPU"
    if device in ("cuda", "tensorrt"):
        raise InputError(f"--device {device}: the OpenVINO backend runs on the CPU; use --backend ort or trt for "
                         "NVIDIA GPUs")
    raise InputError(f"unknown device {device!r} for OpenVINO (cpu, auto)")


def plan_precision(requested: str | None, onnx_has_qdq: bool, cpu_capabilities: list[str] | tuple[str, ...]
                   ) -> OvPrecision:
    """The precision to run in, never a silent change (pure).

    Args:
        requested: ``--precision`` (``fp32``/``bf16``/``int8``), or None for the ONNX's own
            precision (``int8`` for a Q/DQ ONNX, else ``fp32``).
        onnx_has_qdq: The ONNX has QuantizeLinear/DequantizeLinear nodes.
        cpu_capabilities: ``Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")``.

    Raises:
        InputError: An unknown precision, bf16 on a CPU without it, int8 without Q/DQ, or
            fp32/bf16 for a Q/DQ ONNX (OpenVINO would still run its quantized layers in INT8).
    """
    if requested is None:
        requested = "int8" if onnx_has_qdq else "fp32"
    if requested not in PRECISIONS:
        raise InputError(f"--precision {requested}: choose one of {', '.join(PRECISIONS)}")
    if requested == "int8":
        if not onnx_has_qdq:
            raise InputError("--precision int8 needs an INT8 ONNX with Q/DQ scales (sr-export --precision int8, "
                             "or sr-train --qat); OpenVINO does not quantize a float model here")
        return OvPrecision("int8", "f32")
    if onnx_has_qdq:
        raise InputError(f"--precision {requested}: this ONNX is quantized (Q/DQ) and runs in INT8; use "
                         "--precision int8, or the float ONNX")
    if requested == "bf16":
        caps = [str(c).upper() for c in cpu_capabilities]
        if "BF16" not in caps:
            raise InputError(
                f"--precision bf16: this CPU has no native bfloat16 (OpenVINO reports {', '.join(caps) or 'nothing'}); "
                "use --precision fp32"
            )
        return OvPrecision("bf16", "bf16")
    return OvPrecision("fp32", "f32")


def wide_int8_weights(model, base_dir: str | Path = "") -> bool:
    """Whether a Q/DQ ONNX has int8 weights beyond :data:`EXACT_WEIGHT_MAX` (which need VNNI to be exact).

    Args:
        model: ``onnx.ModelProto``; external weights are read from ``base_dir``.
        base_dir: Folder of the ONNX file (for external data).
    """
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in model.graph.initializer if t.data_type == TensorProto.INT8}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            q = numpy_helper.to_array(inits[node.input[0]], str(base_dir))
            if q.size and int(np.abs(q.astype(np.int16)).max()) > EXACT_WEIGHT_MAX:
                return True
    return False


@functools.cache
def int8_exact_here() -> bool:
    """Whether OpenVINO's CPU plugin computes INT8 convolutions with full-range (8-bit) weights exactly here.

    Runs a 1x1 Q/DQ convolution of known integer result (16 channels, weights and activations up to +-127):
    exact on CPUs with VNNI or AMX; without them the 16-bit pair sums saturate or the weights are halved.
    """
    from onnx import TensorProto, helper, numpy_helper

    ov = require("openvino")
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (16, 16, 1, 1)).astype(np.int8)
    x = rng.integers(-127, 128, (1, 16, 4, 4)).astype(np.float32)
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    inits = [numpy_helper.from_array(w, "wq"), one, numpy_helper.from_array(np.array(0, np.int8), "zero")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "one", "zero"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "one", "zero"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "one", "zero"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["y"])]
    graph = helper.make_graph(nodes, "int8_probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""),
                                  "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    got = compiled({0: x})[0]
    want = np.einsum("oi,nihw->nohw", w[:, :, 0, 0].astype(np.float64), x.astype(np.float64))
    return bool(np.array_equal(got, want))


class OpenVinoBackend:
    """Runs an ONNX file with OpenVINO on the CPU.

    Construction only records the path; ``__enter__`` imports OpenVINO, reads the model and
    its sredge metadata and checks the precision; compilation happens on the first ``run``
    of each input shape.
    """

    name = "openvino"

    def __init__(self, model: str | Path, options: BackendOptions = BackendOptions()):
        if options.fp16:
            raise InputError("--fp16 is not an OpenVINO option: use --precision bf16 (CPUs with bfloat16) or fp32")
        self._device = ov_device(options.device)
        self.path = Path(model)
        self.options = options
        self._model: Any = None
        self.compiles = 0
        """How many times a model was compiled (one per new input shape while it is cached)."""

    def __enter__(self) -> OpenVinoBackend:
        ov = require("openvino")
        from sredge.models.onnx_file import external_data_files, load_onnx, onnx_facts

        if not self.path.is_file():
            raise InputError(f"no such model file: {self.path}")
        proto = load_onnx(self.path)
        external_data_files(proto, self.path)  # missing or cut weights: said plainly (OpenVINO says 'core.cpp:84')
        facts = onnx_facts(proto, sha256="")
        self._core = ov.Core()
        caps = list(self._core.get_property(self._device, "OPTIMIZATION_CAPABILITIES"))
        self.precision = plan_precision(self.options.precision, facts.has_qdq, caps)
        self.int8_inexact = (self.precision.name == "int8" and wide_int8_weights(proto, self.path.parent)
                             and not int8_exact_here())
        """INT8 with 8-bit weights on a CPU without VNNI: the outputs are not the Q/DQ graph's (see the module)."""
        if self.int8_inexact:
            log.warning("%s has 8-bit INT8 weights, which OpenVINO computes inexactly on this CPU (no VNNI): its "
                        "output differs from the ONNX's Q/DQ arithmetic and from the PSNR drop recorded for it; "
                        "sr-export --int8-flavour cpu (7-bit weights) is exact here, or use the FP32 file",
                        self.path.name)
        self.fp16_on_cpu = facts.precision == "fp16" and self.precision.hint == "f32"
        """An FP16 file under the ``f32`` hint: OpenVINO computes it in float32 (see :func:`warn_fp16_on_cpu`)."""
        if self.fp16_on_cpu:
            warn_fp16_on_cpu(self.path, "OpenVINO")
        try:
            self._model = self._core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError for graphs it cannot convert
            raise InputError(f"OpenVINO cannot read {self.path}: {_first(exc)}") from exc
        if len(self._model.inputs) != 1:
            raise InputError(f"{self.path} has {len(self._model.inputs)} inputs; an SR model has exactly one")
        self._descriptor = facts.descriptor
        self._shape = facts.input_shape
        self._in_dtype = np.float16 if facts.input_dtype == "float16" else np.float32
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._ov = ov
        return self

    def __exit__(self, *exc: object) -> None:
        self._model = None
        self._compiled = OrderedDict()

    def _active(self) -> Any:
        if self._model is None:
            raise RuntimeError("OpenVinoBackend used outside its 'with' block")
        return self._model

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision.hint}
        if self.options.threads > 0:
            cfg["INFERENCE_NUM_THREADS"] = self.options.threads
        return cfg

    def _request(self, shape: tuple[int, ...]) -> Any:
        """An infer request compiled for ``shape``: reused from the cache, else compiled now."""
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self._active().clone()
        try:
            model.reshape({model.input(0).get_any_name(): list(shape)})
            compiled = self._core.compile_model(model, self._device, self._config())
        except Exception as exc:  # RuntimeError from OpenVINO: a shape the graph cannot take
            raise InputError(f"OpenVINO cannot run {self.path} at input shape {shape}: {_first(exc)}") from exc
        self.compiles += 1
        got = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        log.debug("OpenVINO compiled %s for %s (%s)", self.path.name, shape, got)
        self._compiled[shape] = compiled.create_infer_request()
        while len(self._compiled) > SHAPE_CACHE:
            self._compiled.popitem(last=False)
        return self._compiled[shape]

    # -- Backend protocol --------------------------------------------------

    def input_spec(self) -> InputSpec:
        self._active()
        n, c, h, w = self._shape
        return InputSpec(channels=c, height=h, width=w, max_batch=n)

    def descriptor(self) -> ModelDescriptor | None:
        self._active()
        return self._descriptor

    def run(self, x: np.ndarray) -> np.ndarray:
        """Upscale a batch.

        Args:
            x: (N, C, H, W) float32 in [0, value_range].

        Returns:
            (N, C_out, H_out, W_out) float32.

        Raises:
            InputError: Wrong rank, channels or sample type (see :func:`~sredge.runtime.backends.base.check_batch`),
                or a shape the model cannot take.
        """
        self._active()
        x = np.ascontiguousarray(check_batch(x, self._shape[1], self.path), dtype=self._in_dtype)
        req = self._request(tuple(int(d) for d in x.shape))
        req.infer({0: x}, share_inputs=True)
        return np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def describe(self) -> str:
        self._active()
        threads = self.options.threads or "default"
        inexact = " (inexact here: 8-bit weights without VNNI)" if self.int8_inexact else ""
        inexact += f" ({FP16_ON_CPU})" if self.fp16_on_cpu else ""
        return (f"openvino {self._ov.__version__.split('-')[0]} {self._device} {self.precision.name}{inexact}, "
                f"threads {threads}")


_OV_WHERE = re.compile(r"(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:|Summary:)")
"""Lines of an OpenVINO error that say where in OpenVINO's sources it was raised, not what went wrong."""


def _first(exc: BaseException) -> str:
    """OpenVINO's message on one line, without its source locations (its first line is one: 'Exception from
    src/inference/src/cpp/core.cpp:84:')."""
    said = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not _OV_WHERE.fullmatch(ln.strip())]
    return (" ".join(said) or type(exc).__name__)[:300]
