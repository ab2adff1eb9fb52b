"""Stop signals turned exceptions: never cutting a cleanup in two, never lost before an output is committed.

A command turns its first stop signal into an exception (see :mod:`sredge.cli._signals`), so that
every ``finally`` cleans up. Two things can go wrong with an exception raised from a signal handler:

- it can land between creating a temporary or lock file and remembering it for cleanup (or while
  removing one). Those few lines run inside :func:`uninterruptible`: a signal arriving there is held
  and raised as soon as the section ends;
- it can be lost: the handler runs wherever the main thread is, and C code that calls back into
  Python (an ``isinstance`` check deep in a library, say) may clear the exception and carry on.
  So a signal stays *pending* until the command's error handling has seen its exception
  (:func:`seen`), and :func:`check`, called before an output is committed (the atomic rename, the end
  of an output claim, the end of the command), raises it again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

_depth = 0
_held = False
_pending: Callable[[], None] | None = None


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Run the block whole: a stop signal arriving meanwhile is raised at its end.

    Only the main thread's sections count: signals interrupt nothing else."""
    global _depth, _held
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _held:
            _held = False
            check()


def act_or_hold(action: Callable[[], None]) -> None:
    """From a signal handler: call ``action`` (which raises the signal's exception) now, or at the end
    of the running :func:`uninterruptible` section; either way it stays pending until :func:`seen`."""
    global _held, _pending
    _pending = _pending or action
    if _depth:
        _held = True
        return
    action()


def check() -> None:
    """Raise the pending stop signal's exception, if there is one (see the module docstring)."""
    if _pending is not None:
        _pending()


def seen() -> None:
    """The command has caught the stop signal's exception: nothing is pending any more."""
    global _held, _pending
    _held, _pending = False, None
