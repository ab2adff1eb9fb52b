"""The one output policy every command follows: what a run writes is claimed before any work.

Every path a run will write (outputs, sibling files such as ``NAME.int8.onnx``, sidecars, reports,
caches, output folders) is resolved (symlinks and ``..`` followed) and checked

- against every path the run reads: the same file, or a place inside an input folder, is refused;
- against each other: two outputs on one file, or a file inside an output folder, is refused;
- for a folder that exists and can be written (a read-only folder is refused, suggesting ``-o``);
- for an existing file there: it is replaced only with ``--overwrite`` (ffmpeg's ``-n``/``-y``), and
  never when it is not a regular file (``/dev/null``: the atomic rename would replace the device).

A refusal is an :class:`~sredge.errors.InputError` naming both paths (exit code 2). While a run holds
its claim, each output is locked (``fcntl.flock`` on ``.NAME.lock`` beside it, or on the output folder
itself), so a second run writing the same output refuses instead of one result being silently lost.
The lock is the kernel's: a run that is killed leaves nothing that blocks the next one.
Writing itself stays atomic (:mod:`sredge.atomic`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sredge.atomic import TMP_NAME_EXTRA, WriteError, writable_folder
from sredge.errors import InputError
from sredge.interrupts import check, uninterruptible


@dataclass(frozen=True)
class Output:
    """A path a run will write."""

    path: Path
    """As the user named it (or as it was derived)."""
    flag: str
    """How the user named it, for messages: ``"-o"``, ``"--report"``, ``"--precision int8"`` (a file derived
    from ``-o``)."""
    folder: bool = False
    """A folder the run writes files into (created when missing, removed again if the run leaves it empty)."""
    files: tuple[str, ...] = ()
    """Folder outputs: the names of the files the run will write in it."""
    updated: bool = False
    """The run updates this file in place by design (a checkpoint it resumes, a timing cache): an
    existing one is not an overwrite."""
    name_extra: int | None = None
    """Bytes the longest name the run writes on the way to this file adds to its name (None: the temporary
    name of :func:`sredge.atomic.atomic_path`, :data:`~sredge.atomic.TMP_NAME_EXTRA`); a name that would then
    be too long for its file system is refused."""


@dataclass(frozen=True)
class Input:
    """A path a run reads: a file, or a folder whose contents it reads."""

    path: Path
    flag: str
    """How the user named it, for messages: ``"the checkpoint"``, ``"--dataset"``."""


def resolve(path: str | Path) -> Path:
    """The real path (symlinks and ``..`` followed, also for a file not created yet)."""
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def _same(a: Path, b: Path) -> bool:
    """Two resolved paths name one file (also through hard links)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _choose(out: Output) -> str:
    """The option that moves an output elsewhere (a derived file moves with ``-o``)."""
    return out.flag if out.flag.startswith("-") and " " not in out.flag else "-o"


def _files(out: Output) -> list[Path]:
    """The files an output writes: itself, or the named files in its folder."""
    return [out.path / name for name in out.files] if out.folder else [out.path]


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the file system holding ``path`` (or its nearest existing folder) takes."""
    for folder in (path, *path.parents):
        try:
            if folder.is_dir():
                return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def name_too_long(path: Path, extra: int = TMP_NAME_EXTRA) -> str | None:
    """Why ``path``'s name cannot be written (with the ``extra`` bytes its temporary names add), or None."""
    size = len(os.fsencode(path.name))
    limit = _name_max(path.parent if str(path.parent) else Path("."))
    if size + extra <= limit:
        return None
    return (f"its name is {size} bytes, and the temporary names it is written under first (.NAME.XXXXXXXX.tmp, "
            f"...) add {extra}, over this file system's {limit}")


def _check_name_length(out: Output) -> None:
    """Refuse a file name that, with the temporary name it is written under first, is too long for its folder's
    file system (it failed as an internal error after the work)."""
    extra = TMP_NAME_EXTRA if out.name_extra is None else out.name_extra
    for name in _files(out):
        why = name_too_long(name, extra)
        if why is not None:
            raise InputError(f"cannot write {name} ({out.flag}): {why}; choose a shorter {_choose(out)}")


def _check_folder(out: Output) -> None:
    path = out.path
    if out.folder:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} ({out.flag}) is a file; it must name a folder to write into")
        here = path if path.is_dir() else (path.parent if str(path.parent) else Path("."))
    else:
        if path.is_dir():
            raise InputError(f"cannot write {path} ({out.flag}): it is a folder (give a file name)")
        here = path.parent if str(path.parent) else Path(".")
    if not here.is_dir():
        raise InputError(f"cannot write {path} ({out.flag}): folder {here} does not exist "
                         f"(create it or choose {_choose(out)} elsewhere)")
    if not writable_folder(here):
        raise WriteError(path, f"folder {here} is read-only", _choose(out))


def check_outputs(outputs: Sequence[Output], inputs: Sequence[Input], overwrite: bool) -> None:
    """Refuse a run whose outputs would destroy an input, each other, or an existing file.

    Args:
        outputs: Everything the run will write.
        inputs: Everything it reads (files, and folders whose contents it reads).
        overwrite: ``--overwrite``: existing outputs may be replaced.

    Raises:
        InputError: The first problem, naming both paths and what to do (exit code 2).
    """
    for out in outputs:
        _check_name_length(out)
    reads = [(inp, resolve(inp.path)) for inp in inputs]
    seen: list[tuple[Output, Path, Path]] = []  # (output, its file as named, resolved)
    for out in outputs:
        real_out = resolve(out.path)
        for inp, real_in in reads:
            if out.folder and (real_out == real_in or (real_in.is_dir() and _inside(real_out, real_in))):
                raise InputError(f"{out.path} ({out.flag}) is the input folder {inp.path} ({inp.flag}) or inside "
                                 f"it: outputs never go among the inputs; choose another {_choose(out)}")
        for name in _files(out):
            real = resolve(name)
            for inp, real_in in reads:
                if _same(real, real_in):
                    raise InputError(f"{name} ({out.flag}) would overwrite the input {inp.path} ({inp.flag}); "
                                     f"choose another {_choose(out)}")
                if real_in.is_dir() and _inside(real, real_in):
                    what = "would overwrite a file in" if real.exists() else "is inside"
                    raise InputError(f"{name} ({out.flag}) {what} the input folder {inp.path} ({inp.flag}): "
                                     f"outputs never go among the inputs; choose another {_choose(out)}")
            for other, other_name, other_real in seen:
                if _same(real, other_real):
                    raise InputError(f"{name} ({out.flag}) and {other_name} ({other.flag}) are the same file; "
                                     "give them different names")
            seen.append((out, name, real))
    for out, name, real in seen:
        for other in outputs:
            if other.folder and other is not out and _inside(real, resolve(other.path)):
                raise InputError(f"{name} ({out.flag}) is inside the folder {other.path} that {other.flag} "
                                 "writes; give them different places")
    made = {resolve(o.path) for o in outputs if o.folder}
    for out in outputs:
        if not (out.folder and not out.path.exists() and resolve(out.path).parent in made):
            _check_folder(out)  # (a folder inside an output folder is made with it)
    for out, name, _ in seen:
        if name.exists() and not name.is_file():  # a device, a pipe: never renamed over
            raise InputError(f"{name} ({out.flag}) is not a regular file; choose another {_choose(out)}")
    if overwrite:
        return
    for out, name, _ in seen:
        if not out.updated and (name.exists() or name.is_symlink()):
            raise InputError(f"{name} exists; pass --overwrite to replace it, or choose another {_choose(out)}")


class Claim:
    """The outputs of a run, checked and locked (see :func:`claim_outputs`)."""

    def __init__(self, outputs: Sequence[Output]):
        self.outputs = tuple(outputs)
        self._made: list[Path] = []
        self._held: list[tuple[int, Path | None]] = []  # (fd, lock file to remove or None for a folder)

    def _acquire(self) -> None:
        with uninterruptible():  # every lock file made is remembered, so release() removes it
            self._acquire_all()

    def _acquire_all(self) -> None:
        for out in self.outputs:
            if out.folder:
                if out.path.is_symlink() and not out.path.exists():
                    raise InputError(f"{out.path} ({out.flag}) is a link to a folder that does not exist; make "
                                     f"that folder, or choose another {_choose(out)}")
                if not out.path.exists():
                    try:
                        out.path.mkdir()
                    except FileExistsError:
                        pass  # made by a run that started at the same moment: the lock below decides
                    else:
                        self._made.append(out.path)
                fd = os.open(out.path, os.O_RDONLY | os.O_DIRECTORY)
                self._lock(fd, out, None)
            else:
                self._lock_file(out)

    def _lock(self, fd: int, out: Output, lock: Path | None) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"another run is writing {out.path} ({out.flag}); wait for it to finish "
                                 f"or choose another {_choose(out)}") from None
            if exc.errno == errno.EBADF and lock is not None:  # NFS locks only files open for writing
                raise InputError(f"cannot lock {out.path} ({out.flag}): its lock file {lock} is another user's and "
                                 "this file system locks only files this user may write; once no run of theirs "
                                 f"writes {out.path}, remove it, or choose another {_choose(out)}") from None
            raise
        self._held.append((fd, lock))

    def _lock_file(self, out: Output) -> None:
        lock = out.path.with_name(f".{out.path.name}.lock")
        _refuse_foreign_lock(lock, out)
        while True:
            fd = _open_lock(lock)
            self._lock(fd, out, lock)
            # The holder before us removes the lock file when it is done: make sure ours is the one
            # on disk, else two runs could hold locks on different files of one name.
            try:
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    return
            except FileNotFoundError:
                pass
            self._held.pop()
            os.close(fd)

    def release(self) -> None:
        """Unlock, remove the lock files, and remove output folders this claim made that stayed empty."""
        with uninterruptible():
            self._release_all()

    def _release_all(self) -> None:
        while self._held:
            fd, lock = self._held.pop()
            if lock is not None:
                with contextlib.suppress(PermissionError):  # another user's, in a sticky folder: left, empty
                    lock.unlink(missing_ok=True)
            os.close(fd)
        for folder in reversed(self._made):  # a folder made inside another goes first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        self._made.clear()


def _open_lock(lock: Path) -> int:
    """The lock file, made if missing and opened to be locked: for writing where this user may (NFS locks only such
    files), else for reading. A lock file another user's killed run left in a shared folder then blocks nothing
    (it was "permission denied" for good, and in a sticky folder such as /tmp only its owner may remove it)."""
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for the outputs
    except PermissionError:
        return os.open(lock, os.O_RDONLY)


def _refuse_foreign_lock(lock: Path, out: Output) -> None:
    """Refuse to use, and so at the end to remove, a file at the lock's name that a claim did not make.

    The audit: ``sr-run --image .out.png.lock -o out.png`` deleted its own input, and a user's
    ``.keep_x2.png.lock`` was removed by a run writing ``keep_x2.png``.
    """
    try:
        st = lock.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_nlink == 1:
        return  # sredge's lock files are empty: a concurrent run's, or one left by a run that was killed
    raise InputError(f"{lock} is in the way of {out.path}'s lock file and is not one sredge made; "
                     f"move or rename it, or choose another {_choose(out)}")


@contextlib.contextmanager
def claim_outputs(outputs: Sequence[Output], inputs: Sequence[Input], overwrite: bool,
                  again: Callable[[], Sequence[Output]] | None = None) -> Iterator[Claim]:
    """Check the outputs (:func:`check_outputs`) and hold them for the ``with`` block.

    Output folders that do not exist are created (and removed at the end if nothing was written
    into them); every output is locked against a second run until the block ends. Once locked, the
    outputs are checked again: a run of the same output that ended between the first check and the
    lock may have written one (it was replaced without ``--overwrite``).

    Args:
        outputs: Everything the run will write.
        inputs: Everything it reads.
        overwrite: ``--overwrite``.
        again: The outputs derived anew from the disk, for the check once locked, when an ``updated`` was
            decided from files another run may have changed meanwhile (a stopped video run's own file).

    Raises:
        InputError: A refused output (see :func:`check_outputs`), or another run holding one.
    """
    check_outputs(outputs, inputs, overwrite)
    claim = Claim(outputs)
    try:
        claim._acquire()
        check_outputs(outputs if again is None else again(), inputs, overwrite)
        yield claim
        check()  # a stop signal whose exception was lost ends the run as stopped, not as done
    finally:
        claim.release()
