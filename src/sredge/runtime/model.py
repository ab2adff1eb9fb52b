"""What the runtime knows about a model: its stored descriptor, or the user's flags for a foreign one.

A model sredge exported carries its ModelDescriptor; flags that contradict it are refused
(never silently applied). A foreign model (no sredge metadata) is described by the flags
``--scale``, ``--color`` and ``--range``; a missing ``--scale`` is measured by a probe run.
Whatever had to be guessed for a foreign model is said in one ``assumed: ...`` warning line
(:func:`foreign_assumptions`), which the commands show on stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sredge.errors import InputError
from sredge.models.descriptor import COLOR_SPACES, ModelDescriptor
from sredge.runtime.backends.base import InputSpec
from sredge.runtime.memory import HEADROOM, available_bytes, format_bytes
from sredge.runtime.tiling import activation_bytes_per_px

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelOverrides:
    """What the user said about the model on the command line (None: not said)."""

    scale: int | None = None
    """Upscaling factor (``--scale``)."""
    color: str | None = None
    """Colour space / channel order (``--color rgb|bgr|y|ycbcr``)."""
    value_range: float | None = None
    """Input/output value range (``--range 1|255``)."""


PROBE_SCALE = 4
"""The upscale a probe run's memory is planned for (the scale is what the probe measures)."""


def probe_hw(spec: InputSpec) -> tuple[int, int]:
    """(height, width) :func:`probe_scale` runs: the model's fixed shape, else 16x16 raised to an engine
    profile's minimum (pure)."""
    lo_h, lo_w = spec.min_hw or (0, 0)
    return spec.fixed_hw or (max(16, lo_h), max(16, lo_w))


def probe_bytes(spec: InputSpec) -> int:
    """Memory one probe run of :func:`probe_scale` needs, planned for a x4 network (pure)."""
    h, w = probe_hw(spec)
    n = spec.max_batch if spec.batch_fixed and spec.max_batch else 1
    return n * h * w * (activation_bytes_per_px(spec.channels, PROBE_SCALE) + spec.channels * 4)


def probe_scale(run: Callable[[np.ndarray], np.ndarray], spec: InputSpec) -> int:
    """Measure a model's scale by running one small input (zeros) and comparing sizes.

    A fixed input shape is probed at that shape, so an absurd one (``1x3x100000x100000``) is refused
    from its size before anything is allocated.

    Raises:
        InputError: The output is not an integer multiple of the input, or one run at the model's
            fixed input shape would not fit in memory.
    """
    h, w = probe_hw(spec)
    need, available = probe_bytes(spec), available_bytes()
    if available is not None and need + HEADROOM > available:
        n = spec.max_batch if spec.batch_fixed and spec.max_batch else 1
        raise InputError(f"the model's fixed input {n}x{spec.channels}x{h}x{w} needs about {format_bytes(need)} "
                         f"per run but {format_bytes(available)} is available: export it with a smaller "
                         "or dynamic input size")
    out = run(np.zeros((1, spec.channels, h, w), np.float32))
    if out.ndim != 4:
        raise InputError(f"the model's output has shape {out.shape}; expected (N, C, H, W)")
    sh, sw = out.shape[2] / h, out.shape[3] / w
    if sh != sw or sh != int(sh) or sh < 1:
        raise InputError(f"the model maps {h}x{w} to {out.shape[2]}x{out.shape[3]}: not an integer upscale")
    return int(sh)


def foreign_assumptions(desc: ModelDescriptor, overrides: ModelOverrides, spec: InputSpec) -> str | None:
    """The one-line notice of what was guessed about a foreign model (pure); None when nothing was.

    Every property the user did not give is named with where it came from, e.g.
    ``assumed: scale x4 (probed), colour rgb (3 channels), range 0-1, ...``.
    """
    if desc.arch != "foreign":
        return None
    said: list[str] = []
    if overrides.scale is None:
        said.append(f"scale x{desc.scale} (probed)")
    elif desc.pre_upsample:
        said.append(f"a bicubic-upsampled input (the network keeps the size; --scale {desc.scale})")
    if overrides.color is None:
        said.append(f"colour {desc.color_space} ({spec.channels} channel{'s' if spec.channels > 1 else ''})")
    if overrides.value_range is None:
        said.append(f"range 0-{desc.value_range:g}")
    if spec.batch_fixed and spec.max_batch:
        said.append(f"its fixed batch of {spec.max_batch} is filled (padded, the padding dropped)")
    if not said:
        return None
    flags = [f for f, v in (("--scale", overrides.scale), ("--color", overrides.color),
                            ("--range", overrides.value_range)) if v is None]
    hint = f"; no sredge metadata: set them with {'/'.join(flags)} or re-export with sr-export" if flags else ""
    return "assumed: " + ", ".join(said) + hint


def resolve_descriptor(
    stored: ModelDescriptor | None,
    spec: InputSpec,
    overrides: ModelOverrides,
    probe: Callable[[], int],
    name: str | None = None,
) -> ModelDescriptor:
    """The descriptor to run with. For a foreign model, what was assumed is logged as one warning
    line (see :func:`foreign_assumptions`).

    Args:
        stored: The model file's own descriptor, or None for a foreign model.
        spec: The model's input geometry (channels, fixed size).
        overrides: The user's flags.
        probe: Called (only when needed) to measure the network's own scale.
        name: The model's file name, for the notice.

    Raises:
        InputError: A flag contradicts the stored descriptor, or the flags do not fit the model.
    """
    if overrides.color is not None and overrides.color not in COLOR_SPACES:
        raise InputError(f"--color {overrides.color}: choose one of {', '.join(COLOR_SPACES)}")
    if stored is not None:
        if stored.pre_upsample and overrides.scale is not None and overrides.scale != stored.scale:
            # A pre-upsampling network (SRCNN, VDSR) refines a bicubic-enlarged image: any factor works.
            stored = replace(stored, scale=overrides.scale)
        said = {"scale": overrides.scale, "color_space": overrides.color, "value_range": overrides.value_range}
        flag = {"scale": "--scale", "color_space": "--color", "value_range": "--range"}
        for field, value in said.items():
            if value is not None and value != getattr(stored, field):
                raise InputError(
                    f"{flag[field]} {value:g} contradicts the model's own metadata ({getattr(stored, field):g}); "
                    f"drop {flag[field]}" if not isinstance(value, str) else
                    f"{flag[field]} {value} contradicts the model's own metadata ({getattr(stored, field)}); "
                    f"drop {flag[field]}"
                )
        if stored.in_channels != spec.channels:
            raise InputError(f"the model's metadata says {stored.in_channels} input channels, "
                             f"its graph {spec.channels}")
        return stored

    color = overrides.color or ("y" if spec.channels == 1 else "rgb")
    if (color == "y") != (spec.channels == 1):
        raise InputError(f"--color {color} does not fit a model with {spec.channels} input channels")
    if spec.channels not in (1, 3):
        raise InputError(f"the model takes {spec.channels} channels; sredge feeds 1 (Y) or 3 (RGB/BGR/YCbCr)")
    net_scale = probe()
    scale = overrides.scale or net_scale
    if net_scale == 1 and scale > 1:
        pre_upsample = True  # same-size network told to upscale: it expects a bicubic-upsampled input
    elif net_scale != scale:
        raise InputError(f"--scale {scale} contradicts the model, which upscales x{net_scale}")
    else:
        pre_upsample = False
    desc = ModelDescriptor(
        arch="foreign",
        scale=scale,
        in_channels=spec.channels,
        out_channels=spec.channels,
        color_space=color,  # type: ignore[arg-type]
        value_range=float(overrides.value_range or 1.0),
        pre_upsample=pre_upsample,
    )
    if note := foreign_assumptions(desc, overrides, spec):
        log.warning("%s%s", f"{name}: " if name else "", note)
    return desc
