"""The root of every sharpbench error, and the exit code each kind gives on the command line.

Every package's errors derive from :class:`SharpbenchError` (keeping the
``ValueError``/``RuntimeError``/``KeyError`` bases callers catch today), so
``except SharpbenchError`` catches whatever sharpbench raises on purpose and
the CLI maps each error to one line and one exit code:

======  ===========================================================================
code    meaning
======  ===========================================================================
0       success
1       a failure while doing the work: store locked or corrupt, model failed to
        load or score, server down, file not writable (:data:`EXIT_FAILURE`)
2       bad input: unknown model/task/backend/key, missing or unreadable input
        file, wrong option value (:data:`EXIT_INPUT`; click uses 2 for usage errors)
130     interrupted (Ctrl-C / SIGTERM); whole items are stored, rerun to resume
        (:data:`EXIT_INTERRUPTED`)
======  ===========================================================================

This module imports nothing from sharpbench (it sits at the bottom of the import graph).
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "SharpbenchError",
    "InputError",
    "RunInterrupted",
]

EXIT_FAILURE = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


class SharpbenchError(Exception):
    """Base class of every error sharpbench raises on purpose; ``exit_code`` is the CLI's exit status."""

    exit_code: int = EXIT_FAILURE


class InputError(SharpbenchError):
    """Bad input: an unknown name, a missing or malformed file, an option value out of range."""

    exit_code = EXIT_INPUT


class RunInterrupted(SharpbenchError):
    """A run was interrupted (Ctrl-C, SIGTERM); what finished is stored."""

    exit_code = EXIT_INTERRUPTED
