"""The regression gate: compare a benchmark report with a saved baseline (pure functions).

A baseline is a report saved by ``sr-bench --save-baseline``. Rows are paired by label (the
model's name, see :func:`model_names`, and its backend / precision / tile setting), which is
unique within a report; a report whose model rows share a label is refused, never half-matched.
A row whose label the baseline lacks pairs with the one baseline row named by a longer form of
its model's path (``a/model.onnx`` benched alone, labelled ``model``, with the baseline's
``a/model``); failing that, when the baseline holds a single model row, every row of the new run
is compared with it (``m.onnx`` as the baseline of ``m.int8.onnx``).
Latency is compared as the ratio of each run's time to its own reference workload, so
a machine that is busier today does not read as a slower model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import PurePath

from sredge.errors import InputError


@dataclass(frozen=True)
class Budget:
    """How much worse a run may be than its baseline."""

    max_psnr_drop: float | None = 0.05
    """dB of Y-PSNR, per image and on the mean; None: not gated (a run without quality figures)."""
    max_ssim_drop: float | None = None
    """Y-SSIM, per image and on the mean; None: SSIM is not gated."""
    max_slowdown: float | None = None
    """Allowed ratio of new to old median latency (normalised by the reference workload); None: not gated."""

    @property
    def gates_quality(self) -> bool:
        """Whether Y-PSNR or Y-SSIM is gated (the runs must both have quality figures)."""
        return self.max_psnr_drop is not None or self.max_ssim_drop is not None


@dataclass(frozen=True)
class Regression:
    """One metric that got worse than the budget allows."""

    model: str
    """The new row's label."""
    image: str
    """Image name, ``"mean"``, or ``"-"`` for latency."""
    metric: str
    before: float
    after: float
    ratio: float | None = None
    """Latency only: the slowdown the gate judged (see :func:`latency_ratio`)."""
    basis: str = "relative to the reference workload"
    """Latency only: what ``ratio`` measures, for the message."""

    def describe(self) -> str:
        unit = " ms" if self.metric == "latency" else (" dB" if "PSNR" in self.metric else "")
        text = f"{self.model}: {self.image}: {self.metric} {self.before:.4g}{unit} -> {self.after:.4g}{unit}"
        return text + (f" (x{self.ratio:.3g} {self.basis})" if self.ratio is not None else "")


def model_names(path: str | PurePath) -> list[str]:
    """The names a model file's rows may be labelled by, shortest first (pure).

    The file stem, then the stem under ever more of its parent folders (``model``, ``a/model``,
    ``x/a/model``, ...), then the same with the file's extension (``model.onnx``, ``a/model.onnx``,
    ...) for files that differ only by it. sr-bench labels each model by the first of its names that
    no other model of the run has among its own, so ``a/model.onnx`` and ``b/model.onnx`` are
    ``a/model`` and ``b/model``, and the same set of files gives the same labels in every run.

    Args:
        path: The model file, absolute for sr-bench's labels; ``..`` parts are folded first.
    """
    p = PurePath(os.path.normpath(path))
    folders = list(p.parent.parts[1:] if p.anchor else p.parent.parts)
    names = []
    for last in (p.stem, p.name):
        names += ["/".join([*folders[len(folders) - k:], last]) for k in range(len(folders) + 1)]
    return names


def check_baseline(baseline: object) -> None:
    """Refuse a baseline that is not an sr-bench report in the shape the gate reads (pure).

    Every key :func:`compare` uses is checked for presence and type, so a hand-edited or damaged file
    is named as such instead of failing half-way through the comparison.

    Raises:
        InputError: Naming the first bad key, e.g. ``rows[1].quality.mean.psnr``.
    """
    _typed(baseline, "the file", dict)
    dataset = _typed(_get(baseline, "dataset"), "dataset", dict)
    _typed(_get(dataset, "fingerprint", "dataset."), "dataset.fingerprint", str)
    names = _typed(dataset["images"], "dataset.images", list) if "images" in dataset else None
    if baseline.get("reference_ms") is not None:
        _positive(baseline["reference_ms"], "reference_ms")
    if "settings" in baseline:
        hw = _typed(baseline["settings"], "settings", dict).get("latency_hw")
        if hw is not None and not (isinstance(hw, list) and len(hw) == 2
                                   and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)):
            raise _bad("settings.latency_hw must be null or [height, width]")
    labelled: dict[str, int] = {}
    for i, row in enumerate(_typed(_get(baseline, "rows"), "rows", list)):
        at = f"rows[{i}]"
        _typed(row, at, dict)
        label = _typed(_get(row, "label", f"{at}."), f"{at}.label", str)
        if not row.get("bicubic"):
            if label in labelled:
                raise _bad(f"rows[{labelled[label]}] and {at} are both labelled {label!r}, so the gate cannot "
                           "tell them apart")
            labelled[label] = i
        if row.get("quality") is not None:
            quality = _typed(row["quality"], f"{at}.quality", dict)
            mean = _get(quality, "mean", f"{at}.quality.")
            images = _typed(_get(quality, "images", f"{at}.quality."), f"{at}.quality.images", dict)
            if names is not None and not row.get("bicubic") and sorted(images) != sorted(map(str, names)):
                raise _bad(f"{at}.quality.images must score every image of dataset.images, and only those")
            for where, scores in [(f"{at}.quality.mean", mean)] + [
                    (f"{at}.quality.images.{k}", v) for k, v in images.items()]:
                _typed(scores, where, dict)
                psnr = _typed(_get(scores, "psnr", f"{where}."), f"{where}.psnr", float)
                if math.isnan(psnr) or psnr == -math.inf:  # +inf: identical to the HR image
                    raise _bad(f"{where}.psnr must be a number of dB or Infinity")
                if not math.isfinite(_typed(_get(scores, "ssim", f"{where}."), f"{where}.ssim", float)):
                    raise _bad(f"{where}.ssim must be a finite number")
        if row.get("latency") is not None:
            latency = _typed(row["latency"], f"{at}.latency", dict)
            _positive(_get(latency, "median_ms", f"{at}.latency."), f"{at}.latency.median_ms")
    if not labelled:
        raise _bad("rows holds no model row (a baseline gates models, not the bicubic row)")


def _positive(value: object, where: str) -> float:
    if not (math.isfinite(_typed(value, where, float)) and value > 0):
        raise _bad(f"{where} must be a positive number of milliseconds")
    return value


def _bad(problem: str) -> InputError:
    return InputError(f"is not a valid sr-bench report: {problem} (save a new baseline with --save-baseline)")


def _get(obj: dict, key: str, prefix: str = ""):
    if key not in obj:
        raise _bad(f"{prefix}{key} is missing")
    return obj[key]


def _typed(value: object, where: str, kind: type):
    """``value``, checked to be a ``kind`` (float: any number but a bool)."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if kind is float else isinstance(value, kind)
    if not ok:
        raise _bad(f"{where} must be {({dict: 'an object', list: 'a list', str: 'a string'}).get(kind, 'a number')}")
    return value


def check_comparable(baseline: dict, report: dict) -> None:
    """Refuse a baseline measured on other data.

    Raises:
        InputError: The dataset (its images' bytes), the scale or the LR source differ.
    """
    if "dataset" not in baseline or "rows" not in baseline:
        raise InputError("the baseline file is not an sr-bench report (no dataset/rows); save one with --save-baseline")
    b, r = baseline["dataset"], report["dataset"]
    if b.get("fingerprint") != r.get("fingerprint"):
        raise InputError(
            f"the baseline was measured on {b.get('name')} x{b.get('scale')} ({b.get('lr_source')} LR, "
            f"{len(b.get('images', []))} images), this run on {r['name']} x{r['scale']} ({r['lr_source']} LR, "
            f"{len(r['images'])} images): not comparable; save a new baseline for this dataset"
        )


def pair_rows(baseline: dict, report: dict) -> list[tuple[dict, dict]]:
    """``(old_row, new_row)`` for every model row of ``report`` (bicubic rows are not gated).

    A new row pairs with the baseline row of its label; else with the one baseline row of the same
    setting whose label is a name of the new row's file and whose file the new label names (see
    :func:`model_names`: ``model`` of ``/w/a/model.onnx`` pairs with ``a/model``, never with ``b/model``);
    else, when the baseline has a single model row, with that row. No baseline row pairs twice.

    Raises:
        InputError: Two model rows of either report share a label; a new row has no partner in the
            baseline, or several; two new rows would pair with one baseline row.
    """
    old_rows = _model_rows(baseline, "the baseline", "save a new baseline with --save-baseline")
    by_label = {r["label"]: r for r in old_rows}
    pairs: list[tuple[dict, dict]] = []
    for new in _model_rows(report, "this run", "give each model and setting once"):
        old = by_label.get(new["label"])
        if old is None:
            named = _named_by_path(new, old_rows)
            if len(named) > 1:
                raise InputError(f"{new['label']} could be the baseline's {' or '.join(r['label'] for r in named)}; "
                                 "bench the same model files as the baseline did")
            old = named[0] if named else (old_rows[0] if len(old_rows) == 1 else None)
        if old is None:
            raise InputError(f"the baseline has no row for {new['label']} (it has: "
                             f"{', '.join(by_label) or 'none'}); save a baseline with this model")
        twin = next((n for o, n in pairs if o is old), None)
        if twin is not None:
            raise InputError(f"{twin['label']} and {new['label']} would both be compared with the baseline's "
                             f"{old['label']}; bench the same model files as the baseline did")
        pairs.append((old, new))
    return pairs


def _model_rows(report: dict, what: str, fix: str) -> list[dict]:
    """The gated (non-bicubic) rows of ``report``, refused when two share a label (pairing would be a guess)."""
    rows = [r for r in report["rows"] if not r.get("bicubic")]
    seen: set[str] = set()
    for r in rows:
        if r["label"] in seen:
            raise InputError(f"{what} has two model rows labelled {r['label']!r}, so the gate cannot tell them "
                             f"apart; {fix}")
        seen.add(r["label"])
    return rows


def _named_by_path(new: dict, old_rows: list[dict]) -> list[dict]:
    """Baseline rows of ``new``'s setting that name the same file: each row's label is a name of the
    other's file (a recorded path may be relative, e.g. in a baseline saved by an older sredge)."""
    split = _name_and_setting(new)
    if split is None:
        return []
    name, setting = split
    found = []
    for r in old_rows:
        theirs = _name_and_setting(r)
        if theirs is not None and theirs[1] == setting and theirs[0] in model_names(new["model"]) \
                and name in model_names(r["model"]):
            found.append(r)
    same = [r for r in found if os.path.isabs(r["model"]) and os.path.normpath(r["model"]) == new["model"]]
    return same or found  # the very file, where both runs recorded it absolutely


def _name_and_setting(row: dict) -> tuple[str, str] | None:
    """``(model name, setting)`` of a row's label (``"a/model [tile 48]"`` -> ``("a/model", " [tile 48]")``),
    the name being one of its file's :func:`model_names`; None when the row records no file."""
    path, label = row.get("model"), row["label"]
    if not isinstance(path, str):
        return None
    own = next((n for n in reversed(model_names(path)) if label == n or label.startswith(n + " [")), None)
    return (own, label[len(own):]) if own is not None else None


def gated_pairs(baseline: dict, report: dict, budget: Budget) -> list[tuple[dict, dict]]:
    """The row pairs :func:`compare` judges, once both runs are known to measure what ``budget`` gates.

    A gate that passes because a figure is missing would be a false pass: a baseline saved with
    ``--no-quality`` has no PSNR to hold a new run to, one saved with ``--size 0`` no latency, and
    latencies of different frame sizes are not comparable.

    Raises:
        InputError: As :func:`check_comparable` and :func:`pair_rows`; or ``budget`` gates quality or
            latency that a paired row of either run lacks, or the runs timed different frame sizes.
    """
    check_comparable(baseline, report)
    pairs = pair_rows(baseline, report)
    for old, new in pairs:
        for row, run, fix in ((old, "the baseline", "save a new baseline"), (new, "this run", "measure it")):
            if budget.gates_quality and row.get("quality") is None:
                raise _no_quality(f"{run} has no quality figures for {row['label']} (--no-quality)", fix)
            if budget.max_slowdown is not None and not row.get("latency"):
                raise InputError(f"{run} has no latency for {row['label']} (--size 0), so --max-slowdown would pass "
                                 f"unchecked; {fix} with a --size frame")
    check_measurable(baseline, budget, report.get("settings", {}).get("latency_hw"))
    return pairs


def check_measurable(baseline: dict, budget: Budget, latency_hw) -> None:
    """What :func:`gated_pairs` would refuse that the baseline alone tells, before any measuring: a quality
    gate against a baseline without quality figures, a latency gate between different frame sizes.

    Args:
        baseline: A baseline that passed :func:`check_baseline`.
        latency_hw: The (height, width) this run times, None for none (``--size 0``).
    """
    if budget.gates_quality and not any(r.get("quality") is not None for r in baseline["rows"]
                                        if not r.get("bicubic")):
        raise _no_quality("the baseline has no quality figures (saved with --no-quality)", "save a new baseline")
    if budget.max_slowdown is None:
        return
    before = baseline.get("settings", {}).get("latency_hw")
    before, after = (list(hw) if hw else None for hw in (before, latency_hw))
    if before is None:
        raise InputError("the baseline timed no frames (--size 0), so --max-slowdown has nothing to compare; "
                         "save a new baseline with a --size frame")
    if before != after:
        wxh = "x".join(map(str, before[::-1]))
        now = "x".join(map(str, after[::-1])) if after else "none (--size 0)"
        raise InputError(f"the baseline timed {wxh} frames, this run {now}: latencies are not comparable; "
                         f"run with --size {wxh} or save a new baseline")


_ROW_SETTINGS = ("backend", "tile")
_RUN_SETTINGS = ("threads", "device", "tile_overlap")
AS_STORED = "as stored"
"""A row's ``graph`` when the backend ran the model file's graph unchanged (ONNX Runtime's rewrite aside)."""


def row_graph(row: dict) -> str:
    """The graph a row ran (pure): its ``graph``, else :data:`AS_STORED` (reports from before ONNX Runtime's
    PReLU rewrite, :mod:`sredge.runtime.ort_rewrites`, record none: they ran the file as stored)."""
    return row.get("graph") or AS_STORED


def gate_notes(baseline: dict, report: dict, pairs: list[tuple[dict, dict]], budget: Budget | None = None) -> list[str]:
    """What the gate did not hold the run to, one line each (pure): baseline rows this run did not
    measure, pairs measured with other settings (backend, tile, threads, the graph ONNX Runtime ran, ...),
    whose figures may differ for that reason alone, and a latency gate that could not allow for a busier
    machine. Not failures: a run may mean to change them."""
    paired = {id(old) for old, _ in pairs}
    notes = [f"the baseline's {r['label']} was not measured in this run, so it was not gated"
             for r in baseline["rows"] if not r.get("bicubic") and id(r) not in paired]
    for old, new in pairs:
        def shown(value) -> str:
            return "none" if value is None else str(value)  # a row's tile None: the frame whole

        differ = [f"{k} {shown(old.get(k))} -> {shown(new.get(k))}" for k in _ROW_SETTINGS
                  if old.get(k) != new.get(k)]
        if row_graph(old) != row_graph(new):  # e.g. a baseline saved before ONNX Runtime's PReLU rewrite
            differ.append(f"graph {row_graph(old)} -> {row_graph(new)}")
        before, after = baseline.get("settings") or {}, report.get("settings") or {}
        differ += [f"{k} {shown(before.get(k))} -> {shown(after.get(k))}" for k in _RUN_SETTINGS
                   if k in before and before.get(k) != after.get(k)]
        if differ:
            notes.append(f"{new['label']} is compared with the baseline's {old['label']} measured otherwise: "
                         + ", ".join(differ))
    if budget is not None and budget.max_slowdown is not None and not (baseline.get("reference_ms")
                                                                       and report.get("reference_ms")):
        notes.append("latency is compared in plain milliseconds: the baseline has no reference workload time, "
                     "so a busier machine reads as a slower model")
    if budget is not None and budget.max_slowdown is not None and not same_machine(baseline, report):
        def machine(r: dict) -> str:
            m = r.get("machine") or {}
            return f"{m.get('processor') or 'an unknown CPU'} ({m.get('cpu_count')} CPUs)"

        notes.append(f"the baseline was measured on {machine(baseline)}, this run on {machine(report)}"
                     + (" with other CPU features" if machine(baseline) == machine(report) else "")
                     + ": latency is compared through the reference workload only, which does not cancel "
                     "what the CPUs do differently (INT8 speed depends on VNNI, for one)")
    return notes


def _no_quality(what: str, fix: str) -> InputError:
    return InputError(f"{what}, so the PSNR gate would pass unchecked; {fix} with quality, "
                      "or gate latency alone with --no-quality --max-slowdown")


_MACHINE_KEYS = ("processor", "cpu_flags", "cpu_count")
"""What makes two reports' machines the same for the latency gate."""


def same_machine(baseline: dict, report: dict) -> bool:
    """Whether two reports were measured on the same kind of machine: CPU name, flags and count (pure)."""
    a, b = baseline.get("machine") or {}, report.get("machine") or {}
    return all(a.get(k) == b.get(k) for k in _MACHINE_KEYS)


def latency_ratio(old: dict, new: dict, baseline: dict, report: dict) -> tuple[float, str]:
    """The slowdown of row ``new`` (of ``report``) over row ``old`` (of ``baseline``) the gate judges, and what it
    measures (pure).

    Against the reference workload each run times (``reference_ms``), so that a busier machine does not read
    as a slower model. On the machine that made the baseline the plain milliseconds must show the slowdown
    too (the smaller of the two ratios): the small reference workload's own noise (9.8-16 ms from run to run
    on a shared 2-core machine) made an unchanged model read x1.17 slower, while its milliseconds had not
    moved. Without a reference time in either report: plain milliseconds.
    """
    a, b = old["latency"]["median_ms"], new["latency"]["median_ms"]
    old_ref, new_ref = baseline.get("reference_ms"), report.get("reference_ms")
    if not (old_ref and new_ref):
        return b / a, "in milliseconds"
    relative = (b / new_ref) / (a / old_ref)
    if same_machine(baseline, report) and b / a < relative:
        return b / a, "in milliseconds, the smaller of that and the ratio to the reference workload"
    return relative, "relative to the reference workload"


def compare(baseline: dict, report: dict, budget: Budget) -> list[Regression]:
    """Every regression of ``report`` against ``baseline`` beyond ``budget`` (empty: within budget).

    Raises:
        InputError: The two reports are not comparable or lack what ``budget`` gates (see :func:`gated_pairs`).
    """
    found: list[Regression] = []
    for old, new in gated_pairs(baseline, report, budget):
        for metric, key, limit in (("Y-PSNR", "psnr", budget.max_psnr_drop), ("Y-SSIM", "ssim", budget.max_ssim_drop)):
            if limit is None:
                continue
            before = {"mean": old["quality"]["mean"][key], **{k: v[key] for k, v in old["quality"]["images"].items()}}
            after = {"mean": new["quality"]["mean"][key], **{k: v[key] for k, v in new["quality"]["images"].items()}}
            unscored = sorted(set(after) - set(before))
            if unscored:  # the same dataset (its fingerprint): the baseline lost scores, and must not pass them
                names = ", ".join(unscored[:3]) + (f" and {len(unscored) - 3} more" if len(unscored) > 3 else "")
                raise InputError(f"the baseline's {old['label']} has no {metric} for {names}, which this run scored "
                                 "on the same dataset: the baseline is damaged or edited; save it again with "
                                 "--save-baseline")
            for image, b in before.items():
                a = after.get(image, math.nan)  # a baseline image this run did not score fails, never passes
                if _dropped(b, a, limit):
                    found.append(Regression(new["label"], image, metric, b, a))
        if budget.max_slowdown is not None:
            ratio, basis = latency_ratio(old, new, baseline, report)
            if ratio > budget.max_slowdown:
                found.append(Regression(new["label"], "-", "latency", old["latency"]["median_ms"],
                                        new["latency"]["median_ms"], ratio, basis))
    return found


def _dropped(before: float, after: float, limit: float) -> bool:
    """Whether a score fell by more than ``limit``. An infinite PSNR (the image reproduced exactly) that
    stays infinite has not fallen; one that becomes finite has fallen without limit; a score this run
    could not give (NaN, missing) counts as a fall."""
    if math.isnan(after):
        return True
    return before != after and before - after > limit + 1e-9
