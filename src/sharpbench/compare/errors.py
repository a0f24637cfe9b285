"""Errors raised by the model-comparison tools (each message says what to do)."""

from __future__ import annotations

from sharpbench.errors import InputError


class CompareError(InputError, ValueError):
    """Bad input to a comparison (files, names, objectives)."""


class TokenizerMismatchError(CompareError):
    """Base and modified models do not share a tokenizer, so token-level KL is undefined."""


class UnmatchedModelsError(CompareError):
    """Model names in a reference table do not match the models being compared."""


class MissingObjectiveError(CompareError):
    """A trials table lacks an objective column that was asked for."""
