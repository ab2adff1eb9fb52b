"""A PSNR budget for INT8: keep the most sensitive layers in float until the drop fits.

Super-resolution networks pass fine detail through every layer, and some layers (typically
the first convolution, the upsampler and the last convolution) lose visible quality in
INT8, and so does the reconstruction tail: VDSR's global residual ``Add`` rounds the image
itself to 8 bits. The pass:

1. quantizes everything and measures the Y-PSNR drop against the FP32 model on a validation
   set; within the budget, done;
2. otherwise measures each candidate layer's *sensitivity*: the drop when only that layer is
   INT8 and every other candidate stays float. Candidates are the convolutions and the nodes
   that write the graph's outputs (:func:`candidate_layers`); a layer kept float also reads
   float inputs (:func:`sredge.calibration.quantize.read_float_inputs`);
3. keeps the most sensitive layers in float, one more at a time, until the drop of the
   whole model is within the budget, and says which layers it kept.

The ranking and the search are pure functions (:func:`rank_layers`, :func:`search_float_layers`)
over a ``drop_of`` callable, so they are tested without a model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from sredge.calibration.quantize import QUANTIZED_OPS, Ranges, quantize_int8
from sredge.models.descriptor import ModelDescriptor

log = logging.getLogger(__name__)

DropOf = Callable[[tuple[str, ...]], float]
"""Layers kept in float -> Y-PSNR drop (dB) of the quantized model against FP32."""


@dataclass(frozen=True)
class LayerSensitivity:
    """How much one layer costs in INT8."""

    node: str
    """ONNX node name."""
    op_type: str
    """``Conv``, ``ConvTranspose``, or the op of an output node (``Add``, ``DepthToSpace`` ...)."""
    drop_db: float
    """Y-PSNR drop (dB) with only this layer in INT8."""


@dataclass(frozen=True)
class SearchStep:
    """One tried set of float layers and its drop."""

    kept_float: tuple[str, ...]
    drop_db: float


@dataclass(frozen=True)
class Int8Result:
    """The outcome of quantizing within a budget."""

    model: onnx.ModelProto
    """The chosen Q/DQ model (metadata set)."""
    reference_db: float
    """Mean validation Y-PSNR of the FP32 model."""
    int8_db: float
    """Mean validation Y-PSNR of the chosen model."""
    budget_db: float | None
    """The allowed drop; None: no budget, plain INT8."""
    kept_float: tuple[str, ...] = ()
    """Layers left in float by the sensitivity pass (most sensitive first)."""
    plain_drop_db: float | None = None
    """Drop of plain INT8 (every layer quantized), when the pass ran."""
    sensitivities: tuple[LayerSensitivity, ...] = ()
    """Per-layer sensitivities (most sensitive first), when the pass ran."""
    steps: tuple[SearchStep, ...] = field(default=())

    @property
    def drop_db(self) -> float:
        return self.reference_db - self.int8_db

    @property
    def within_budget(self) -> bool:
        return self.budget_db is None or self.drop_db <= self.budget_db


def rank_layers(sensitivities: Sequence[LayerSensitivity]) -> list[LayerSensitivity]:
    """Most sensitive first; ties keep graph order (pure)."""
    order = {s.node: i for i, s in enumerate(sensitivities)}
    return sorted(sensitivities, key=lambda s: (-s.drop_db, order[s.node]))


def search_float_layers(
    ranked: Sequence[str], drop_of: DropOf, budget_db: float, max_float: int | None = None
) -> tuple[tuple[str, ...], float, list[SearchStep]]:
    """Keep the first 1, 2, ... of ``ranked`` in float until ``drop_of`` is within the budget.

    Args:
        ranked: Layer names, most sensitive first.
        drop_of: Float layers -> drop (dB).
        budget_db: Largest allowed drop.
        max_float: Give up after this many float layers (None: all of ``ranked``).

    Returns:
        ``(kept_float, drop, steps)``: the first prefix that fits (or the longest tried, when none
        does) with its drop, and every step tried.
    """
    limit = len(ranked) if max_float is None else min(max_float, len(ranked))
    steps: list[SearchStep] = []
    for k in range(1, limit + 1):
        kept = tuple(ranked[:k])
        steps.append(SearchStep(kept, drop_of(kept)))
        if steps[-1].drop_db <= budget_db:
            break
    if not steps:
        return (), float("inf"), steps
    return steps[-1].kept_float, steps[-1].drop_db, steps


class Validator:
    """Mean Y-PSNR of a model (an ONNX file or an in-memory model) on a validation dataset.

    ONNX Runtime CPU, whole images, colour handling by the runtime's own code (the
    :func:`sredge.benchmarks.quality.evaluate_y_psnr` path).
    """

    def __init__(self, dataset, desc: ModelDescriptor, threads: int = 0):
        """Args:
            dataset: A :class:`sredge.benchmarks.datasets.Dataset` at the model's scale.
            desc: The model's descriptor.
            threads: ONNX Runtime intra-op threads (0: its default).
        """
        self.dataset, self.desc, self.threads = dataset, desc, threads

    def scores(self, model) -> dict[str, float]:
        """Y-PSNR (dB) per image."""
        import onnxruntime as ort

        from sredge.benchmarks.quality import evaluate_y_psnr

        so = ort.SessionOptions()
        so.log_severity_level = 3
        if self.threads:
            so.intra_op_num_threads = self.threads
        src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        dtype = np.float16 if sess.get_inputs()[0].type == "tensor(float16)" else np.float32

        def run(x: np.ndarray) -> np.ndarray:
            return sess.run(None, {name: x.astype(dtype)})[0].astype(np.float32)

        return evaluate_y_psnr(run, self.desc, self.dataset)

    def mean_db(self, model) -> float:
        """Mean Y-PSNR (dB) over the images."""
        return float(np.mean(list(self.scores(model).values())))


def candidate_layers(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(name, op_type) of the layers the pass may keep float, in graph order (pure).

    The convolutions, and every other node that writes a graph output (the reconstruction
    tail: VDSR's residual ``Add``, a final ``DepthToSpace`` or ``Clip``).
    """
    outputs = {o.name for o in model.graph.output}
    return [(n.name, n.op_type) for n in model.graph.node
            if n.op_type in QUANTIZED_OPS or (outputs & set(n.output) and n.name)]


def layer_labels(model: onnx.ModelProto) -> dict[str, str]:
    """Readable names of the candidate layers, for messages (pure): node name -> label.

    Convolutions are counted in graph order and carry the module path of their weight
    (``conv 1 of 8 (first conv, body.0)``, ``conv 8 of 8 (upsampler, body.14)``); a transposed
    convolution is a ``deconvolution (upsampler, last_part)``; output nodes are named by their role
    (``residual add``, ``pixel shuffle``, ``output clip``).
    """
    convs = [n for n in model.graph.node if n.op_type in QUANTIZED_OPS]
    readers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)
    produced = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    roles = {"Add": "residual add", "Sum": "residual add", "DepthToSpace": "pixel shuffle", "Clip": "output clip",
             "Resize": "output resize"}
    labels = {}
    for i, n in enumerate(convs, 1):
        weight = n.input[1] if len(n.input) > 1 else ""
        while weight not in inits and weight in produced and produced[weight].input:  # through a DequantizeLinear
            weight = produced[weight].input[0]
        module = weight.removesuffix("_quantized").rsplit(".", 1)[0] if weight in inits else ""
        if n.op_type == "ConvTranspose":
            head, role = "deconvolution", "upsampler"
        else:
            head = f"conv {i} of {len(convs)}"
            role = "first conv" if i == 1 else "upsampler" if "DepthToSpace" in readers.get(n.output[0], []) else ""
        extra = ", ".join(p for p in (role, module) if p)
        labels[n.name] = head + (f" ({extra})" if extra else "")
    for name, op in candidate_layers(model):
        labels.setdefault(name, roles.get(op, op.lower()))
    return labels


def quantize_within_budget(
    fp32_model,
    ranges: Ranges,
    score: Callable[[onnx.ModelProto], float],
    reference_db: float,
    budget_db: float | None,
    desc: ModelDescriptor | None = None,
    max_float: int | None = None,
) -> Int8Result:
    """Quantize, and when the drop exceeds ``budget_db`` run the sensitivity pass.

    Args:
        fp32_model: The FP32 ONNX file.
        ranges: Its calibration (:func:`sredge.calibration.quantize.calibrate`).
        score: Model -> mean validation Y-PSNR (dB), e.g. :meth:`Validator.mean_db`.
        reference_db: The FP32 model's score.
        budget_db: Largest allowed drop (dB); None quantizes every layer and stops.
        desc: Descriptor to embed (None: the file's).
        max_float: Most layers the pass may keep in float (None: any number).

    Returns:
        The chosen model and how it was chosen. ``within_budget`` is False when even
        ``max_float`` float layers did not bring the drop within the budget.
    """
    plain = quantize_int8(fp32_model, ranges, desc)
    plain_db = score(plain)
    plain_drop = reference_db - plain_db
    log.info("plain INT8: %.3f dB (drop %.3f dB)", plain_db, plain_drop)
    if budget_db is None or plain_drop <= budget_db:
        return Int8Result(plain, reference_db, plain_db, budget_db)

    layers = candidate_layers(onnx.load(str(fp32_model), load_external_data=False))
    names = [n for n, _ in layers]
    sens = []
    for name, op in layers:
        others = tuple(n for n in names if n != name)
        drop = reference_db - score(quantize_int8(fp32_model, ranges, desc, keep_float=others))
        sens.append(LayerSensitivity(name, op, drop))
        log.info("sensitivity of %s (%s): %.3f dB", name, op, drop)
    ranked = rank_layers(sens)

    models: dict[tuple[str, ...], tuple[onnx.ModelProto, float]] = {}

    def drop_of(kept: tuple[str, ...]) -> float:
        m = quantize_int8(fp32_model, ranges, desc, keep_float=kept)
        db = score(m)
        models[kept] = (m, db)
        return reference_db - db

    kept, _, steps = search_float_layers([s.node for s in ranked], drop_of, budget_db, max_float)
    model, db = models[kept] if kept else (plain, plain_db)
    return Int8Result(model, reference_db, db, budget_db, kept, plain_drop, tuple(ranked), tuple(steps))
