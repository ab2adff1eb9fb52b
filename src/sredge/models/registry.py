"""The model zoo: architectures by name, named variants, and detection from a state dict.

Architecture modules import torch, so they are loaded on first use; the list of
names below is available without torch (for ``--help`` and error messages).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sredge.errors import InputError
from sredge.models.spec import ArchSpec, HParams, StateDict

ARCH_NAMES: tuple[str, ...] = (
    "srcnn",
    "fsrcnn",
    "espcn",
    "vdsr",
    "edsr",
    "rcan",
    "srresnet",
    "rrdbnet",
    "srvgg",
    "rdn",
    "swinir",
    "pan",
    "efdn",
    "bsrn",
    "span",
    "srgan",
    "imdn",
    "imdn_rtc",
    "imdn_rte",
    "rfdn",
    "rlfn",
    "csnln",
    "han",
    "sesr",
)

RENAME_HINT = " or rename the keys with --key-map"
"""The end of the "not this architecture's layout" error: a command without ``--key-map`` removes it."""
UNKNOWN_RENAME_HINT = ("; if it is one of these with renamed keys, rename them with "
                       "--key-map '{\"^old\\\\.\": \"new.\"}'")
"""The middle of the "unknown architecture" error: a command without ``--key-map`` removes it."""


def without_rename_hints(message: str) -> str:
    """A detection error as a command without ``--key-map`` shows it: the advice to rename keys removed."""
    return message.replace(UNKNOWN_RENAME_HINT, "").replace(RENAME_HINT, "")


def get_arch(name: str) -> ArchSpec:
    """Return the spec of a registered architecture (imports torch).

    Raises:
        InputError: ``name`` is not registered; the message lists the known names.
    """
    key = name.lower()
    if key not in ARCH_NAMES:
        raise InputError(f"unknown architecture {name!r}; known: {', '.join(ARCH_NAMES)}")
    module = importlib.import_module(f"sredge.models.archs.{key}")
    return module.ARCH


def all_archs() -> list[ArchSpec]:
    """Every registered architecture, in registry order (imports torch)."""
    return [get_arch(n) for n in ARCH_NAMES]


def list_variants() -> dict[str, tuple[str, HParams]]:
    """All named variants: ``{"edsr_baseline_x4": ("edsr", hparams), ...}``."""
    out: dict[str, tuple[str, HParams]] = {}
    for spec in all_archs():
        for vname, hp in spec.variants.items():
            out[vname] = (spec.name, dict(hp))
    return out


@dataclass(frozen=True)
class Detection:
    """An architecture recognised in a state dict, with inferred hyper-parameters."""

    spec: ArchSpec
    hparams: HParams


def detect(state_dict: StateDict, arch: str | None = None) -> Detection:
    """Recognise the architecture of a state dict.

    Args:
        state_dict: Parameter name -> tensor, already unwrapped (see ``load_state_dict``).
        arch: Architecture name to use instead of guessing; its detector must accept the keys.

    Returns:
        The single matching architecture and its hyper-parameters (``scale`` may be None).

    Raises:
        InputError: No architecture fits, several do (pass ``--arch``), or ``arch``
            does not fit the keys.
    """
    if arch is not None:
        spec = get_arch(arch)
        hp = spec.detect(state_dict)
        if hp is None:
            raise InputError(
                f"the weights do not have the layout of {spec.name} ({_key_sample(state_dict)}); "
                f"{spec.name} expects {expected_keys(spec)}; check --arch (known: {', '.join(ARCH_NAMES)})"
                + RENAME_HINT
            )
        return Detection(spec, hp)
    found = [Detection(s, hp) for s in all_archs() if (hp := s.detect(state_dict)) is not None]
    if not found:
        raise InputError(
            f"unknown architecture ({_key_sample(state_dict)}){_nearest(state_dict)}; known: {', '.join(ARCH_NAMES)}"
            + UNKNOWN_RENAME_HINT + "; --arch NAME lists the keys that architecture expects"
        )
    if len(found) > 1:
        names = ", ".join(d.spec.name for d in found)
        raise InputError(f"the weights fit several architectures ({names}); pass --arch NAME to choose")
    return found[0]


def expected_keys(spec: ArchSpec, n: int = 6) -> str:
    """The key prefixes ``spec`` accepts, for messages: its own (from a small built module), then
    each foreign layout it renames, e.g. ``keys conv_1.*, conv_2.*, conv_3.* or first_part.0.*, ...``."""
    layouts = [_own_prefixes(spec), *([p.rstrip(".") for p in lay] for lay in spec.key_layouts)]
    text = [", ".join(f"{p}.*" for p in lay[:n]) + (", ..." if len(lay) > n else "") for lay in layouts]
    return "keys " + " or ".join(text)


def _own_prefixes(spec: ArchSpec) -> list[str]:
    """The top-level key prefixes of ``spec``'s own layout, from a small built module."""
    return list(dict.fromkeys(k.split(".")[0] for k in spec.build(**spec.test_config).state_dict()))


def _layouts(spec: ArchSpec) -> list[list[str]]:
    """The top-level key prefixes of each layout ``spec`` accepts: its own, then each foreign layout it renames."""
    return [_own_prefixes(spec), *([p.rstrip(".").split(".")[0] for p in lay] for lay in spec.key_layouts)]


def _nearest(state_dict: StateDict) -> str:
    """``", nearest: fsrcnn (...)"``: the architecture whose key layout shares most top-level prefixes with the
    weights' (at least half of the two together), naming the prefixes one has and the other lacks; "" when none
    comes near. For weights that lost or renamed a few layers."""
    have = set(dict.fromkeys(k.split(".")[0] for k in state_dict))
    best, score = None, 0.5
    for spec in all_archs():
        for layout in _layouts(spec):
            want = set(layout)
            overlap = len(have & want) / len(have | want) if have | want else 0.0
            if overlap >= score and (best is None or overlap > score):
                best, score = (spec.name, layout), overlap
    if best is None:
        return ""
    name, layout = best
    missing = [p for p in layout if p not in have]
    extra = sorted(have - set(layout))
    parts = ([f"these weights lack {', '.join(p + '.*' for p in missing[:4])}"] if missing else []) + \
        ([f"have {', '.join(p + '.*' for p in extra[:4])} besides"] if extra else [])
    what = "; ".join(parts) or f"the same top-level layers; --arch {name} shows what it expects"
    return f"; nearest: {name} ({what})"


def _key_sample(state_dict: StateDict, n: int = 4) -> str:
    keys = list(state_dict)
    more = f", ... {len(keys)} keys" if len(keys) > n else ""
    return "keys " + ", ".join(keys[:n]) + more if keys else "no keys"
