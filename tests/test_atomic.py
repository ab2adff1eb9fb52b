"""Atomic writes: what a stopped command may say it wrote."""

from __future__ import annotations

import pytest

from sredge.atomic import atomic_files, committed_count, committed_since, write_bytes_atomic


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
