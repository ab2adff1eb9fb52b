"""The machine-readable report of a video run (``sr-run --report run.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from sredge.atomic import write_bytes_atomic
from sredge.runtime.pipeline import STAGES

if TYPE_CHECKING:
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_run import VideoRun


def report_dict(run: VideoRun, rt: LoadedRuntime, opts: RunOptions) -> dict:
    """The machine-readable run report (``--report run.json``)."""
    from sredge.environment import software_and_machine

    software, machine = software_and_machine(opts.backend_options.threads)
    r = run.result
    return {
        "source": run.source,
        "output": run.output,
        "frames_in": r.frames_in,
        "frames_out": r.frames_out,
        "wall_s": round(r.wall_s, 4),
        "fps": round(r.fps, 3),
        "interrupted": r.interrupted,
        "mode": run.mode,
        "error": _error_text(r.failure) if r.failure else run.decode_error,
        "latency_ms": {name: asdict(r.stages[name].summary()) for name in STAGES}
        | {"end_to_end": asdict(r.end_to_end.summary()), "source_wait": asdict(r.source_wait.summary())},
        "input": run.input_info,
        "model": {"path": str(rt.model), **asdict(rt.desc)},
        "backend": rt.backend.describe(),
        "auto": rt.auto.as_dict() if rt.auto is not None else None,
        "reference_check": run.reference_check,
        "tiling": _tiling(run, rt, opts),
        "software": software,
        "machine": machine,
    }


def _tiling(run: VideoRun, rt: LoadedRuntime, opts: RunOptions) -> dict:
    """The tiling the run used beside what was asked for (``requested``: ``--tile``, e.g. ``"auto"``):
    ``tile``, the planned edge in network-input pixels (None: whole frames); ``tile_hw``, the shape each
    tile ran at (padded to the model's size multiple, or a fixed-shape model's ``fixed_hw``); ``tiles``
    per frame."""
    from sredge.runtime.runner import frame_tiles, tile_config

    used: dict = {"tile": None, "tile_hw": None, "tiles": None, "fixed_hw": None}
    height, width = run.input_info.get("height"), run.input_info.get("width")
    if rt.spec is not None and height and width:
        cfg = tile_config(opts, rt.spec, rt.desc, height, width, rt.feature_channels)
        plan = frame_tiles(cfg, rt.desc, height, width)
        used = {"tile": cfg.tile, "tile_hw": [plan.tile_h, plan.tile_w], "tiles": len(plan.tiles),
                "fixed_hw": list(cfg.fixed_hw) if cfg.fixed_hw else None}
    return {**used, "requested": opts.tile, "overlap": opts.tile_overlap, "blend": opts.blend, "batch": opts.batch}


def write_report(path: Path, report: dict) -> None:
    """Write the report JSON atomically."""
    write_bytes_atomic(path, (json.dumps(report, indent=2) + "\n").encode())


def _error_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
