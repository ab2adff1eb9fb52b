"""From a checkpoint file to a ready ``nn.Module`` and its ModelDescriptor."""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sredge.errors import InputError
from sredge.models.checkpoint import load_checkpoint
from sredge.models.descriptor import MAX_SCALE, ModelDescriptor
from sredge.models.key_map import KeyMap, apply_key_map, parse_key_map
from sredge.models.registry import detect
from sredge.models.spec import ArchSpec, HParams

log = logging.getLogger(__name__)

_NAME_SCALE = (
    re.compile(r"(?:^|[^a-z0-9])x([1-8])(?![0-9])"),  # fsrcnn_x3, RealESRGAN_x4plus
    re.compile(r"(?:^|[^a-z0-9])([1-8])x(?![a-z0-9])"),  # 4x_anime (chaiNNer style)
)


def scale_from_name(name: str) -> int | None:
    """Scale hinted by a file name such as ``fsrcnn_x3.pth`` or ``4x_model.pth``; None if absent, or if the
    name hints two scales (``4x_fsrcnn_x3.pth``: no way to tell which is right)."""
    stem = Path(name).stem.lower()
    hints = {int(m.group(1)) for pat in _NAME_SCALE for m in pat.finditer(stem)}
    return hints.pop() if len(hints) == 1 else None


def resolve_scale(
    arch: ArchSpec,
    from_weights: int | None,
    requested: int | None,
    from_name: int | None,
    any_scale: bool = False,
    recorded: int | None = None,
) -> tuple[int, str]:
    """Decide the scale and say where it came from (pure).

    Weights win when they determine the scale, then the scale an sr-train checkpoint records
    (``recorded``); a contradicting ``--scale`` is an error. Otherwise ``--scale`` is used, then the
    file-name hint; a ``--scale`` that contradicts the name is an error too, except for a network of
    ``any_scale``, whose one file serves every scale. ``any_scale`` (a pre-upsampling
    network such as SRCNN or VDSR, which refines a bicubic-enlarged image) accepts every
    integer scale from 2 to ``MAX_SCALE``, not only the architecture's listed ones.

    Returns:
        (scale, source) with source ``"weights"``, ``"checkpoint"``, ``"--scale"`` or ``"file name"``.

    Raises:
        InputError: A contradiction, an unsupported scale, or no way to tell.
    """
    if from_weights is not None:
        if requested is not None and requested != from_weights:
            raise InputError(
                f"--scale {requested} contradicts the weights, which are a x{from_weights} {arch.name} model "
                f"(drop --scale or use a x{requested} checkpoint)"
            )
        return from_weights, "weights"
    if recorded is not None:
        if requested is not None and requested != recorded:
            raise InputError(
                f"--scale {requested} contradicts the checkpoint, which records a x{recorded} {arch.name} model "
                f"(drop --scale, or train a x{requested} model)"
            )
        scale, source = recorded, "checkpoint"
    elif requested is not None:
        if from_name is not None and from_name != requested and not any_scale:
            raise InputError(
                f"--scale {requested} contradicts the file name, which says x{from_name}; {arch.name} weights do not "
                f"tell the scale, so one of them is wrong (an x{from_name} model run at x{requested} gives garbage): "
                "drop --scale, or rename the file if its name is wrong"
            )
        scale, source = requested, "--scale"
    elif from_name is not None:
        scale, source = from_name, "file name"
    else:
        which = f"any from 2 to {MAX_SCALE}" if any_scale else "/".join(map(str, arch.scales))
        raise InputError(f"{arch.name} weights do not tell the scale; pass --scale N ({which})")
    if any_scale and 2 <= scale <= MAX_SCALE:
        return scale, source
    if any_scale:  # a pre-upsampling network (VDSR): the bicubic upsampling sets the scale
        raise InputError(f"{arch.name} takes any scale from 2 to {MAX_SCALE}, not x{scale}")
    if scale not in arch.scales:
        raise InputError(f"{arch.name} does not support x{scale} (supported: {', '.join(map(str, arch.scales))})")
    return scale, source


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for export, with what sredge knows about it."""

    module: Any
    """The ``torch.nn.Module``, in eval mode, float32, on the CPU."""
    descriptor: ModelDescriptor
    hparams: HParams
    """Constructor arguments the module was built with."""
    scale_source: str
    """Where the scale came from: ``"weights"``, ``"checkpoint"`` (sr-train's record), ``"--scale"`` or
    ``"file name"``."""


def constructor_defaults(spec: ArchSpec) -> HParams:
    """Default keyword arguments of the architecture's constructor."""
    params = inspect.signature(spec.build).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def variant_name(spec: ArchSpec, hparams: HParams) -> str:
    """The registered variant these hyper-parameters match, else ``"{arch}_x{scale}"``."""
    full = {**constructor_defaults(spec), **hparams}
    for name, hp in spec.variants.items():
        if {**constructor_defaults(spec), **hp} == full:
            return name
    return f"{spec.name}_x{hparams['scale']}"


def describe(spec: ArchSpec, hparams: HParams, num_params: int) -> ModelDescriptor:
    """ModelDescriptor of a configured architecture."""
    io = spec.io(hparams)
    return ModelDescriptor(
        arch=spec.name,
        scale=int(hparams["scale"]),
        in_channels=io.in_channels,
        out_channels=io.out_channels,
        color_space=io.color_space,
        value_range=float(io.value_range),
        pre_upsample=io.pre_upsample,
        size_multiple=io.size_multiple,
        fp16_safe=io.fp16_safe,
        num_params=num_params,
        variant=variant_name(spec, hparams),
    )


def build_from_state_dict(spec: ArchSpec, hparams: HParams, state_dict: dict[str, Any]) -> Any:
    """Build the module and load the weights strictly (every key must fit).

    Raises:
        InputError: The weights do not fit the inferred configuration.
    """
    torch = __import__("torch")
    module = spec.build(**hparams)
    adapted = spec.adapt_state_dict(state_dict)
    try:
        module.load_state_dict(adapted, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise InputError(f"the weights do not fit {spec.name} with {hparams}: {detail[:200]}") from exc
    return module.to(torch.float32).eval()


def load_model(
    path: str | Path,
    arch: str | None = None,
    scale: int | None = None,
    trust_pickle: bool = False,
    key_map: KeyMap | str | None = None,
) -> LoadedModel:
    """Load a checkpoint, detect its architecture and build the network.

    Args:
        path: Checkpoint file (see :func:`sredge.models.checkpoint.load_state_dict`).
        arch: Architecture name when detection is ambiguous or keys are renamed.
        scale: Requested scale; must agree with the weights when they determine it.
        trust_pickle: Allow checkpoints that unpickle code.
        key_map: Rename rules applied to every key before detection (``--key-map``: a parsed
            :class:`KeyMap`, or its inline JSON / file path).

    Raises:
        InputError: Unreadable checkpoint or key map, unknown architecture or contradicting scale.
    """
    if isinstance(key_map, str):
        key_map = parse_key_map(key_map)
    state_dict, record = load_checkpoint(path, trust_pickle=trust_pickle)
    if key_map is not None:
        state_dict = apply_key_map(state_dict, key_map)
    found = detect(state_dict, arch or record.get("arch"))
    spec, hparams = found.spec, dict(found.hparams)
    any_scale = spec.io(hparams).pre_upsample
    recorded = record.get("scale") if record.get("arch") == spec.name else None
    named = scale_from_name(str(path))
    resolved, source = resolve_scale(spec, hparams.get("scale"), scale, named, any_scale, recorded)
    if source in ("weights", "checkpoint") and named is not None and named != resolved and not any_scale:
        # The weights win (they cannot be wrong about themselves), but an output named after the input would
        # carry the wrong scale in its name: say so.
        log.warning("%s: its name says x%d, but its %s make it a x%d %s model; using x%d (rename the file)",
                    Path(path).name, named, "weights" if source == "weights" else "checkpoint's record", resolved,
                    spec.name, resolved)
    hparams["scale"] = resolved
    module = build_from_state_dict(spec, hparams, state_dict)
    # What is deployed: a re-parameterizable network counts its collapsed form (sr-export writes that).
    from sredge.models.reparam import collapsed

    num_params = sum(p.numel() for p in collapsed(module).parameters() if p.requires_grad)
    return LoadedModel(module, describe(spec, hparams, num_params), hparams, source)
