"""``sr-bench`` as a library function: quality and latency of models on one dataset, in one run.

Every model runs through the runtime (:class:`~sredge.runtime.runner.LoadedRuntime`), once per
backend x tile setting asked for; each such configuration is a *row* of the report. The
report is a plain dict (the ``report.json`` schema, also the baseline format of the gate).

Latency is timed last, with every row's runtime open at once and the reference workload among
them, in interleaved rounds (:func:`sredge.runtime.timing.time_ratios`): each row's ``speedup``
over the first model row and its ``relative`` time to the reference workload are medians of
per-round ratios, reported with their interquartile range.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from sredge.benchmarks.datasets import Dataset, load_dataset, load_pair
from sredge.benchmarks.gate import AS_STORED, model_names
from sredge.benchmarks.latency import REFERENCE_HW, summarize
from sredge.benchmarks.plots import detail_window
from sredge.benchmarks.quality import ImageScore, evaluate, evaluate_bicubic, mean
from sredge.environment import software_and_machine
from sredge.errors import InputError
from sredge.limits import DEFAULT_MAX_PIXELS
from sredge.runtime.backends import BackendOptions
from sredge.runtime.model import ModelOverrides
from sredge.runtime.runner import LoadedRuntime, RunOptions
from sredge.runtime.timing import sample_frame, speed_ratio, time_ratios

log = logging.getLogger(__name__)

REPORT_VERSION = 2
"""2: strict JSON, an infinite PSNR written as null; 1: written as Infinity (still read)."""
_REFERENCE = "\0reference"
"""Key of the reference workload among the timed calls (no row label can be it)."""
CROP_SIDE = 96
"""HR pixels per side of the side-by-side crops."""


@dataclass(frozen=True)
class BenchOptions:
    """What ``sr-bench`` measures and how."""

    dataset: Path
    """Benchmark folder (see :mod:`sredge.benchmarks.datasets`)."""
    scale: int | None = None
    """Upscaling factor; None takes the first model's."""
    backends: tuple[str, ...] = ("auto",)
    """Backends to run every model on (``auto`` = by file type)."""
    precisions: tuple[str | None, ...] = (None,)
    """Precisions to run every model in (``fp32``/``bf16``/``int8``: OpenVINO); None = the model's own."""
    tiles: tuple[int | str | None, ...] = ("auto",)
    """Tile settings to run every model with (``"auto"``, None = whole image, or an edge in pixels)."""
    tile_overlap: int = 16
    device: str = "cpu"
    """Device for the ONNX Runtime / PyTorch backends."""
    threads: int = 0
    """Inference threads (0: the library's default)."""
    quality: bool = True
    """Score every image (Y-PSNR, Y-SSIM); False measures no quality, the bicubic row's included."""
    rgb: bool = False
    """Also RGB PSNR."""
    bicubic: bool = True
    """Add the MATLAB-bicubic baseline row (a quality row: none when ``quality`` is False)."""
    latency_hw: tuple[int, int] | None = (256, 256)
    """LR frame (height, width) timed per row; None skips latency."""
    warmup: int = 2
    repeats: int = 10
    crops: bool = False
    """Keep side-by-side crops (bicubic | models | HR) for the report folder."""
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    """``--color`` / ``--range`` for foreign models (the scale comes from ``scale``)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest dataset image decoded (``--max-pixels``), checked from each file's header."""
    trust_pickle: bool = False
    """Allow checkpoints that store pickled code (torch backend, ``--trust-pickle``): runs their code."""


@dataclass
class BenchResult:
    """A finished benchmark: the report dict and, when asked for, crops per image."""

    report: dict
    crops: dict[str, list[tuple[str, np.ndarray]]]
    """image name -> [(row label, (side, side, 3) uint8 RGB crop), ...] with HR last."""


def model_precision(path: Path) -> str:
    """``fp32``, ``fp16``, ``int8`` (or sr-export's ``int8-cpu``/``int8-trt``) for a model file.

    Read from the sredge metadata when it says so, else from the graph as the engine planner reads
    it (:func:`~sredge.models.onnx_file.onnx_facts`: Q/DQ nodes, float16 weights or casts), plus
    ONNX Runtime's QOperator INT8 ops.
    """
    if path.suffix.lower() != ".onnx":
        return "fp32"
    import onnx

    from sredge.models.onnx_file import onnx_facts

    model = onnx.load(str(path), load_external_data=False)
    facts = onnx_facts(model, sha256="")
    if facts.descriptor is not None and facts.descriptor.precision != "fp32":
        return facts.descriptor.precision  # int8-cpu / int8-trt / fp16, as sr-export wrote it
    if {n.op_type for n in model.graph.node} & {"QLinearConv", "ConvInteger"}:
        return "int8"
    return facts.precision


def model_labels(models: list[Path]) -> list[str]:
    """Each model's name in the report's row labels: its file stem, unless another model of the run
    shares it (``a/model``, ``b/model``: the shortest form of the path that no other model can take, see
    :func:`~sredge.benchmarks.gate.model_names`); a file given again (an A/A check of the timing) is
    ``model #2``. The same files give the same names in every run, so the gate pairs the rows of two
    runs; ``bicubic`` names the baseline row only.

    Raises:
        InputError: Two models cannot be named apart (e.g. ``m.onnx`` twice beside ``m #2.onnx``).
    """
    full = [os.path.abspath(m) for m in models]
    names = {f: model_names(f) for f in full}  # each file once
    own_name = {}
    for f, own in names.items():
        taken = {"bicubic"}.union(*(n for g, n in names.items() if g != f))
        own_name[f] = next((n for n in own if n not in taken), None)
    labels = [own_name[f] if f not in full[:i] else f"{own_name[f]} #{full[:i].count(f) + 1}"
              for i, f in enumerate(full)]
    for i, label in enumerate(labels):
        # None: rare, e.g. p/m.onnx beside p/m.pth and p/m.onnx.engine, which take every name of p/m.onnx
        if label is None or label in labels[:i]:
            raise InputError(f"cannot name {models[i]} apart from the other models; rename one of them")
    return labels


def _label(name: str, backend: str, precision: str | None, tile, multi_backend: bool, multi_precision: bool,
           multi_tile: bool) -> str:
    extra = []
    if multi_backend:
        extra.append(backend)
    if multi_precision:
        extra.append(precision or "own precision")
    if multi_tile:
        extra.append(f"tile {tile if tile is not None else 'none'}")
    return name + (f" [{', '.join(extra)}]" if extra else "")


def _reference_call(stack: contextlib.ExitStack, threads: int) -> tuple[Callable[[], object], str]:
    """The reference workload (bundled x2 model, 128x128 frame, ONNX Runtime CPU), opened on ``stack``, and its
    description for the report.

    Its graph runs as stored: a baseline's reference time holds only while the workload stays the same, and
    ONNX Runtime's PReLU rewrite (:mod:`sredge.runtime.ort_rewrites`) made this one 0.74x as long, so every row
    not rewritten itself read 1.35x slower against a baseline saved before it."""
    from sredge.runtime.bundled import default_model

    h, w = REFERENCE_HW
    rt = stack.enter_context(LoadedRuntime(default_model(2), RunOptions(
        backend_options=BackendOptions(device="cpu", threads=threads), tile=None), ort_rewrites=False))
    ups, frame = rt.upscaler(h, w), sample_frame(h, w)
    return (lambda: ups.upscale(frame)), f"bundled x2 model, {w}x{h}, ORT CPU, graph {rt.backend.graph}"


def _open(stack: contextlib.ExitStack, model: Path, run_opts: RunOptions, scale_given: bool,
          first: Path) -> LoadedRuntime:
    """``model``'s runtime, entered on ``stack``.

    Without a user's ``--scale``, the models after the first run at the first one's scale (a
    pre-upsampling network takes any). When that fails, the model is opened at its own scale to tell
    what failed: a scale unlike the first model's is said as such, not as a ``--scale`` the user never gave.
    """
    try:
        return stack.enter_context(LoadedRuntime(model, run_opts))
    except InputError:
        if scale_given or run_opts.overrides.scale is None:
            raise
        own_scale = replace(run_opts, overrides=replace(run_opts.overrides, scale=None),
                            torch_kwargs={k: v for k, v in run_opts.torch_kwargs.items() if k != "scale"})
        with LoadedRuntime(model, own_scale) as own:
            if own.desc.scale == run_opts.overrides.scale:
                raise
            raise InputError(f"{model.name} upscales x{own.desc.scale} but {first.name} x{run_opts.overrides.scale}: "
                             "models of different scales cannot share one benchmark; bench them separately") from None


def _quality_dict(scores: list[ImageScore]) -> dict:
    keys = ["psnr", "ssim"] + (["rgb_psnr"] if scores and scores[0].rgb_psnr is not None else [])
    return {
        "mean": {k: round(mean(scores, k), 4) for k in keys},
        "images": {s.name: {k: round(getattr(s, k), 4) for k in keys} for s in scores},
    }


def run_bench(models: list[Path], opts: BenchOptions,
              progress: Callable[[str], None] | None = None) -> BenchResult:
    """Benchmark ``models`` (each on every backend x tile in ``opts``) on ``opts.dataset``.

    Args:
        models: Model files (.onnx, .engine, .pth): anything ``sr-run`` runs.
        opts: What to measure.
        progress: Called with a short line before each step (the CLI shows it).

    Returns:
        The report (see ``README.md`` for the schema) and the crops.

    Raises:
        InputError: No models, a missing model file, a setting given twice, a dataset problem,
            a model that does not upscale by ``scale`` (or, without ``scale``, by the first model's).
    """
    say = progress or (lambda _msg: None)
    if not models:
        raise InputError("give at least one model")
    for m in models:
        if not m.is_file():
            raise InputError(f"model {m} does not exist" if not m.exists() else
                             f"model {m} is not a file (a folder, a pipe, a device): give the model file")
    names = model_labels(models)
    for what, values in (("backend", opts.backends), ("precision", opts.precisions), ("tile setting", opts.tiles)):
        twice = next((v for i, v in enumerate(values) if v in values[:i]), False)
        if twice is not False:  # two rows of one label: the gate could not tell them apart
            raise InputError(f"{what} {'none' if twice is None else twice} is given twice; give each once")
    scale_given = opts.scale is not None
    multi_b, multi_p, multi_t = len(opts.backends) > 1, len(opts.precisions) > 1, len(opts.tiles) > 1
    combos = [(b, p, t) for b in opts.backends for p in opts.precisions for t in opts.tiles]
    dataset: Dataset | None = None
    if opts.scale is not None:
        dataset = load_dataset(opts.dataset, opts.scale, opts.max_pixels)
    rows: list[dict] = []
    crops: dict[str, list[tuple[str, np.ndarray]]] = {}
    windows: dict[str, tuple[int, int, int]] = {}
    hr_crops: dict[str, np.ndarray] = {}

    def keeper(label: str):
        def keep(name: str, lr: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> None:
            if name not in windows:  # the first row to see an image picks its window and keeps the HR crop
                y, x, side = windows[name] = detail_window(hr, CROP_SIDE)
                hr_crops[name] = hr[y:y + side, x:x + side].copy()
            y, x, side = windows[name]
            crops.setdefault(name, []).append((label, sr[y:y + side, x:x + side].copy()))
        return keep if opts.crops else None

    frame = None
    calls: dict[str, Callable[[], object]] = {}  # str(row index) -> one timed upscale (labels may repeat)
    out_pixels: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        reference = None
        if opts.latency_hw:
            calls[_REFERENCE], reference = _reference_call(stack, opts.threads)
        for model, name in zip(models, names):
            for backend, precision, tile in combos:  # one row per model x backend x precision x tile
                label = _label(name, backend, precision, tile, multi_b, multi_p, multi_t)
                run_opts = RunOptions(
                    backend=backend, backend_options=BackendOptions(device=opts.device, threads=opts.threads,
                                                                    precision=precision),
                    tile=tile, tile_overlap=opts.tile_overlap,
                    overrides=ModelOverrides(scale=opts.scale, color=opts.overrides.color,
                                             value_range=opts.overrides.value_range),
                    torch_kwargs={k: v for k, v in (("scale", opts.scale), ("trust_pickle", opts.trust_pickle)) if v},
                    max_pixels=opts.max_pixels)
                rt = _open(stack, model, run_opts, scale_given, models[0])  # open until latency is timed
                if dataset is None:
                    dataset = load_dataset(opts.dataset, rt.desc.scale, opts.max_pixels)
                    opts = replace(opts, scale=rt.desc.scale)
                if rt.desc.scale != dataset.scale:
                    raise InputError(f"{model.name} upscales x{rt.desc.scale}, the benchmark is x{dataset.scale}")
                if opts.bicubic and opts.quality and not rows:  # the bicubic row is quality only
                    say(f"bicubic baseline on {dataset.name} x{dataset.scale}")
                    bic = evaluate_bicubic(dataset, opts.rgb, keeper("bicubic"))
                    rows.append({"label": "bicubic", "bicubic": True, "model": None, "backend": None,
                                 "precision": None, "tile": None, "quality": _quality_dict(bic),
                                 "latency": None})
                row = {"label": label, "bicubic": False, "model": os.path.abspath(model), "backend": rt.kind,
                       "backend_detail": rt.backend.describe(), "graph": getattr(rt.backend, "graph", AS_STORED),
                       "precision": precision or model_precision(model),
                       "tile": tile, "descriptor": asdict(rt.desc), "latency": None}
                if opts.quality:
                    say(f"{label}: quality on {len(dataset.samples)} images")
                    row["quality"] = _quality_dict(evaluate(rt.upscaler, dataset, opts.rgb, keeper(label)))
                if opts.latency_hw:
                    h, w = opts.latency_hw
                    if frame is None:
                        frame = sample_frame(h, w, load_pair(dataset.samples[0], dataset.scale)[0])
                    ups = rt.upscaler(h, w)
                    calls[str(len(rows))] = lambda ups=ups, frame=frame: ups.upscale(frame)
                    out_pixels[str(len(rows))] = h * w * rt.desc.scale ** 2
                rows.append(row)
        ref = None
        if len(calls) > 1:
            h, w = opts.latency_hw
            first = next(key for key in calls if key != _REFERENCE)
            say(f"latency: {len(calls) - 1} row(s) and the reference workload, {opts.warmup} warm-up + "
                f"{opts.repeats} interleaved rounds at {w}x{h}")
            times, speedups = time_ratios(calls, first, opts.warmup, opts.repeats)
            ref_times = times[_REFERENCE]
            ref = round(float(np.median(ref_times)) * 1e3, 4)
            for key, row in ((str(i), row) for i, row in enumerate(rows)):
                if key not in times or key == _REFERENCE:
                    continue
                lat = {k: round(v, 4) for k, v in asdict(summarize(times[key], out_pixels[key])).items()}
                rel = speed_ratio(times[key], ref_times)  # this row's time / the reference's, per round
                lat |= {"relative": round(rel.median, 4), "relative_iqr": [round(rel.low, 4), round(rel.high, 4)],
                        "speedup": speedups[key].as_dict() | {"over": rows[int(first)]["label"]}}
                row["latency"] = lat
    for name, hr_crop in hr_crops.items():
        crops[name].append(("HR", hr_crop))
    software, machine = software_and_machine(opts.threads)
    report = {
        "sredge_report": REPORT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": {"name": dataset.name, "root": str(dataset.root), "scale": dataset.scale,
                    "lr_source": dataset.lr_source, "images": [s.name for s in dataset.samples],
                    "fingerprint": dataset.fingerprint()},
        "settings": {"latency_hw": list(opts.latency_hw) if opts.latency_hw else None, "warmup": opts.warmup,
                     "repeats": opts.repeats, "threads": opts.threads, "device": opts.device,
                     "tile_overlap": opts.tile_overlap, "rgb": opts.rgb,
                     "reference_workload": reference},
        "reference_ms": ref,
        "rows": rows,
        "software": software,
        "machine": machine,
    }
    return BenchResult(report, crops)
