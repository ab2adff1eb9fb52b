"""What every sredge command shares: one-line errors, exit codes, signals, debug tracebacks.

Exit codes: 0 success; 1 a check ran and failed; 2 bad input or usage (including a missing
optional extra, a refused output, a full disk or a read-only target); 3 an unexpected internal
error; 128 + n stopped by signal n: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
``SREDGE_DEBUG=1`` prints the traceback of any error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from sredge.atomic import committed_count, committed_since
from sredge.cli._signals import Interrupted, exit_code, raise_on_signals, signal_name
from sredge.errors import InputError, SredgeError
from sredge.interrupts import check, seen

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit code 2, with ``--version``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from sredge import __version__

        self.add_argument("--version", action="version", version=f"%(prog)s (sredge {__version__})",
                          help="print the version and exit")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._argv = list(sys.argv[1:] if args is None else args)  # for the hint of error()
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}{dash_value_hint(message, getattr(self, '_argv', []))} "
                     f"(see {self.prog} --help)\n")


def dash_value_hint(message: str, argv: Sequence[str]) -> str:
    """For argparse's "argument --size: expected one argument" when the value given starts with '-'
    (``--size -5x5``, which argparse reads as another option): how to pass it (pure)."""
    m = re.match(r"argument (-[-\w]+)(?:/\S+)?: expected one argument$", message)
    if not m:
        return ""
    flag = m.group(1)
    for i, arg in enumerate(argv[:-1]):
        if arg == flag and argv[i + 1].startswith("-"):
            return f" ({argv[i + 1]} starts with '-': write {flag}={argv[i + 1]})"
    return ""


def parse_tile(value: str) -> int | str | None:
    """A ``--tile`` value: ``"auto"``, None for ``0`` (whole frames), or a tile edge in pixels.

    Raises:
        InputError: Not ``auto`` or a non-negative integer.
    """
    value = value.strip()
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--tile must be 'auto' or a number of pixels, not {value!r}") from None
    if n < 0:
        raise InputError("--tile must be >= 0")
    if n == 0:
        return None
    from sredge.runtime.tiling import check_tile

    check_tile(n)
    return n


def parse_frame_size(text: str, flag: str, off: str) -> tuple[int, int] | None:
    """A ``WIDTHxHEIGHT`` option value -> ``(width, height)``, or None for the word ``off`` that turns it off.

    Raises:
        InputError: Not ``WxH`` with positive sides, nor ``off``.
    """
    text = text.strip().lower()
    if text == off:
        return None
    try:
        w, h = (int(v) for v in text.split("x"))
    except ValueError:
        raise InputError(f"{flag} {text!r}: give WIDTHxHEIGHT such as 640x360, or {off}") from None
    if w < 1 or h < 1:
        raise InputError(f"{flag} {text!r}: sizes must be positive")
    return w, h


def debug_enabled() -> bool:
    return os.environ.get("SREDGE_DEBUG", "") not in ("", "0")


class _PipeSafeStream:
    """``sys.stdout`` or ``sys.stderr`` that survives its reader going away (``sr-export ... | head -1``,
    ``sr-run ... 2>&1 | head``).

    Writing to a closed pipe raises BrokenPipeError; a command's output and its progress are reports
    of work it is doing, so the work goes on: the first such error points the stream's file descriptor
    at the null device and every later write, and the interpreter's last flush, land there. The exit
    code still says how the work ended.
    """

    def __init__(self, stream):
        self._stream = stream

    def _closed_pipe(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed_pipe()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed_pipe()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *,
        process_ends: bool = False) -> int:
    """Run a command's ``main`` and turn errors into one stderr line and an exit code.

    ``process_ends``: the caller exits with the code (console scripts); stop signals that come after the
    work are then ignored (see :func:`~sredge.cli._signals.raise_on_signals`).
    """
    logging.basicConfig(
        level=logging.DEBUG if debug_enabled() else logging.WARNING,
        format=f"{prog}: %(levelname)s: %(message)s",
    )
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _pipe_safe(stdout), _pipe_safe(stderr)
    try:
        return _run(prog, main, argv, process_ends)
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _PipeSafeStream):
                with contextlib.suppress(OSError, ValueError):  # the exit code stands; nothing more can be said
                    stream.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _pipe_safe(stream):
    if isinstance(stream, _PipeSafeStream) or not hasattr(stream, "fileno"):
        return stream
    return _PipeSafeStream(stream)


def _run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None,
         process_ends: bool) -> int:
    mark = committed_count()
    with raise_on_signals(process_ends):  # the first stop signal unwinds (cleaning up), later ones are ignored
        try:
            try:
                code = main(argv)
                check()  # a stop signal whose exception a library swallowed still ends the run as stopped
                return code
            except Exception:
                check()  # ... or turned into another error (torch's exporter: "export failed"): it was the stop
                raise
        except SredgeError as exc:
            _traceback_if_debug()
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:  # SIGINT, raised by our handler or, before it is installed, by Python's
            seen()
            print(f"{prog}: interrupted by SIGINT{_written_before_the_stop(mark)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Interrupted as exc:
            seen()
            print(f"{prog}: interrupted by {signal_name(exc.signum)}{_written_before_the_stop(mark)}", file=sys.stderr)
            return exit_code(exc.signum)
        except MemoryError as exc:  # an allocation past the estimate (ulimit -v, a cgroup, other work): not a bug
            _traceback_if_debug()
            print(f"{prog}: error: {_memory_error_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug: say so in one line, keep the traceback behind SREDGE_DEBUG
            _traceback_if_debug()
            known = _os_error_line(exc)
            if known is not None:  # a safety net: the library names these precisely where it can
                print(f"{prog}: error: {known}", file=sys.stderr)
                return 2
            hint = "" if debug_enabled() else " (run again with SREDGE_DEBUG=1 for the traceback)"
            print(f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
            return EXIT_INTERNAL


def _written_before_the_stop(mark: int) -> str:
    """``; X was written before the stop`` for the outputs this command committed (finished files are
    kept), or nothing."""
    written = committed_since(mark)
    if not written:
        return ""
    if len(written) == 1:
        return f"; {written[0]} was written before the stop"
    return f"; {len(written)} outputs were written before the stop, the last {written[-1]}"


def _traceback_if_debug() -> None:
    """Under ``SREDGE_DEBUG=1``, the traceback of the exception being handled, before its one line: the
    exit code stays the one documented for the error (a bare re-raise would make every error exit 1)."""
    if debug_enabled():
        traceback.print_exc(file=sys.stderr)


def _memory_error_line(exc: MemoryError) -> str:
    """One line for a MemoryError: what could not be allocated, and what to try."""
    return (f"out of memory ({_one_line(exc)}): free some memory, or give less work at once (sr-run: a smaller --tile, "
            "--batch 1, a smaller image)")


def _os_error_line(exc: BaseException) -> str | None:
    """One line for an OSError the user can act on (disk full, read-only, no permission), else None."""
    if not isinstance(exc, OSError):
        return None
    # No file name: a stream (stdout redirected to a full disk, say), not a file the command names.
    name = exc.filename or "the output"
    elsewhere = "choose -o elsewhere" if exc.filename else "send the output elsewhere"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on device writing {name} (free some space or {elsewhere})"
    if exc.errno == errno.EROFS:
        return f"cannot write {name}: read-only file system ({elsewhere})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {name}"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
