"""ArchSpec: how one architecture is built, detected and described.

Each module in :mod:`sredge.models.archs` defines an ``nn.Module`` and one
``ARCH = ArchSpec(...)``. This module itself does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sredge.models.descriptor import ColorSpace

StateDict = Mapping[str, Any]  # parameter name -> torch.Tensor
HParams = dict[str, Any]  # constructor keyword arguments of the architecture's nn.Module


@dataclass(frozen=True)
class ArchIO:
    """The input/output contract of one configured network (see ModelDescriptor)."""

    in_channels: int
    out_channels: int
    color_space: ColorSpace
    value_range: float = 1.0
    pre_upsample: bool = False
    size_multiple: int = 1
    fp16_safe: bool = True


@dataclass(frozen=True)
class ArchSpec:
    """Everything the zoo needs to know about one architecture."""

    name: str
    """Registry name, lower case, e.g. ``"edsr"``."""
    title: str
    """Human name with its paper, for listings."""
    build: Callable[..., Any]
    """``build(**hparams) -> nn.Module``; hparams always include ``scale``."""
    detect: Callable[[StateDict], HParams | None]
    """Recognise this architecture from a state dict (which keys exist) and infer its
    hyper-parameters from tensor shapes. Returns None when the keys do not fit. ``scale``
    is None in the result when the weights cannot tell it (e.g. FSRCNN's transposed conv)."""
    io: Callable[[HParams], ArchIO]
    """The I/O contract of a configured network."""
    scales: tuple[int, ...]
    """Scales the architecture defines."""
    variants: Mapping[str, HParams]
    """Named variants (timm style): name -> hparams."""
    test_config: HParams
    """A small configuration for round-trip tests (fast to build and export)."""
    adapt_state_dict: Callable[[StateDict], dict[str, Any]] = field(default=dict)
    """Map a checkpoint's keys onto this implementation (drop derived buffers, rename)."""
    key_layouts: tuple[Mapping[str, str], ...] = ()
    """Foreign key layouts (their prefix -> ours) that ``detect`` and ``adapt_state_dict``
    accept besides this implementation's own keys; listed in error messages."""
    export_sizes: tuple[tuple[int, int], tuple[int, int]] = ((48, 64), (37, 53))
    """Two (height, width) input sizes for parity checks; the second is not a multiple of 8."""
