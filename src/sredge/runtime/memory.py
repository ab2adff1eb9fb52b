"""The memory an upscale will need, estimated from shapes before anything is allocated, and the check
that refuses a run the machine cannot hold.

A run that does not fit must end with one line that says what does fit, never with the kernel's
OOM killer (no message at all) or a MemoryError half-way. The estimate is pure arithmetic on the
image size, the descriptor and the tiling (:func:`estimate`); what is available is read once from
the system (:func:`available_bytes`); :func:`check_fits` compares them and, when the run does not
fit, finds the tile setting that would (:func:`fitting_tile`).
"""

from __future__ import annotations

import logging
import math
import resource
from dataclasses import dataclass, replace
from pathlib import Path

from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.tiling import MIN_SIDE, TileConfig, activation_bytes_per_px, tile_shape

HEADROOM = 64 << 20
"""Kept free beyond the estimate: the model's weights, the interpreter's own allocations, encoder buffers."""
TILE_CHOICES = (1024, 768, 512, 384, 256, 192, 128, 96, 64)
"""Tile edges :func:`fitting_tile` tries, largest first."""
DEFAULT_FEATURE_CHANNELS = 64
"""Activation channels assumed of a model whose graph cannot be read (an engine, a checkpoint)."""
ORT_OVER_LIVENESS = 2.5
"""ONNX Runtime's CPU peak over the float32 tensors a graph holds live at once (measured 1.1-2.4x on FSRCNN,
realesr-animevideov3, RFDN, RLFN, BSRN and SPAN at 360x640 and 720x1280)."""
_F32 = 4

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one image or frame needs at its peak, by where they go."""

    frame: int
    """The decoded image, its float copy and colour conversion, and the network input (bicubic-enlarged
    for pre-upsampling networks)."""
    output: int
    """The network output of the whole image, blend weights, and the float, clipped and final image
    it is turned into."""
    tile: int
    """One inference call: the batch of tiles and the network's activations on it."""

    @property
    def total(self) -> int:
        return self.frame + self.output + self.tile


def estimate(height: int, width: int, desc: ModelDescriptor, tiling: TileConfig, channels: int = 3,
             itemsize: int = 1, feature_channels: int = 64) -> MemoryEstimate:
    """Peak bytes to upscale one ``height`` x ``width`` image (pure; a rough upper bound).

    Args:
        height, width: The image as decoded (LR pixels).
        desc: The model.
        tiling: How it is tiled (its ``tile``, ``batch``, ``fixed_hw``, ``multiple``, ``blend``).
        channels: Channels of the decoded image (1 grey, 3 RGB, 4 RGBA).
        itemsize: Bytes per decoded sample (1 for 8-bit, 2 for 16-bit).
        feature_channels: Activation channels per pixel (see :func:`~sredge.runtime.tiling.activation_bytes_per_px`).
    """
    s = desc.scale
    in_h, in_w = (height * s, width * s) if desc.pre_upsample else (height, width)
    in_h, in_w = max(in_h, MIN_SIDE), max(in_w, MIN_SIDE)
    net_scale = 1 if desc.pre_upsample else s
    lr, hr = height * width, height * s * width * s
    # input space: decoded samples, float RGB and its colour-converted copy, the enlarged RGB, the network input
    frame = lr * channels * itemsize + 2 * lr * 3 * _F32 + desc.in_channels * in_h * in_w * _F32
    if desc.pre_upsample:
        frame += 2 * in_h * in_w * 3 * _F32
    # output space: the stitched network output (+ blend weights), float RGB and two temporaries, the result
    out = desc.out_channels * hr * _F32 + (hr * _F32 if tiling.blend else 0) + 3 * hr * 3 * _F32
    out += 2 * hr * channels * itemsize
    th, tw = tile_shape(in_h, in_w, tiling)
    per_px = activation_bytes_per_px(desc.out_channels, net_scale, feature_channels)
    tile = tiling.batch * th * tw * (per_px + desc.in_channels * _F32)
    return MemoryEstimate(frame=frame, output=out, tile=tile)


def fitting_tile(height: int, width: int, desc: ModelDescriptor, tiling: TileConfig, available: int,
                 channels: int = 3, itemsize: int = 1, feature_channels: int = DEFAULT_FEATURE_CHANNELS) -> int | None:
    """The largest tile edge of :data:`TILE_CHOICES` (one tile per call) with which the run fits in
    ``available`` bytes (with :data:`HEADROOM`), or None when none does (pure)."""
    if tiling.fixed_hw is not None:
        return None
    for t in TILE_CHOICES:
        if t <= 2 * tiling.overlap:
            break
        cfg = replace(tiling, tile=t, batch=1)
        if estimate(height, width, desc, cfg, channels, itemsize, feature_channels).total + HEADROOM <= available:
            return t
    return None


def graph_feature_channels(model, scale: int, out_channels: int) -> int:
    """The ``feature_channels`` of :func:`~sredge.runtime.tiling.activation_bytes_per_px` that covers an ONNX
    graph's activations (pure): the most float32 values per input pixel its tensors hold live at once, walked in
    graph order at a 64x64 input, times :data:`ORT_OVER_LIVENESS`; never below :data:`DEFAULT_FEATURE_CHANNELS`.

    RFDN and BSRN keep their distilled features alive for a final concatenation: 3-4 times the 64 channels
    assumed before, so ``--tile 0`` passed the check and then ran out of memory.

    Args:
        model: An ``onnx.ModelProto`` with one (N, C, H, W) input; not modified.
        scale: The network's own upscale (1 for pre-upsampling networks).
        out_channels: Its output channels.

    Raises:
        ValueError: A tensor's shape is not known at that size (the caller keeps the default).
    """
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, None, 64, 64)):
        if v is not None:
            d.dim_value = v
    m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    shapes = {vi.name: vi.type.tensor_type.shape.dim for vi in (*m.graph.value_info, *m.graph.input, *m.graph.output)}

    def values(name: str) -> int:
        n = 1
        for d in shapes.get(name, ()) or ():
            if not d.HasField("dim_value"):
                raise ValueError(f"the shape of {name!r} is unknown")
            n *= d.dim_value
        if name not in shapes:
            raise ValueError(f"the shape of {name!r} is unknown")
        return n

    last = {t: i for i, node in enumerate(m.graph.node) for t in node.input}
    kept = {o.name for o in m.graph.output}
    first = m.graph.input[0].name
    live = {first: values(first)}
    now = peak = live[first]
    for i, node in enumerate(m.graph.node):
        for t in node.output:
            if t:
                live[t] = values(t)
                now += live[t]
        peak = max(peak, now)
        for t in set(node.input):
            if last.get(t) == i and t in live and t not in kept:
                now -= live.pop(t)
    per_px = ORT_OVER_LIVENESS * peak / (64 * 64)
    return max(DEFAULT_FEATURE_CHANNELS, math.ceil((per_px - out_channels * scale * scale) / 4))


def model_feature_channels(path: str | Path, scale: int, out_channels: int) -> int:
    """:func:`graph_feature_channels` of an ONNX file; :data:`DEFAULT_FEATURE_CHANNELS` for a file over 256 MB or
    one whose shapes cannot be inferred (logged)."""
    import onnx

    try:
        if Path(path).stat().st_size > 256 << 20:
            return DEFAULT_FEATURE_CHANNELS
        return graph_feature_channels(onnx.load(str(path), load_external_data=False), scale, out_channels)
    except Exception as exc:  # never worse than the default: an unreadable graph keeps the 64-channel model
        log.debug("%s: activation memory not read from its graph (%s); assuming %d channels", path, exc,
                  DEFAULT_FEATURE_CHANNELS)
        return DEFAULT_FEATURE_CHANNELS


def available_bytes() -> int | None:
    """Bytes this process may still allocate: the least of the system's MemAvailable, the address-space
    limit (RLIMIT_AS) less what the process has mapped, and its cgroup's memory.max less its use.
    None when none of these can be read (not Linux)."""
    limits = [v for v in (_meminfo_available(), _address_space_left(), _cgroup_left()) if v is not None]
    return min(limits) if limits else None


def check_fits(height: int, width: int, desc: ModelDescriptor, tiling: TileConfig, channels: int = 3,
               itemsize: int = 1, available: int | None = None,
               feature_channels: int = DEFAULT_FEATURE_CHANNELS) -> None:
    """Refuse an upscale that would not fit in memory.

    Args:
        available: Bytes available; None reads :func:`available_bytes` (and skips the check when unknown).
        feature_channels: The model's activation channels (:func:`model_feature_channels`).

    Raises:
        InputError: The estimate exceeds what is available; the message gives both and the ``--tile``
            setting that fits, or says that no tile setting does (the output itself is too large).
    """
    if available is None:
        available = available_bytes()
        if available is None:
            return
    need = estimate(height, width, desc, tiling, channels, itemsize, feature_channels)
    if need.total + HEADROOM <= available:
        return
    s = desc.scale
    what = f"upscaling {width}x{height} x{s} to {width * s}x{height * s} needs about {format_bytes(need.total)}"
    have = f"{format_bytes(available)} is available"
    t = fitting_tile(height, width, desc, tiling, available, channels, itemsize, feature_channels)
    if t is not None:
        raise InputError(f"{what} but {have}: use --tile {t}" + (" --batch 1" if tiling.batch > 1 else ""))
    if tiling.fixed_hw is not None and need.tile > need.frame + need.output:
        th, tw = tiling.fixed_hw
        raise InputError(f"{what} but {have}: the model's fixed {th}x{tw} input alone needs "
                         f"{format_bytes(need.tile)} per call; export it with a smaller or dynamic input size")
    raise InputError(f"{what} but {have}, with any --tile (the image and its output alone need "
                     f"{format_bytes(need.frame + need.output)}): use a smaller image or a lower scale")


def require_memory(need: int, doing: str, advice: str) -> None:
    """Refuse work that needs ``need`` bytes when less is available (:func:`available_bytes`; unknown: no check).

    Args:
        need: Bytes the work will hold at once (an estimate).
        doing: What needs them, with its verb, e.g. ``"16 crops of 128x128 need"``.
        advice: What to do instead, e.g. ``"use a smaller tile"``.

    Raises:
        InputError: ``"{doing} about 3.2 GiB but 2.0 GiB is available: {advice}"``.
    """
    available = available_bytes()
    if available is not None and need > available:
        raise InputError(f"{doing} about {format_bytes(need)} but {format_bytes(available)} is available: {advice}")


def format_bytes(n: int) -> str:
    """``3.3 GiB`` / ``512 MiB`` / ``7.0e+08 TiB``, for messages (pure)."""
    if n >= 1 << 50:  # a typo's size: "770974159240722688.0 GiB" was hard to read
        return f"{n / (1 << 40):.1e} TiB" if n >= 1 << 60 else f"{n / (1 << 40):,.0f} TiB"
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.0f} MiB"


def _kib_field(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _meminfo_available() -> int | None:
    return _kib_field("/proc/meminfo", "MemAvailable:")


def _address_space_left() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _kib_field("/proc/self/status", "VmSize:")
    return max(soft - (used or 0), 0)


def _cgroup_left() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), when it has a limit."""
    try:
        rel = next(line[3:].strip() for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if line.startswith("0::"))
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((base / "memory.current").read_text()), 0)
    except (OSError, ValueError, StopIteration):
        return None
