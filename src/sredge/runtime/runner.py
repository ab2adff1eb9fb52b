"""A model ready to run: the backend chosen for it, activated, with its resolved descriptor and tiling.

``sr-run``'s work on top of it lives beside: :mod:`sredge.runtime.images` (image files),
:mod:`sredge.runtime.video_run` (video) and :mod:`sredge.runtime.report` (the run report).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sredge.errors import InputError
from sredge.limits import DEFAULT_MAX_PIXELS
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends import BACKENDS, Backend, BackendOptions, model_kind, open_backend
from sredge.runtime.backends.base import InputSpec
from sredge.runtime.memory import DEFAULT_FEATURE_CHANNELS
from sredge.runtime.model import ModelOverrides, probe_scale, resolve_descriptor
from sredge.runtime.tiling import MIN_SIDE, TileConfig, TilePlan, auto_tile, plan_tiles
from sredge.runtime.upscaler import Upscaler

if TYPE_CHECKING:
    from sredge.runtime.auto import AutoDecision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Everything ``sr-run`` lets a user choose about how a model runs."""

    backend: str = "auto"
    """``auto`` (by model file type; with ``max_psnr_drop``, an .onnx on the CPU runs the fastest variant within
    it, see :mod:`sredge.runtime.auto`), ``ort``, ``trt``, ``torch`` or ``openvino`` (an .onnx on the CPU)."""
    max_psnr_drop: float | None = None
    """Quality budget (dB) for ``backend="auto"`` on the CPU: the backends installed and the model's precision
    variants (``NAME.int8.onnx`` ...) whose recorded PSNR drop is within it are timed and the fastest runs.
    None (the library default): ``auto`` goes by file type only. ``sr-run`` passes ``--max-psnr-drop`` (0.1)."""
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    tile: int | str | None = "auto"
    """Tile edge in input pixels (at least 16), ``"auto"`` (from ``memory_budget_mb``) or None or 0 (whole frame,
    as ``--tile 0``)."""
    tile_overlap: int = 16
    """Context pixels around each tile (>= the network's receptive field for seamless tiles)."""
    blend: bool = False
    """Feather-blend tile overlaps instead of cropping them."""
    batch: int = 1
    """Tiles per inference call."""
    memory_budget_mb: int = 1024
    """Activation memory ``--tile auto`` plans for."""
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    """``--scale`` / ``--color`` / ``--range`` for foreign models."""
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    """``arch`` / ``trust_pickle`` for checkpoints run by the torch backend."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image or video frame decoded (``--max-pixels``), checked from the file's header (issue 14)."""


FILE_KIND = {"openvino": "ort"}
"""Backends that run another backend's file type (OpenVINO runs .onnx files)."""


def choose_backend(requested: str, model: Path) -> str:
    """Backend for a model file: by its type for ``auto``, else the requested one if it can run it (pure)."""
    try:
        kind = model_kind(model)
    except ValueError as exc:
        raise InputError(f"{model}: {exc}") from exc
    if requested == "auto":
        return kind
    if requested not in BACKENDS:
        raise InputError(f"unknown backend {requested!r}; choose one of auto, {', '.join(BACKENDS)}")
    runs = FILE_KIND.get(requested, requested)  # the model file type the backend runs
    if runs != kind:
        need = {"ort": "an .onnx model", "trt": "a TensorRT .engine/.plan", "torch": "a .pth/.pt checkpoint"}
        hint = (" (export it with sr-export)" if runs == "ort" and kind == "torch" else
                " (build one from it with sr-build)" if runs == "trt" and kind == "ort" else "")
        raise InputError(f"--backend {requested} needs {need[runs]}, not {model.name}{hint}")
    return requested


def _ort_on_cpu(options: BackendOptions) -> bool:
    import onnxruntime

    from sredge.runtime.auto import auto_on_cpu

    return auto_on_cpu(options.device, onnxruntime.get_available_providers())


def tile_config(opts: RunOptions, spec: InputSpec, desc: ModelDescriptor, height: int, width: int,
                feature_channels: int = DEFAULT_FEATURE_CHANNELS) -> TileConfig:
    """The tiling for an image of ``height`` x ``width`` (LR pixels) under these options (pure).

    Fixed-shape models are always tiled at their shape; engine profiles bound the tile. ``feature_channels``:
    the model's activation channels (:func:`~sredge.runtime.memory.model_feature_channels`), which ``--tile auto``
    sizes its tile by.
    """
    net_scale = 1 if desc.pre_upsample else desc.scale
    in_h, in_w = (height * desc.scale, width * desc.scale) if desc.pre_upsample else (height, width)
    if spec.fixed_hw:
        return TileConfig(fixed_hw=spec.fixed_hw, overlap=opts.tile_overlap, blend=opts.blend,
                          batch=_batch(opts.batch, spec))
    if opts.tile == "auto":
        tile = auto_tile(in_h, in_w, desc.out_channels, net_scale, opts.memory_budget_mb << 20, feature_channels)
    elif opts.tile is None or opts.tile == 0:  # 0: --tile 0, as the tile errors say (it was refused as too small)
        tile = None
    elif isinstance(opts.tile, numbers.Integral) and not isinstance(opts.tile, bool):
        tile = int(opts.tile)
    else:
        raise InputError(f"tile must be 'auto', a number of pixels or None (whole frames), not {opts.tile!r}")
    if spec.max_hw is not None:
        cap = min(spec.max_hw)
        if tile is None and (in_h > spec.max_hw[0] or in_w > spec.max_hw[1]):
            tile = cap
        elif tile is not None and tile > cap:
            if opts.tile != "auto":  # the user's --tile; a tile sized from --memory-budget just takes the cap
                raise InputError(f"--tile {tile} exceeds the engine's largest tile {cap}; rebuild with a larger "
                                 "--max-tile")
            tile = cap
    return TileConfig(tile=tile, overlap=opts.tile_overlap, blend=opts.blend, batch=_batch(opts.batch, spec),
                      multiple=max(desc.size_multiple, 1), min_hw=spec.min_hw)


def _batch(batch: int, spec: InputSpec) -> int:
    if spec.max_batch is not None and batch > spec.max_batch:
        if spec.max_batch == 1 and batch > 1:
            log.warning("the model has a fixed batch of 1; running tiles one at a time")
            return 1
        raise InputError(f"--batch {batch} exceeds the model's largest batch {spec.max_batch}")
    return batch


def probe_hw(opts: RunOptions, desc: ModelDescriptor, height: int, width: int,
             feature_channels: int = DEFAULT_FEATURE_CHANNELS) -> tuple[int, int]:
    """(height, width) of the network input a dynamic-shape model runs at for ``height`` x ``width``
    LR frames under these options: the tile shape, or the whole (pre-upsampled) frame (pure).

    ``auto`` times its candidates at this shape, so the choice is made for the work the run will do.
    """
    plan = _frame_plan(opts, desc, height, width, feature_channels)
    return plan.tile_h, plan.tile_w


def probe_batch(opts: RunOptions, desc: ModelDescriptor, height: int, width: int,
                feature_channels: int = DEFAULT_FEATURE_CHANNELS) -> int:
    """Tiles per network call the run makes for such frames: ``--batch``, or fewer when a frame has fewer tiles
    (pure). ``auto`` times its candidates at this batch too."""
    return max(1, min(opts.batch, len(_frame_plan(opts, desc, height, width, feature_channels).tiles)))


def _frame_plan(opts: RunOptions, desc: ModelDescriptor, height: int, width: int, feature_channels: int):
    spec = InputSpec(channels=desc.in_channels, height=None, width=None)
    cfg = tile_config(opts, spec, desc, height, width, feature_channels)
    in_h, in_w = (height * desc.scale, width * desc.scale) if desc.pre_upsample else (height, width)
    return plan_tiles(in_h, in_w, cfg)


class LoadedRuntime:
    """An activated backend with its resolved descriptor (use as a context manager)."""

    def __init__(self, model: str | Path, opts: RunOptions, frame_hw: tuple[int, int] | None = None,
                 ort_rewrites: bool = True, auto_keep: tuple[str, str] | None = None):
        """Args:
            model: The model file.
            opts: Run options.
            frame_hw: (height, width) of the LR frames to come, when known: ``--backend auto`` probes its
                candidates at the shape the run will use (:func:`probe_hw`); None: a 128x128 probe.
            ort_rewrites: ONNX Runtime on the CPU runs :mod:`sredge.runtime.ort_rewrites`; False runs the graph
                as stored (a workload that must time the same in every sredge version).
            auto_keep: (file name, backend) that ``--backend auto`` keeps when admissible: the choice of the stopped
                run this one continues (:func:`sredge.runtime.video_resume.stopped_choice`).
        """
        model = self.model = Path(model)
        self.opts = opts
        self._tiling_warned = False
        self.kind = choose_backend(opts.backend, model)
        self.auto: AutoDecision | None = None
        """What ``--backend auto`` chose and why, when it chose among variants (else None)."""
        options = opts.backend_options
        if (opts.backend == "auto" and opts.max_psnr_drop is not None and self.kind == "ort"
                and not options.fp16 and options.precision is None and _ort_on_cpu(options)):
            # An explicit --precision/--fp16 keeps today's by-file-type behaviour: the user chose the arithmetic.
            from sredge.runtime.auto import candidate_options, decide

            if opts.max_psnr_drop < 0:
                raise InputError(f"--max-psnr-drop must be >= 0, not {opts.max_psnr_drop:g}")
            if not model.is_file():
                raise InputError(f"no such model file: {model}")
            self.auto = decide(model, options, opts.max_psnr_drop, probe=_probe_at(model, opts, frame_hw),
                               keep=auto_keep)
            chosen = self.auto.chosen
            self.model, self.kind, options = chosen.file, chosen.backend, candidate_options(chosen, options)
        kwargs = opts.torch_kwargs if self.kind == "torch" else {"rewrites": ort_rewrites} if self.kind == "ort" else {}
        self.backend: Backend = open_backend(self.kind, self.model, options, **kwargs)
        self.desc: ModelDescriptor | None = None
        self.spec: InputSpec | None = None
        self.feature_channels = DEFAULT_FEATURE_CHANNELS
        """The model's activation channels for memory planning, read from an ONNX graph (set on entering)."""

    def __enter__(self) -> LoadedRuntime:
        self.backend.__enter__()
        try:
            self.spec = self.backend.input_spec()
            self.desc = resolve_descriptor(self.backend.descriptor(), self.spec, self.opts.overrides,
                                           lambda: probe_scale(self.backend.run, self.spec),
                                           name=Path(self.model).name)
            if self.kind in ("ort", "openvino"):
                self.feature_channels = _feature_channels(self.model, self.desc)
        except BaseException:
            self.backend.__exit__(None, None, None)
            raise
        log.info("model %s: %s; backend %s", self.model, self.desc.summary(), self.backend.describe())
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.__exit__(*exc)

    def upscaler(self, height: int, width: int) -> Upscaler:
        """An upscaler whose tiling is planned for ``height`` x ``width`` inputs (see :class:`Upscaler`).

        Raises:
            InputError: Upscaling such an input would not fit in memory (checked here, before a run starts).
        """
        cfg = tile_config(self.opts, self.spec, self.desc, height, width, self.feature_channels)
        ups = Upscaler(self.backend.run, self.desc, cfg, name=self.model.name,
                       run_many=getattr(self.backend, "run_many", None),  # TensorRT: copies overlap compute
                       feature_channels=self.feature_channels)
        ups.check_memory(height, width)  # issue 14: refuse before the first allocation, naming the --tile that fits
        if not self.desc.tile_exact and not self._tiling_warned and _tiled(cfg, self.desc, height, width):
            self._tiling_warned = True
            log.warning("%s attends across the whole input: tiled output differs from whole-image output (seams, "
                        "changed detail); --tile 0 runs whole frames where memory allows", self.desc.arch.upper())
        return ups


def frame_tiles(cfg: TileConfig, desc: ModelDescriptor, height: int, width: int) -> TilePlan:
    """The tiles one ``height`` x ``width`` LR frame runs as under ``cfg`` (pure): a pre-upsampling
    network's input is the enlarged frame."""
    in_h, in_w = (height * desc.scale, width * desc.scale) if desc.pre_upsample else (height, width)
    return plan_tiles(max(in_h, MIN_SIDE), max(in_w, MIN_SIDE), cfg)


def _tiled(cfg: TileConfig, desc: ModelDescriptor, height: int, width: int) -> bool:
    """Whether ``height`` x ``width`` LR inputs run as more than one tile under ``cfg`` (pure)."""
    return len(frame_tiles(cfg, desc, height, width).tiles) > 1


def _feature_channels(model: Path, desc: ModelDescriptor) -> int:
    """:func:`~sredge.runtime.memory.model_feature_channels` of an ONNX file run by ``desc``."""
    from sredge.runtime.memory import model_feature_channels

    return model_feature_channels(model, 1 if desc.pre_upsample else desc.scale, desc.out_channels)


def _probe_at(model: Path, opts: RunOptions, frame_hw: tuple[int, int] | None) -> dict | None:
    from sredge.models.onnx_file import read_descriptor

    desc = read_descriptor(model) if frame_hw is not None else None
    if desc is None:
        return None
    channels = _feature_channels(model, desc)
    return {"hw": probe_hw(opts, desc, *frame_hw, channels), "batch": probe_batch(opts, desc, *frame_hw, channels)}
