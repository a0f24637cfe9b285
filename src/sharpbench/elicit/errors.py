"""Errors raised by the elicitation study (each message says what to do)."""

from __future__ import annotations

from sharpbench.errors import InputError


class ElicitError(InputError, ValueError):
    """Bad input to ``sharpbench elicit``: unknown method or task, too few items, a model list that is empty."""
