"""``--backend auto`` on the CPU: the fastest installed backend x precision variant within a quality budget.

A model exported by ``sr-export --precision fp32,fp16,int8`` is a family of files beside each
other (``NAME.onnx``, ``NAME.fp16.onnx``, ``NAME.int8.onnx``, see
:func:`sredge.calibration.derive.derived_path`); each derived file records the validation PSNR drop
``sr-export`` measured (``sredge.psnr_drop_db``). ``auto`` considers every (file, backend, precision)
the machine can run:

- FP32 file: ONNX Runtime; OpenVINO fp32 (when installed); OpenVINO bf16 only where the CPU
  reports ``BF16`` *and* ``--precision bf16`` was asked for (its drop was never measured).
- INT8 file: OpenVINO int8 and ONNX Runtime (the file's Q/DQ scales); OpenVINO only where it computes
  the file's weights exactly (8-bit weights need a CPU with VNNI,
  :func:`~sredge.runtime.backends.openvino.int8_exact_here`): elsewhere its output is not the one whose
  drop was recorded.
- FP16 file: skipped on the CPU (it is for GPUs: ONNX Runtime on x86 casts float16 back to float32
  around its kernels, so it is slower and no better than FP32).

A candidate is admissible when its recorded drop is known and within the budget (FP32 is the
reference: drop 0). Among admissible candidates the fastest measured one wins; when there is
nothing to measure (one candidate) or times are within :data:`TIE` of each other, :data:`PREFERENCE`
decides. The choice is never silent: every candidate gets a reason and ``sr-run`` prints a line.

Planning (:func:`family`, :func:`enumerate_candidates`, :func:`choose`, :func:`summary_line`) is
pure; :func:`probe_all` and :func:`decide` run the real backends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sredge.errors import InputError, MissingDependencyError, SredgeError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.base import BackendOptions

log = logging.getLogger(__name__)

VARIANT_SUFFIXES = ("fp16", "int8")
"""Infixes ``sr-export`` gives derived files: ``NAME.fp16.onnx``, ``NAME.int8.onnx``."""
PREFERENCE = (("openvino", "int8"), ("openvino", "fp32"), ("ort", "fp32"), ("ort", "int8"),
              ("openvino", "bf16"), ("ort", "fp16"))
"""Order among candidates that were not measured or are tied: OpenVINO before ONNX Runtime on the CPU
(it was 1.23x faster on EDSR here), INT8 first on OpenVINO (its CPU kernels are built for it), ONNX
Runtime's INT8 last among the CPU ones (0.92-0.95x of FP32 for FSRCNN on a CPU without VNNI)."""
TIE = 0.03
"""Measured times within this fraction of the fastest count as tied."""
BACKEND_NAMES = {"ort": "onnxruntime", "openvino": "openvino"}
INEXACT = ("OpenVINO computes its 8-bit weights inexactly on this CPU (no VNNI), so its recorded drop does not "
           "hold here")
OPENVINO_HINT = 'pip install "sredge[openvino]"'


@dataclass(frozen=True)
class Variant:
    """One file of a model family and what its metadata says."""

    file: Path
    precision: str
    """``"fp32"``, ``"fp16"`` or ``"int8"`` (from the metadata, else the file name)."""
    psnr_drop_db: float | None
    """Recorded validation drop against FP32 (0 for FP32 itself); None: unknown."""
    quality_ref: str = ""
    """Validation set of ``psnr_drop_db``."""
    flavour: str = ""
    """The metadata's precision verbatim (``"int8-trt"`` ...), empty for a foreign file."""
    stranger: str = ""
    """How its metadata shows it was made from another network than the family's FP32 file (an earlier
    export left beside a new one), e.g. ``"fsrcnn x2, not fsrcnn x3"``; empty: the same network."""
    wide_int8: bool = False
    """An INT8 file with 8-bit weights (the trt flavour), which OpenVINO computes exactly only on CPUs with VNNI."""


@dataclass(frozen=True)
class Candidate:
    """One way to run the model: a file on a backend at a precision."""

    file: Path
    backend: str
    """``"ort"`` or ``"openvino"``."""
    precision: str
    """``"fp32"``, ``"int8"``, ``"bf16"`` or ``"fp16"``."""
    psnr_drop_db: float | None
    """Recorded validation drop against FP32 (0 for FP32); None: unknown (excluded by a budget)."""
    quality_ref: str = ""
    """Validation set the drop was measured on."""
    measured_ms: float | None = None
    """Median probe time; None: not measured."""
    excluded: str = ""
    """Why it cannot be chosen (empty: it can)."""

    @property
    def label(self) -> str:
        """``"int8 on openvino (m.int8.onnx)"``."""
        return f"{self.precision} on {BACKEND_NAMES.get(self.backend, self.backend)} ({self.file.name})"

    def as_dict(self) -> dict:
        return {"file": str(self.file), "backend": self.backend, "precision": self.precision,
                "psnr_drop_db": self.psnr_drop_db, "quality_ref": self.quality_ref,
                "measured_ms": None if self.measured_ms is None else round(self.measured_ms, 3),
                "excluded": self.excluded or None}


@dataclass(frozen=True)
class AutoDecision:
    """What ``auto`` chose, among which candidates, and why (for logs, stderr and ``--report``)."""

    chosen: Candidate
    candidates: tuple[Candidate, ...]
    """Every candidate considered, with its time and exclusion reason."""
    reasons: tuple[str, ...]
    """One line per candidate, then the deciding line."""
    budget_db: float
    summary: str
    """The one line ``sr-run`` prints."""
    notes: tuple[str, ...] = field(default=())
    """Machine-level notes (a backend not installed, bf16 not on this CPU)."""
    probe_hw: tuple[int, int] | None = None
    """(height, width) of the network input the candidates were timed at; None: nothing was timed."""

    def as_dict(self) -> dict:
        return {"chosen": self.chosen.as_dict(), "budget_db": self.budget_db, "summary": self.summary,
                "probe_hw": list(self.probe_hw) if self.probe_hw else None,
                "candidates": [c.as_dict() for c in self.candidates], "reasons": list(self.reasons),
                "notes": list(self.notes)}


# ---------------------------------------------------------------- pure planning

def family_root(model: Path) -> Path:
    """The FP32 path of a family, given any of its files (pure): ``m.int8.onnx`` -> ``m.onnx``."""
    stem = model.stem
    for infix in VARIANT_SUFFIXES:
        if stem.endswith(f".{infix}"):
            return model.with_name(stem[: -len(infix) - 1] + model.suffix)
    return model


def family(model: Path, exists=Path.is_file) -> list[Path]:
    """The files of ``model``'s family that exist, FP32 first (pure but for ``exists``).

    Args:
        model: Any file of the family (``m.onnx``, ``m.int8.onnx``, ``m.fp16.onnx``).
        exists: Predicate for a path (tests pass a set's ``__contains__``).
    """
    root = family_root(model)
    paths = [root] + [root.with_name(f"{root.stem}.{infix}{root.suffix}") for infix in VARIANT_SUFFIXES]
    found = [p for p in paths if exists(p)]
    return found if model in found or model == root else [model] + found


def variant_of(path: Path, desc: ModelDescriptor | None) -> Variant:
    """What a family file is, from its metadata (or, for a foreign file, its name) (pure)."""
    named = next((infix for infix in VARIANT_SUFFIXES if path.stem.endswith(f".{infix}")), "fp32")
    if desc is None:
        return Variant(path, named, 0.0 if named == "fp32" else None)
    precision = desc.precision.split("-")[0]
    drop = 0.0 if precision == "fp32" else desc.psnr_drop_db
    return Variant(path, precision, drop, desc.quality_ref, desc.precision)


def enumerate_candidates(variants: Sequence[Variant], installed: Sequence[str], cpu_caps: Sequence[str],
                         device: str = "cpu", precision: str | None = None, ov_int8_exact: bool = True
                         ) -> tuple[list[Candidate], list[str]]:
    """Every (file, backend, precision) to consider on the CPU, excluded ones with their reason (pure).

    Args:
        variants: The family's files (:func:`variant_of`).
        installed: Backends that import here (``"ort"`` always; ``"openvino"`` with the extra).
        cpu_caps: OpenVINO's ``OPTIMIZATION_CAPABILITIES`` for the CPU (empty without OpenVINO).
        device: ``"cpu"``; other devices keep FP16 files (auto is wired for the CPU only).
        precision: A precision the caller insists on: only that one is a candidate (``sr-run`` does not
            pass it: an explicit ``--precision`` bypasses ``auto``'s choice and runs the file as named).
        ov_int8_exact: OpenVINO computes 8-bit INT8 weights exactly on this CPU
            (:func:`~sredge.runtime.backends.openvino.int8_exact_here`); False excludes OpenVINO for
            :attr:`Variant.wide_int8` files, whose recorded drop would not hold.

    Returns:
        (candidates, notes): the candidates in :data:`PREFERENCE` order; notes about the machine.
    """
    caps = {str(c).upper() for c in cpu_caps}
    notes = []
    if "openvino" not in installed:
        notes.append(f"OpenVINO is not installed ({OPENVINO_HINT} would add it)")
    out = []
    for v in variants:
        runs: list[tuple[str, str, str]] = []  # backend, precision, exclusion
        if v.precision == "fp32":
            runs.append(("ort", "fp32", ""))
            if "openvino" in installed:
                runs.append(("openvino", "fp32", ""))
                if "BF16" not in caps:
                    runs.append(("openvino", "bf16", "this CPU has no native bfloat16"))
                elif precision != "bf16":
                    runs.append(("openvino", "bf16",
                                 "its PSNR drop was never measured; ask with --backend openvino --precision bf16"))
                else:
                    runs.append(("openvino", "bf16", ""))
        elif v.precision == "int8":
            # The trt flavour (symmetric int8, Q/DQ on convolution inputs only) is OpenVINO's native INT8;
            # ONNX Runtime fuses a convolution into INT8 only when its output is quantized too, so there it
            # runs every convolution in float after dequantizing.
            why = ("ONNX Runtime runs the trt flavour's convolutions in float; OpenVINO runs them in INT8"
                   if v.flavour == "int8-trt" else "")
            if "openvino" in installed:
                runs.append(("openvino", "int8", "" if ov_int8_exact or not v.wide_int8 else INEXACT))
            runs.append(("ort", "int8", why))
        elif v.precision == "fp16":
            why = ("" if device not in ("cpu", "auto") else
                   "FP16 files are for GPUs: ONNX Runtime on the CPU upcasts float16 to float32 around its kernels")
            runs.append(("ort", "fp16", why))
        else:
            continue
        for backend, prec, why in runs:
            if v.stranger:
                why = f"made from another network than the FP32 file ({v.stranger}): an earlier export's?"
            if not why and precision is not None and prec != precision:
                why = f"--precision {precision} asked for"
            out.append(Candidate(v.file, backend, prec, v.psnr_drop_db if prec != "bf16" else None,
                                 v.quality_ref, excluded=why))
    out.sort(key=_rank)
    return out, notes


def admissible(candidates: Sequence[Candidate], budget_db: float, precision: str | None = None
               ) -> list[Candidate]:
    """Candidates with a recorded drop within ``budget_db`` and nothing else against them (pure).

    An explicit ``precision`` (``--precision``) is the user's own quality decision: the budget is not applied.
    """
    return [c for c in _budgeted(candidates, budget_db, precision) if not c.excluded]


def _budgeted(candidates: Sequence[Candidate], budget_db: float, precision: str | None) -> list[Candidate]:
    out = []
    for c in candidates:
        if not c.excluded and precision is None:
            if c.psnr_drop_db is None:
                c = replace(c, excluded="no recorded PSNR drop (re-export with sr-export --precision ... to record it)")
            elif c.psnr_drop_db > budget_db + 1e-9:
                c = replace(c, excluded=f"recorded {c.quality_ref or 'validation'} drop {c.psnr_drop_db:.3f} dB "
                                        f"> budget {budget_db:g} dB")
        out.append(c)
    return out


def choose(candidates: Sequence[Candidate], budget_db: float, precision: str | None = None
           ) -> tuple[Candidate, list[str]]:
    """The candidate to run and one reason per candidate plus the decision (pure).

    Admissible candidates (:func:`admissible`) that were all measured: the fastest, with times within
    :data:`TIE` broken by :data:`PREFERENCE`. Otherwise (nothing measured): the first by :data:`PREFERENCE`.

    Raises:
        InputError: Nothing is admissible (e.g. only an INT8 file whose drop is over the budget).
    """
    judged = _budgeted(candidates, budget_db, precision)
    ok = [c for c in judged if not c.excluded]
    reasons = [f"{c.label}: " + (f"excluded, {c.excluded}" if c.excluded else _facts(c)) for c in judged]
    if not ok:
        raise InputError("--backend auto: no variant of the model can run within --max-psnr-drop "
                         f"{budget_db:g} dB ({'; '.join(reasons)}); {_nothing_admissible_hint(candidates, judged)}")
    if all(c.measured_ms is not None for c in ok) and len(ok) > 1:
        fastest = min(c.measured_ms for c in ok)
        tied = [c for c in ok if c.measured_ms <= fastest * (1 + TIE)]
        chosen = min(tied, key=_rank)
        why = "fastest measured" + (f" (tied within {TIE:.0%}, by preference)" if len(tied) > 1 else "")
    else:
        chosen = min(ok, key=_rank)
        why = "the only admissible candidate" if len(ok) == 1 else "first by preference (not measured)"
    reasons.append(f"chose {chosen.label}: {why}")
    return chosen, reasons


def _nothing_admissible_hint(candidates: Sequence[Candidate], judged: Sequence[Candidate]) -> str:
    """What to do when no candidate is admissible (pure): a larger budget helps only when the budget excluded
    one; otherwise (an FP16 file alone on the CPU, an earlier export's file) only naming the backend does."""
    if any(j.excluded and not c.excluded for c, j in zip(candidates, judged)):
        return "raise the budget or name --backend/--precision"
    return "no budget changes that: name --backend (and --precision) to run a file as it is, or give the FP32 file"


def summary_line(chosen: Candidate, candidates: Sequence[Candidate], budget_db: float, notes: Sequence[str],
                 precision: str | None = None, probe_hw: tuple[int, int] | None = None, batch: int = 1) -> str:
    """The one line ``sr-run`` prints about the choice (pure)."""
    parts = []
    at = (f" at {probe_hw[1]}x{probe_hw[0]}" if probe_hw else "") + (f", batch {batch}" if batch > 1 else "")
    base = next((c for c in candidates if c.backend == "ort" and c.precision == "fp32"), None)
    if base is not None and base != chosen and base.measured_ms and chosen.measured_ms:
        parts.append(f"{base.measured_ms / chosen.measured_ms:.1f}x faster than fp32 on onnxruntime{at}")
    elif chosen.measured_ms is not None:
        parts.append(f"{chosen.measured_ms:.1f} ms per input{at}")
    if precision is not None:
        parts.append(f"--precision {precision} asked for")
    elif chosen.precision == "fp32":
        parts.append("full precision")
    else:
        parts.append(f"recorded {chosen.quality_ref or 'validation'} drop {chosen.psnr_drop_db:.2f} dB <= budget "
                     f"{budget_db:g} dB")
    line = f"auto: chose {chosen.label}: {', '.join(parts)}"
    if any(n.startswith("OpenVINO is not installed") for n in notes):
        line += f"; using ONNX Runtime, OpenVINO is not installed ({OPENVINO_HINT} would add it)"
    return line


def auto_on_cpu(device: str, ort_providers: Sequence[str]) -> bool:
    """Whether ``--device`` puts ONNX Runtime on the CPU, where ``auto`` chooses variants (pure)."""
    return device == "cpu" or (device == "auto" and "CUDAExecutionProvider" not in ort_providers)


def _rank(c: Candidate) -> int:
    key = (c.backend, c.precision)
    return PREFERENCE.index(key) if key in PREFERENCE else len(PREFERENCE)


def _facts(c: Candidate) -> str:
    t = f"{c.measured_ms:.2f} ms" if c.measured_ms is not None else "not measured"
    drop = "reference" if c.precision == "fp32" else (
        f"{c.quality_ref or 'validation'} drop {c.psnr_drop_db:.3f} dB" if c.psnr_drop_db is not None
        else "drop unknown")
    return f"{t}, {drop}"


# ---------------------------------------------------------------- side effects

def installed_backends(wide_int8: bool = True) -> tuple[list[str], list[str], bool]:
    """(backends that import here, OpenVINO's CPU capabilities or [], whether OpenVINO's INT8 is exact here).

    ``wide_int8``: a file with 8-bit INT8 weights is among the candidates; without one, exactness is not asked
    of OpenVINO (its check compiles and runs a model: about 0.1 s) and reads True.
    """
    from sredge._lazy import require

    try:
        ov = require("openvino")
    except MissingDependencyError:
        return ["ort"], [], True
    from sredge.runtime.backends.openvino import int8_exact_here

    caps = list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ["ort", "openvino"], [str(c) for c in caps], int8_exact_here() if wide_int8 else True


def read_variants(paths: Sequence[Path]) -> list[Variant]:
    """:func:`variant_of` for each file (reads the ONNX headers), each derived file checked against the
    family's FP32 file (:func:`stranger`)."""
    from sredge.models.onnx_file import read_descriptor

    descs = [read_descriptor(p) for p in paths]
    root = next((d for p, d in zip(paths, descs) if d is not None and p == family_root(p)), None)
    out = [replace(variant_of(p, d), stranger=stranger(root, d)) for p, d in zip(paths, descs)]
    return [replace(v, wide_int8=_wide_int8(v.file)) if v.precision == "int8" else v for v in out]


def _wide_int8(path: Path) -> bool:
    """:func:`~sredge.runtime.backends.openvino.wide_int8_weights` of an INT8 file; False when its weights cannot
    be read (a missing external-data file: its probe fails and says so)."""
    from sredge.models.onnx_file import external_data_files, load_onnx
    from sredge.runtime.backends.openvino import wide_int8_weights

    model = load_onnx(path)
    try:
        external_data_files(model, path)
    except InputError:
        return False
    return wide_int8_weights(model, path.parent)


_SAME_NETWORK = ("arch", "variant", "scale", "in_channels", "out_channels", "color_space", "value_range",
                 "pre_upsample", "num_params")
"""Descriptor fields a derived file shares with the FP32 file it was made from."""


def stranger(root: ModelDescriptor | None, desc: ModelDescriptor | None) -> str:
    """How ``desc`` (a family file's metadata) shows another network than ``root`` (the FP32 file's), e.g.
    ``"fsrcnn x2, not fsrcnn x3"``; empty when they agree or either is unknown (pure)."""
    if root is None or desc is None:
        return ""
    differ = [f for f in _SAME_NETWORK if getattr(root, f) != getattr(desc, f)]
    if not differ:
        return ""
    if {"arch", "scale"} & set(differ):
        return f"{desc.arch} x{desc.scale}, not {root.arch} x{root.scale}"
    return ", ".join(f"{f} {getattr(desc, f)!r}, not {getattr(root, f)!r}" for f in differ[:2])


def candidate_options(c: Candidate, options: BackendOptions) -> BackendOptions:
    """The backend options that run candidate ``c`` (OpenVINO gets its precision explicitly)."""
    return replace(options, device="cpu", precision=c.precision if c.backend == "openvino" else None)


PROBE_HW = (128, 128)
"""Probe shape when the run's frame size is unknown (``decide`` without ``hw``)."""
PROBE_WARMUP = 2
"""Untimed runs of each candidate first: ONNX Runtime's first two runs grow its memory arena (on FSRCNN x3
at 640x360 they took 231 and 207 ms against a steady 151 ms, which once made it lose to OpenVINO's 172 ms)."""
PROBE_ROUNDS = 5
PROBE_BUDGET_S = 20.0
"""Timed rounds stop once they have taken this long in all (at least one round): a heavy model at a
whole-frame shape takes seconds a run."""


def probe_input(desc: ModelDescriptor | None, channels: int, height: int, width: int) -> np.ndarray:
    """A real photo (the bundled one, resized) as a (1, C, height, width) float32 network input.

    Real content, not noise: ONNX Runtime ran FSRCNN x3 on a 640x360 video frame in 113 ms and on
    uniform noise of the same shape in 165 ms (OpenVINO: 160 ms on both), so a noise probe ranked them
    the wrong way round.
    """
    from sredge.imaging.model_io import image_to_input
    from sredge.runtime.timing import sample_frame

    if desc is None:  # a foreign file: RGB or grey in [0, 1]
        desc = ModelDescriptor("unknown", 1, channels, channels, "y" if channels == 1 else "rgb", 1.0, False)
    rgb = sample_frame(height, width).astype(np.float32) / 255.0
    return image_to_input(rgb, replace(desc, pre_upsample=False))  # (height, width) is the network's input


def probe_all(cands: Sequence[Candidate], options: BackendOptions, hw: tuple[int, int] = PROBE_HW,
              warmup: int = PROBE_WARMUP, rounds: int = PROBE_ROUNDS, budget_s: float = PROBE_BUDGET_S,
              batch: int = 1) -> tuple[dict[Candidate, float | str], dict[Candidate, tuple[int, int]]]:
    """Median wall time (ms) of each candidate on one network call, timed against each other.

    Every candidate is opened at once, warmed up, then timed in interleaved rounds
    (:func:`sredge.runtime.timing.time_interleaved`), so machine load hits them alike.

    Args:
        cands: The admissible candidates.
        options: The user's backend options (threads).
        hw: (height, width) of the network input the run will use (its tile shape, see
            :func:`sredge.runtime.runner.probe_hw`); a fixed-shape model is probed at its own shape.
        warmup, rounds, budget_s: See :data:`PROBE_WARMUP`, :data:`PROBE_ROUNDS`, :data:`PROBE_BUDGET_S`.
        batch: Tiles per call the run will make (:func:`sredge.runtime.runner.probe_batch`); a model of a
            fixed batch runs at its own.

    Returns:
        (Candidate -> median ms, or the reason it could not run here (a failed open or first run);
        Candidate -> the (height, width) it ran at: ``hw``, or a fixed-shape model's own).
    """
    from sredge.runtime.backends import open_backend
    from sredge.runtime.timing import time_interleaved

    out: dict[Candidate, float | str] = {}
    shapes: dict[Candidate, tuple[int, int]] = {}
    calls = {}
    with contextlib.ExitStack() as stack:
        for c in cands:
            try:
                be = stack.enter_context(open_backend(c.backend, c.file, candidate_options(c, options)))
                spec = be.input_spec()
                shapes[c] = spec.fixed_hw or hw
                x = probe_input(be.descriptor(), spec.channels, *shapes[c])
                n = min(batch, spec.max_batch or batch)
                x = np.ascontiguousarray(np.repeat(x, n, axis=0)) if n > 1 else x
                be.run(x)  # a backend that cannot run this file here fails now, not while timed
            except (SredgeError, RuntimeError) as exc:
                out[c] = f"probe failed: {' '.join(str(exc).split())[:160]}"
                continue
            calls[c] = functools.partial(be.run, x)
        if calls:
            times = time_interleaved(calls, max(warmup - 1, 0), rounds, budget_s)
            out.update({c: statistics.median(t) * 1e3 for c, t in times.items()})
    return out, shapes


def decide(model: Path, options: BackendOptions, budget_db: float,
           installed: tuple[list[str], list[str], bool] | None = None,
           probe: Mapping[str, object] | None = None, keep: tuple[str, str] | None = None) -> AutoDecision:
    """Plan, probe (only when more than one candidate is admissible) and choose; logs the table at INFO.

    Args:
        model: The ``--model`` file (any of the family).
        options: The user's backend options (threads; ``precision`` restricts the candidates).
        budget_db: ``--max-psnr-drop``.
        installed: (backends, CPU capabilities, OpenVINO's INT8 exact here); None: detect
            (:func:`installed_backends`).
        probe: Keyword arguments for :func:`probe_all` (``hw``, ``warmup``, ``rounds``, ``budget_s``).
        keep: (file name, backend) of the candidate the stopped run that this one continues ran: chosen without a
            probe while it is admissible, so that every frame of the output comes from one network (a probe can
            rank close candidates either way, and another ``--threads`` ranks them anew).
    """
    variants = read_variants(family(model))
    backends, caps, exact = (installed if installed is not None else
                             installed_backends(any(v.wide_int8 for v in variants)))
    cands, notes = enumerate_candidates(variants, backends, caps, "cpu", options.precision, exact)
    ok = admissible(cands, budget_db, options.precision)
    kept = next((c for c in ok if (c.file.name, c.backend) == keep), None)
    if kept is not None:
        line = (summary_line(kept, cands, budget_db, notes, options.precision)
                + ", the choice of the stopped run this one continues (not probed again)")
        return AutoDecision(kept, tuple(cands), (f"kept {kept.label}: the stopped run chose it",), budget_db, line,
                            tuple(notes))
    hw, batch = None, 1
    if len(ok) > 1:
        probe = dict(probe or {})
        hw = tuple(probe.pop("hw", None) or PROBE_HW)
        batch = int(probe.get("batch", 1))
        got, shapes = probe_all(ok, options, hw, **probe)
        cands = [c if c not in got else
                 replace(c, excluded=got[c]) if isinstance(got[c], str) else replace(c, measured_ms=got[c])
                 for c in cands]
    chosen, reasons = choose(cands, budget_db, options.precision)
    if hw is not None:  # a fixed-shape model ran at its own shape, whatever the tiling asked for
        hw = next((shapes[c] for c in shapes if (c.file, c.backend, c.precision) ==
                   (chosen.file, chosen.backend, chosen.precision)), hw)
    line = summary_line(chosen, cands, budget_db, notes, options.precision, hw, batch)
    log.info("auto backend for %s (budget %g dB):\n  %s", model.name, budget_db,
             "\n  ".join(reasons + list(notes)))
    return AutoDecision(chosen, tuple(cands), tuple(reasons), budget_db, line, tuple(notes), hw)
