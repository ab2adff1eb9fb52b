"""Two runs of one output at once: the claim (sredge.outputs) decides, never the order they happen to finish in.

The second run is held, by a marker file, between its output check and its lock (:func:`held`), while the first
runs to its end: the order is fixed by files, not by sleeps.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

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


def held(folder: Path, cmd: str, *args: object) -> tuple[subprocess.Popen, Path]:
    """``sr-<cmd> args``, checked but held before it locks its outputs until the returned gate file exists."""
    folder.mkdir(exist_ok=True)
    gate, ready = folder / "gate", folder / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(gate), str(ready), cmd, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    assert wait_for(ready.exists, proc=proc), proc.communicate()
    return proc, gate


def test_an_output_finished_between_the_check_and_the_lock_is_refused(tmp_path):
    """The audit: a second `sr-run --image -o out.png` that passed its check while a first one ran, and locked
    once it had finished, replaced its out.png without --overwrite (exit 0)."""
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(BUNDLED_X2, work / "m.onnx")
    photo = Path(shutil.copy(Path(__file__).parents[2] / "src/sredge/data/astronaut_crop.png", work / "a.png"))
    out = work / "out.png"
    second, gate = held(tmp_path, "run", "--image", photo, "--model", work / "m.onnx", "-o", out, "-q",
                        "--outscale", "1.5")
    try:
        first = sr("run", "--image", photo, "--model", work / "m.onnx", "-o", out, "-q")
        assert first.code == 0, first.err
        made = out.read_bytes()
        gate.touch()
        _, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
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
    other, gate = held(tmp_path, "run", *run, "--crf", "30")
    try:
        finished = sr("run", *run)
        assert finished.code == 0, finished.err
        made = out.read_bytes()
        gate.touch()
        _, err = other.communicate(timeout=120)
    finally:
        if other.poll() is None:
            other.kill()
            other.communicate()
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
    second, gate = held(tmp_path / "hold", "build", model, "-q")
    try:
        engine.write_bytes(b"the first build's engine")  # what a first sr-build leaves (no TensorRT here to run one)
        write_engine_sidecar(engine, None, {"built_by": "sr-build", "build_key": "k"})
        gate.touch()
        _, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 2 and "exists" not in err and 'pip install "sredge[trt]"' in err, err
    assert engine.read_bytes() == b"the first build's engine"
    assert leftovers(tmp_path) == []
