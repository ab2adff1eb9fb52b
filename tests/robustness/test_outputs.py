"""The output policy (sredge.outputs), tried as a hostile or careless user would, on every command that writes.

Each refused case must leave the user's folder exactly as it was: every file byte-identical, no output,
no temporary or lock file (the whole work folder is hashed before and after).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ASSETS
from tests.robustness.conftest import BUNDLED_X2, hashes, hostile, leftovers, read_only, sr, start, wait_for


@dataclass
class Case:
    args: list
    match: str
    read_only: tuple = ()


def _ro(w: Path, name: str = "ro") -> Path:
    folder = w / name
    folder.mkdir(exist_ok=True)
    return folder


def _after(_setup: object, case: Case) -> Case:
    """``case``, once its setup (evaluated as the first argument) has made the files it needs."""
    return case


def _link(w: Path, name: str, target: Path) -> Path:
    (w / name).symlink_to(target)
    return w / name


def _hardlink(w: Path, name: str, target: Path) -> Path:
    os.link(target, w / name)
    return w / name


def _touch(path: Path, text: str = "keep me\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _pair_folder(w: Path) -> Path:
    d = w / "pair"
    d.mkdir()
    shutil.copy(w / "photos" / "0030.jpg", d / "a.png")
    shutil.copy(w / "photos" / "0014.jpg", d / "a_x2.png")
    return d


def _clip_in(w: Path, folder: str, name: str = "in.mp4") -> Path:
    """A copy of the clip in ``w/folder``; for any folder but a work folder, ``out.mp4.sredge-partial`` links to it."""
    (w / folder).mkdir(exist_ok=True)
    shutil.copy(w / "in.mp4", w / folder / name)
    if not folder.endswith(".sredge-partial"):
        (w / "out.mp4.sredge-partial").symlink_to(w / folder)
    return w / folder / name


def _baseline(w: Path) -> Path:
    return _touch(w / "b.json", json.dumps({"dataset": {"fingerprint": "x"}, "rows": [{"label": "m"}]}))


def _ckpt_named(w: Path, name: str) -> Path:
    shutil.copy(w / "fsrcnn_x2.pth", w / name)
    return w / name


def _external_data(w: Path, location: str = "ext.onnx.data") -> Path:
    """``w/ext.onnx``: the bundled model with its weights kept in ``w/location`` (``save_as_external_data``)."""
    import onnx

    onnx.save(onnx.load(str(BUNDLED_X2)), str(w / "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location=location, size_threshold=1024)
    return w / "ext.onnx"


KEY_MAP = '{"^zzz\\\\.": "zzz."}'

V = ["--model"]  # video and image runs take the model from the work folder

RUN: dict[str, Callable[[Path], Case]] = {
    "video-report-is-the-input": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", w / "in.mp4"],
        "would overwrite the input"),
    "video-report-is-the-input-even-with-overwrite": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", w / "in.mp4", "--overwrite"],
        "would overwrite the input"),
    "video-report-is-the-output": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", w / "out.mp4"],
        "are the same file"),
    "video-output-is-the-input": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "in.mp4", "--overwrite"], "would overwrite the input"),
    "video-output-symlink-to-the-input": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", _link(w, "link.mp4", w / "in.mp4"), "--overwrite"],
        "would overwrite the input"),
    "video-output-dotdot-to-the-input": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", f"{w}/photos/../in.mp4", "--overwrite"],
        "would overwrite the input"),
    "video-report-is-the-model": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", w / "m.onnx", "--overwrite"],
        "would overwrite the input"),
    "video-output-is-the-reference": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "--reference", shutil.copy(BUNDLED_X2, w / "ref.onnx"),
         "-o", w / "ref.onnx", "--overwrite"], "would overwrite the input"),
    # the files a model is read with: --report replaced them (exit 0, the model's weights or the key map lost)
    "video-report-is-the-models-external-data": lambda w: Case(
        ["--video", w / "in.mp4", *V, _external_data(w), "-o", w / "out.mp4", "--report", w / "ext.onnx.data",
         "--overwrite"], "would overwrite the input"),
    "video-report-is-the-engines-sidecar": lambda w: _after(_touch(w / "e.engine.json"), Case(
        ["--video", w / "in.mp4", *V, _touch(w / "e.engine"), "-o", w / "out.mp4", "--report", w / "e.engine.json",
         "--overwrite"], "would overwrite the input")),
    "video-report-is-the-key-map": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "fsrcnn_x2.pth", "--key-map", _touch(w / "map.json", KEY_MAP), "-o",
         w / "out.mp4", "--report", w / "map.json", "--overwrite"], "would overwrite the input"),
    "video-report-exists": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", _touch(w / "run.json")],
        "exists; pass --overwrite"),
    "video-output-exists": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", _touch(w / "prev.mp4")], "exists; pass --overwrite"),
    "video-default-output-exists": lambda w: _after(_touch(w / "in_x2.mp4"), Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-q"], "in_x2.mp4 exists")),
    "video-output-folder-read-only": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", _ro(w) / "out.mp4"], "read-only", read_only=("ro",)),
    "video-output-folder-missing": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "nope" / "out.mp4"], "does not exist"),
    "video-report-folder-read-only": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report", _ro(w) / "r.json"],
        "read-only", read_only=("ro",)),
    "video-output-is-a-folder": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "photos"], "a video run writes one file, not a folder"),
    "video-output-is-dev-null": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", "/dev/null", "--overwrite"], "not a regular file"),
    "video-report-hard-link-of-the-input": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4",
         "--report", _hardlink(w, "hl.json", w / "in.mp4"), "--overwrite"], "would overwrite the input"),
    "video-work-folder-is-a-link-to-the-input-folder": lambda w: Case(
        ["--video", _clip_in(w, "v"), *V, w / "m.onnx", "-o", w / "out.mp4"], "is a symbolic link"),
    "video-work-folder-holds-a-users-file": lambda w: _after(_touch(w / "out.mp4.sredge-partial" / "notes.txt"), Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4"], "holds files sredge did not write")),
    "video-no-resume-work-folder-holds-a-users-file": lambda w: _after(
        _touch(w / "out.mp4.sredge-partial" / "notes.txt"), Case(
            ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--no-resume"],
            "holds files sredge did not write")),
    "video-input-inside-its-outputs-work-folder": lambda w: Case(
        ["--video", _clip_in(w, "out.mp4.sredge-partial", "seg-000000.mp4"), *V, w / "m.onnx", "-o", w / "out.mp4",
         "--overwrite"], "the work folder of -o"),
    "video-report-inside-the-work-folder": lambda w: Case(
        ["--video", w / "in.mp4", *V, w / "m.onnx", "-o", w / "out.mp4", "--report",
         _clip_in(w, "out.mp4.sredge-partial", "seg-000000.mp4").parent / "r.json", "--overwrite"],
        "the work folder of -o"),
    # a 241-byte name left no room for the resumable run's work folder and partial file: exit 3 at the first frame
    "video-output-name-too-long": lambda w: Case(["--video", w / "in.mp4", *V, w / "m.onnx", "-o",
                                                  w / ("v" * 237 + ".mp4")], "add 22"),
    "image-output-name-too-long": lambda w: Case(["--image", w / "photos" / "0014.jpg", *V, w / "m.onnx", "-o",
                                                  w / ("b" * 245 + ".png")], "choose a shorter -o"),
    "image-output-is-the-input": lambda w: Case(
        ["--image", w / "photos" / "0030.jpg", *V, w / "m.onnx", "-o", w / "photos" / "0030.jpg", "--overwrite"],
        "would overwrite the input"),
    "image-output-hard-link-of-the-input": lambda w: Case(
        ["--image", w / "photos" / "0030.jpg", *V, w / "m.onnx", "-o",
         _hardlink(w, "hl.jpg", w / "photos" / "0030.jpg"), "--overwrite"], "would overwrite the input"),
    "image-default-output-exists": lambda w: _after(shutil.copy(w / "photos" / "0014.jpg", w / "0030_x2.jpg"), Case(
        ["--image", shutil.copy(w / "photos" / "0030.jpg", w / "0030.jpg"), *V, w / "m.onnx"],
        "exists; pass --overwrite")),
    "image-output-is-the-model": lambda w: Case(
        ["--image", w / "photos" / "0030.jpg", *V, w / "m.onnx", "-o", w / "m.onnx", "--overwrite"],
        "would overwrite the input"),
    "folder-holding-a_x2-into-itself": lambda w: Case(
        ["--image", _pair_folder(w), *V, w / "m.onnx", "-o", w / "pair", "--overwrite"], "input folder"),
    "folder-into-a-subfolder-of-itself": lambda w: Case(
        ["--image", w / "photos", *V, w / "m.onnx", "-o", w / "photos" / "out"], "input folder"),
    "glob-to-an-image-name": lambda w: Case(
        ["--image", f"{w}/photos/*.jpg", *V, w / "m.onnx", "-o", w / "one.png"], "looks like an image file name"),
    "glob-to-an-existing-file": lambda w: Case(
        ["--image", f"{w}/photos/*.jpg", *V, w / "m.onnx", "-o", _touch(w / "notes.txt")], "is a file"),
    "folder-to-the-model-file": lambda w: Case(
        ["--image", w / "photos", *V, w / "m.onnx", "-o", w / "m.onnx", "--overwrite"], "is a file"),
    "folder-default-output-exists": lambda w: _after(_touch(w / "photos_x2" / "0030_x2.jpg"), Case(
        ["--image", w / "photos", *V, w / "m.onnx"], "0030_x2.jpg exists")),
    "glob-into-its-own-folder": lambda w: Case(
        ["--image", f"{w}/photos/*.jpg", *V, w / "m.onnx", "-o", w / "photos"], "input folder"),
    "folder-output-symlink-to-the-input": lambda w: Case(
        ["--image", w / "photos", *V, w / "m.onnx", "-o", _link(w, "out", w / "photos"), "--overwrite"],
        "input folder"),
    "folder-output-read-only": lambda w: Case(
        ["--image", w / "photos", *V, w / "m.onnx", "-o", _ro(w)], "read-only", read_only=("ro",)),
    "glob-two-folders-same-names": lambda w: Case(
        ["--image", f"{w}/*/0030.jpg", *V, w / "m.onnx", "-o", w / "out"], "same file"),
    "image-in-a-read-only-folder-default-output": lambda w: Case(
        ["--image", w / "photos" / "0030.jpg", *V, w / "m.onnx"], "read-only", read_only=("photos",)),
    "image-with-a-report": lambda w: Case(
        ["--image", w / "photos" / "0030.jpg", *V, w / "m.onnx", "--report", w / "r.json"], "describes a video run"),
}

B = ["--dataset"]
BENCH: dict[str, Callable[[Path], Case]] = {
    "json-is-the-model": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--json", w / "m.onnx", "--overwrite"],
                                        "would overwrite the input"),
    "save-baseline-is-the-model": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--save-baseline", w / "m.onnx", "--overwrite"], "would overwrite the input"),
    "json-is-a-dataset-image": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--json", w / "dataset" / "0030.jpg", "--overwrite"],
        "would overwrite a file in the input folder"),
    "json-inside-the-dataset": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--json", w / "dataset" / "new.json"], "inside the input folder"),
    "report-is-the-dataset": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--report", w / "dataset"],
                                            "input folder"),
    "report-inside-the-dataset": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--report", w / "dataset" / "r"],
                                                "input folder"),
    "json-and-save-baseline-one-file": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--json", w / "x.json", "--save-baseline", w / "x.json"], "same file"),
    "save-baseline-is-the-baseline": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--baseline", _baseline(w), "--save-baseline", w / "b.json", "--overwrite"],
        "would overwrite the input"),
    "json-exists": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--json", _touch(w / "x.json")],
                                  "exists; pass --overwrite"),
    "report-folder-holds-a-report": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--report", _touch(w / "rep" / "report.md").parent], "report.md exists"),
    "json-read-only-folder": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--json", _ro(w) / "x.json"],
                                            "read-only", read_only=("ro",)),
    "json-is-the-report-json": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--report", w / "rep", "--json", w / "rep" / "report.json"], "same file"),
    "json-inside-the-report-folder": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--report", w / "rep", "--json", w / "rep" / "mine.json"],
        "inside the folder"),
    "json-symlink-to-the-model": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--json", _link(w, "l.json", w / "m.onnx"), "--overwrite"],
        "would overwrite the input"),
    "json-is-the-models-external-data": lambda w: Case(
        [_external_data(w), *B, w / "dataset", "--json", w / "ext.onnx.data", "--overwrite"],
        "would overwrite the input"),
    "json-is-dev-null": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--json", "/dev/null", "--overwrite"],
                                       "not a regular file"),
    "report-crops-exist": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--report", _touch(w / "rep" / "crops" / "0030.png").parent.parent],
        "crops exists; pass --overwrite"),
    "report-crops-link-to-the-dataset": lambda w: Case(
        [w / "m.onnx", *B, w / "dataset", "--report", _link(_ro(w, "rep"), "crops", w / "dataset").parent,
         "--overwrite"], "crops is a link"),
    "report-is-a-file": lambda w: Case([w / "m.onnx", *B, w / "dataset", "--report", _touch(w / "notes.txt")],
                                       "is a file"),
}

EXPORT: dict[str, Callable[[Path], Case]] = {
    "int8-sibling-is-the-checkpoint": lambda w: Case(
        [_ckpt_named(w, "m.int8.onnx"), "--scale", "2", "-o", w / "m.onnx", "--precision", "fp32,int8",
         "--calib", w / "photos", "--overwrite"], "would overwrite the input"),
    "fp16-sibling-is-the-checkpoint": lambda w: Case(
        [_ckpt_named(w, "n.fp16.onnx"), "--scale", "2", "-o", w / "n.onnx", "--precision", "fp32,fp16"],
        "would overwrite the input"),
    "output-is-the-checkpoint": lambda w: Case([w / "fsrcnn_x2.pth", "-o", w / "fsrcnn_x2.pth", "--overwrite"],
                                               "would overwrite the input"),
    "output-symlink-to-the-checkpoint": lambda w: Case(
        [w / "fsrcnn_x2.pth", "-o", _link(w, "l.onnx", w / "fsrcnn_x2.pth"), "--overwrite"],
        "would overwrite the input"),
    "default-output-in-a-read-only-folder": lambda w: Case(
        [shutil.copy(w / "fsrcnn_x2.pth", _ro(w) / "fsrcnn_x2.pth")], "choose -o elsewhere", read_only=("ro",)),
    "output-exists": lambda w: Case([w / "fsrcnn_x2.pth", "-o", w / "m.onnx"], "exists; pass --overwrite"),
    "derived-file-exists": lambda w: _after(_touch(w / "new.fp16.onnx"), Case(
        [w / "fsrcnn_x2.pth", "-o", w / "new.onnx", "--precision", "fp32,fp16"], "new.fp16.onnx exists")),
    "output-inside-the-calibration-folder": lambda w: Case(
        [w / "fsrcnn_x2.pth", "-o", w / "photos" / "x.onnx", "--precision", "fp32,int8", "--calib", w / "photos"],
        "inside the input folder"),
    "output-inside-the-validation-folder": lambda w: Case(
        [w / "fsrcnn_x2.pth", "-o", w / "dataset" / "x.onnx", "--precision", "fp32,fp16", "--val", w / "dataset"],
        "inside the input folder"),
    "output-is-a-folder": lambda w: Case([w / "fsrcnn_x2.pth", "-o", w / "photos"], "is a folder"),
    "output-folder-missing": lambda w: Case([w / "fsrcnn_x2.pth", "-o", w / "nope" / "x.onnx"], "does not exist"),
}

CALIBRATE: dict[str, Callable[[Path], Case]] = {
    "output-inside-the-source-folder": lambda w: Case(
        ["build", "--from", w / "photos", "-o", w / "photos" / "set.npz"], "inside the input folder"),
    "output-exists": lambda w: Case(["build", "--from", w / "photos", "-o", _touch(w / "set.npz")],
                                    "exists; pass --overwrite"),
    "output-read-only-folder": lambda w: Case(["build", "--from", w / "photos", "-o", _ro(w) / "set.npz"],
                                              "read-only", read_only=("ro",)),
    "output-is-the-source": lambda w: Case(
        ["build", "--from", shutil.copy(w / "in.mp4", w / "clip.npz"), "-o", w / "clip.npz", "--overwrite"],
        "would overwrite the input"),
}

TRAIN: dict[str, Callable[[Path], Case]] = {
    # The QAT audit: a legal name of 242-255 bytes failed as an internal error (exit 3) after the training, when
    # its temporary name (.NAME.XXXXXXXX.tmp) was too long; now one line before any work.
    "output-name-too-long-for-its-temporary-file": lambda w: Case(
        ["--data", w / "photos", "-o", w / ("a" * 240 + ".pth")], "(.NAME.XXXXXXXX.tmp, ...) add 14"),
    "qat-state-name-too-long": lambda w: Case(
        ["--qat", w / "m.onnx", "--data", w / "photos", "-o", w / ("a" * 225 + ".int8.onnx")],
        "-o's QAT state"),
    "qat-output-is-the-models-external-data": lambda w: Case(
        ["--qat", _external_data(w, "ext.int8.onnx"), "--data", w / "photos", "-o", w / "ext.int8.onnx",
         "--overwrite"], "would overwrite the input"),
    "output-inside-the-data": lambda w: Case(["--data", w / "photos", "-o", w / "photos" / "x.pth"],
                                             "inside the input folder"),
    "output-exists-without-resume": lambda w: Case(["--data", w / "photos", "-o", w / "fsrcnn_x2.pth"],
                                                   "pass --resume"),
    "resume-and-overwrite": lambda w: Case(["--data", w / "photos", "-o", w / "x.pth", "--resume", "--overwrite"],
                                           "give one of them"),
    "resume-onto-the-teacher": lambda w: Case(
        ["--data", w / "photos", "--teacher", w / "fsrcnn_x2.pth", "-o", w / "fsrcnn_x2.pth", "--resume"],
        "would overwrite the input"),
    "output-read-only-folder": lambda w: Case(["--data", w / "photos", "-o", _ro(w) / "x.pth"], "read-only",
                                              read_only=("ro",)),
    "output-inside-the-validation-set": lambda w: Case(
        ["--data", w / "photos", "--val", w / "dataset", "-o", w / "dataset" / "x.pth"], "inside the input folder"),
}

BUILD: dict[str, Callable[[Path], Case]] = {
    "engine-is-the-onnx": lambda w: Case([w / "m.onnx", "-o", w / "m.onnx", "--overwrite"],
                                         "name the engine NAME.engine or NAME.plan"),
    "engine-links-to-the-onnx": lambda w: Case([w / "m.onnx", "-o", _link(w, "m.engine", w / "m.onnx"),
                                                "--overwrite"], "would overwrite the input"),
    "engine-name-holds-another-file": lambda w: Case([w / "m.onnx", "-o", _touch(w / "x.engine")],
                                                     "exists; pass --overwrite"),
    "calibration-cache-is-the-onnx": lambda w: Case(
        [w / "m.onnx", "--int8", "--calib", w / "photos", "--calib-cache", w / "m.onnx"], "would overwrite the input"),
    "timing-cache-is-the-onnx": lambda w: Case([w / "m.onnx", "--timing-cache", w / "m.onnx"],
                                               "would overwrite the input"),
    "engine-inside-the-calibration-folder": lambda w: Case(
        [w / "m.onnx", "--int8", "--calib", w / "photos", "-o", w / "photos" / "m.engine"], "inside the input folder"),
    "engine-in-a-read-only-folder": lambda w: Case([w / "m.onnx", "-o", _ro(w) / "m.engine"], "read-only",
                                                   read_only=("ro",)),
}

ALL = [("run", k, v) for k, v in RUN.items()] + [("bench", k, v) for k, v in BENCH.items()] + \
      [("export", k, v) for k, v in EXPORT.items()] + [("calibrate", k, v) for k, v in CALIBRATE.items()] + \
      [("train", k, v) for k, v in TRAIN.items()] + [("build", k, v) for k, v in BUILD.items()]


@pytest.mark.parametrize("cmd,make", [(c, m) for c, _, m in ALL], ids=[f"{c}-{k}" for c, k, _ in ALL])
def test_refused_and_nothing_changed(work, cmd, make):
    case = make(work)
    extra = [work / name for name in case.read_only]
    with read_only(*extra):
        hostile(cmd, case.args, inputs=[work], match=case.match, watch=work)


def test_readme_export_example_into_the_read_only_assets_folder_says_use_o(tmp_path):
    ckpt = ASSETS / "weights" / "fsrcnn" / "fsrcnn_x3.pth"
    if not ckpt.is_file() or ckpt.parent.stat().st_mode & 0o222:
        pytest.skip("the assets folder is not there or not read-only here")
    before = hashes([ckpt.parent])
    res = hostile("export", [ckpt], inputs=[ckpt.parent], match="read-only", cwd=tmp_path)
    assert "-o" in res.err and hashes([ckpt.parent]) == before


# -- replacing on purpose, folder runs, concurrent runs -----------------------------------


def test_overwrite_replaces_an_existing_report_and_video(work):
    report, out = _touch(work / "run.json", "old"), _touch(work / "out.mp4", "old")
    res = sr("run", "--video", work / "in.mp4", "--model", work / "m.onnx", "-o", out, "--report", report,
             "--overwrite", "-q")
    assert res.code == 0, res.err
    assert json.loads(report.read_text())["frames_out"] == 6
    assert out.stat().st_size > 1000 and leftovers(work) == []


def test_a_folder_run_twice_never_ingests_its_own_outputs(work):
    pair = _pair_folder(work)
    before = hashes([pair])
    first = sr("run", "--image", pair, "--model", work / "m.onnx", "-q")
    assert first.code == 0, first.err
    out = work / "pair_x2"
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "a_x2_x2.png"]
    made = hashes([out])
    again = hostile("run", ["--image", pair, "--model", work / "m.onnx", "-q"], inputs=[pair, out],
                    match="a_x2.png exists (2 of the 2 outputs; a stopped run's?): pass --skip-existing", watch=work)
    assert again.code == 2 and hashes([out]) == made
    forced = sr("run", "--image", pair, "--model", work / "m.onnx", "-q", "--overwrite")
    assert forced.code == 0, forced.err
    assert hashes([pair]) == before and sorted(p.name for p in out.iterdir()) == ["a_x2.png", "a_x2_x2.png"]
    assert leftovers(work) == []


def test_a_glob_writes_into_a_new_sibling_folder(work):
    res = sr("run", "--image", f"{work}/photos/*.jpg", "--model", work / "m.onnx", "-q")
    assert res.code == 0, res.err
    assert sorted(p.name for p in (work / "photos_x2").iterdir()) == ["0014_x2.jpg", "0030_x2.jpg"]
    assert sorted(p.name for p in (work / "photos").iterdir()) == ["0014.jpg", "0030.jpg"]


def test_a_second_run_on_the_same_output_refuses_while_the_first_writes(work, clip_factory):
    import signal

    import av

    clip = shutil.copy(clip_factory(120), work / "long.mp4")
    out = work / "out.mp4"
    first = start("run", "--video", clip, "--model", work / "m.onnx", "-o", out, "-q", "--preset", "ultrafast")
    try:
        assert wait_for(lambda: (work / ".out.mp4.lock").exists(), proc=first), first.communicate()
        second = sr("run", "--video", work / "in.mp4", "--model", work / "m.onnx", "-o", out, "-q", "--overwrite")
        assert second.code == 2 and "another run is writing" in second.err, second.err
        assert len(second.err.strip().splitlines()) == 1
        assert first.poll() is None, "the first run ended before the second was refused"
        first.send_signal(signal.SIGINT)  # the first run's result is whatever it reports: stop it early
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    if "no frame was written" in err:
        assert not out.exists()
    else:
        frames = int(err.split(" frames written")[0].rsplit(" ", 1)[1])
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == frames  # the first run's frames, not the second's
    assert leftovers(work) == []


def test_claim_locks_each_output_and_a_killed_holder_leaves_nothing_blocking(tmp_path):
    from sredge.errors import InputError
    from sredge.outputs import Output, claim_outputs

    out = tmp_path / "x.json"
    with claim_outputs([Output(out, "--json")], [], overwrite=False):
        assert (tmp_path / ".x.json.lock").exists()
        with pytest.raises(InputError, match="another run is writing"):
            with claim_outputs([Output(out, "--json")], [], overwrite=False):
                pass
    assert leftovers(tmp_path) == []
    # A stale lock file (its holder was killed) holds no kernel lock: the next run claims it.
    (tmp_path / ".x.json.lock").write_text("")
    with claim_outputs([Output(out, "--json")], [], overwrite=False):
        pass
    assert leftovers(tmp_path) == []


def test_a_file_at_a_lock_files_name_is_never_removed(work):
    """The audit: `sr-run --image .out.png.lock -o out.png` deleted its own input (the claim opened the
    existing file as its lock and removed it at the end), and a user's `.keep_x2.png.lock` was removed by a
    run writing keep_x2.png. A file at a lock's name that sredge did not make (not empty) is refused."""
    photo = work / "photos" / "0030.jpg"
    as_lock = work / ".out.png.lock"
    as_lock.write_bytes(photo.read_bytes())
    res = hostile("run", ["--image", as_lock, "--model", work / "m.onnx", "-o", work / "out.png", "-q"],
                  inputs=[as_lock], outputs=[work / "out.png"], match="is not one sredge made", watch=work / "photos")
    assert str(as_lock) in res.err
    notes = work / "photos" / ".0030_x2.jpg.lock"
    notes.write_text("my notes\n")
    hostile("run", ["--image", photo, "--model", work / "m.onnx", "-q"], inputs=[notes],
            outputs=[work / "photos" / "0030_x2.jpg"], match="move or rename it", watch=work / "dataset")
    assert notes.read_text() == "my notes\n"
