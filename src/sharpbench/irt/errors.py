"""Errors and warnings raised by the IRT estimators."""

from __future__ import annotations

from sharpbench.errors import InputError, SharpbenchError

__all__ = ["IRTConvergenceError", "IRTConvergenceWarning", "IRTError"]


class IRTError(InputError, ValueError):
    """The data or the options are unfit for the requested IRT analysis."""


class IRTConvergenceError(SharpbenchError, RuntimeError):
    """The estimator did not converge and ``strict=True`` was requested."""


class IRTConvergenceWarning(RuntimeWarning):
    """The estimator stopped at ``max_iter`` before meeting its tolerance."""
