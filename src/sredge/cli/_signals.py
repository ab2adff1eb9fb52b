"""Stop signals: how a command ends when it is asked to (Ctrl-C, ``kill``, a closed terminal).

The first SIGINT, SIGTERM or SIGHUP stops the run. By default it arrives as an exception
(KeyboardInterrupt for SIGINT, :class:`Interrupted` for the others), so every ``finally`` and every
atomic write cleans up after itself and no temporary file is left. A video run instead turns it
into a stop event (:func:`stop_on_signals`): the pipeline drains and the file of the frames done is
finalized. Any further signal while the run shuts down is ignored: leaving then would abandon
threads that are inside native code (the process would abort with a C++ "terminate called") and
leave temporary files behind.

"First" means first to arrive. Python runs the handlers of signals that came while the main thread
was inside native code (an ONNX Runtime call, say) in signal-number order, so a SIGTERM followed by
a SIGINT would otherwise be handled as a SIGINT; the order of arrival is read from a wakeup pipe
(:func:`signal.set_wakeup_fd`), into which the C-level handler writes each signal's number as it comes.

Exit codes: 128 + the signal number: 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

from sredge.interrupts import act_or_hold, check, seen

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stopping = False
"""A stop signal came during this command: its handlers stay (ignoring more) until the process ends."""


def exit_code(signum: int) -> int:
    """The exit code of a run stopped by ``signum`` (the shell's convention, 128 + n)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(BaseException):
    """A stop signal other than SIGINT arrived (a BaseException, so ``except Exception`` lets it pass).

    Attributes:
        signum: The signal number.
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal_name(signum)}")


class _Once:
    """A handler for the stop signals that acts on the first one and ignores the rest."""

    def __init__(self, first: Callable[[int], None]):
        self.first = first
        self.signum: int | None = None
        self.arrivals: int | None = None
        """The read end of the wakeup pipe while the handler is installed (see the module docstring)."""

    def __call__(self, signum: int, frame: object) -> None:
        global _stopping
        _stopping = True
        if self.signum is not None:
            log.debug("ignoring %s: already stopping", signal_name(signum))
            return
        self.signum = _first_arrived(self.arrivals) or signum
        self.first(self.signum)


def _first_arrived(fd: int | None) -> int | None:
    """The first stop signal written into the wakeup pipe ``fd`` (non-blocking), or None."""
    if fd is None:
        return None
    try:
        arrived = os.read(fd, 4096)
    except OSError:  # empty (BlockingIOError) or closed
        return None
    return next((n for n in arrived if n in STOP_SIGNALS), None)


_our_pipes: set[int] = set()
"""Write ends of the wakeup pipes installed by :func:`_arrival_order` (a command's blocks nest)."""


@contextlib.contextmanager
def _arrival_order(handler: _Once) -> Iterator[None]:
    """While the block runs, the C-level handler writes each signal's number into a pipe that
    ``handler`` reads. A wakeup fd someone else set (an event loop's) is left in place: the handler
    then goes by Python's order."""
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        if previous != -1 and previous not in _our_pipes:
            signal.set_wakeup_fd(previous)
            yield
            return
        _our_pipes.add(w)
        handler.arrivals = r
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
            handler.arrivals = None
            _our_pipes.discard(w)
    finally:
        os.close(r)
        os.close(w)


@contextlib.contextmanager
def _installed(handler: _Once, process_ends: bool = False) -> Iterator[_Once]:
    if threading.current_thread() is not threading.main_thread():
        yield handler  # handlers can only be set from the main thread; the defaults stay
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        with _arrival_order(handler):
            yield handler
    finally:
        for s, h in previous.items():
            # Once stopping, ignore further stop signals for good: at exit the interpreter resets Python
            # handlers to the default (which kills), but leaves SIG_IGN in place. So too when the process
            # ends with the command: a signal after the work is done must not turn its end into a traceback.
            signal.signal(s, signal.SIG_IGN if _stopping or process_ends else h)


def _raise(signum: int) -> None:
    def now() -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)

    act_or_hold(now)  # not while a temporary or lock file is being made or removed; pending until seen


@contextlib.contextmanager
def raise_on_signals(process_ends: bool = False) -> Iterator[None]:
    """For a command's duration: the first stop signal raises, the ones after it are ignored (also
    after the block, once one came: the process is ending).

    ``process_ends``: the process ends with the command (a console script): stop signals stay ignored
    after the block, so one that comes once the work is done (Ctrl-C as it finishes) leaves the exit
    code and the output as the command made them instead of raising KeyboardInterrupt at the top level.

    SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP raise :class:`Interrupted`; the command's
    error handling calls :func:`sredge.interrupts.seen` when it catches it (see :mod:`sredge.interrupts`).
    """
    global _stopping
    _stopping = False
    seen()
    try:
        with _installed(_Once(_raise), process_ends):
            yield
    finally:
        seen()


class Stopper:
    """What :func:`stop_on_signals` yields."""

    def __init__(self) -> None:
        self.event = threading.Event()
        """Set by the first stop signal (pass it to the pipeline as ``stop``)."""
        self._handler = _Once(lambda _signum: self.event.set())

    @property
    def signum(self) -> int | None:
        """The first stop signal received, or None."""
        return self._handler.signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stopper]:
    """For a run that finishes its own output when stopped (a video): the first stop signal sets
    ``Stopper.event``; later ones are ignored, also after the block once a signal came (the command
    is shutting down). An error that leaves the block after a stop signal came is that signal's
    exception (KeyboardInterrupt or :class:`Interrupted`), chained to the error."""
    check()  # a stop signal before this point whose exception was lost stops the run now
    stopper = Stopper()
    with _installed(stopper._handler):
        try:
            yield stopper
        except Exception as exc:
            if stopper.signum is None:
                raise
            # The stop came first: an error on the way out (a stream still opening until its timeout, say)
            # does not make a stopped run a failed one.
            raise (KeyboardInterrupt() if stopper.signum == signal.SIGINT else Interrupted(stopper.signum)) from exc
