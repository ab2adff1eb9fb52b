"""Errors that the command-line tools turn into one line and an exit code.

Library code raises these for problems the user can fix (bad input, missing
extras, failed checks). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SredgeError(Exception):
    """A problem the user can act on; the message says what to do.

    Attributes:
        exit_code: Process exit code a CLI should use (2: bad input or usage).
    """

    exit_code = 2


class InputError(SredgeError):
    """Bad user input: a missing or unreadable file, impossible options."""


class MissingDependencyError(SredgeError):
    """An optional extra is not installed; the message names the pip command."""


class CheckFailedError(SredgeError):
    """A validation ran and failed (e.g. ONNX vs PyTorch parity): exit code 1."""

    exit_code = 1
