"""Calibration sets: planning, real image folders and videos, determinism, .npz round trip, clear failures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sredge.calibration.sets import (
    CalibrationOptions,
    build_calibration_set,
    check_calibration_sources,
    crop_positions,
    frame_indices,
    load_calibration_set,
    model_inputs,
    save_calibration_set,
)
from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from tests.conftest import asset


def test_frame_indices_cover_the_whole_clip_evenly():
    idx = frame_indices(1000, 10)
    assert idx == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
    assert frame_indices(5, 10) == [0, 1, 2, 3, 4]
    assert frame_indices(0, 4) == []
    gaps = np.diff(frame_indices(1189, 64))
    assert gaps.min() >= 18 and gaps.max() <= 19 and frame_indices(1189, 64)[-1] > 1150


def test_crop_positions_inside_and_seeded():
    a = crop_positions(100, 80, 32, 50, np.random.default_rng(3))
    assert a == crop_positions(100, 80, 32, 50, np.random.default_rng(3))
    assert all(0 <= y <= 68 and 0 <= x <= 48 for y, x in a)
    assert len(set(a)) > 40
    assert crop_positions(31, 80, 32, 5, np.random.default_rng(0)) == []


def test_image_folder_set_is_deterministic_for_a_seed(t91_set):
    assert t91_set.crops.shape == (91, 3, 48, 48) and t91_set.crops.dtype == np.float32
    assert 0.0 <= t91_set.crops.min() and t91_set.crops.max() <= 1.0 and t91_set.crops.std() > 0.1
    again = build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=48, seed=0))
    np.testing.assert_array_equal(again.crops, t91_set.crops)
    other = build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=48, seed=1))
    assert not np.array_equal(other.crops, t91_set.crops)


def test_video_frames_are_spread_over_the_clip():
    video = asset("video/onepiece_demo.mp4")  # 181 frames
    cset = build_calibration_set([video], CalibrationOptions(tile=64, frames=20, min_crops=20))
    assert cset.counts == (20,) and cset.crops.shape == (20, 3, 64, 64)
    from sredge.runtime.video_io import Frame, VideoReader

    wanted = frame_indices(181, 20)
    with VideoReader(str(video)) as r:
        frames = {f.index: f.rgb for f in r if isinstance(f, Frame) and f.index in wanted}
    # every crop is a crop of the planned frame (the last one lies in the clip's final second)
    rng = np.random.default_rng(0)
    for crop, i in zip(cset.crops, wanted):
        (y, x), = crop_positions(*frames[i].shape[:2], 64, 1, rng)
        np.testing.assert_array_equal(np.round(crop.transpose(1, 2, 0) * 255), frames[i][y:y + 64, x:x + 64])
    assert wanted[-1] >= 181 - 181 // 20


def test_mixed_sources_and_npz_round_trip(tmp_path):
    cset = build_calibration_set([asset("calibration/T91"), asset("video/onepiece_demo.mp4")],
                                 CalibrationOptions(tile=64, frames=8, seed=5))
    assert cset.counts[1] == 8 and len(cset) == sum(cset.counts)
    path = save_calibration_set(cset, tmp_path / "c.npz")
    back = load_calibration_set(path)
    np.testing.assert_array_equal(back.crops, cset.crops)
    assert back.options == cset.options and back.counts == cset.counts and back.sources == cset.sources


def test_too_few_crops_fail_clearly():
    with pytest.raises(InputError, match=r"only 13 crops of 300x300 \(T91: 13\); at least 16"):
        build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=300, crops_per_image=1))
    with pytest.raises(InputError, match=r"only 0 crops of 600x600 \(T91: 0\)"):
        build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=600))


def test_crops_per_image_by_default_reach_the_minimum():
    """The first-hour audit: `sr-export --calib sample` and `sr-calibrate build --from sample`, as their help
    offers them, failed with 'only 3 crops ... at least 16': the bundled sample is 3 photos. By default each
    image now gives as many crops as reach --min-crops with the videos' crops (at least one)."""
    from sredge.calibration.sets import resolve_crops_per_image
    from sredge.data.samples import sample_folder

    sample = build_calibration_set([sample_folder()])
    assert sample.options.crops_per_image == 6 and sample.counts == (18,)  # 3 photos x 6 >= 16
    t91 = asset("calibration/T91")
    assert resolve_crops_per_image([t91], CalibrationOptions()).crops_per_image == 1  # 91 images
    assert build_calibration_set([t91], CalibrationOptions(tile=300)).counts == (26,)  # 13 big enough, 2 each
    video = asset("video/onepiece_demo.mp4")
    assert resolve_crops_per_image([sample_folder(), video], CalibrationOptions(frames=12)).crops_per_image == 2
    assert resolve_crops_per_image([sample_folder(), video], CalibrationOptions(frames=20)).crops_per_image == 1
    assert resolve_crops_per_image([t91], CalibrationOptions(crops_per_image=3)).crops_per_image == 3  # as given
    assert check_calibration_sources([sample_folder()]) == (18,)


def test_bad_sources(tmp_path):
    with pytest.raises(InputError, match="no such calibration source"):
        build_calibration_set([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no images"):
        build_calibration_set([tmp_path / "empty"])
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="not a sredge calibration set"):
        load_calibration_set(tmp_path / "other.npz")


def test_model_inputs_follow_the_descriptor(t91_set):
    y = ModelDescriptor("vdsr", 3, 1, 1, "y", 1.0, True)
    x = model_inputs(t91_set, y, limit=4)
    assert x.shape == (4, 1, 144, 144) and x.dtype == np.float32
    assert 16 / 255 - 1e-3 <= x.min() and x.max() <= 235 / 255 + 0.05  # BT.601 luma range, bicubic overshoot
    rgb255 = ModelDescriptor("edsr", 2, 3, 3, "rgb", 255.0, False, size_multiple=8)
    x = model_inputs(t91_set, rgb255, limit=3)
    assert x.shape == (3, 3, 48, 48) and x.max() > 200
    crops = t91_set.crops[[0, 45, 90]]
    np.testing.assert_allclose(x / 255.0, crops, atol=1e-6)  # evenly spread subset: first, middle, last


def test_header_check_counts_what_the_build_cuts(t91_set):
    """The up-front check (listings and headers, nothing decoded) plans the crops the build then cuts."""
    video = asset("video/onepiece_demo.mp4")
    options = CalibrationOptions(tile=64, frames=8, seed=5)
    planned = check_calibration_sources([asset("calibration/T91"), video], options)
    assert planned == build_calibration_set([asset("calibration/T91"), video], options).counts == (91, 8)
    assert check_calibration_sources([asset("calibration/T91")], CalibrationOptions(tile=48)) == t91_set.counts
    halved = CalibrationOptions(tile=100, downscale=2)  # sizes after the downscale decide
    assert check_calibration_sources([asset("calibration/T91")], halved) == \
        build_calibration_set([asset("calibration/T91")], halved).counts


def test_header_check_refuses_what_the_build_refuses(tmp_path):
    from tests.robustness._hostile import huge_header

    with pytest.raises(InputError, match=r"only 13 crops of 300x300 \(T91: 13\); at least 16"):
        check_calibration_sources([asset("calibration/T91")], CalibrationOptions(tile=300, crops_per_image=1))
    with pytest.raises(InputError, match="no such calibration source"):
        check_calibration_sources([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no images"):
        check_calibration_sources([tmp_path / "empty"])
    (tmp_path / "notimg.png").write_text("hello")
    with pytest.raises(InputError, match="neither a folder of images nor a video"):
        check_calibration_sources([tmp_path / "notimg.png"])
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "a.png").write_bytes(huge_header("png", 20000, 20000))
    with pytest.raises(InputError, match=r"a\.png is 20000x20000 pixels \(400 MP\), over the limit"):
        check_calibration_sources([tmp_path / "big"])
    with pytest.raises(InputError, match="over the limit of 0.01 MP"):
        check_calibration_sources([asset("calibration/T91")], max_pixels=10_000)


def _crafted_set(path, crops_npy: bytes, meta: dict):
    """An .npz laid out as sr-calibrate writes it, with its members as given (a damaged or hostile file)."""
    import io
    import json
    import zipfile

    meta_buf = io.BytesIO()
    np.save(meta_buf, np.array(json.dumps(meta)))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("crops.npy", crops_npy)
        z.writestr("meta.npy", meta_buf.getvalue())
    return path


def test_crafted_sets_are_refused_not_internal_errors(tmp_path):
    """The audit: `sr-calibrate show` on a set whose array header declares (100000, 3, 1024, 1024) was a
    MemoryError (293 GiB), and one whose record counts 1e999 crops an OverflowError: both exit 3."""
    import io

    from sredge.calibration.sets import FORMAT

    buf = io.BytesIO()  # magic and header of a (100000, 3, 1024, 1024) uint8 array, then a few bytes
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                               "shape": (100000, 3, 1024, 1024)})
    huge = _crafted_set(tmp_path / "huge.npz", buf.getvalue() + b"\0" * 64, {"format": FORMAT})
    with pytest.raises(InputError, match="its crops would not fit in memory"):
        load_calibration_set(huge)
    small = io.BytesIO()
    np.save(small, np.zeros((1, 3, 8, 8), np.uint8))
    meta = {"format": FORMAT, "version": 1, "sources": ["a"], "counts": [float("inf")], "options": {}}
    inf = _crafted_set(tmp_path / "inf.npz", small.getvalue(), meta)
    with pytest.raises(InputError, match="its record is damaged"):
        load_calibration_set(inf)


def test_a_set_too_big_for_memory_or_a_negative_seed_is_refused_before_cropping():
    """The audit: --crops-per-image 1000000000 was a MemoryError (exit 3); --seed -3 a ValueError."""
    with pytest.raises(InputError, match=r"crops of 128x128 need about [\d.,]+ (GiB|TiB) but [\d.]+ GiB is available"):
        build_calibration_set([asset("calibration/T91")], CalibrationOptions(crops_per_image=10**9))
    with pytest.raises(InputError, match="seed must be 0 or more, not -3"):
        CalibrationOptions(seed=-3)


@pytest.mark.parametrize("shape,meta,expected", [
    ((4, 3, 0, 0), {"options": {"tile": 32}}, "its crops are 0x0 but its record says 32x32"),
    ((4, 3, 16, 48), {"options": {"tile": 16}}, "its crops are 48x16 but its record says 16x16"),
    ((1, 3, 32, 32), {"options": {"tile": 32}}, "counts 4 crops from 1 sources in 1 entries, but it holds 1"),
    ((4, 3, 8, 8), {"options": {"tile": 8}}, "calibration tile 8 is too small"),
    ((4, 3, 32, 32), {"options": {"tile": 32}, "version": "1"}, "format version '1' is not a number"),
    ((4, 3, 32, 32), {"options": {"tile": 32}, "sources": ["a", "b"], "counts": [6, -2]},
     "a negative crop count: [6, -2]"),
], ids=["empty-crops", "not-square", "counts", "tile-8", "version-string", "negative-count"])
def test_a_hand_made_set_that_contradicts_its_record_is_refused(tmp_path, shape, meta, expected):
    """The audit: 0x0 crops recorded as 32x32 passed `sr-calibrate show` ("4 crops of 32x32") and crashed
    sr-export (exit 3); crops below 16 pixels crashed RLFN's calibration with the FP32 file left behind."""
    from sredge.calibration.sets import FORMAT

    path = tmp_path / "hand.npz"
    record = {"format": FORMAT, "version": 1, "sources": ["hand"], "counts": [4]} | meta
    np.savez(path, crops=np.zeros(shape, np.uint8), meta=np.array(json.dumps(record)))
    with pytest.raises(InputError, match=re.escape(expected)):
        load_calibration_set(path)


def test_calibration_tiles_below_what_sr_run_feeds_are_refused():
    with pytest.raises(InputError, match="tile 8 is too small: sr-run never feeds a network less than 16x16"):
        CalibrationOptions(tile=8)
    assert CalibrationOptions(tile=16).tile == 16


def test_a_source_given_twice_is_refused_and_a_video_in_a_folder_is_named(tmp_path, caplog):
    """The export audit: the same folder given twice (under two spellings) weighed double, and a video inside
    a --calib folder was passed over without a word; a one-crop set read '1 crops'."""
    import shutil

    from sredge.data.samples import sample_folder

    folder = tmp_path / "photos"
    shutil.copytree(sample_folder(), folder)
    other = tmp_path / "sub" / ".." / "photos"  # another spelling of the same folder
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match=r"sub/\.\./photos is given twice \(also as .*photos\): give each folder"):
        check_calibration_sources([folder, other], CalibrationOptions(tile=64))
    shutil.copy(asset("video/onepiece_demo.mp4"), folder / "clip.mp4")
    with caplog.at_level("WARNING", logger="sredge.calibration.sets"):
        cset = build_calibration_set([folder], CalibrationOptions(tile=64, crops_per_image=1, min_crops=1))
    assert "1 video is in the folder not read" in caplog.text
    assert "give each video as a source of its own" in caplog.text
    assert len(cset) == 3 and cset.describe().startswith("3 crops of 64x64")
    one = build_calibration_set([folder], CalibrationOptions(tile=64, crops_per_image=1, min_crops=1))
    one = type(one)(one.crops[:1], one.sources, (1,), one.options)
    assert one.describe().startswith("1 crop of 64x64 (1 from photos)")
