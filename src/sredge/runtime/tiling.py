"""Tiled inference: pure tile planning, and running a plan through a model.

Coordinate spaces (commented at each use):

* **input**: pixels of the network input (after any bicubic pre-upsampling), (C, H, W);
* **tile**: pixels of one tile as the network sees it, (C, tile_h, tile_w), including
  the reflect padding added below/right to reach the tile shape;
* **output**: input coordinates times ``net_scale`` (the network's own upscale).

Every tile reads a window of the input that contains the region it *owns* (its core)
plus at least ``overlap`` pixels of context on each side (or the image border). In crop
mode (default) each output pixel comes from the one tile that owns it, so with an overlap
of at least the network's receptive field the tiled result equals the whole-image result
(except, for a network whose input must be a multiple of N pixels, within its receptive field
of the bottom and right borders: an edge tile is padded by another amount than the whole image).
In blend mode tiles are feather-blended over their overlap, including the pixels near a window's
edge that lacked context: blend mode is never seam-exact (up to a few levels on real models).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sredge.errors import InputError

Runner = Callable[[np.ndarray], np.ndarray]
"""(N, C, tile_h, tile_w) float32 -> (N, C_out, tile_h * s, tile_w * s) float32."""

PipelinedRunner = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]
"""A sequence of :data:`Runner` batches in, their outputs out in order; the backend may overlap the
copies of one batch with the compute of another (the TensorRT backend's ``run_many``)."""


MIN_SIDE = 16
"""Smallest network input side sredge runs: thinner images are padded up to it, and tiles are never smaller
(networks that pool after a stride-2 convolution, e.g. IMDN, RFDN, RLFN, BSRN, EFDN, need at least 15)."""


@dataclass(frozen=True)
class TileConfig:
    """How to split an image into tiles."""

    tile: int | None = None
    """Tile edge in input pixels; None runs the whole image as one tile."""
    overlap: int = 16
    """Context pixels on each side of a tile's core, in input pixels."""
    blend: bool = False
    """Feather-blend overlapping tiles instead of cropping the overlap away."""
    batch: int = 1
    """Tiles run together in one call (all tiles of a plan share one shape)."""
    fixed_hw: tuple[int, int] | None = None
    """The model accepts exactly this (height, width): every tile is run at it."""
    multiple: int = 1
    """Tile height/width are padded up to a multiple of this."""
    min_hw: tuple[int, int] | None = None
    """Smallest (height, width) the model takes (an engine profile's minimum): smaller tiles are padded up to it."""


@dataclass(frozen=True)
class Tile:
    """One tile, in input coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int
    """The window read from the input: rows [y0, y1), columns [x0, x1)."""
    cy0: int
    cy1: int
    cx0: int
    cx1: int
    """The core this tile owns in the result (inside the window)."""


@dataclass(frozen=True)
class TilePlan:
    """Tiles covering an image, all run at one shape."""

    height: int
    width: int
    """Image size, input pixels."""
    tile_h: int
    tile_w: int
    """Shape every tile is run at (window + reflect padding below/right)."""
    overlap: int
    tiles: tuple[Tile, ...]


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _axis(length: int, tile: int, overlap: int, least: int = 1) -> list[tuple[int, int, int, int]]:
    """Split one axis: (window start, window end, core start, core end) per tile (pure).

    Uses the fewest windows of at most ``tile`` pixels, all of one size ``w`` (at least ``least``, a
    model's smallest input, when the axis is that long), spread evenly
    from the start to the end of the axis. Border windows need context on one side only, so
    ``n`` windows cover ``n * w - 2 * (n - 1) * overlap`` pixels. Cores split each overlap in
    the middle, which leaves every core at least ``overlap`` pixels of context on both sides.
    """
    if length <= tile:
        return [(0, length, 0, length)]
    check_tile_overlap(tile, overlap)
    n = max(2, math.ceil((length - 2 * overlap) / (tile - 2 * overlap)))
    w = max(math.ceil((length + 2 * (n - 1) * overlap) / n), min(least, length))  # larger windows: more overlap
    while True:
        starts = [round(i * (length - w) / (n - 1)) for i in range(n)]
        if all(a + w - b >= 2 * overlap for a, b in zip(starts[:-1], starts[1:])) or w >= length:
            break
        w += 1  # rounding of the starts ate into an overlap
    bounds = [0] + [(b + a + w) // 2 for a, b in zip(starts[:-1], starts[1:])] + [length]
    return [(st, st + w, bounds[i], bounds[i + 1]) for i, st in enumerate(starts)]


def check_tile_overlap(tile: int, overlap: int) -> None:
    """Refuse a tile that keeps no useful core inside its overlap (pure; one line, exit 2).

    sr-run checks this once, before the model loads; the planner again for the tile it plans.
    """
    core = tile - 2 * overlap
    if core <= 0:
        raise InputError(f"tile {tile} must be larger than twice the overlap ({overlap}): pass --tile {4 * overlap} "
                         f"or more (or 0, whole frames), or --tile-overlap {max((tile - 1) // 4, 0)} if the model "
                         "needs no more context than that (too little leaves seams)")  # tile >= MIN_SIDE: >= 3
    if 2 * core < overlap:  # e.g. 33 with 16: a 1-pixel core, over a thousand times the work
        raise InputError(f"tile {tile} with an overlap of {overlap} keeps a {core}-pixel core of each tile, so the "
                         f"model would compute about {round((tile / core) ** 2)}x the pixels it keeps: pass --tile "
                         f"{4 * overlap} or more (or 0, whole frames)")


def check_tile(tile: int) -> None:
    """Refuse a tile edge below :data:`MIN_SIDE` (one line, exit 2)."""
    if tile < MIN_SIDE:
        raise InputError(f"--tile {tile} is too small: tiles are at least {MIN_SIDE} pixels (0: whole frames)")


def plan_tiles(height: int, width: int, cfg: TileConfig) -> TilePlan:
    """Plan tiles for an image of ``height`` x ``width`` input pixels (pure).

    Tiles never extend past the image. Windows are at least ``cfg.min_hw`` (or the fixed shape) where the
    image is that big; an image smaller than the tile shape is covered by one window of the image's size,
    reflect-padded below/right up to the tile shape (fixed-shape models, engine minimums, size multiples).

    Raises:
        InputError: The tile is not larger than twice the overlap, or the sizes are invalid.
    """
    if cfg.overlap < 0 or cfg.batch < 1 or cfg.multiple < 1:
        raise InputError("overlap must be >= 0, batch >= 1")
    rows, cols, th, tw = _windows(height, width, cfg)
    tiles = tuple(
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for (y0, y1, cy0, cy1) in rows
        for (x0, x1, cx0, cx1) in cols
    )
    return TilePlan(height, width, th, tw, cfg.overlap, tiles)


def _windows(height: int, width: int, cfg: TileConfig) -> tuple[list, list, int, int]:
    """(row windows, column windows, tile_h, tile_w) of :func:`plan_tiles` (pure)."""
    if height < 1 or width < 1:
        raise InputError(f"cannot tile an image of {height}x{width}")
    m = max(cfg.multiple, 1)
    least_h, least_w = cfg.fixed_hw or cfg.min_hw or (1, 1)
    if cfg.fixed_hw is not None:
        win_h, win_w = cfg.fixed_hw
    elif cfg.tile is None:
        win_h, win_w = height, width
    else:
        check_tile(cfg.tile)
        t = _round_up(cfg.tile, m)
        win_h, win_w = min(max(t, least_h), height), min(max(t, least_w), width)
    rows = _axis(height, win_h, cfg.overlap, least_h)
    cols = _axis(width, win_w, cfg.overlap, least_w)
    if cfg.fixed_hw is not None:
        return rows, cols, *cfg.fixed_hw
    h, w = rows[0][1] - rows[0][0], cols[0][1] - cols[0][0]
    return rows, cols, _round_up(max(h, least_h), m), _round_up(max(w, least_w), m)


def pad_to(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad (..., H, W) below/right to (..., h, w): reflect where possible, else edge (tiny images)."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    width = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "edge"
    return np.pad(x, width, mode=mode)


def _feather(n: int, start: int, length: int, overlap: int, total: int) -> np.ndarray:
    """1-D blend weights over a window: linear ramps in the overlap, none at image borders."""
    pos = np.arange(n, dtype=np.float32)
    w = np.ones(n, np.float32)
    if overlap > 0:
        if start > 0:
            w = np.minimum(w, (pos + 0.5) / overlap)
        if start + length < total:
            w = np.minimum(w, (length - pos - 0.5) / overlap)
    return np.clip(w, 1e-3, 1.0)


def run_tiles(x: np.ndarray, run: Runner, plan: TilePlan, net_scale: int, batch: int = 1,
              blend: bool = False, run_many: PipelinedRunner | None = None) -> np.ndarray:
    """Run a tile plan through a model.

    Args:
        x: (C, H, W) float32 network input (input coordinates).
        run: The model: a batch of tiles in, their outputs out.
        plan: From :func:`plan_tiles` for this H, W.
        net_scale: Output pixels per input pixel of the network itself (1 for pre-upsampling networks).
        batch: Tiles per call.
        blend: Feather-blend overlaps (else crop them away).
        run_many: The same model taking the whole sequence of batches (used instead of ``run`` when
            given), so a backend can overlap one batch's copies with another's compute.

    Returns:
        (C_out, H * net_scale, W * net_scale) float32.
    """
    s = net_scale
    out = acc = None
    groups = [plan.tiles[i:i + batch] for i in range(0, len(plan.tiles), batch)]

    def stacks() -> Iterator[np.ndarray]:
        for group in groups:
            # tile space: window + reflect padding to the plan's shape
            yield np.ascontiguousarray(
                np.stack([pad_to(x[:, t.y0:t.y1, t.x0:t.x1], plan.tile_h, plan.tile_w) for t in group]))

    results = run_many(stacks()) if run_many is not None else (run(stack) for stack in stacks())
    for group, res in zip(groups, results):
        if res.shape[0] != len(group) or res.shape[2] != plan.tile_h * s or res.shape[3] != plan.tile_w * s:
            raise InputError(
                f"the model turned a {plan.tile_h}x{plan.tile_w} tile into {res.shape[2]}x{res.shape[3]}, "
                f"not x{s}; check --scale"
            )
        if out is None:
            out = np.zeros((res.shape[1], plan.height * s, plan.width * s), np.float32)
            if blend:
                acc = np.zeros((1, plan.height * s, plan.width * s), np.float32)
        for t, r in zip(group, res):
            if blend:
                # output space: the whole window (minus padding), weighted
                hh, ww = (t.y1 - t.y0) * s, (t.x1 - t.x0) * s
                wy = _feather(hh, t.y0 * s, hh, plan.overlap * s, plan.height * s)
                wx = _feather(ww, t.x0 * s, ww, plan.overlap * s, plan.width * s)
                wgt = wy[:, None] * wx[None, :]
                out[:, t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s] += r[:, :hh, :ww] * wgt
                acc[:, t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s] += wgt
            else:
                # output space: the core only; its offset inside the tile is (cy0 - y0) * s
                oy, ox = (t.cy0 - t.y0) * s, (t.cx0 - t.x0) * s
                hh, ww = (t.cy1 - t.cy0) * s, (t.cx1 - t.cx0) * s
                out[:, t.cy0 * s:t.cy1 * s, t.cx0 * s:t.cx1 * s] = r[:, oy:oy + hh, ox:ox + ww]
    if blend:
        out /= acc
    return out


def tile_shape(height: int, width: int, cfg: TileConfig) -> tuple[int, int]:
    """(tile_h, tile_w): the shape every tile of ``plan_tiles(height, width, cfg)`` runs at, without
    listing the tiles (pure; same errors as :func:`plan_tiles`)."""
    if cfg.fixed_hw is not None:
        return cfg.fixed_hw
    return _windows(height, width, cfg)[2:]


def activation_bytes_per_px(channels_out: int, net_scale: int, feature_channels: int = 64) -> int:
    """Working memory of one network-input pixel of a tile (pure): float32 activations of
    ``feature_channels`` channels, times four live buffers, plus the output pixels it becomes.

    A deliberately rough upper bound for the convolutional SR networks in the zoo (transformers
    use more: give them a lower budget).
    """
    return 4 * (4 * feature_channels + channels_out * net_scale * net_scale)


def auto_tile(height: int, width: int, channels_out: int, net_scale: int, budget_bytes: int,
              feature_channels: int = 64) -> int | None:
    """Pick a tile edge from a memory budget (pure); None when the whole image fits.

    The estimate is :func:`activation_bytes_per_px` per input pixel of the tile.
    """
    per_px = activation_bytes_per_px(channels_out, net_scale, feature_channels)
    max_px = max(budget_bytes // per_px, 64 * 64)
    if height * width <= max_px:
        return None
    return max(64, int(math.isqrt(max_px)) // 16 * 16)
