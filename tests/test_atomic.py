"""Atomic writes: what a stopped command may say it wrote."""

from __future__ import annotations

import pytest

from sredge.atomic import atomic_files, atomic_path, committed_count, committed_since, write_bytes_atomic
from tests.conftest import synced_inodes


def test_what_a_caller_wrote_into_the_temporary_file_is_flushed_before_the_rename(tmp_path, monkeypatch):
    """The audit: sr-export writes its ONNX straight into atomic_path's temporary file (tmp.write_bytes), which
    was renamed onto -o unflushed: after a power loss the file system could hold an empty file under the final
    name."""
    synced = synced_inodes(monkeypatch)
    out = tmp_path / "m.onnx"
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"weights")
    assert out.read_bytes() == b"weights" and out.stat().st_ino in synced


def test_files_written_inside_a_staging_folder_are_not_outputs_of_their_own(tmp_path):
    """The bench audit: a stop while sr-bench wrote its --report said "51 outputs were written before the stop,
    the last o/rep/.rep.8thmardc.tmp/crops/t54.png": files of the report's staging folder, gone with it."""
    folder = tmp_path / "rep"
    mark = committed_count()
    with pytest.raises(KeyboardInterrupt):
        with atomic_files(folder) as staging:
            write_bytes_atomic(staging / "a.png", b"1")
            (staging / "crops").mkdir()
            write_bytes_atomic(staging / "crops" / "b.png", b"2")
            raise KeyboardInterrupt  # a stop before the set is committed
    assert committed_since(mark) == [] and not folder.exists()
    with atomic_files(folder) as staging:
        write_bytes_atomic(staging / "a.png", b"1")
    assert committed_since(mark) == [folder] and (folder / "a.png").read_bytes() == b"1"


def test_a_file_too_large_for_the_file_system_is_exit_2_not_an_internal_error(tmp_path):
    """The sr-run audit: under `ulimit -f` (or FAT32's 4 GiB) the image write failed with EFBIG, reported as an
    internal error (exit 3). A real sr-run in a process with a 64 KiB file-size limit."""
    import resource
    import subprocess
    import sys

    from tests.conftest import asset

    src = asset("realworld/OST_009.png")  # 700 KB in: its x2 PNG is well over 64 KiB

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    proc = subprocess.run([sys.executable, "-c", "from sredge.cli.run import entry; entry()", "--image", str(src),
                           "-o", str(tmp_path / "big.png"), "--threads", "1", "-q"],
                          preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "file too large for this file system" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
