"""What every sredge command shares: one-line errors, exit codes, debug tracebacks.

Exit codes: 0 success; 1 a check ran and failed; 2 bad input or usage (including a
missing optional extra); 3 an unexpected internal error; 130 interrupted.
``SREDGE_DEBUG=1`` prints the traceback of any error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sredge.errors import SredgeError

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def debug_enabled() -> bool:
    return os.environ.get("SREDGE_DEBUG", "") not in ("", "0")


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main`` and turn errors into one stderr line and an exit code."""
    logging.basicConfig(
        level=logging.DEBUG if debug_enabled() else logging.WARNING,
        format=f"{prog}: %(levelname)s: %(message)s",
    )
    try:
        return main(argv)
    except SredgeError as exc:
        if debug_enabled():
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, keep the traceback behind SREDGE_DEBUG
        if debug_enabled():
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(run again with SREDGE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
