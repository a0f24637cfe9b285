"""Result types the engine yields and the store keeps; defined in :mod:`sharpbench.results` (re-exported here)."""

from sharpbench.results import ChoiceResult, ItemResult

__all__ = ["ChoiceResult", "ItemResult"]
