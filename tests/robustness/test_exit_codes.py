"""Exit 2 with one line, never 3 "internal error": full disks, read-only targets, damaged files, bad folders.

Real commands in child processes, real files: a tmpfs filled to the last byte for ENOSPC, a read-only
tmpfs for EROFS, damaged copies of real baselines, calibration sets and checkpoints.
"""

from __future__ import annotations

import errno
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import asset
from tests.robustness.conftest import PROGS, assert_clean_error, fill, hashes, hostile, leftovers, sr, tmpfs

# -- disk full, read-only file system ------------------------------------------------------

FULL: dict[str, tuple[str, Callable[[Path, Path], list]]] = {
    "run-image": ("run", lambda w, d: ["--image", w / "photos" / "0030.jpg", "--model", w / "m.onnx",
                                        "-o", d / "x.png"]),
    "run-folder": ("run", lambda w, d: ["--image", w / "photos", "--model", w / "m.onnx", "-o", d / "out"]),
    "run-video": ("run", lambda w, d: ["--video", w / "in.mp4", "--model", w / "m.onnx", "-o", d / "x.mp4", "-q"]),
    # The video is done when the report fails: it is kept (outside the work folder here), and the line says so.
    "run-video-report": ("run", lambda w, d: ["--video", w / "in.mp4", "--model", w / "m.onnx", "-o",
                                              d.parent / "x.mp4", "--report", d / "r.json", "-q"]),
    "export": ("export", lambda w, d: [w / "fsrcnn_x2.pth", "-o", d / "x.onnx", "-q"]),
    "bench-json": ("bench", lambda w, d: [w / "m.onnx", "--dataset", w / "dataset", "--size", "0", "--no-bicubic",
                                          "--json", d / "r.json", "-q"]),
    "bench-save-baseline": ("bench", lambda w, d: [w / "m.onnx", "--dataset", w / "dataset", "--size", "0",
                                                   "--no-bicubic", "--save-baseline", d / "b.json", "-q"]),
    "bench-report-folder": ("bench", lambda w, d: [w / "m.onnx", "--dataset", w / "dataset", "--size", "0",
                                                   "--no-bicubic", "--report", d / "rep", "-q"]),
    "calibrate": ("calibrate", lambda w, d: ["build", "--from", w / "photos", "-o", d / "set.npz", "--tile", "32",
                                             "--min-crops", "1"]),
    "train": ("train", lambda w, d: ["--data", w / "photos", "-o", d / "x.pth", "--steps", "2", "--val-every", "2",
                                     "--batch", "2", "--patch", "8", "-q"]),
}


@pytest.mark.parametrize("name", FULL)
def test_disk_full_is_exit_2_naming_the_file(work, tmp_path, name):
    cmd, make = FULL[name]
    with tmpfs(tmp_path / "full", size="64k") as disk:
        fill(disk)
        args = make(work, disk)
        filled = hashes([disk])
        res = hostile(cmd, args, inputs=[work], outputs=[a for a in args if isinstance(a, Path)
                                                          and a.parent == disk], watch=work, match="no space left")
        assert hashes([disk]) == filled, "something was left on the full disk"
        assert leftovers(disk) == []
        assert str(disk) in res.err  # names the file, not a temporary one
        assert ".tmp" not in res.err and ".partial" not in res.err
        if name == "run-video-report":
            assert "6 frames written to" in res.err and (disk.parent / "x.mp4").stat().st_size > 1000


READ_ONLY_FS = {
    "run-image": ("run", lambda w, d: ["--image", w / "photos" / "0030.jpg", "--model", w / "m.onnx",
                                        "-o", d / "x.png"]),
    "calibrate": ("calibrate", lambda w, d: ["build", "--from", w / "photos", "-o", d / "set.npz"]),
    "bench-json": ("bench", lambda w, d: [w / "m.onnx", "--dataset", w / "dataset", "--json", d / "r.json"]),
    "sr-train": ("train", lambda w, d: ["--data", w / "photos", "-o", d / "x.pth"]),
}


@pytest.mark.parametrize("name", READ_ONLY_FS)
def test_read_only_file_system_is_exit_2(work, tmp_path, name):
    cmd, make = READ_ONLY_FS[name]
    with tmpfs(tmp_path / "ro", size="64k", options="ro") as disk:
        hostile(cmd, make(work, disk), inputs=[work], watch=work, match="read-only")


@pytest.mark.parametrize("code,expect", [(errno.ENOSPC, "no space left on device writing"),
                                         (errno.EDQUOT, "no space left on device writing"),
                                         (errno.EROFS, "read-only file system"),
                                         (errno.EACCES, "permission denied")])
def test_the_safety_net_turns_os_errors_into_one_line_exit_2(capsys, code, expect):
    from sredge.cli._app import run

    def main(argv):
        raise OSError(code, "refused", "/data/out.bin")

    assert run("sr-x", main, []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and "/data/out.bin" in err[0]


# -- damaged baselines (sr-bench --baseline) -----------------------------------------------

GOOD_ROW = {"label": "m", "quality": {"mean": {"psnr": 30.0, "ssim": 0.9}, "images": {"a": {"psnr": 30.0,
                                                                                          "ssim": 0.9}}},
            "latency": {"median_ms": 5.0}}
BASELINES: dict[str, bytes] = {
    "empty-file": b"",
    "binary": bytes(range(256)),
    "not-json": b"{rows: [",
    "a-list": b"[1, 2, 3]",
    "no-rows": json.dumps({"dataset": {"fingerprint": "x"}}).encode(),
    "no-dataset": json.dumps({"rows": [GOOD_ROW]}).encode(),
    "rows-not-a-list": json.dumps({"dataset": {"fingerprint": "x"}, "rows": {"a": 1}}).encode(),
    "row-not-an-object": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [7]}).encode(),
    "label-a-number": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(GOOD_ROW, label=3)]}).encode(),
    "no-fingerprint": json.dumps({"dataset": {"name": "Set5"}, "rows": [GOOD_ROW]}).encode(),
    "psnr-a-string": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(
        GOOD_ROW, quality={"mean": {"psnr": "high", "ssim": 0.9}, "images": {}})]}).encode(),
    "no-mean": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(
        GOOD_ROW, quality={"images": {}})]}).encode(),
    "image-scores-a-list": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(
        GOOD_ROW, quality={"mean": {"psnr": 1.0, "ssim": 0.9}, "images": {"a": [30, 0.9]}})]}).encode(),
    "latency-a-string": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(
        GOOD_ROW, latency={"median_ms": "5 ms"})]}).encode(),
    "latency-negative": json.dumps({"dataset": {"fingerprint": "x"}, "rows": [dict(
        GOOD_ROW, latency={"median_ms": -5})]}).encode(),
    "reference-a-string": json.dumps({"dataset": {"fingerprint": "x"}, "reference_ms": "fast",
                                      "rows": [GOOD_ROW]}).encode(),
    "a-folder": b"",
}


@pytest.mark.parametrize("name", BASELINES)
def test_damaged_baseline_is_exit_2(work, name):
    path = work / "base.json"
    if name == "a-folder":
        path.mkdir()
    else:
        path.write_bytes(BASELINES[name])
    hostile("bench", [work / "m.onnx", "--dataset", work / "dataset", "--baseline", path, "--json", work / "r.json"],
            inputs=[work], match="base.json", watch=work)


# -- damaged calibration sets (.npz) --------------------------------------------------------


def _real_set(crops: np.ndarray | None = None, meta: object = None, **extra) -> bytes:
    from sredge.calibration.sets import FORMAT, FORMAT_VERSION

    if crops is None:
        crops = np.random.default_rng(0).integers(0, 255, (4, 3, 8, 8), dtype=np.uint8)
    if meta is None:
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "sources": ["x"], "counts": [4],
                "options": {"tile": 8}}
    buf = io.BytesIO()
    np.savez_compressed(buf, crops=crops, meta=np.array(meta if isinstance(meta, str) else json.dumps(meta)), **extra)
    return buf.getvalue()


def _npz_cases() -> dict[str, Callable[[], bytes]]:
    from sredge.calibration.sets import FORMAT

    good = {"format": FORMAT, "version": 1, "sources": ["x"], "counts": [4], "options": {"tile": 8}}
    return {
        "random-bytes": lambda: bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8)),
        "empty-file": lambda: b"",
        "truncated": lambda: _real_set()[:300],
        "corrupt-middle": lambda: (lambda b: b[:200] + bytes(300) + b[500:])(_real_set()),
        "no-meta": lambda: (lambda buf: (np.savez(buf, crops=np.zeros((1, 3, 8, 8), np.uint8)), buf.getvalue())[1])(
            io.BytesIO()),
        "meta-not-json": lambda: _real_set(meta="not json {"),
        "meta-a-list": lambda: _real_set(meta=[1, 2]),
        "crops-float": lambda: _real_set(crops=np.zeros((2, 3, 8, 8), np.float32)),
        "crops-wrong-shape": lambda: _real_set(crops=np.zeros((8, 8), np.uint8)),
        "no-crops": lambda: _real_set(crops=np.zeros((0, 3, 8, 8), np.uint8)),
        "options-a-string": lambda: _real_set(meta=dict(good, options={"tile": "big"})),
        "options-negative": lambda: _real_set(meta=dict(good, options={"tile": -3})),
        "version-a-string": lambda: _real_set(meta=dict(good, version="2")),
        "counts-not-numbers": lambda: _real_set(meta=dict(good, counts=["many"])),
    }


@pytest.mark.parametrize("name", list(_npz_cases()))
def test_damaged_calibration_set_is_exit_2(work, name):
    path = work / "set.npz"
    path.write_bytes(_npz_cases()[name]())
    hostile("calibrate", ["show", path], inputs=[work], match="set.npz", watch=work)


def test_damaged_calibration_set_in_sr_export_fails_before_writing_anything(work):
    bad = work / "set.npz"
    bad.write_bytes(_real_set()[:300])
    hostile("export", [work / "fsrcnn_x2.pth", "-o", work / "x.onnx", "--precision", "fp32,int8", "--calib", bad],
            inputs=[work], outputs=[work / "x.onnx", work / "x.int8.onnx"], match="set.npz", watch=work)


def test_a_cut_short_calibration_video_is_exit_2_like_a_damaged_image(work):
    """The audit: a truncated --calib video was a warning (printed twice by sr-calibrate), exit 0, and a
    calibration set of its first part; a damaged image in a --calib folder is exit 2, as docs/outputs.md says."""
    import av

    from tests.conftest import asset

    full = work / "full.mkv"  # Matroska: no frame count, so sr-calibrate counts the frames first
    with av.open(str(asset("video/onepiece_demo.mp4"))) as src, av.open(str(full), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    cut = work / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    hostile("calibrate", ["build", "--from", cut, "-o", work / "c.npz"], inputs=[work], outputs=[work / "c.npz"],
            match="cut.mkv is damaged or cut short", watch=work)
    hostile("export", [work / "fsrcnn_x2.pth", "-o", work / "x.onnx", "--precision", "fp32,int8", "--calib", cut],
            inputs=[work], outputs=[work / "x.onnx", work / "x.int8.onnx"], match="cut.mkv is damaged", watch=work)


# -- damaged checkpoints to resume (sr-train --resume) ---------------------------------------


def _torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


RESUME: dict[str, Callable[[Path], bytes]] = {
    "random-bytes": lambda w: bytes(np.random.default_rng(2).integers(0, 255, 4000, dtype=np.uint8)),
    "empty-file": lambda w: b"",
    "truncated": lambda w: (w / "fsrcnn_x2.pth").read_bytes()[:2000],
    "another-kind-of-checkpoint": lambda w: (w / "fsrcnn_x2.pth").read_bytes(),
    "a-list": lambda w: _torch_bytes([1, 2, 3]),
    "right-arch-missing-optimizer": lambda w: _torch_bytes({
        "arch": "srvgg", "hparams": {"scale": 2, "num_in_ch": 1, "num_out_ch": 1, "num_feat": 32, "num_conv": 8},
        "params": {}, "step": 3}),
}


@pytest.mark.parametrize("name", RESUME)
def test_damaged_checkpoint_to_resume_is_exit_2(work, name):
    ckpt = work / "run.pth"
    ckpt.write_bytes(RESUME[name](work))
    hostile("train", ["--data", work / "photos", "-o", ckpt, "--resume", "--steps", "4", "--batch", "2",
                      "--patch", "8", "-q"], inputs=[work], match="run.pth", watch=work)


# -- folder runs: every good file done, every bad one named, exit 2 at the end -----------------


def _bad_images(folder: Path, names: list[str]) -> None:
    for name in names:
        if name.startswith("empty"):
            (folder / name).write_bytes(b"")
        elif name.startswith("text"):
            (folder / name).write_text("not an image\n")
        else:
            (folder / name).write_bytes(bytes(np.random.default_rng(3).integers(0, 255, 3000, dtype=np.uint8)))


@pytest.mark.parametrize("bad", [["noise.png"], ["empty.jpg", "text.png"], ["b_noise.webp"]],
                         ids=["one-bad", "two-bad", "bad-in-the-middle"])
def test_folder_run_does_every_good_image_and_names_every_bad_one(work, bad):
    folder = work / "photos"
    _bad_images(folder, bad)
    before = hashes([folder])
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "-q")
    assert_clean_error(res, "run", 2, lines=len(bad))
    for name in bad:
        assert name in res.err
    out = work / "photos_x2"
    assert sorted(p.name for p in out.iterdir()) == ["0014_x2.jpg", "0030_x2.jpg"]
    assert hashes([folder]) == before and leftovers(work) == []


def test_a_float_tiff_in_a_folder_run_to_jpeg_is_one_bad_image(work):
    """The image audit: a float32 RGBA TIFF with --ext jpg was an internal error (np.iinfo of a float) that
    ended the folder run before any image was written."""
    import cv2

    folder = work / "photos"
    assert cv2.imwrite(str(folder / "a_scan.tif"), np.random.default_rng(1).random((24, 32, 4), dtype=np.float32))
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "--ext", "jpg", "-q")
    assert_clean_error(res, "run", 2, match="a_scan.tif: unsupported image sample type float32")
    assert sorted(p.name for p in (work / "photos_x2").iterdir()) == ["0014_x2.jpg", "0030_x2.jpg"]


def test_an_output_suffix_sredge_cannot_write_is_refused_before_inference(work):
    """The image audit: -o x.xyz, x.gif or a suffix-less name were refused only after the model had run."""
    for name in ("x.xyz", "x.gif", "noext"):
        hostile("run", ["--image", work / "photos" / "0030.jpg", "--model", work / "m.onnx", "-o", work / name],
                inputs=[work / "photos"], outputs=[work / name], match="is not an image format sredge writes",
                watch=work)


def test_a_non_image_input_is_named_not_the_output_it_would_give(work):
    """The first-hour audit: sr-run --image notes.txt said "-o notes_x2.txt: a .txt file is not an image format
    sredge writes" although no -o was given; a video said the same of NAME_x2.mp4."""
    notes = work / "notes.txt"
    notes.write_text("not a picture\n")
    hostile("run", ["--image", notes, "--model", work / "m.onnx"], inputs=[notes],
            outputs=[work / "notes_x2.txt"], match=f"{notes}: not an image by its name (.txt)", watch=work)
    clip = work / "clip.mp4"
    clip.write_bytes(asset("video/onepiece_demo.mp4").read_bytes()[:4096])
    res = hostile("run", ["--image", clip, "--model", work / "m.onnx"], inputs=[clip],
                  outputs=[work / "clip_x2.mp4"], match="for a video use --video", watch=work)
    assert "-o " not in res.err, res.err
    # An image under another name still runs when -o names the output.
    photo = work / "photo"
    photo.write_bytes((work / "photos" / "0030.jpg").read_bytes())
    assert sr("run", "--image", photo, "--model", work / "m.onnx", "-o", work / "p.png", "-q").code == 0


def test_a_missing_camera_and_a_headless_display_are_refused_before_the_model_loads(work):
    """The first-hour audit: `--video 0` with no camera and `--display` on the headless OpenCV printed the model's
    and the encoder's banner lines before their one-line error. Both are now refused first."""
    import os

    import cv2

    device = next(f"/dev/video{n}" for n in range(40, 64) if not os.path.exists(f"/dev/video{n}"))
    res = sr("run", "--video", device, "-o", work / "cam.mp4")
    assert_clean_error(res, "run", 2, match=f"camera {device} does not exist: is the camera attached?")
    if "NONE" not in cv2.getBuildInformation().split("GUI:", 1)[1].splitlines()[0]:
        pytest.skip("this OpenCV has a GUI: --display is not refused here")
    res = sr("run", "--video", asset("video/onepiece_demo.mp4"), "--display")
    assert_clean_error(res, "run", 2, match="--display needs a window: OpenCV here has no GUI")


def test_an_unquoted_pattern_is_named(work):
    """The first-hour audit: `sr-run --image photos/*.jpg -o out` (the shell expands it) said only
    'unrecognized arguments: photos/0030.jpg'."""
    photos = sorted((work / "photos").glob("*.jpg"))
    assert len(photos) >= 2
    res = sr("run", "--image", *photos, "--model", work / "m.onnx", "-o", work / "out")
    assert_clean_error(res, "run", 2, match=f"{len(photos)} images were given (the shell expands an unquoted pattern)")
    assert "--image '" in res.err and not (work / "out").exists()
    res = sr("run", "--image", photos[0], "--model", work / "m.onnx", "stray")
    assert_clean_error(res, "run", 2, match="unrecognized arguments: stray")


def test_glob_with_a_bad_image(work):
    _bad_images(work / "photos", ["empty.jpg"])
    res = sr("run", "--image", f"{work}/photos/*.jpg", "--model", work / "m.onnx", "-o", work / "out", "-q")
    assert_clean_error(res, "run", 2, match="empty.jpg")
    assert sorted(p.name for p in (work / "out").iterdir()) == ["0014_x2.jpg", "0030_x2.jpg"]


def test_folder_of_only_bad_images_leaves_no_output_folder(work):
    folder = work / "bad"
    folder.mkdir()
    _bad_images(folder, ["empty.png", "text.jpg"])
    hostile("run", ["--image", folder, "--model", work / "m.onnx", "-q"], inputs=[work], outputs=[work / "bad_x2"],
            lines=2, watch=work)


def test_single_bad_image_is_one_line_and_no_output(work):
    _bad_images(work, ["noise.png"])
    hostile("run", ["--image", work / "noise.png", "--model", work / "m.onnx"], inputs=[work],
            outputs=[work / "noise_x2.png"], match="noise.png", watch=work)


# -- usage errors: one line, exit 2, for every command -----------------------------------------


REQUIRED = {"run": ["--image", "x.png"], "bench": ["m.onnx", "--dataset", "d"], "build": ["m.onnx"],
            "export": ["c.pth"], "train": ["--data", "d", "-o", "x.pth"], "calibrate": ["show", "s.npz"], "models": []}


@pytest.mark.parametrize("cmd", sorted(PROGS))
def test_unknown_option_is_one_line_exit_2(tmp_path, cmd):
    res = sr(cmd, *REQUIRED[cmd], "--no-such-option", cwd=tmp_path)
    assert_clean_error(res, cmd, 2, match="--no-such-option")
    assert list(tmp_path.iterdir()) == []


def test_report_naming_an_existing_file_is_exit_2_and_overwrite_replaces_it(work):
    report = work / "run.json"
    report.write_text("mine\n")
    hostile("run", ["--video", work / "in.mp4", "--model", work / "m.onnx", "-o", work / "o.mp4", "--report", report],
            inputs=[work], outputs=[work / "o.mp4"], match="exists; pass --overwrite", watch=work)
    res = sr("run", "--video", work / "in.mp4", "--model", work / "m.onnx", "-o", work / "o.mp4", "--report", report,
             "--overwrite", "-q")
    assert res.code == 0, res.err
    assert json.loads(report.read_text())["frames_out"] == 6


@pytest.mark.parametrize("resume", ["--resume-default", "--no-resume"])
def test_a_disk_that_fills_while_a_video_is_written_is_named_as_full(work, tmp_path, resume):
    """Not a disk full from the start: the encoder's own writes fill it (FFmpeg reports EINVAL at the end)."""
    args = ["--video", work / "in.mp4", "--model", work / "m.onnx", "-q", "--crf", "0", "--preset", "ultrafast"]
    with tmpfs(tmp_path / "small", size="24k") as disk:
        extra = [resume] if resume == "--no-resume" else []
        res = hostile("run", [*args, "-o", disk / "x.mp4", *extra], inputs=[work], outputs=[disk / "x.mp4"],
                      watch=work, match="no space left on device writing")
        assert str(disk / "x.mp4") in res.err and leftovers(disk) == []


def test_a_disk_too_full_to_join_the_frames_done_says_they_are_kept_and_how_to_join_them(work, tmp_path):
    """The audit: every frame was encoded and committed, then joining them into -o filled the disk: the line was
    only "no space left on device writing x.mp4", the frames kept in its work folder unmentioned (one might
    choose another -o, or --overwrite, and encode them all again). A disk that holds the segments but not the
    output as well."""
    import subprocess

    args = ["--video", work / "in.mp4", "--model", work / "m.onnx", "-q", "--crf", "0", "--preset", "ultrafast"]
    res = sr("run", *args, "-o", tmp_path / "size.mp4", "--no-resume")
    assert res.code == 0, res.err
    size = (tmp_path / "size.mp4").stat().st_size
    with tmpfs(tmp_path / "small", size=str(size * 3 // 2 + 8192)) as disk:
        res = hostile("run", [*args, "-o", disk / "x.mp4"], inputs=[work], outputs=[disk / "x.mp4"], watch=work,
                      match="no space left on device writing")
        assert f"the 6 frames done are kept in {disk / 'x.mp4.sredge-partial'}" in res.err, res.err
        assert "free some space, then the same command joins them" in res.err
        subprocess.run(["mount", "-o", f"remount,size={size * 3}", str(disk)], check=True)
        res = sr("run", *args, "-o", disk / "x.mp4")
        assert res.code == 0 and abs((disk / "x.mp4").stat().st_size - size) < 1000, res.err  # the 6 frames
        assert leftovers(disk) == [] and not (disk / "x.mp4.sredge-partial").exists()


def test_a_reader_that_stops_early_does_not_stop_the_work(tmp_path):
    """The audit: ``sr-export ... | head -1`` was an internal error (BrokenPipeError), exit 3, and wrote no
    file. The export finishes, exit 0, when its stdout closes after the first line."""
    from tests.conftest import asset
    from tests.robustness.conftest import start

    out = tmp_path / "pipe.onnx"
    # Unbuffered, as on a terminal: block-buffered output would reach the closed pipe only at exit.
    proc = start("export", asset("weights/fsrcnn/fsrcnn_x3.pth"), "-o", out, env_changes={"PYTHONUNBUFFERED": "1"})
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as head does
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert first.startswith("detected") and "internal error" not in err and out.stat().st_size > 10_000


def test_a_progress_reader_that_stops_early_does_not_stop_the_video(work, tmp_path):
    """The audit: ``sr-run --video ... 2>&1 >/dev/null | head -c 20`` ended with exit 1 and no video: the
    progress line after the reader left raised BrokenPipeError, and so did the error line about it. The
    run finishes, exit 0, when its stderr closes after the first line."""
    from tests.robustness.conftest import start

    out = tmp_path / "o.mp4"
    proc = start("run", "--video", work / "in.mp4", "--model", work / "m.onnx", "-o", out,
                 "--progress-every", "0.001", env_changes={"PYTHONUNBUFFERED": "1"})
    first = proc.stderr.readline()
    proc.stderr.close()  # the reader goes away, as head does
    stdout = proc.stdout.read()
    assert proc.wait(timeout=300) == 0, stdout
    assert first.startswith("sr-run: ") and "wrote" in stdout and out.stat().st_size > 1000


def test_the_second_image_audit_hidden_files_folders_long_names_and_16_bit_bmp(work):
    """The second image audit: a macOS '._0014.jpg' companion in a folder, and a folder 'sub.png' matched by a
    glob, were each exit 2 ('not a PNG...', 'no such image file'); one input name too long for its output
    refused the whole folder run; a 16-bit image into .bmp was refused only after the model had run."""
    import shutil

    folder = work / "photos"
    (folder / "._0014.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (folder / "sub.png").mkdir()
    long_name = "b" * 250 + ".jpg"
    shutil.copy(folder / "0030.jpg", folder / long_name)
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "-q")
    assert_clean_error(res, "run", 2, match=f"cannot write {'b' * 250}_x2.jpg")
    assert "rename the input" in res.err
    assert sorted(p.name for p in (work / "photos_x2").iterdir()) == ["0014_x2.jpg", "0030_x2.jpg"]
    (folder / long_name).unlink()
    res = sr("run", "--image", f"{folder}/*.png", "--model", work / "m.onnx", "-q")  # only the folder matches
    assert_clean_error(res, "run", 2, match="no images match")
    big = work / "deep.png"
    shutil.copy(asset("realworld/tree_alpha_16bit.png"), big)
    res = sr("run", "--image", big, "--model", work / "m.onnx", "-o", work / "deep.bmp", "--tile", "20", "-q")
    assert_clean_error(res, "run", 2, match="--tile-overlap")  # a tile that cannot work: once, before the model
    res = sr("run", "--image", big, "--model", work / "m.onnx", "-o", work / "deep.bmp", "-q")
    assert_clean_error(res, "run", 2, match="has 16-bit samples and .bmp stores 8: write .png or .tif")
    assert not (work / "deep.bmp").exists() and leftovers(work) == []


def test_a_compare_picture_too_big_for_its_format_is_refused_before_the_model_runs(work):
    """The second image audit: a 20x17000 image with --compare c.jpg ran the model, wrote the image, then
    failed the picture (68004 px wide, with a label bar 40 times the strip's height) and said '1 failed'."""
    import cv2

    strip = work / "strip.png"
    cv2.imwrite(str(strip), np.random.default_rng(0).integers(0, 255, (20, 17000, 3), np.uint8))
    res = sr("run", "--image", strip, "--model", work / "m.onnx", "-o", work / "o.png", "--compare",
             work / "c.jpg", "-q")
    assert_clean_error(res, "run", 2, match="c.jpg would be 68004x")
    assert "x861" not in res.err and not (work / "o.png").exists() and not (work / "c.jpg").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--threads", "100000"], "--threads 100000 is more than this machine can use"),
    (["--batch", "0"], "--batch 0: must be >= 1"),
    (["--tile-overlap=-2"], "--tile-overlap -2: must be >= 0"),
])
def test_sr_run_counts_name_their_option_and_value(work, argv, needle):
    res = sr("run", "--image", work / "photos" / "0030.jpg", "--model", work / "m.onnx", *argv)
    assert_clean_error(res, "run", 2, match=needle)


def test_a_folder_run_continues_with_skip_existing(work):
    """The image audit: a stopped folder run could only be redone whole (--overwrite); the images it finished are
    complete files (written atomically), so --skip-existing does the rest."""
    folder, out = work / "photos", work / "photos_x2"
    assert sr("run", "--image", folder, "--model", work / "m.onnx", "-q").code == 0
    kept = (out / "0014_x2.jpg").stat().st_mtime_ns
    (out / "0030_x2.jpg").unlink()  # as a run stopped before its second image leaves it
    res = sr("run", "--image", folder, "--model", work / "m.onnx")
    assert_clean_error(res, "run", 2, match="0014_x2.jpg exists (1 of the 2 outputs")
    assert "pass --skip-existing to do the rest" in res.err and not (out / "0030_x2.jpg").exists()
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "--skip-existing")
    assert res.code == 0 and "skipping 1 image(s)" in res.out, res.err
    assert (out / "0030_x2.jpg").is_file() and (out / "0014_x2.jpg").stat().st_mtime_ns == kept
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "--skip-existing")
    assert res.code == 0 and "nothing left to do" in res.out, res.err
    long_name = folder / ("b" * 250 + ".jpg")  # every other output exists: this one is still named, exit 2
    long_name.write_bytes((folder / "0030.jpg").read_bytes())
    res = sr("run", "--image", folder, "--model", work / "m.onnx", "--skip-existing")
    assert res.code == 2 and "nothing left to do" in res.out and "rename the input" in res.err, (res.out, res.err)
    long_name.unlink()
    for argv, needle in ((["--skip-existing", "--overwrite"], "drop --overwrite"),
                         (["--skip-existing", "-o", work / "one.jpg"], None)):
        res = sr("run", "--image", folder if needle else folder / "0014.jpg", "--model", work / "m.onnx", *argv)
        assert_clean_error(res, "run", 2, match=needle or "applies to a folder or pattern of images")
