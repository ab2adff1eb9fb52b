"""Benchmark layouts: provided LR, LR made from HR, and the errors a user can hit."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from sredge.benchmarks.datasets import load_dataset, load_pair
from sredge.errors import InputError
from tests.conftest import asset


def test_provided_layout_pairs_every_image():
    ds = load_dataset(asset("benchmarks/Set14"), 3)
    assert ds.lr_source == "provided" and len(ds.samples) == 14
    hr, lr = load_pair(ds.samples[0], 3)
    assert hr.shape[:2] == (lr.shape[0] * 3, lr.shape[1] * 3) and hr.dtype == np.uint8


def test_hr_only_folder_makes_the_same_lr_as_the_published_one(tmp_path):
    src = asset("benchmarks/Set5")
    for p in (src / "HR").glob("*.png"):
        shutil.copy(p, tmp_path / p.name)
    made = load_dataset(tmp_path, 4)
    given = load_dataset(src, 4)
    assert made.lr_source == "imresize" and [s.name for s in made.samples] == [s.name for s in given.samples]
    for a, b in zip(made.samples, given.samples):
        hr_a, lr_a = load_pair(a, 4)
        hr_b, lr_b = load_pair(b, 4)
        np.testing.assert_array_equal(hr_a, hr_b)
        np.testing.assert_array_equal(lr_a, lr_b)
    assert made.fingerprint() != given.fingerprint()  # different LR source: not comparable


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no images"):
        load_dataset(tmp_path, 2)
    with pytest.raises(InputError, match="not a folder"):
        load_dataset(tmp_path / "missing", 2)


def test_hr_lr_size_mismatch_is_refused(tmp_path):
    src = asset("benchmarks/Set5")
    shutil.copytree(src / "HR", tmp_path / "HR")
    (tmp_path / "LR_bicubic" / "X2").mkdir(parents=True)
    for p in (src / "LR_bicubic" / "X3").glob("*.png"):  # x3 images filed as x2
        shutil.copy(p, tmp_path / "LR_bicubic" / "X2" / p.name.replace("x3", "x2"))
    ds = load_dataset(tmp_path, 2)
    with pytest.raises(InputError, match="not an x2 pair"):
        load_pair(ds.samples[0], 2)


def test_missing_lr_partner_is_named(tmp_path):
    src = asset("benchmarks/Set5")
    shutil.copytree(src / "HR", tmp_path / "HR")
    shutil.copytree(src / "LR_bicubic" / "X2", tmp_path / "LR_bicubic" / "X2")
    (tmp_path / "LR_bicubic" / "X2" / "birdx2.png").unlink()
    with pytest.raises(InputError, match="bird.png has no LR image"):
        load_dataset(tmp_path, 2)


def test_an_lr_partner_is_found_whatever_its_suffix_case_or_format(tmp_path):
    """The bench audit: HR/bird.PNG beside LR_bicubic/X2/birdx2.png was refused ("expected birdx2.PNG"), and an
    LR stored in another format than its HR was not found."""
    import cv2

    src = asset("benchmarks/Set5")
    shutil.copytree(src / "HR", tmp_path / "HR")
    shutil.copytree(src / "LR_bicubic" / "X2", tmp_path / "LR_bicubic" / "X2")
    lr = tmp_path / "LR_bicubic" / "X2"
    (tmp_path / "HR" / "bird.png").rename(tmp_path / "HR" / "bird.PNG")
    cv2.imwrite(str(lr / "babyx2.bmp"), cv2.imread(str(lr / "babyx2.png")))  # lossless: the same pixels
    (lr / "babyx2.png").unlink()
    ds = load_dataset(tmp_path, 2)
    found = {s.name: s.lr.name for s in ds.samples}
    assert found["bird"] == "birdx2.png" and found["baby"] == "babyx2.bmp"
    hr, low = load_pair(next(s for s in ds.samples if s.name == "baby"), 2)
    assert np.array_equal(low, load_pair(load_dataset(src, 2).samples[0], 2)[1])
    shutil.copy(lr / "babyx2.bmp", lr / "babyx2.tif")  # two LR formats, neither the HR's: ambiguous
    with pytest.raises(InputError, match=r"baby.png has 2 LR images \(babyx2.bmp, babyx2.tif\)"):
        load_dataset(tmp_path, 2)


# --- SelfExSR layout (NAME_SRF_{s}_HR.png beside NAME_SRF_{s}_LR.png) and refused HR/LR mixes ---


def _selfexsr_from_set5(folder, scales=(2, 4), extra_tags=("bicubic", "SRCNN")):
    """Set5's real HR and LR files renamed the SelfExSR way, with other methods' results beside them."""
    src = asset("benchmarks/Set5")
    folder.mkdir(parents=True, exist_ok=True)
    for hr in sorted((src / "HR").glob("*.png")):
        for s in scales:
            shutil.copy(hr, folder / f"{hr.stem}_SRF_{s}_HR.png")
            shutil.copy(src / "LR_bicubic" / f"X{s}" / f"{hr.stem}x{s}.png", folder / f"{hr.stem}_SRF_{s}_LR.png")
            for tag in extra_tags:  # not HR, not LR: left out
                shutil.copy(hr, folder / f"{hr.stem}_SRF_{s}_{tag}.png")
    return folder


@pytest.mark.parametrize("scale", [2, 4])
def test_selfexsr_pairs_per_scale_read_like_the_standard_layout(tmp_path, scale):
    ds = load_dataset(_selfexsr_from_set5(tmp_path / "Set5"), scale)
    std = load_dataset(asset("benchmarks/Set5"), scale)
    assert ds.lr_source == "provided" and [s.name for s in ds.samples] == [s.name for s in std.samples]
    assert all(s.lr.name == f"{s.name}_SRF_{scale}_LR.png" for s in ds.samples)
    for a, b in zip(ds.samples, std.samples):
        for x, y in zip(load_pair(a, scale), load_pair(b, scale)):
            np.testing.assert_array_equal(x, y)


def test_selfexsr_scale_absent_or_partner_missing_is_named(tmp_path):
    folder = _selfexsr_from_set5(tmp_path / "Urban", scales=(2,), extra_tags=())
    with pytest.raises(InputError, match="pairs for x2, none for x3"):
        load_dataset(folder, 3)
    (folder / "bird_SRF_2_LR.png").unlink()
    with pytest.raises(InputError, match="bird_SRF_2_HR.png has no LR partner"):
        load_dataset(folder, 2)


def test_selfexsr_folders_per_scale(tmp_path):
    root = tmp_path / "BSD100"
    _selfexsr_from_set5(root / "image_SRF_2", scales=(2,), extra_tags=())
    assert len(load_dataset(root, 2).samples) == 5
    with pytest.raises(InputError, match="has image_SRF_2, no image_SRF_4"):
        load_dataset(root, 4)


def _write(path, hw):
    from sredge.imaging.io import write_image

    write_image(path, np.full((*hw, 3), 128, np.uint8))


@pytest.mark.parametrize(
    "files,match",
    [
        ({"baby.png": (16, 16), "babyx2.png": (8, 8)}, "babyx2.png looks like the LR image of baby.png"),
        ({"a_HR.png": (16, 16), "a_LR.png": (8, 8)}, "a_LR.png is named as an LR image"),
        ({"img-lr-x4.png": (4, 4), "img.png": (16, 16)}, "img-lr-x4.png is named as an LR image"),
        ({"a_SRF_2_HR.png": (16, 16), "a_SRF_2_LR.png": (8, 8), "b.png": (16, 16)}, "mixes SelfExSR pairs"),
    ],
    ids=["NAMEx2", "HR-LR", "lr-word", "selfexsr+plain"],
)
def test_unrecognised_hr_lr_mix_is_one_line_exit_2(cli, tmp_path, files, match):
    folder = tmp_path / "mix"
    folder.mkdir()
    for name, hw in files.items():
        _write(folder / name, hw)
    with pytest.raises(InputError, match=match):
        load_dataset(folder, 2)
    res = cli("bench", asset("weights/espcn/espcn_x2.pt"), "--dataset", folder, "--size", "0", "-q")
    assert res.code == 2 and match.split(" ")[0] in res.err and len(res.err.strip().splitlines()) == 1


def test_hr_only_names_are_still_hr_only(tmp_path):
    for name in ("baby_GT.png", "bird_HR.png", "lrs.png", "box2.png"):
        _write(tmp_path / name, (16, 16))
    ds = load_dataset(tmp_path, 2)
    assert ds.lr_source == "imresize" and len(ds.samples) == 4


def test_sr_bench_on_a_selfexsr_folder(cli, tmp_path):
    folder = _selfexsr_from_set5(tmp_path / "Set5", scales=(2,))
    res = cli("bench", asset("weights/espcn/espcn_x2.pt"), "--dataset", folder, "--size", "0", "-q",
              "--json", tmp_path / "r.json")
    assert res.code == 0, res.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dataset"]["lr_source"] == "provided"
    assert report["dataset"]["images"] == ["baby", "bird", "butterfly", "head", "woman"]  # no bicubic/SRCNN files
    bicubic, espcn = (row["quality"]["mean"] for row in report["rows"])
    assert espcn["psnr"] > bicubic["psnr"] + 1  # real x2 LR/HR pairs: the network beats bicubic


# --- images the benchmark cannot keep apart or cannot score: refused when the dataset is listed


@pytest.mark.parametrize("layout", ["hr-only", "hr-lr", "selfexsr"])
def test_two_images_of_one_name_are_refused_naming_both(tmp_path, layout):
    """``a.png`` beside ``a.bmp``: scores are kept by name, so one image's scores were silently lost."""
    folder = tmp_path / "ds"
    if layout == "hr-only":
        files = {folder / "a.png": (32, 32), folder / "a.bmp": (32, 40), folder / "b.png": (32, 32)}
        names = "a (a.bmp, a.png)"
    elif layout == "hr-lr":
        files = {folder / "HR" / "a.png": (32, 32), folder / "HR" / "a.bmp": (32, 32),
                 folder / "LR_bicubic" / "X2" / "ax2.png": (16, 16), folder / "LR_bicubic" / "X2" / "ax2.bmp": (16, 16)}
        names = "a (a.bmp, a.png)"
    else:
        files = {folder / "a_SRF_2_HR.png": (32, 32), folder / "a_SRF_2_HR.bmp": (32, 32),
                 folder / "a_SRF_2_LR.png": (16, 16)}
        names = "a (a_SRF_2_HR.bmp, a_SRF_2_HR.png)"
    for path, hw in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, hw)
    with pytest.raises(InputError, match=rf"has two images named {re.escape(names)}: rename one"):
        load_dataset(folder, 2)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_smallest_scorable_image_scores_and_one_pixel_less_is_refused_from_the_header(tmp_path, scale):
    """The HR, mod-cropped to the scale and then cropped by ``scale`` on every border (as the metrics do), must
    hold SSIM's 11x11 window; the smallest that does is scored with no warning, one pixel less is refused."""
    import warnings

    from sredge.benchmarks.datasets import min_side
    from sredge.benchmarks.quality import evaluate_bicubic
    from sredge.imaging.io import write_image

    side = min_side(scale)
    assert (side // scale) * scale - 2 * scale >= 11 > ((side - 1) // scale) * scale - 2 * scale
    rng = np.random.default_rng(scale)
    ok = tmp_path / "ok"
    ok.mkdir()
    write_image(ok / "a.png", rng.integers(0, 256, (side, side + 7, 3), dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (score,) = evaluate_bicubic(load_dataset(ok, scale))
    assert 0 < score.ssim <= 1 and score.psnr > 10  # x1: bicubic is the identity (SSIM 1, PSNR inf)
    write_image(ok / "b.png", rng.integers(0, 256, (side - 1, 200, 3), dtype=np.uint8))
    with pytest.raises(InputError, match=rf"b.png is 200x{side - 1} pixels, too small to score at x{scale}"):
        load_dataset(ok, scale)  # listing the dataset, before any image is decoded


@pytest.mark.parametrize("hw,layout", [((2, 3), "hr-only"), ((13, 200), "hr-only"), ((13, 200), "hr-lr")])
def test_an_image_too_small_for_ssim_among_real_ones_is_named(tmp_path, hw, layout):
    src = asset("benchmarks/Set5")
    hr_dir = tmp_path / "HR" if layout == "hr-lr" else tmp_path
    hr_dir.mkdir(exist_ok=True)
    for p in (src / "HR").glob("*.png"):
        shutil.copyfile(p, hr_dir / p.name)
    if layout == "hr-lr":
        (tmp_path / "LR_bicubic" / "X2").mkdir(parents=True)
        for p in (src / "LR_bicubic" / "X2").glob("*.png"):
            shutil.copyfile(p, tmp_path / "LR_bicubic" / "X2" / p.name)
        _write(tmp_path / "LR_bicubic" / "X2" / "stripx2.png", (max(hw[0] // 2, 1), max(hw[1] // 2, 1)))
    _write(hr_dir / "strip.png", hw)
    with pytest.raises(InputError, match=rf"strip.png is {hw[1]}x{hw[0]} pixels, too small to score at x2.*16x16"):
        load_dataset(tmp_path, 2)
