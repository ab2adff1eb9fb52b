"""The state of a resumable ``sr-train --qat`` run: ``OUT.sredge-qat``, beside the INT8 file it writes.

At each validation a QAT run writes this file and its output (the best INT8 file so far, a whole model any
command reads), each atomically: the state first, so that an output without a state beside it is always a finished
run. The file holds a :class:`~sredge.train.qat.QatCheckpoint`, the options that define the run (by flag,
as resolved), the sha256 of the files it reads and of its own contents, so that ``--resume`` continues
the same run or refuses in one line. A run that reaches its last step removes it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sredge._lazy import require
from sredge.atomic import write_bytes_atomic
from sredge.errors import InputError
from sredge.train.qat import QatCheckpoint

STATE_SUFFIX = ".sredge-qat"
"""Added to the output's name: ``x2.int8.onnx`` -> ``x2.int8.onnx.sredge-qat``."""
FORMAT = "sredge-qat-state"
VERSION = 1
_BYTES = ("ptq", "best")
"""Checkpoint fields that are serialized models: stored as uint8 tensors (``torch.load(weights_only=True)``
takes tensors, not arbitrary objects)."""


def state_path(output: str | Path) -> Path:
    """Where the QAT run writing ``output`` keeps its state."""
    output = Path(output)
    return output.with_name(output.name + STATE_SUFFIX)


@dataclass(frozen=True)
class QatRun:
    """A state file's contents (:func:`read_state`)."""

    path: Path
    checkpoint: QatCheckpoint
    run_options: dict
    """The options that define the run, by flag (``--flavour``, ``--data``...), JSON-like values."""
    inputs: dict
    """sha256 (hex) of each file the run reads, by flag (``--qat``, ``--qat-target``)."""
    record: dict
    """What the run found out before training: ``scale`` (the model's), ``quality_ref`` (the validation set's
    name, recorded in the INT8 file with its drop)."""


def write_state(path: str | Path, checkpoint: QatCheckpoint, run_options: Mapping[str, Any],
                inputs: Mapping[str, str], record: Mapping[str, Any]) -> Path:
    """Write a QAT run's state to ``path`` atomically, with the sha256 of its contents (damage that keeps
    the file's size and structure is refused on reading).

    Raises:
        WriteError: The disk is full, or the folder cannot be written.
    """
    torch = require("torch")
    fields = asdict(checkpoint)
    for name in _BYTES:
        fields[name] = _tensor(torch, fields[name])
    inner = io.BytesIO()
    torch.save({"checkpoint": fields, "run_options": dict(run_options), "inputs": dict(inputs),
                "record": dict(record)}, inner)
    payload = inner.getvalue()
    outer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(payload).hexdigest(),
                "payload": _tensor(torch, payload)}, outer)
    return write_bytes_atomic(path, outer.getvalue())


def _tensor(torch, data: bytes):
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def read_state(path: str | Path) -> QatRun:
    """Read a state file written by :func:`write_state`.

    Raises:
        InputError: The file is not one (damaged, truncated, another kind, a later version), one line.
    """
    torch = require("torch")
    path = Path(path)
    damaged = InputError(f"{path} is not a QAT state sr-train can resume (damaged or of another kind): --overwrite "
                         "starts the run over")

    def load(source):
        try:
            return torch.load(source, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch reports a damaged file in many ways (zip, pickle, EOF)
            raise damaged from exc

    data = load(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise damaged
    if data.get("version") != VERSION:
        raise InputError(f"{path} is a QAT state of version {data.get('version')}; this sredge reads version "
                         f"{VERSION}: --overwrite starts the run over")
    try:
        payload = data["payload"].numpy().tobytes()
        if hashlib.sha256(payload).hexdigest() != data["sha256"]:
            raise damaged
        inner = load(io.BytesIO(payload))
        fields = dict(inner["checkpoint"])
        for name in _BYTES:
            fields[name] = fields[name].numpy().tobytes()
        return QatRun(path, QatCheckpoint(**fields), dict(inner["run_options"]), dict(inner["inputs"]),
                      dict(inner["record"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise damaged from exc


def check_qat_resume(run: QatRun, output: Path, run_options: Mapping[str, Any], inputs: Mapping[str, str],
                     steps: int) -> None:
    """Refuse to continue ``run`` with options or input files that would make it another run.

    Args:
        run: The state (:func:`read_state`).
        output: The ``-o`` it belongs to, for messages.
        run_options: This command's options that define the run, by flag: each must equal the recorded one.
        inputs: sha256 of the files this command reads, by flag: each must equal the recorded one.
        steps: This command's ``--steps``: at least the steps done.

    Raises:
        InputError: One line naming the first option or file that differs.
    """
    from sredge.train.loop import check_inputs_unchanged, check_run_options, check_steps

    check_run_options(output, run.run_options, run_options)
    check_inputs_unchanged(output, run.inputs, inputs)
    check_steps(output, steps, run.checkpoint.step)
