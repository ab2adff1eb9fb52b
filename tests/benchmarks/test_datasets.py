"""Benchmark layouts: provided LR, LR made from HR, and the errors a user can hit."""

from __future__ import annotations

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
