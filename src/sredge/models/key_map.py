"""``--key-map``: user rules that rename a checkpoint's keys before the architecture is detected.

A key map is a JSON object of regular expression -> replacement (Python ``re.sub`` syntax, ``\\1``
for groups), applied in order to every key, e.g. ``{"^module\\\\.": "", "^Conv(\\\\d)\\\\.": "conv_\\\\1."}``.
Given inline (text starting with ``{``, or ``[`` to be refused as not an object) or as the path of
a ``.json`` file. Parsing needs neither torch nor the checkpoint, so a bad map fails before anything
loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sredge.errors import InputError


@dataclass(frozen=True)
class KeyMap:
    """Ordered rename rules; each is applied to the result of the previous one."""

    rules: tuple[tuple[re.Pattern[str], str], ...]
    """(compiled pattern, replacement) pairs, in the order given."""
    source: str
    """Where the rules came from (``inline`` or the file path), for messages."""


def parse_key_map(text: str) -> KeyMap:
    """Parse ``--key-map`` (inline JSON or a JSON file path) and compile its patterns.

    Raises:
        InputError: Unreadable file, invalid JSON, not an object of strings, an empty map, or a
            pattern/replacement that is not a valid regular expression; the message names the rule.
    """
    source = "inline"
    if not text.lstrip().startswith(("{", "[")):
        path = Path(text)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"--key-map {path}: no such file (give a JSON file or inline JSON such as "
                             "'{\"^old\\\\.\": \"new.\"}')") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--key-map {path}: cannot read it ({exc})") from None
    try:
        obj: Any = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--key-map ({source}) is not valid JSON: {exc}") from None
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(k, str) and isinstance(v, str)
                                                          for k, v in obj.items()):
        raise InputError(f"--key-map ({source}) must be a non-empty JSON object of \"regex\": \"replacement\" strings")
    rules = []
    for pattern, repl in obj.items():
        try:
            compiled = re.compile(pattern)
            _check_replacement(compiled, repl)
        except (re.error, IndexError) as exc:  # IndexError: an unknown \g<name>
            raise InputError(f"--key-map rule {pattern!r} -> {repl!r} is not a valid regular expression "
                             f"and replacement: {exc}") from None
        rules.append((compiled, repl))
    return KeyMap(tuple(rules), source)


def _check_replacement(pattern: re.Pattern[str], repl: str) -> None:
    """Raise re.error for a bad escape or group reference in ``repl`` now (``re`` only parses it on a match):
    substitute it once into an empty string through a pattern with the same groups that matches there."""
    names = {i: n for n, i in pattern.groupindex.items()}
    same_groups = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, pattern.groups + 1))
    re.sub(same_groups, repl, "", count=1)


def apply_key_map(state_dict: Mapping[str, Any], key_map: KeyMap) -> dict[str, Any]:
    """Rename every key by the rules, in order; values are kept as they are.

    Raises:
        InputError: Two keys end up with the same name (the map would silently drop weights).
    """
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl in key_map.rules:
            new = pattern.sub(repl, new)
        if new in out:
            raise InputError(f"--key-map ({key_map.source}) renames both {origin[new]!r} and {key!r} to {new!r}; "
                             "make the rules tell them apart")
        out[new], origin[new] = value, key
    return out
