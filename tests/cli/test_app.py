"""What every command shares (``sredge.cli._app.run``): one-line errors and their exit codes, with and
without ``SREDGE_DEBUG``."""

from __future__ import annotations

import pytest

from sredge.cli._app import run
from sredge.errors import InputError


def _bug(argv):
    raise RuntimeError("boom")


def _bad_input(argv):
    raise InputError("no such file: x.png")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("main,code,line", [
    (_bug, 3, "sr-x: internal error: RuntimeError: boom"),
    (_bad_input, 2, "sr-x: error: no such file: x.png"),
])
def test_errors_keep_their_exit_code_and_line_under_debug(monkeypatch, capsys, debug, main, code, line):
    """SREDGE_DEBUG=1 re-raised, so every error exited 1 (the code of a failed check) instead of 2 or 3;
    now it adds the traceback before the same line."""
    monkeypatch.setenv("SREDGE_DEBUG", "1" if debug else "0")
    assert run("sr-x", main, []) == code
    err = capsys.readouterr().err.strip().splitlines()
    hint = " (run again with SREDGE_DEBUG=1 for the traceback)" if code == 3 and not debug else ""
    assert err[-1] == line + hint
    assert (err[0] == "Traceback (most recent call last):") == debug and (len(err) == 1) != debug


def test_a_full_disk_under_stdout_does_not_point_at_a_missing_option(capsys):
    """The audit: `sr-models > /dev/full` said '... writing a file (... choose -o elsewhere)'; sr-models has no -o."""
    import errno
    import os

    def full(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_file(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out.png")

    assert run("sr-x", full, []) == 2
    assert capsys.readouterr().err.strip() == ("sr-x: error: no space left on device writing the output "
                                               "(free some space or send the output elsewhere)")
    assert run("sr-x", full_file, []) == 2
    assert capsys.readouterr().err.strip().endswith("writing out.png (free some space or choose -o elsewhere)")


def test_running_out_of_memory_is_one_line_and_exit_2_not_an_internal_error(capsys):
    """The memory audit: under `ulimit -v`, sr-run --tile 0 of a 1280x720 image with RFDN passed the memory check,
    then numpy could not allocate the output: "internal error: MemoryError ... SREDGE_DEBUG=1", exit 3."""
    import numpy as np

    def huge(argv):
        np.zeros(1 << 50, np.float32)  # 4 PiB: numpy's real MemoryError

    assert run("sr-x", huge, []) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sr-x: error: out of memory (Unable to allocate") and "--tile" in err, err
    assert "internal error" not in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv,hint", [
    (["m.onnx", "--dataset", "sample", "--size", "-5x5"], "(-5x5 starts with '-': write --size=-5x5)"),
    (["m.onnx", "--dataset"], None),  # nothing after the flag: no hint
])
def test_a_value_that_starts_with_a_dash_is_told_how_to_pass(capsys, argv, hint):
    """The bench audit: `--size -5x5` said only "expected one argument" (argparse reads -5x5 as an option)."""
    from sredge.cli.bench import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "expected one argument" in err and len(err.strip().splitlines()) == 1, err
    assert (hint in err) if hint else "starts with" not in err, err


@pytest.mark.parametrize("command", ["bench", "build", "calibrate", "export", "models", "run", "train"])
def test_every_commands_help_gives_its_exit_codes_with_those_of_a_stop(command):
    """The docs audit: sr-export, sr-bench, sr-calibrate and sr-build's --help left out 130/143/129, which sr-run
    and sr-train gave (docs/outputs.md has them all)."""
    import importlib
    import re

    epilog = importlib.import_module(f"sredge.cli.{command}").build_parser().epilog or ""
    assert "Exit codes" in epilog, epilog
    assert re.search(r"130[/, ]+143[/, ]+129", epilog), epilog
