"""Atomic file output: write to a temporary file in the target folder, then rename.

A crash or error mid-write leaves the previous file (or nothing), never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sredge.errors import InputError


def check_writable(path: str | Path) -> Path:
    """Fail early when ``path`` cannot be created: its folder is missing or read-only.

    Raises:
        InputError: With the folder named and what to do.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist (create it or choose -o elsewhere)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: folder {parent} is not writable (choose -o elsewhere)")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a directory (give a file name)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file is removed when the block raises, so nothing is left behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
