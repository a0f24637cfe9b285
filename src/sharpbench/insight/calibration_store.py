"""Thin adapter: calibration summaries from a sharpbench result store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sharpbench.insight.calibration import calibration_from_frames
from sharpbench.insight.stats import InsightError

__all__ = ["calibration_from_store"]


def calibration_from_store(
    store_path: str | Path,
    run_ids: Sequence[str] | None = None,
    **kwargs,
) -> dict[str, dict[str, object]]:
    """Per-run calibration (keys ``model [backend,dtype] / task [run]``) from the store's ``choices`` and ``items`` tables.

    Keyword arguments go to :func:`sharpbench.insight.calibration.calibration_from_frames`.
    """
    from sharpbench.store import Store

    if not Path(store_path).exists():
        raise InsightError(f"no store at {store_path}: run `sharpbench eval` first or pass --store")
    with Store(store_path, read_only=True, shared=True) as store:
        runs = store.runs(run_ids=run_ids)
        if runs.empty:
            raise InsightError("the store has no runs: run `sharpbench eval` on a multiple-choice task first")
        choices = store.choices_frame(run_ids)
        items = store.items_frame(run_ids)
    res = calibration_from_frames(choices, items, **kwargs)
    # backend and dtype in the key: hf and llamacpp runs of one model are different measurements
    label = {r.run_id: f"{r.model_id} [{r.backend},{r.dtype}] / {r.task} [{r.run_id[:8]}]"
             for r in runs.itertuples(index=False)}
    return {label.get(k, k): v for k, v in res.items()}
