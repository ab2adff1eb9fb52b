"""Atomic file output: write to a temporary file in the target folder, fsync it, then rename.

A crash, an error or a signal mid-write leaves the previous file (or nothing), never half a file,
and no temporary file; the fsync before the rename keeps a power loss from leaving an empty or cut
file under the final name (a file system may commit the rename before the data). A write that fails
for a reason the user can fix (disk full, read-only target, no permission) raises :class:`WriteError`
naming the final file, not the temporary one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sredge.errors import InputError, SredgeError
from sredge.interrupts import check, uninterruptible

_committed: list[Path] = []
"""Every output this process committed, in order (:func:`committed_since`)."""
_scratch: set[Path] = set()
"""The temporary files :func:`atomic_path` handed out: a write into one commits no output of its own."""
_staging: set[Path] = set()
"""The staging folders :func:`atomic_files` handed out: a write inside one commits no output of its own (the
folder's own commit names it)."""

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)
NO_SPACE = "no space left on device"


class WriteError(InputError):
    """An output could not be written: disk full, read-only or forbidden target (exit code 2).

    Attributes:
        path: The final output (never the temporary file).
        reason: Why, e.g. ``"no space left on device"``.
    """

    def __init__(self, path: str | Path, reason: str, flag: str = "-o"):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{NO_SPACE} writing {path}" if reason == NO_SPACE
                         else f"cannot write {path}: {reason} (choose {flag} elsewhere)")


def writable_folder(folder: str | Path) -> bool:
    """Whether files can be created in ``folder``.

    Root passes every permission check, but a folder nobody may write to (``chmod a-w``) is read-only
    by its owner's intent: it counts as not writable for root too.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return os.geteuid() != 0 or bool(os.stat(folder).st_mode & 0o222)


def check_writable(path: str | Path) -> Path:
    """Fail early when ``path`` cannot be created: its folder is missing or read-only.

    Raises:
        InputError: With the folder named and what to do.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist (create it or choose -o elsewhere)")
    if not writable_folder(parent):
        raise WriteError(path, f"folder {parent} is read-only")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a directory (give a file name)")
    return path


def write_error(path: str | Path, exc: BaseException) -> WriteError | None:
    """The :class:`WriteError` that a failure writing ``path`` amounts to, or None when it is something else.

    An OSError with errno ENOSPC/EDQUOT (disk full), EROFS/EACCES/EPERM (refused), EFBIG (too large) or EIO;
    any other unexpected failure while the file system holding ``path`` has no space left counts as disk
    full (encoders and serializers often report it as an error of their own).
    """
    if isinstance(exc, WriteError):
        return exc if exc.path == Path(path) else WriteError(path, exc.reason)
    code = getattr(exc, "errno", None)
    if code in _NO_SPACE:
        return WriteError(path, NO_SPACE)
    if code in _REFUSED:
        return WriteError(path, "read-only file system" if code == errno.EROFS else "permission denied")
    if code == errno.EFBIG:  # a file-size limit (ulimit -f) or a file system's, e.g. FAT32's 4 GiB
        return WriteError(path, "file too large for this file system or this process's file-size limit "
                                "(FAT32 holds at most 4 GiB)")
    if code == errno.EIO:
        return WriteError(path, "input/output error (a failing disk or a removed device)")
    if isinstance(exc, Exception) and not isinstance(exc, (OSError, SredgeError)) and _disk_full(Path(path)):
        return WriteError(path, NO_SPACE)
    return None


def _disk_full(path: Path) -> bool:
    try:
        st = os.statvfs(path.parent if str(path.parent) else ".")
    except OSError:
        return False
    return st.f_bavail == 0


TMP_NAME_EXTRA = len("..XXXXXXXX.tmp")
"""Bytes the temporary name of :func:`atomic_path` (``.NAME.XXXXXXXX.tmp``, mkstemp's 8 random characters) adds
to the name of the file it becomes."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file is removed when the block raises (signals included: they arrive as exceptions),
    so nothing is left behind.

    Raises:
        WriteError: The write failed for lack of space or permission (see :func:`write_error`).
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        with uninterruptible():  # a signal between making the file and naming it here would leave it behind
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
            tmp_path = Path(tmp)
            _scratch.add(tmp_path)
            os.close(fd)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp_path
        fsync_file(tmp_path)  # whoever wrote it (sr-export's ONNX, an encoder): its data before its name
        with uninterruptible():
            check()  # never commit an output after a stop signal, even one whose exception was lost
            os.replace(tmp_path, path)
            _committed.append(path)
    except BaseException as exc:
        if tmp_path is not None:
            with uninterruptible():
                tmp_path.unlink(missing_ok=True)
        err = write_error(path, exc)
        if err is not None and err is not exc:
            raise err from exc
        raise


@contextlib.contextmanager
def atomic_files(folder: str | Path, stale: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield an empty staging folder inside ``folder``; on success move every file written there into
    ``folder`` at once (a set of files that belong together, such as a report and its figures).

    The move is one uninterruptible step after the last stop-signal check, so a stop or an error
    before it leaves ``folder`` as it was: the previous set whole, never a mix of two runs, and no
    staging folder. ``stale`` names files of the previous set to remove in the same step unless the
    new set replaces them (a figure this run does not draw). A ``folder`` this call had to create is
    removed again when nothing was committed.

    Raises:
        WriteError: Disk full, read-only or forbidden target (see :func:`write_error`).
    """
    folder = Path(folder)
    made = not folder.exists()
    staging: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with uninterruptible():
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder))
            _staging.add(staging)
        yield staging
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        with uninterruptible():
            check()  # never commit after a stop signal
            for src in files:
                dest = folder / src.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
            new = {folder / src.relative_to(staging) for src in files}
            for old in stale:
                if Path(old) not in new:
                    Path(old).unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            _committed.append(folder)
    except BaseException as exc:
        with uninterruptible():
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if made:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        err = write_error(folder, exc)
        if err is not None and err is not exc:
            raise err from exc
        raise


def committed_count() -> int:
    """How many outputs this process has committed so far (a mark for :func:`committed_since`)."""
    return len(_committed)


def committed_since(mark: int) -> list[Path]:
    """The outputs committed since ``mark``, each once, in the order of their last commit.

    A command stopped by a signal names them: a stop that lands just after a rename has still
    replaced that file, and the user must not take it for the previous one.
    """
    seen: dict[Path, None] = {}
    for path in _committed[mark:]:
        if path in _scratch or any(path.is_relative_to(folder) for folder in _staging):
            continue  # written atomically into another atomic write's temporary file or staging folder
        seen.pop(path, None)
        seen[path] = None
    return list(seen)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename).

    Raises:
        WriteError: Disk full, read-only or forbidden target.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def fsync_file(path: str | Path) -> None:
    """Flush a closed file's data to the disk (before it is renamed onto an output, or recorded as done)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries to the disk: a rename or a new file in it survives a power loss."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
