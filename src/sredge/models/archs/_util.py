"""Small helpers shared by the architecture detectors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sredge.models.spec import StateDict


def has_keys(sd: StateDict, keys: Iterable[str]) -> bool:
    """True when every key is in the state dict."""
    return all(k in sd for k in keys)


def count_indexed(sd: StateDict, prefix: str) -> int:
    """Number of distinct integer indices N in keys ``{prefix}N.*`` (0 when none)."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    idx = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    return len(idx)


def max_index(sd: StateDict, prefix: str) -> int:
    """Largest integer N in keys ``{prefix}N.*`` or ``{prefix}N`` (-1 when none)."""
    pat = re.compile(re.escape(prefix) + r"(\d+)(?:\.|$)")
    return max((int(m.group(1)) for k in sd if (m := pat.match(k))), default=-1)


def shuffle_scale(out_ch: int, in_ch: int) -> int | None:
    """Scale s of a conv feeding PixelShuffle(s): ``out_ch == in_ch * s * s``; None if not square."""
    if in_ch <= 0 or out_ch % in_ch:
        return None
    r = round((out_ch // in_ch) ** 0.5)
    return r if r * r * in_ch == out_ch else None


def rename_layout(sd: StateDict, layout: Mapping[str, str]) -> dict[str, Any] | None:
    """Rename a foreign key layout onto ours by key prefix (``{"first_part.0.": "conv_1."}``).

    Returns:
        The renamed dict, or None unless every key starts with one of the layout's
        prefixes and every prefix occurs (so a layout never claims another's checkpoint).
    """
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for k, v in sd.items():
        src = next((p for p in layout if k.startswith(p)), None)
        if src is None:
            return None
        seen.add(src)
        out[layout[src] + k[len(src):]] = v
    return out if seen == set(layout) else None


def adapt_layouts(sd: StateDict, layouts: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """The state dict renamed by the first layout that fits it exactly; unchanged if none does."""
    for layout in layouts:
        if (renamed := rename_layout(sd, layout)) is not None:
            return renamed
    return dict(sd)
