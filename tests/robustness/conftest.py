"""Shared helpers for the hostile-input suite: run a command as a user would, then check nothing was lost.

Every case runs the real command in a child process (``python -m sredge.cli.<cmd>``) and asserts:
the documented exit code; exactly one line on stderr per problem, prefixed by the command's name
(no traceback, no warning, no library dump); every input byte-identical afterwards; no file at any
final output name unless the exit is 0; and no temporary or lock file left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import asset

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_X2 = ROOT / "src" / "sredge" / "data" / "models" / "sredge_x2.onnx"
PROGS = {"export": "sr-export", "run": "sr-run", "train": "sr-train", "models": "sr-models",
         "calibrate": "sr-calibrate", "bench": "sr-bench", "build": "sr-build"}
LEFTOVER_MARKS = (".tmp", ".partial", ".lock")


@dataclass
class Result:
    code: int
    out: str
    err: str


def command(cmd: str, *args: object) -> list[str]:
    return [sys.executable, "-m", f"sredge.cli.{cmd}", *(str(a) for a in args)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SREDGE_DEBUG", None)
    env["PYTHONWARNINGS"] = "default"  # a stray warning must show up, not be filtered away by chance
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def sr(cmd: str, *args: object, cwd: Path | None = None, timeout: float = 180) -> Result:
    """Run ``sr-<cmd> args`` as a user would (a child process) and capture what it printed."""
    proc = subprocess.run(command(cmd, *args), capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=child_env())
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(cmd: str, *args: object, cwd: Path | None = None, warnings: str = "default",
          env_changes: dict[str, str | None] | None = None) -> subprocess.Popen:
    """Start ``sr-<cmd> args`` in the background (for signals and concurrent runs).

    Args:
        warnings: ``PYTHONWARNINGS`` for the child (default: every warning shows).
        env_changes: Variables to set in the child's environment (None: remove it), over :func:`child_env`.
    """
    env = child_env()
    env["PYTHONWARNINGS"] = warnings
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT dumps every thread's Python stack: see stop_when
    for key, value in (env_changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.Popen(command(cmd, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env)


def hashes(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files, and folders recursively; folders and links listed too)."""
    out = {}
    for p in map(Path, paths):
        entries = [p] + (sorted(p.rglob("*")) if p.is_dir() and not p.is_symlink() else [])
        for f in entries:
            if f.is_symlink():
                out[str(f)] = f"link -> {os.readlink(f)}"
            elif f.is_file():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
            elif f.is_dir():
                out[str(f)] = "folder"
            else:
                out[str(f)] = "absent" if not f.exists() else "special"
    return out


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files under ``folder`` (hidden ``.NAME.*.tmp``, ``.partial``, ``.lock``)."""
    return sorted(str(f) for f in Path(folder).rglob(".*") if any(m in f.name for m in LEFTOVER_MARKS))


def partial_size(folder: Path) -> int:
    """Bytes in the first partial video file under ``folder`` (a run's output in progress), 0 when none."""
    found = [p for p in Path(folder).rglob("*") if ".partial" in p.name and p.is_file()]
    try:
        return found[0].stat().st_size if found else 0
    except FileNotFoundError:  # renamed or removed since it was listed
        return 0


def stderr_lines(res: Result) -> list[str]:
    return [ln for ln in res.err.splitlines() if ln.strip()]


def assert_clean_error(res: Result, cmd: str, code: int, match: str | None = None, lines: int = 1) -> None:
    """The exit code, and exactly ``lines`` lines on stderr, each the command's own (no traceback, no dump)."""
    prog = PROGS[cmd]
    err = stderr_lines(res)
    assert res.code == code, f"exit {res.code}, expected {code}; stderr:\n{res.err}"
    assert len(err) == lines, f"expected {lines} stderr line(s), got:\n{res.err}"
    for ln in err:
        assert ln.startswith((f"{prog}: ", f"{prog} ")), f"not a {prog} line: {ln!r}"
        assert "Traceback" not in ln and "Warning" not in ln and "internal error" not in ln, ln
    if match is not None:
        assert match in res.err, f"{match!r} not in {res.err!r}"


def hostile(cmd: str, args: list, *, inputs: list[Path], outputs: list[Path] = (), code: int = 2,
            match: str | None = None, watch: Path | None = None, cwd: Path | None = None,
            lines: int = 1) -> Result:
    """Run one hostile case and check everything the suite promises (see the module docstring).

    Args:
        inputs: Files and folders that must be byte-identical afterwards (pre-existing outputs included).
        outputs: Final output names that must not exist afterwards unless the exit is 0
            (leave out names that existed before: those are inputs to keep).
        watch: Folder to scan for temporary and lock files (default: the first input's folder).
    """
    before = hashes(inputs)
    res = sr(cmd, *args, cwd=cwd)
    assert_clean_error(res, cmd, code, match, lines)
    assert hashes(inputs) == before, "an input changed"
    if res.code != 0:
        for o in outputs:
            assert not Path(o).exists(), f"{o} exists after exit {res.code}"
    folder = watch or (Path(inputs[0]).parent if inputs else None)
    if folder is not None:
        assert leftovers(folder) == [], leftovers(folder)
    return res


@contextlib.contextmanager
def read_only(*folders: Path):
    """Folders made read-only (``chmod a-w``) for the block; sredge treats them so for root too."""
    modes = {f: f.stat().st_mode for f in folders}
    for f in folders:
        f.chmod(0o555)
    try:
        yield
    finally:
        for f, m in modes.items():
            f.chmod(m)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "64k", options: str = ""):
    """A small tmpfs mounted on ``folder`` (root only; skips the test where mounting is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount failed'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte (writes then fail with ENOSPC)."""
    for name, chunk in (("filler", 4096), ("filler2", 1)):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
        finally:
            os.close(fd)


def wait_for(predicate, timeout: float = 60.0, proc: subprocess.Popen | None = None, step: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds (True) or the time is up or ``proc`` ended (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(step)
    return False


def send(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def thread_report(pid: int) -> str:
    """One line per thread of a live process: name, state, kernel wait channel, user and system CPU seconds
    read twice 1 s apart (a spinning thread's grow, a blocked one's do not) and the system call it is in;
    then the kernel stack of every running or uninterruptible thread (where /proc lets us read it)."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(task: Path, name: str) -> str:
        try:
            return task.joinpath(name).read_text().strip()
        except OSError as exc:
            return f"({exc.strerror})"

    def snapshot() -> dict[str, tuple[str, str, str, float, float]]:
        rows = {}
        for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
            with contextlib.suppress(OSError, IndexError):
                fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()
                rows[task.name] = (read(task, "comm"), fields[0], read(task, "wchan") or "-",
                                   int(fields[11]) / tick, int(fields[12]) / tick)
        return rows

    first = snapshot()
    time.sleep(1.0)
    second = snapshot()
    if not second:
        return f"(cannot read /proc/{pid}/task)"
    lines, stacks = [], []
    for tid, (name, state, wchan, user, system) in second.items():
        u0, s0 = first.get(tid, (None, None, None, 0.0, 0.0))[3:]
        task = Path(f"/proc/{pid}/task/{tid}")
        call = read(task, "syscall").split(" ")[0]
        lines.append(f"  {tid} {name} {state} wchan={wchan} user {u0:.2f}->{user:.2f} sys {s0:.2f}->{system:.2f} "
                     f"syscall={call}")
        if state in ("R", "D"):
            stacks.append(f"  kernel stack of {tid} ({state}):\n" + "\n".join(
                "    " + ln for ln in read(task, "stack").splitlines()[:12]))
    return "\n".join(lines + stacks)


def abort_main_thread(pid: int) -> None:
    """SIGABRT to ``pid``'s main thread itself (tgkill): a process-wide signal may go to a thread stuck in
    the kernel and never be handled, while the main thread waiting on a lock takes it at once."""
    import ctypes

    sys_tgkill = 131 if os.uname().machine in ("aarch64", "arm64") else 234  # x86_64
    if ctypes.CDLL(None, use_errno=True).syscall(sys_tgkill, pid, pid, int(signal.SIGABRT)) != 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGABRT)


class NotReady(AssertionError):
    """:func:`stop_when`'s child never reached the state to be stopped in; the message describes it."""


def stop_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 120.0) -> str:
    """Send ``sig`` to ``proc`` once ``ready()`` holds and return its stderr; fail when it never does.

    The child never outlives the call: one that is not ready in time, or not gone within 60 s of the
    signal, is killed (its output then read), so a failed test leaves no run eating the machine. One that
    is not ready is first described: its threads' states (:func:`thread_report`), then SIGABRT, which
    makes a child started by :func:`start` print every thread's Python stack before it ends.
    """
    try:
        if not wait_for(ready, proc=proc, timeout=timeout):
            threads = thread_report(proc.pid)
            abort_main_thread(proc.pid)  # a child started by `start` prints its threads' Python stacks
            try:
                out, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            raise NotReady(f"not ready within {timeout:.0f} s (exit {proc.returncode}); its threads "
                           f"(name, state, kernel wait, CPU seconds then 1 s later, system call):\n{threads}\n"
                           f"stdout ({len(out or '')} characters, the last 2000):\n{(out or '')[-2000:]}\n"
                           f"stderr:\n{err}")
        send(proc, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err


SIGNAL_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


# -- real, small artifacts -------------------------------------------------------------------


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory):
    """``clip_factory(frames) -> Path``: a real H.264 clip (the demo's pan over the bundled photo), cached."""
    cache: dict[int, Path] = {}
    folder = tmp_path_factory.mktemp("clips")

    def get(frames: int) -> Path:
        if frames not in cache:
            from sredge.demo import make_clip

            cache[frames] = make_clip(folder / f"clip{frames}.mp4", frames=frames)
        return cache[frames]

    return get


@pytest.fixture
def work(tmp_path, clip_factory):
    """A user's folder with real inputs: a model, a checkpoint, a short video, images, a small dataset."""
    w = tmp_path / "work"
    w.mkdir()
    shutil.copy(BUNDLED_X2, w / "m.onnx")
    shutil.copy(clip_factory(6), w / "in.mp4")
    images = w / "photos"
    images.mkdir()
    for name in ("0030.jpg", "0014.jpg"):
        shutil.copy(asset(f"realworld/{name}"), images / name)
    data = w / "dataset"
    data.mkdir()
    for name in ("0030.jpg", "0014.jpg"):
        shutil.copy(asset(f"realworld/{name}"), data / name)
    shutil.copy(asset("weights/fsrcnn/fsrcnn_x2.pth"), w / "fsrcnn_x2.pth")
    return w
