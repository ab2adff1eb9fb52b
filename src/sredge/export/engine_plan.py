"""Planning a TensorRT engine build (pure): profiles, precision flags, DLA, cache keys.

Everything ``sr-build`` decides is decided here, from plain data: the build options, the
facts read from the ONNX (:class:`OnnxFacts`, and :class:`QdqEncoding` for a Q/DQ file), the set
of TensorRT API names this install has (feature detection, never a version string) and the device.
:mod:`sredge.export.engine_build` only applies a :class:`BuildPlan` to a live TensorRT.
:func:`preflight` makes every refusal that needs no TensorRT, so a bad option or input is reported
before TensorRT is imported (on a machine without it, too); :func:`plan_build` repeats it first.

TensorRT generations, told apart by feature:

* **TensorRT 10 (JetPack 6)** has ``BuilderFlag.FP16`` / ``BuilderFlag.INT8`` and the legacy
  ``IInt8EntropyCalibrator2``: a plain float32 ONNX can be built in FP16 or INT8 (with a
  calibration set or cache), also on DLA with GPU fallback.
* **TensorRT 11** builds only strongly typed networks (the per-precision builder flags and
  implicit INT8 calibration are gone): the precision comes from the ONNX itself, an FP16 or
  a Q/DQ (INT8) export. Its ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` is deprecated and
  ignored, so sredge tells TensorRT 11 by the missing weak-typing flags
  (:func:`strongly_typed_only`) and does not pass the flag there.

Coordinate space: tile sizes are in network-input pixels, exactly as ``sr-run --tile``
counts them (for pre-upsampling networks such as VDSR, pixels of the bicubic-upsampled
image). A tile is the whole window a network call sees, overlap included.

Tested exhaustively without TensorRT (``tests/export/test_engine_plan.py``); the feature sets
those tests assume are checked against the real Python bindings of TensorRT 10.3, 10.13, 11.0
and 11.4 (``tests/trt_conformance``). What the plan means to a real TensorRT build has not been
verified here (see :mod:`sredge.export.engine_build`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sredge.errors import InputError
from sredge.models.onnx_file import OnnxFacts, onnx_facts  # noqa: F401  (the planner's input, read here too)

KEY_VERSION = 1
"""Bumped when the meaning of a build option changes, so older engines are rebuilt."""

DEFAULT_TILE = 256
"""Profile opt tile edge when ``--tile`` is not given."""

MIN_TILE = 16
"""Smallest tile edge an engine accepts by default: sr-run pads thinner images to 16 pixels."""

# Feature names :func:`sredge.export.engine_build.trt_features` reports (attribute paths on the module).
F_STRONGLY_TYPED = "NetworkDefinitionCreationFlag.STRONGLY_TYPED"
F_FP16 = "BuilderFlag.FP16"
F_INT8 = "BuilderFlag.INT8"
F_TF32 = "BuilderFlag.TF32"
F_GPU_FALLBACK = "BuilderFlag.GPU_FALLBACK"
F_CALIBRATOR = "IInt8EntropyCalibrator2"
F_DLA = "DeviceType.DLA"
FEATURES = (F_STRONGLY_TYPED, F_FP16, F_INT8, F_TF32, F_GPU_FALLBACK, F_CALIBRATOR, F_DLA)
"""Every TensorRT API name the planner asks about."""


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class BatchRange:
    """The batch axis of an optimization profile (``--batch min:opt:max``)."""

    min: int
    """Smallest batch the engine accepts."""
    opt: int
    """Batch TensorRT tunes its kernels for."""
    max: int
    """Largest batch the engine accepts."""


@dataclass(frozen=True)
class BuildOptions:
    """What ``sr-build`` lets a user choose; every field changes the engine and is in its cache key."""

    tile: int | None = None
    """Tile edge TensorRT optimizes for (the profile's opt height and width), network-input pixels;
    None: :data:`DEFAULT_TILE` (a fixed-shape model: its own size)."""
    max_tile: int | None = None
    """Largest tile edge the engine accepts (profile max); None: ``tile``."""
    min_tile: int = MIN_TILE
    """Smallest tile edge the engine accepts (profile min); rounded up to the model's size multiple."""
    batch: BatchRange = BatchRange(1, 1, 1)
    """Batch axis of the profile."""
    fp16: bool = False
    """Allow FP16 kernels for a float32 ONNX (TensorRT 10 builder flag); an FP16 ONNX needs no flag."""
    int8: bool = False
    """Allow INT8 kernels: a Q/DQ ONNX carries its scales; a float32 ONNX needs calibration (TensorRT 10)."""
    tf32: bool = False
    """Allow TF32 for float32 layers (TensorRT enables it by default; sredge keeps float32 exact unless asked)."""
    dla_core: int | None = None
    """Run on this DLA core (Jetson), FP16 or INT8 only; None: the GPU."""
    gpu_fallback: bool = True
    """With ``dla_core``: run the layers the DLA cannot on the GPU instead of failing the build."""
    workspace_mb: int | None = None
    """Builder workspace memory pool limit in MiB; None: TensorRT's default (the device memory)."""
    calibration_fingerprint: str | None = None
    """sha256 of the calibration data (images or cache) used for implicit INT8; None without calibration."""


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU an engine is built for (engines run only on the GPU model and TensorRT that built them)."""

    name: str
    """Device name, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"Orin"``."""
    compute_capability: str
    """``"major.minor"``, e.g. ``"8.7"``."""
    multiprocessors: int = 0
    """Streaming multiprocessors: tells Jetson Orin modules apart (AGX, NX, Nano: all "Orin", 8.7)."""


@dataclass(frozen=True)
class QdqEncoding:
    """How a Q/DQ ONNX stores its quantized integers, read from its tensors (never its metadata).

    TensorRT takes symmetric quantization only: int8 with zero point 0. ONNX Runtime's CPU encoding
    (sr-export's default ``--int8-flavour cpu``) quantizes activations to uint8 with non-zero zero
    points, which TensorRT does not take (its documentation: zero point 0 only).
    """

    uint8: tuple[str, ...] = ()
    """Quantized tensors stored as uint8 (by a uint8 zero point, a uint8 initializer or
    ``output_dtype``), sorted."""
    nonzero_zero_points: tuple[str, ...] = ()
    """Zero-point tensors holding a value other than 0 (asymmetric quantization), sorted."""
    int32: tuple[str, ...] = ()
    """Stored int32 tensors read through DequantizeLinear (ONNX Runtime's quantized biases), sorted. TensorRT's
    parser takes DequantizeLinear of int8 (fp8, int4) only: "only activation types allowed as input"."""

    deconv_output_axis: tuple[str, ...] = ()
    """ConvTranspose weights dequantized with a per-channel scale along an axis other than 0 (ONNX Runtime's
    per-output-channel axis 1), sorted. TensorRT's deconvolution kernels take per-input-channel scales
    (axis 0) only (NVIDIA/TensorRT#2380; axis 1 gave wrong engines in #1694)."""

    @property
    def tensorrt_int8(self) -> bool:
        """Whether TensorRT can take this encoding (no uint8, every zero point 0, no int32 dequantized, no
        transposed convolution weight scaled per output channel)."""
        return not (self.uint8 or self.nonzero_zero_points or self.int32 or self.deconv_output_axis)


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Profile:
    """Optimization profile 0 of the image input: (N, C, H, W) at min, opt and max."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]


@dataclass(frozen=True)
class PrecisionPlan:
    """How TensorRT is told the precision."""

    strongly_typed: bool
    """Types come from the ONNX (a strongly typed network)."""
    fp16: bool
    """Set ``BuilderFlag.FP16``."""
    int8: bool
    """Set ``BuilderFlag.INT8``."""
    calibrate: bool
    """Attach the legacy ``IInt8EntropyCalibrator2`` (implicit INT8 of a float ONNX)."""
    clear_tf32: bool
    """Clear ``BuilderFlag.TF32`` (on by default in TensorRT) so float32 layers stay float32."""
    summary: str
    """One line for the user: what the engine computes in and why."""
    typed_flag: bool = False
    """Create the network with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (TensorRT 10, where weak
    typing is the default); False where every network is strongly typed (TensorRT 11) or weakly typed."""


@dataclass(frozen=True)
class DlaPlan:
    """Where the network runs."""

    core: int
    """DLA core index."""
    gpu_fallback: bool
    """Set ``BuilderFlag.GPU_FALLBACK``."""


@dataclass(frozen=True)
class BuildPlan:
    """Everything needed to build one engine."""

    input_name: str
    profile: Profile
    precision: PrecisionPlan
    dla: DlaPlan | None
    workspace_bytes: int | None


# --------------------------------------------------------------------------- parsing


def parse_batch(text: str) -> BatchRange:
    """``--batch``: ``N`` (1..N, tuned for N) or ``min:opt:max``.

    Raises:
        InputError: Not integers, not 1 <= min <= opt <= max, or not one or three fields.
    """
    parts = str(text).strip().split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--batch {text!r}: give N or min:opt:max with whole numbers, e.g. 1:4:8") from None
    if len(nums) == 1:
        lo, opt, hi = 1, nums[0], nums[0]
    elif len(nums) == 3:
        lo, opt, hi = nums
    else:
        raise InputError(f"--batch {text!r}: give N or min:opt:max (three numbers), e.g. 1:4:8")
    if not 1 <= lo <= opt <= hi:
        raise InputError(f"--batch {text!r}: need 1 <= min <= opt <= max")
    return BatchRange(lo, opt, hi)


# --------------------------------------------------------------------------- profile


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def plan_profile(opts: BuildOptions, facts: OnnxFacts) -> Profile:
    """Optimization profile 0 from ``--tile``/``--max-tile``/``--batch`` and the model (pure).

    Tile edges are rounded up to the model's ``size_multiple`` (as sr-run's tiler pads them).
    A model with a fixed input height/width gets exactly that shape. A DLA build
    (``opts.dla_core``) gets a static profile, min = opt = max at ``--tile``: the DLA runs static
    shapes only, and a dynamic profile would put the whole network on the GPU (with fallback) or
    fail the build (without).

    Raises:
        InputError: Non-positive sizes, min > tile > max, a fixed batch contradicting ``--batch``,
            ``--tile`` contradicting a fixed-shape model, or a range of shapes for the DLA.
    """
    n, c, h, w = facts.input_shape
    desc = facts.descriptor
    if desc is not None and desc.in_channels != c:
        raise InputError(f"the ONNX metadata says {desc.in_channels} input channels, its graph {c}")
    b = opts.batch
    if n is not None and (b.min, b.max) != (n, n):
        raise InputError(f"the ONNX has a fixed batch of {n}: build with --batch {n}:{n}:{n} or re-export it")
    if (h is None) != (w is None):
        raise InputError(f"the ONNX input has shape {facts.input_shape}: height and width must both be fixed "
                         "or both dynamic")
    if h is not None and w is not None:
        if opts.max_tile is not None or opts.tile is not None:
            raise InputError(f"the ONNX takes only {h}x{w} inputs: drop --tile/--max-tile (or re-export with "
                             "dynamic height and width)")
        fixed = (h, w)
        if opts.dla_core is not None and b.min != b.max:
            raise InputError(f"the DLA runs one input shape: give --batch {b.opt}:{b.opt}:{b.opt}")
        return Profile((b.min, c, *fixed), (b.opt, c, *fixed), (b.max, c, *fixed))

    m = max(desc.size_multiple if desc else 1, 1)
    if opts.tile is not None:
        tile = opts.tile
    else:  # the default tile, kept inside the bounds the user gave
        tile = max(DEFAULT_TILE, opts.min_tile)
        tile = tile if opts.max_tile is None else min(tile, opts.max_tile)
    max_tile = tile if opts.max_tile is None else opts.max_tile
    if min(tile, max_tile, opts.min_tile) < 1:
        raise InputError("--tile, --max-tile and the minimum tile must be positive")
    if opts.dla_core is not None:
        if max_tile != tile or b.min != b.max:
            fix = ((["drop --max-tile"] if max_tile != tile else [])
                   + ([f"give --batch {b.opt}:{b.opt}:{b.opt}"] if b.min != b.max else []))
            raise InputError(f"the DLA runs one input shape (min = opt = max): {' and '.join(fix)}; sr-run then "
                             f"tiles at --tile {tile}")
        edge = _round_up(tile, m)
        _refuse_huge(edge, b.opt)
        shape = (b.opt, c, edge, edge)
        return Profile(shape, shape, shape)
    lo, opt, hi = _round_up(opts.min_tile, m), _round_up(tile, m), _round_up(max_tile, m)
    _refuse_huge(max(opt, hi), b.max)
    if not lo <= opt <= hi:
        names = ("--min-tile" if opts.min_tile != MIN_TILE else "minimum tile",
                 "--tile" if opts.tile is not None else "the default tile",
                 "--max-tile" if opts.max_tile is not None else "the largest tile")
        raise InputError(f"need {names[0]} {lo} <= {names[1]} {opt} <= {names[2]} {hi}"
                         + (f" (rounded up to the model's size multiple {m})" if m > 1 else ""))
    return Profile((b.min, c, lo, lo), (b.opt, c, opt, opt), (b.max, c, hi, hi))


def _refuse_huge(edge: int, batch: int) -> None:
    """Refuse a profile whose largest call holds more than sr-run's pixel limit: TensorRT would fail late
    (or take all memory) on what is a typing slip (``--tile 100000``)."""
    from sredge.limits import DEFAULT_MAX_PIXELS

    if edge * edge * batch > DEFAULT_MAX_PIXELS:
        raise InputError(f"a batch of {batch} tiles of {edge}x{edge} is {edge * edge * batch:,} pixels per call, over "
                         f"the limit of {DEFAULT_MAX_PIXELS:,}: sr-run tiles frames, so tiles of {DEFAULT_TILE} to "
                         "1024 pixels are what an engine needs")


# --------------------------------------------------------------------------- Q/DQ encoding

_UINT8, _INT32, _EXTERNAL = 2, 6, 1  # onnx.TensorProto.UINT8, onnx.TensorProto.INT32, onnx.TensorProto.EXTERNAL
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def qdq_encoding(model) -> QdqEncoding:
    """The integer encoding of a loaded ONNX's Q/DQ nodes (pure: reads only the proto).

    Zero points are read from initializers and ``Constant`` nodes; one computed at run time, or
    stored outside the file, is judged by its type alone. A QuantizeLinear without a zero point
    (uint8 by the ONNX standard) is not counted as uint8 unless its ``output_dtype`` says so:
    TensorRT quantizes to int8 whatever the standard's default (from its documentation, not
    checked on a real TensorRT).

    Args:
        model: ``onnx.ModelProto`` (weights need not be loaded).
    """
    from onnx import numpy_helper

    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts.update((node.output[0], a.t) for a in node.attribute if a.name == "value")
    uint8, nonzero, int32 = set(), set(), set()
    for node in graph.node:
        if node.op_type not in _QDQ_OPS:
            continue
        quantized = node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]
        zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zp is not None:
            if zp.data_type == _UINT8:
                uint8.add(quantized)
            if zp.data_location != _EXTERNAL and numpy_helper.to_array(zp).any():
                nonzero.add(zp.name or node.input[2])
        stored = consts.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if stored is not None and stored.data_type == _UINT8:
            uint8.add(quantized)
        if stored is not None and stored.data_type == _INT32:
            int32.add(quantized)
        if any(a.name == "output_dtype" and a.i == _UINT8 for a in node.attribute):
            uint8.add(quantized)
    return QdqEncoding(tuple(sorted(uint8)), tuple(sorted(nonzero)), tuple(sorted(int32)),
                       _deconv_output_axis(graph, consts))


def _deconv_output_axis(graph, consts: dict) -> tuple[str, ...]:
    """The ConvTranspose weights of ``graph`` dequantized per channel on an axis other than 0."""
    produced = {o: n for n in graph.node for o in n.output}
    found = set()
    for node in graph.node:
        dq = produced.get(node.input[1]) if node.op_type == "ConvTranspose" and len(node.input) > 1 else None
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[1] not in consts:
            continue
        if len(consts[dq.input[1]].dims) == 0:
            continue  # one scale for the whole weight
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        stored = consts.get(dq.input[0])
        rank = len(stored.dims) if stored is not None else 4
        if axis % rank != 0:
            found.add(dq.input[0])
    return tuple(sorted(found))


# --------------------------------------------------------------------------- refusals without TensorRT


def _refuse_precision_request(opts: BuildOptions, facts: OnnxFacts, qdq: QdqEncoding | None) -> None:
    """The precision refusals that hold on every TensorRT (see :func:`plan_precision`)."""
    onnx_p = facts.precision
    calib = opts.calibration_fingerprint is not None
    if onnx_p == "int8" and qdq is not None and not qdq.tensorrt_int8:
        found = [f"{len(names)} {what}, e.g. {names[0]!r}" for names, what in (
            (qdq.uint8, "uint8 tensors"), (qdq.nonzero_zero_points, "non-zero zero points"),
            (qdq.int32, "int32 tensors dequantized (biases)"),
            (qdq.deconv_output_axis, "ConvTranspose weights scaled per output channel")) if names]
        raise InputError(
            f"the ONNX's Q/DQ is not TensorRT's encoding ({'; '.join(found)}): TensorRT takes symmetric int8 "
            "(zero point 0), biases in float, ConvTranspose weights scaled per input channel; export it again "
            "with sr-export --precision int8 --int8-flavour trt (or sr-train --qat --flavour trt)"
        )
    if calib and not (opts.int8 and onnx_p != "int8"):
        why = "the Q/DQ ONNX already carries its INT8 scales" if onnx_p == "int8" else "it is for --int8"
        raise InputError(f"calibration data was given but {why}: drop --calib/--calib-cache")
    if opts.int8 and onnx_p == "fp16":  # NVIDIA calibrates FP32 networks (TensorRT#4196): no HALF batches
        raise InputError(
            "--int8 calibrates a float32 ONNX, not an FP16 one: build from the FP32 export (NAME.onnx) with --int8 "
            "--calib DIR, adding --fp16 for FP16 in the layers TensorRT leaves out of INT8"
        )
    if opts.int8 and onnx_p != "int8" and not calib:
        raise InputError(
            "--int8 on a float ONNX needs calibration data: --calib DIR (images like the ones you will upscale) "
            "or --calib-cache FILE; or build a Q/DQ ONNX (sr-export --precision int8) without --int8"
        )


def _refuse_dla_request(opts: BuildOptions, facts: OnnxFacts) -> None:
    """The DLA refusals that hold on every TensorRT and device (see :func:`plan_dla`)."""
    if opts.dla_core is None:
        if not opts.gpu_fallback:
            raise InputError("--no-gpu-fallback applies only with --dla-core N")
        return
    if opts.dla_core < 0:
        raise InputError("--dla-core must be >= 0")
    if facts.precision == "int8":  # NVIDIA/TensorRT#2222, cuDLA-samples#19: Q/DQ layers are not DLA layers
        raise InputError("the DLA runs INT8 only by calibration (implicit quantization), not from a Q/DQ ONNX: "
                         "build the DLA engine from the FP32 ONNX with --int8 --calib DIR (or --fp16), or drop "
                         "--dla-core to run this file on the GPU")
    # --fp16/--int8 set the builder flags (or are refused by plan_precision); an FP16 ONNX needs neither.
    if not (opts.fp16 or opts.int8 or facts.precision == "fp16"):
        raise InputError("the DLA runs FP16 or INT8 only: add --fp16 (or --int8 with calibration), or build "
                         "from an FP16 ONNX")


def preflight(opts: BuildOptions, facts: OnnxFacts, qdq: QdqEncoding | None = None) -> Profile:
    """Every refusal of :func:`plan_build` that needs no TensorRT, in its order (pure).

    Option values and their combinations, the profile against the model, calibration data against
    the precision, a Q/DQ encoding TensorRT cannot take and the DLA's static shape and reduced
    precision: ``sr-build`` runs this before it imports TensorRT, so these are reported on a
    machine without it too. What depends on the TensorRT install (its features, the device's DLA
    cores) is left to :func:`plan_build`.

    Args:
        opts: The build options (``calibration_fingerprint`` set when calibration data is given).
        facts: The ONNX facts.
        qdq: The Q/DQ encoding (:func:`qdq_encoding`); None: not read, a Q/DQ ONNX is taken as
            TensorRT's.

    Returns:
        The optimization profile.

    Raises:
        InputError: The first problem, with what to do instead.
    """
    if opts.workspace_mb is not None and opts.workspace_mb < 1:
        raise InputError("--workspace must be at least 1 MiB")
    profile = plan_profile(opts, facts)
    _refuse_precision_request(opts, facts, qdq)
    _refuse_dla_request(opts, facts)
    return profile


# --------------------------------------------------------------------------- precision


def strongly_typed_only(features: frozenset[str] | set[str]) -> bool:
    """Whether every network this TensorRT builds is strongly typed (TensorRT 11 and later), by feature.

    TensorRT 11 removed the weak-typing precision flags (``BuilderFlag.FP16``/``INT8``) and the legacy
    calibrator, and keeps ``STRONGLY_TYPED`` only as a deprecated, ignored member; this test does not
    rely on that member, so it holds when NVIDIA removes it. A module with no builder flags at all is
    not taken for TensorRT 11.
    """
    weak_api = {F_FP16, F_INT8, F_CALIBRATOR} & set(features)
    builder_flags = {F_TF32, F_GPU_FALLBACK} & set(features)
    return not weak_api and bool(builder_flags)


def plan_precision(opts: BuildOptions, facts: OnnxFacts, features: frozenset[str] | set[str],
                   qdq: QdqEncoding | None = None) -> PrecisionPlan:
    """How to build the precision the user asked for on this TensorRT (pure, by feature).

    Rules: the ONNX's own types are never overridden silently. An FP16 or Q/DQ ONNX is built
    strongly typed where TensorRT can, except for the DLA on TensorRT 10, which documents DLA builds
    with precision flags only (FP16, with the same types; the DLA takes no Q/DQ ONNX); a Q/DQ ONNX must be
    symmetric int8 (zero point 0), as TensorRT takes no other; ``--fp16``/``--int8`` on a float32
    ONNX need TensorRT 10's builder flags, and ``--int8`` on a float32 ONNX also the legacy entropy
    calibrator with calibration data; an FP16 ONNX is not calibrated (NVIDIA calibrates float32
    networks; the FP32 export with ``--int8 --fp16`` gives the same engine without HALF batches).

    Args:
        opts: The build options.
        facts: The ONNX facts.
        features: TensorRT API names present (:data:`FEATURES`).
        qdq: The Q/DQ encoding (:func:`qdq_encoding`); None: not read, a Q/DQ ONNX is taken as TensorRT's.

    Raises:
        InputError: A request this TensorRT or this ONNX cannot honour, with what to do instead.
    """
    always_typed = strongly_typed_only(features)
    st = always_typed or F_STRONGLY_TYPED in features
    has_fp16_flag, has_int8_flag = F_FP16 in features, F_INT8 in features
    clear_tf32 = F_TF32 in features and not opts.tf32
    onnx_p = facts.precision

    _refuse_precision_request(opts, facts, qdq)
    if opts.tf32 and F_TF32 not in features:
        raise InputError("this TensorRT has no TF32 builder flag: drop --tf32")

    def weak(fp16: bool, int8: bool, calibrate: bool, summary: str) -> PrecisionPlan:
        missing = [f for f, need in ((F_FP16, fp16), (F_INT8, int8), (F_CALIBRATOR, calibrate)) if need
                   and f not in features]
        if missing:
            raise InputError(
                f"this TensorRT has no {', '.join(missing)} (TensorRT 11 builds only strongly typed networks): "
                "build from an ONNX that carries the precision instead, an FP16 export or a Q/DQ INT8 ONNX "
                "(sr-export --precision int8, sr-train --qat), without --fp16/--int8"
            )
        return PrecisionPlan(False, fp16, int8, calibrate, clear_tf32, summary)

    def strong(summary: str) -> PrecisionPlan:
        return PrecisionPlan(True, False, False, False, clear_tf32, summary, typed_flag=not always_typed)

    if opts.int8 and onnx_p == "fp32":  # with calibration data (_refuse_precision_request)
        return weak(opts.fp16, True, True,
                    "INT8 by entropy calibration" + (" with FP16" if opts.fp16 else "") + " (builder flags)")
    # TensorRT 10 documents DLA builds with precision flags only (strongly typed DLA builds appear in
    # 11.4.1); JetPack 6's TensorRT 10.3 gets the documented recipe, FP16 by flag. (A Q/DQ ONNX never
    # goes to the DLA: _refuse_dla_request.)
    dla_by_flags = opts.dla_core is not None and has_fp16_flag
    if onnx_p == "int8":
        if opts.fp16:  # Q/DQ layers in INT8, the rest in FP16: TensorRT 10's weakly typed mode
            return weak(True, True, False, "INT8 from the ONNX's Q/DQ scales, other layers FP16 (builder flags)")
        if st:
            return strong("INT8 from the ONNX's Q/DQ scales (strongly typed)")
        return weak(False, True, False, "INT8 from the ONNX's Q/DQ scales (builder flag)")
    if onnx_p == "fp16":
        if dla_by_flags:
            return weak(True, False, False,
                        "FP16 as typed in the ONNX (builder flag, as TensorRT 10 builds for the DLA)")
        if st:
            return strong("FP16 as typed in the ONNX (strongly typed)")
        return weak(True, False, False, "FP16 as typed in the ONNX (builder flag)")
    if opts.fp16:
        return weak(True, False, False, "FP16 kernels allowed for a float32 ONNX (builder flag)")
    if st:
        return strong("FP32" + (" (TF32 allowed)" if opts.tf32 else "") + " (strongly typed)")
    if not (has_fp16_flag or has_int8_flag):
        raise InputError("this TensorRT has neither strongly typed networks nor precision flags; sredge needs "
                         'TensorRT 10 or newer: pip install "sredge[trt]"')
    return PrecisionPlan(False, False, False, False, clear_tf32,
                         "FP32" + (" (TF32 allowed)" if opts.tf32 else ""))


def plan_dla(opts: BuildOptions, facts: OnnxFacts, features: frozenset[str] | set[str],
             dla_cores: int | None = None) -> DlaPlan | None:
    """DLA settings for ``--dla-core N`` (pure).

    Args:
        opts: The build options.
        facts: The ONNX facts (for its own precision: the DLA runs FP16 or INT8 only).
        features: TensorRT API names present.
        dla_cores: ``Builder.num_DLA_cores`` when known (None: not checked here).

    Raises:
        InputError: No DLA support in this TensorRT, a core this device lacks, or an FP32 build.
    """
    _refuse_dla_request(opts, facts)
    if opts.dla_core is None:
        return None
    if F_DLA not in features:
        raise InputError("this TensorRT has no DLA support (DeviceType.DLA): drop --dla-core")
    if opts.gpu_fallback and F_GPU_FALLBACK not in features:
        raise InputError("this TensorRT has no GPU fallback for DLA: add --no-gpu-fallback")
    if dla_cores is not None and opts.dla_core >= dla_cores:
        have = f"cores 0..{dla_cores - 1}" if dla_cores else "no DLA cores"
        raise InputError(f"--dla-core {opts.dla_core}: this device has {have}")
    return DlaPlan(opts.dla_core, opts.gpu_fallback)


def plan_build(opts: BuildOptions, facts: OnnxFacts, features: frozenset[str] | set[str],
               dla_cores: int | None = None, qdq: QdqEncoding | None = None) -> BuildPlan:
    """The whole build plan (pure): :func:`preflight`, then precision, DLA and workspace for this TensorRT.

    Args:
        opts: The build options.
        facts: The ONNX facts.
        features: TensorRT API names present (:data:`FEATURES`).
        dla_cores: ``Builder.num_DLA_cores`` when known (None: not checked).
        qdq: The Q/DQ encoding (:func:`qdq_encoding`); None: not read, a Q/DQ ONNX is taken as TensorRT's.

    Raises:
        InputError: Any option this model or TensorRT cannot honour.
    """
    profile = preflight(opts, facts, qdq)
    precision = plan_precision(opts, facts, features, qdq)
    dla = plan_dla(opts, facts, features, dla_cores)
    ws = None if opts.workspace_mb is None else opts.workspace_mb << 20
    return BuildPlan(facts.input_name, profile, precision, dla, ws)


# --------------------------------------------------------------------------- cache key


def cache_key(facts: OnnxFacts, opts: BuildOptions, plan: BuildPlan, trt_version: str, device: DeviceInfo) -> str:
    """sha256 over everything that changes the engine (pure).

    Covers the ONNX bytes (their checksum, with any external-data files), every build option, the resolved
    plan, the TensorRT version, the GPU name, its compute capability and its multiprocessor count. Not
    covered: the timing cache (it only speeds the build up) and the output path.
    """
    payload = {
        "key_version": KEY_VERSION,
        "onnx_sha256": facts.sha256,
        "options": asdict(opts),
        "plan": asdict(plan),
        "tensorrt": trt_version,
        "gpu": device.name,
        "compute_capability": device.compute_capability,
        "multiprocessors": device.multiprocessors,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sidecar_facts(key: str, facts: OnnxFacts, plan: BuildPlan, trt_version: str, device: DeviceInfo) -> dict:
    """The build facts ``sr-build`` writes into ``<engine>.json`` next to the descriptor (pure).

    ``sr-run`` compares ``tensorrt_version``, ``gpu_name``, ``compute_capability`` and ``multiprocessors``
    with the
    machine it runs on (:func:`sredge.runtime.backends.trt.check_engine_matches`).
    """
    return {
        "build_key": key,
        "built_by": "sr-build",
        "tensorrt_version": trt_version,
        "gpu_name": device.name,
        "compute_capability": device.compute_capability,
        "multiprocessors": device.multiprocessors,
        "onnx_sha256": facts.sha256,
        "onnx_precision": facts.precision,
        "precision": plan.precision.summary,
        "profile": {"input": plan.input_name, "min": list(plan.profile.min), "opt": list(plan.profile.opt),
                    "max": list(plan.profile.max)},
        "dla_core": plan.dla.core if plan.dla else None,
    }


def is_up_to_date(engine: Path, sidecar_extra: dict, key: str) -> bool:
    """Whether ``engine`` exists and its sidecar was written for ``key`` (a stale engine is rebuilt)."""
    return engine.is_file() and sidecar_extra.get("build_key") == key


def fingerprint_files(named_digests: list[tuple[str, str]]) -> str:
    """One sha256 over (relative name, sha256 of content) pairs, order-independent (pure)."""
    text = "\n".join(f"{n}\t{d}" for n, d in sorted(named_digests))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def center_crop(x, tile: int, tile_w: int | None = None):
    """The centre ``tile`` x ``tile_w`` window of a (1, C, H, W) array, reflect-padded when smaller (pure).

    Calibration batches must have the profile's opt shape, which is not square for a fixed-shape
    model (e.g. 128x96); images are cropped, not resized, so their pixel statistics stay those of
    real inputs.

    Args:
        x: (1, C, H, W) array.
        tile: Window height.
        tile_w: Window width; None: ``tile`` (a square window).
    """
    import numpy as np

    th, tw = tile, tile if tile_w is None else tile_w
    _, _, h, w = x.shape
    if h < th or w < tw:
        ph, pw = max(th - h, 0), max(tw - w, 0)
        mode = "reflect" if ph < h and pw < w else "edge"
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
        h, w = x.shape[2:]
    y0, x0 = (h - th) // 2, (w - tw) // 2
    return x[:, :, y0:y0 + th, x0:x0 + tw]


def default_timing_cache(cache_home: Path, trt_version: str, device: DeviceInfo) -> Path:
    """Where the persistent timing cache lives for this TensorRT and GPU (pure).

    Timing caches are specific to the TensorRT version and device, so each pair gets its own
    file under ``<cache_home>/sredge/tensorrt/``.
    """
    def clean(s: str) -> str:
        return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in s).strip("_") or "unknown"

    sms = f"_{device.multiprocessors}sm" if device.multiprocessors else ""  # Orin AGX / NX / Nano
    name = f"timing_trt{clean(trt_version)}_sm{clean(device.compute_capability)}_{clean(device.name)}{sms}.cache"
    return Path(cache_home) / "sredge" / "tensorrt" / name
