"""Two runs of one output at once: the claim (sredge.outputs) decides, never the order they happen to finish in.

The second run is held, by a marker file, between its output check and its lock (:func:`held`), while the first
runs to its end: the order is fixed by files, not by sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.robustness.conftest import BUNDLED_X2, child_env, leftovers, sr, start, stop_when, wait_for

_HOLD = """
import sys, time
from pathlib import Path
import sredge.outputs as outputs
gate, ready = Path(sys.argv[1]), Path(sys.argv[2])
acquire = outputs.Claim._acquire
def held(self):
    ready.touch()
    while not gate.exists():
        time.sleep(0.01)
    return acquire(self)
outputs.Claim._acquire = held
import importlib
if sys.argv[3] == "build":
    sys.modules["tensorrt"] = None  # as on a machine without TensorRT, wherever this runs
from sredge.cli._app import run
cli = importlib.import_module("sredge.cli." + sys.argv[3])
sys.exit(run(cli.PROG, cli.main, sys.argv[4:], process_ends=True))
"""


class Held:
    """A run of :func:`held`, waiting before it locks its outputs."""

    def __init__(self, proc: subprocess.Popen, gate: Path):
        self.proc, self.gate = proc, gate

    def release(self, timeout: float = 120) -> str:
        """Let it lock its outputs and run to its end; its stderr."""
        self.gate.touch()
        return self.proc.communicate(timeout=timeout)[1]

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


@contextlib.contextmanager
def held(folder: Path, cmd: str, *args: object) -> Iterator[Held]:
    """``sr-<cmd> args``, checked but held before it locks its outputs until :meth:`Held.release`; killed at the
    end of the block if it is still running (a failed test leaves no run behind)."""
    folder.mkdir(exist_ok=True)
    gate, ready = folder / "gate", folder / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(gate), str(ready), cmd, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        assert wait_for(ready.exists, proc=proc), proc.communicate()
        yield Held(proc, gate)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_an_output_finished_between_the_check_and_the_lock_is_refused(tmp_path):
    """The audit: a second `sr-run --image -o out.png` that passed its check while a first one ran, and locked
    once it had finished, replaced its out.png without --overwrite (exit 0)."""
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(BUNDLED_X2, work / "m.onnx")
    photo = Path(shutil.copy(Path(__file__).parents[2] / "src/sredge/data/astronaut_crop.png", work / "a.png"))
    out = work / "out.png"
    with held(tmp_path, "run", "--image", photo, "--model", work / "m.onnx", "-o", out, "-q",
              "--outscale", "1.5") as second:
        first = sr("run", "--image", photo, "--model", work / "m.onnx", "-o", out, "-q")
        assert first.code == 0, first.err
        made = out.read_bytes()
        err = second.release()
    assert second.returncode == 2 and "out.png exists; pass --overwrite" in err, err
    assert out.read_bytes() == made
    assert leftovers(work) == []


def test_a_stopped_video_run_finished_by_another_is_not_replaced_without_overwrite(tmp_path, clip_factory):
    """The audit: a run of -o out.mp4 (other settings, no --overwrite) started while the same command continued a
    stopped run took out.mp4 for the stopped run's own playable file; it locked once that run had finished, found
    no work to continue, started over and replaced the finished video (exit 0)."""
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(BUNDLED_X2, work / "m.onnx")
    clip = shutil.copy(clip_factory(24), work / "in.mp4")
    out = work / "out.mp4"
    run = ["--video", clip, "--model", work / "m.onnx", "-o", out, "-q", "--preset", "ultrafast",
           "--commit-every", "0.2", "--threads", "1"]
    journal = work / "out.mp4.sredge-partial" / "journal.jsonl"

    def committed() -> bool:
        return journal.is_file() and '"segment"' in journal.read_text()

    err = stop_when(start("run", *run), committed, signal.SIGINT)
    assert "(playable)" in err and out.is_file(), err
    assert any("partial" in json.loads(line) for line in journal.read_text().splitlines())
    with held(tmp_path, "run", *run, "--crf", "30") as other:
        finished = sr("run", *run)
        assert finished.code == 0, finished.err
        made = out.read_bytes()
        err = other.release()
    assert other.returncode == 2 and "out.mp4 exists; pass --overwrite" in err, err
    assert out.read_bytes() == made
    assert not journal.parent.exists() and leftovers(work) == []


def test_an_engine_another_sr_build_finished_meanwhile_is_its_own_not_refused(tmp_path):
    """The audit: a second `sr-build` that checked the engine's name while a first one built it, and locked once it
    had written the engine and its sidecar, refused that engine as a stranger's ("exists; pass --overwrite")
    instead of taking it as its own cache (TensorRT is missing here: the build stops there, leaving both)."""
    from sredge.runtime.backends.trt import write_engine_sidecar

    model = Path(shutil.copy(BUNDLED_X2, tmp_path / "m.onnx"))
    engine = tmp_path / "m.engine"
    with held(tmp_path / "hold", "build", model, "-q") as second:
        engine.write_bytes(b"the first build's engine")  # what a first sr-build leaves (no TensorRT here to run one)
        write_engine_sidecar(engine, None, {"built_by": "sr-build", "build_key": "k"})
        err = second.release()
    assert second.returncode == 2 and "exists" not in err and 'pip install "sredge[trt]"' in err, err
    assert engine.read_bytes() == b"the first build's engine"
    assert leftovers(tmp_path) == []


_CLAIM = """
import os, sys
from pathlib import Path
from sredge.outputs import Output, claim_outputs
out = Path(sys.argv[1])
with claim_outputs([Output(out, "--json")], [], overwrite=True):
    if sys.argv[2] == "hold":  # killed holding the claim, as by SIGKILL
        print("held", flush=True)
        sys.stdin.read()
    out.write_text(sys.argv[2])
"""
NOBODY = 65534


def _claim(out: Path, what: str, **kw) -> subprocess.Popen:
    env = child_env() | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.Popen([kw.pop("python", sys.executable), "-c", _CLAIM, str(out), what], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def _python_for_nobody() -> str | None:
    """An interpreter another user can run this checkout's sredge.outputs with (None: none, or not root)."""
    if os.geteuid() != 0:
        return None
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            ok = subprocess.run([python, "-c", "import sredge.outputs"], user=NOBODY, group=NOBODY, extra_groups=[],
                                env=child_env() | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")},
                                cwd="/", capture_output=True, timeout=60).returncode == 0
        except OSError:
            continue
        if ok:
            return python
    return None


def test_a_lock_file_another_users_killed_run_left_in_a_shared_folder_blocks_nothing():
    """The audit: a run killed in a sticky shared folder (/tmp) left its `.NAME.lock`; every other user's run of
    NAME then failed with "permission denied: .NAME.lock" for good (the lock file was opened for writing), and
    only its owner could remove it. A live lock of another user's still refuses."""
    python = _python_for_nobody()
    if python is None:
        pytest.skip("needs root, and a Python another user can run this checkout with")
    with tempfile.TemporaryDirectory() as tmp:
        shared = Path(tmp) / "shared"
        shared.mkdir()
        os.chmod(tmp, 0o755)
        os.chmod(shared, 0o1777)  # like /tmp: everyone writes, only an owner removes
        out = shared / "x.json"
        holder = _claim(out, "hold")
        try:
            assert holder.stdout.readline() == "held\n", holder.communicate()
            live = _claim(out, "nobody", python=python, user=NOBODY, group=NOBODY, extra_groups=[])
            _, err = live.communicate(timeout=60)
            assert live.returncode != 0 and "another run is writing" in err, err
        finally:
            holder.kill()  # SIGKILL: its lock file stays behind
            holder.communicate()
        lock = shared / ".x.json.lock"
        assert lock.exists() and not out.exists()
        later = _claim(out, "nobody", python=python, user=NOBODY, group=NOBODY, extra_groups=[])
        _, err = later.communicate(timeout=60)
        assert later.returncode == 0, err
        assert out.read_text() == "nobody"


def test_a_qat_resume_whose_run_another_finished_meanwhile_is_refused(tmp_path):
    """The concurrency audit: `sr-train --qat --resume` read the stopped run's state before it locked -o; when the
    same command finished that run meanwhile, it went on from the old state and replaced the finished file (exit 0)
    where a resume of a finished run is refused (exit 2)."""
    work = tmp_path / "w"
    work.mkdir()
    model = shutil.copy(BUNDLED_X2, work / "m.onnx")
    out = work / "q.int8.onnx"
    qat = ["--qat", model, "--data", "sample", "--val", "sample", "--steps", "8", "--val-every", "4", "--batch", "4",
           "--patch", "24", "--threads", "1", "-q", "-o", out]
    stopped = sr("train", *qat, "--stop-after", "4")
    assert stopped.code == 0 and (work / "q.int8.onnx.sredge-qat").exists(), stopped.err
    with held(tmp_path, "train", *qat, "--resume") as second:
        first = sr("train", *qat, "--resume")
        assert first.code == 0 and not (work / "q.int8.onnx.sredge-qat").exists(), first.err
        made = out.read_bytes()
        err = second.release(timeout=300)
    assert second.returncode == 2 and "another run changed" in err and "run the command again" in err, err
    assert out.read_bytes() == made and not (work / "q.int8.onnx.sredge-qat").exists()
    assert leftovers(work) == []
