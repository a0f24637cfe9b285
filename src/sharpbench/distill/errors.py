"""Errors raised by the distillation tools."""

from __future__ import annotations

from sharpbench.errors import InputError

__all__ = ["DistillError"]


class DistillError(InputError, ValueError):
    """Bad input for a distillation analysis (unknown model, too few models, subset too large...)."""
