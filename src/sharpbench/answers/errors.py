"""The one error of :mod:`sharpbench.answers`: a filter or metric specification that cannot be used."""

from __future__ import annotations

from sharpbench.errors import InputError

__all__ = ["AnswerSpecError"]


class AnswerSpecError(InputError, ValueError):
    """An unknown filter function or metric, a bad regex, or a bad option in an answer specification."""
