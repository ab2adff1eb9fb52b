"""Tile planning (pure, exhaustive over sizes) and tiled == whole-image on real models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sredge.errors import InputError
from sredge.imaging.io import read_rgb
from sredge.runtime.backends.ort import OrtBackend
from sredge.runtime.tiling import TileConfig, auto_tile, pad_to, plan_tiles, run_tiles
from sredge.runtime.upscaler import Upscaler
from tests.conftest import asset

SIZES = [1, 2, 7, 13, 31, 32, 33, 64, 100, 257]
CONFIGS = [TileConfig(tile=t, overlap=o) for t, o in [(16, 2), (16, 4), (32, 0), (32, 8), (64, 16)]]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"t{c.tile}o{c.overlap}")
def test_cores_partition_the_image_and_windows_hold_their_context(cfg):
    for h, w in itertools.product(SIZES, SIZES):
        plan = plan_tiles(h, w, cfg)
        owner = np.zeros((h, w), np.int32)
        for t in plan.tiles:
            owner[t.cy0:t.cy1, t.cx0:t.cx1] += 1
            # window: inside the image, one shape for all tiles (<= the tile), holding core + context
            assert 0 <= t.y0 <= t.cy0 < t.cy1 <= t.y1 <= h and 0 <= t.x0 <= t.cx0 < t.cx1 <= t.x1 <= w
            assert (t.y1 - t.y0, t.x1 - t.x0) == (plan.tile_h, plan.tile_w)
            assert t.cy0 - t.y0 >= min(cfg.overlap, t.cy0) and t.y1 - t.cy1 >= min(cfg.overlap, h - t.cy1)
            assert t.cx0 - t.x0 >= min(cfg.overlap, t.cx0) and t.x1 - t.cx1 >= min(cfg.overlap, w - t.cx1)
        assert (owner == 1).all(), (h, w)
        assert plan.tile_h <= min(cfg.tile, h) and plan.tile_w <= min(cfg.tile, w)
        # No wasted context: a window is at most one pixel larger than its core plus the overlaps.
        cores = max(t.cy1 - t.cy0 for t in plan.tiles)
        assert plan.tile_h <= min(h, cores + 2 * cfg.overlap + 1)


def test_overlap_overhead_is_small_for_large_tiles():
    plan = plan_tiles(360, 640, TileConfig(tile=512, overlap=16))
    computed = len(plan.tiles) * plan.tile_h * plan.tile_w
    assert computed / (360 * 640) < 1.1


def test_whole_image_plan_and_fixed_shape_padding():
    plan = plan_tiles(37, 53, TileConfig())
    assert len(plan.tiles) == 1 and (plan.tile_h, plan.tile_w) == (37, 53)
    plan = plan_tiles(37, 53, TileConfig(multiple=8))
    assert (plan.tile_h, plan.tile_w) == (40, 56)
    fixed = plan_tiles(300, 100, TileConfig(fixed_hw=(224, 224), overlap=16))
    assert (fixed.tile_h, fixed.tile_w) == (224, 224)
    assert all(t.x1 - t.x0 == 100 for t in fixed.tiles)  # narrower image: padded up to 224


def test_tile_must_exceed_twice_the_overlap():
    with pytest.raises(InputError, match="larger than twice the overlap") as err:
        plan_tiles(100, 100, TileConfig(tile=32, overlap=16))
    assert "--tile 64 or more" in str(err.value)


def test_a_tile_that_keeps_a_sliver_is_refused():
    """The audit: --tile 33 with the default overlap of 16 kept a 1-pixel core of each tile, about 270,000
    tiles for a 640x448 image (262 s against 0.8 s whole). A core under half the overlap is refused."""
    with pytest.raises(InputError, match="keeps a 1-pixel core") as err:
        plan_tiles(448, 640, TileConfig(tile=33, overlap=16))
    assert "1089x" in str(err.value) and "--tile 64 or more" in str(err.value)
    assert len(plan_tiles(448, 640, TileConfig(tile=40, overlap=16)).tiles) > 1  # an 8-pixel core is allowed


def test_a_tile_below_the_smallest_network_input_is_refused_and_the_overlap_advice_fits():
    """Networks that pool after a stride-2 convolution fail below 15 pixels: a 10-pixel tile is refused up
    front (not by the backend mid-run), and the overlap the message suggests for the smallest tile works."""
    from sredge.runtime.tiling import MIN_SIDE, tile_shape

    for plan in (plan_tiles, tile_shape):
        with pytest.raises(InputError, match=f"at least {MIN_SIDE} pixels"):
            plan(100, 100, TileConfig(tile=MIN_SIDE - 1, overlap=0))
    with pytest.raises(InputError, match="--tile-overlap 3") as err:
        plan_tiles(100, 100, TileConfig(tile=MIN_SIDE, overlap=8))
    assert "--tile-overlap 3" in str(err.value)
    assert len(plan_tiles(100, 100, TileConfig(tile=MIN_SIDE, overlap=3)).tiles) > 1


def test_pad_to_reflects_and_handles_tiny_inputs():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    p = pad_to(x, 5, 6)
    assert p.shape == (1, 5, 6)
    np.testing.assert_array_equal(p[0, 3, :4], x[0, 1])  # reflect, not edge
    np.testing.assert_array_equal(p[0, 0, 4:], x[0, 0, 2:0:-1])
    assert pad_to(np.ones((1, 1, 1), np.float32), 4, 4).shape == (1, 4, 4)


def test_auto_tile_from_budget():
    assert auto_tile(360, 640, 3, 2, budget_bytes=2 << 30) is None
    t = auto_tile(2160, 3840, 3, 4, budget_bytes=256 << 20)
    assert t is not None and t % 16 == 0 and 64 <= t < 2160


def _image(h, w):
    img = read_rgb(asset("realworld/OST_009.png"))
    return np.ascontiguousarray(img[:h, :w])


@pytest.mark.parametrize(
    "name,overlap,size",
    [("fsrcnn_x2", 12, (150, 211)), ("espcn_x3", 6, (120, 97)), ("anime_x4", 20, (96, 130))],
)
def test_tiled_equals_whole_image_on_real_models(exported, name, overlap, size):
    with OrtBackend(exported(name)) as be:
        desc = be.descriptor()
        img = _image(*size)
        whole = Upscaler(be.run, desc, TileConfig()).upscale(img)
        # the last: an engine whose profile starts at 64x72 (windows grow to it, inside the image)
        for cfg in (TileConfig(tile=64, overlap=overlap, batch=3), TileConfig(tile=57, overlap=overlap),
                    TileConfig(tile=40, overlap=overlap, min_hw=(64, 72))):
            up = Upscaler(be.run, desc, cfg)
            x = up.preprocess(img).x
            full = up.infer(x)
            ref = run_tiles(x, be.run, plan_tiles(x.shape[1], x.shape[2], TileConfig()), desc.scale)[None]
            assert len(plan_tiles(x.shape[1], x.shape[2], cfg).tiles) > 2
            assert np.abs(full - ref).max() < 1e-4 * desc.value_range
            assert np.array_equal(up.upscale(img), whole) or np.abs(
                up.upscale(img).astype(int) - whole).max() <= 1


def test_blend_has_no_visible_seams(exported):
    with OrtBackend(exported("anime_x4")) as be:
        desc = be.descriptor()
        img = _image(96, 130)
        whole = Upscaler(be.run, desc).upscale(img).astype(np.float64)
        blended = Upscaler(be.run, desc, TileConfig(tile=48, overlap=8, blend=True)).upscale(img).astype(np.float64)
        # With too little overlap for exact equality, blending still stays close everywhere.
        assert np.abs(blended - whole).mean() < 1.0
        assert np.abs(blended - whole).max() < 48


def test_pipelined_runner_gets_every_batch_lazily_and_gives_the_same_image(exported):
    # The TensorRT backend's run_many overlaps one batch's copies with another's compute; the tiler
    # must hand it the batches as a lazy sequence, in order, and place the results as run() would.
    with OrtBackend(exported("fsrcnn_x2")) as be:
        desc = be.descriptor()
        cfg = TileConfig(tile=48, overlap=12, batch=2)
        seen = []

        def run_many(batches):
            for b in batches:  # a generator: batch k+1 is made only after k's result is taken
                seen.append(b.shape)
                yield be.run(b)

        img = _image(120, 150)
        plain = Upscaler(be.run, desc, cfg).upscale(img)
        piped = Upscaler(be.run, desc, cfg, run_many=run_many).upscale(img)
        plan = plan_tiles(*Upscaler(be.run, desc, cfg).preprocess(img).x.shape[1:], cfg)
        assert np.array_equal(plain, piped)
        assert len(seen) == -(-len(plan.tiles) // 2) and all(s[0] in (1, 2) for s in seen)


# ------------------------------------------------- engine profiles (the TensorRT audit)

def _engine_spec(lo: int, hi: int):
    from sredge.runtime.backends.trt import spec_from_profile

    return spec_from_profile((-1, 3, -1, -1), (1, 3, lo, lo), (1, 3, hi, hi))


def _x2_rgb():
    from sredge.models.descriptor import ModelDescriptor

    return ModelDescriptor(arch="test", scale=2, in_channels=3, out_channels=3, color_space="rgb", value_range=1.0,
                           pre_upsample=False)


@pytest.mark.parametrize("h,w", [(100, 90), (360, 640), (200, 300), (96, 96), (40, 30)])
def test_every_tile_of_a_one_shape_engine_is_that_shape(h, w):
    """A DLA engine (profile min = max = 96) was given tiles of 66x90, 87x93, ...: all refused."""
    from sredge.runtime.runner import RunOptions, tile_config

    cfg = tile_config(RunOptions(tile=96), _engine_spec(96, 96), _x2_rgb(), h, w)
    plan = plan_tiles(h, w, cfg)
    assert (plan.tile_h, plan.tile_w) == (96, 96)
    cover = np.zeros((h, w), int)
    for t in plan.tiles:
        cover[t.cy0:t.cy1, t.cx0:t.cx1] += 1
    assert (cover == 1).all()


@pytest.mark.parametrize("h,w,tile", [(150, 100, 64), (100, 90, 64), (20, 30, 0), (70, 500, 64)])
def test_tiles_below_an_engine_minimum_are_padded_up_to_it(h, w, tile):
    """sr-build --tile 64 --min-tile 64, then sr-run --tile 64 on a 150x100 image: tiles of 62x55 were refused."""
    from sredge.runtime.runner import RunOptions, tile_config

    cfg = tile_config(RunOptions(tile=tile or None), _engine_spec(64, 256), _x2_rgb(), h, w)
    plan = plan_tiles(h, w, cfg)
    assert 64 <= plan.tile_h <= 256 and 64 <= plan.tile_w <= 256, (plan.tile_h, plan.tile_w)
    assert all(t.y1 - t.y0 <= plan.tile_h and t.x1 - t.x0 <= plan.tile_w for t in plan.tiles)


def test_an_automatic_tile_takes_the_engine_maximum_and_a_given_one_is_refused():
    """Default sr-build (tiles up to 256) and default sr-run (--tile auto, sized from --memory-budget) failed on
    every 1080p frame with '--tile 992 exceeds the engine's largest tile 256', naming a --tile never given."""
    from sredge.runtime.runner import RunOptions, tile_config

    cfg = tile_config(RunOptions(), _engine_spec(16, 256), _x2_rgb(), 1080, 1920)
    assert cfg.tile == 256
    with pytest.raises(InputError, match="--tile 512 exceeds the engine's largest tile 256"):
        tile_config(RunOptions(tile=512), _engine_spec(16, 256), _x2_rgb(), 1080, 1920)



def test_run_options_tile_zero_is_whole_frames_and_a_tile_of_another_type_is_refused():
    """The library audit: RunOptions(tile=0) was refused with '--tile 0 is too small ... (0: whole frames)', and
    tile='big' was a TypeError from a comparison inside the planner."""
    from sredge.runtime.runner import RunOptions, tile_config

    spec = _engine_spec(16, 4096)
    assert tile_config(RunOptions(tile=0), spec, _x2_rgb(), 200, 300).tile is None
    assert tile_config(RunOptions(tile=np.int64(64)), spec, _x2_rgb(), 200, 300).tile == 64
    for bad in ("big", 64.5, True):
        with pytest.raises(InputError, match=r"tile must be 'auto', a number of pixels or None"):
            tile_config(RunOptions(tile=bad), spec, _x2_rgb(), 200, 300)
