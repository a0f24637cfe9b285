"""Build a ResponseMatrix from lm-evaluation-harness ``--log_samples`` output.

lm-eval writes, per model, ``<output>/<model_name_sanitized>/samples_<task>_<date>.jsonl``
(one JSON object per document with ``doc_id``, ``filter`` and one key per
metric, e.g. ``acc``, ``acc_norm``) next to ``results_<date>.json`` (whose
``model_name`` names the model). Item ids become ``<task>/<doc_id>``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from sharpbench.data.lmeval_samples import SAMPLES_GLOB, newest_per_key, sample_task
from sharpbench.data.readers import iter_jsonl
from sharpbench.matrix.core import MatrixError, ResponseMatrix

__all__ = ["find_sample_files", "read_lmeval_samples", "from_lmeval_samples"]


def find_sample_files(paths: Iterable[str | Path]) -> list[Path]:
    """All ``samples_<task>_<date>.jsonl`` files under the given files/directories (recursively)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(f for f in sorted(p.rglob(SAMPLES_GLOB)) if sample_task(f))
        elif p.is_file():
            out.append(p)
        else:
            raise MatrixError(f"no such file or directory: {p}")
    if not out:
        raise MatrixError("no lm-eval samples_<task>_<date>.jsonl files found; run lm_eval with --log_samples")
    return out


def _task_of(path: Path) -> str:
    task = sample_task(path)
    if task is None:
        raise MatrixError(f"{path.name} is not named samples_<task>_<date>.jsonl")
    return task


def _model_of(folder: Path) -> str:
    """``model_name`` of the newest ``results_*.json`` in ``folder``, else the folder's name."""
    for res in sorted(folder.glob("results_*.json"), reverse=True):
        try:
            name = json.loads(res.read_text()).get("model_name")
        except (OSError, json.JSONDecodeError):
            continue
        if name:
            return str(name)
    return folder.name


def read_lmeval_samples(
    paths: Iterable[str | Path], metric: str = "acc", filter_name: str | None = None
) -> pd.DataFrame:
    """Long table ``model, item, score, task`` from sample files.

    When one task of one model has several sample files (several runs), the
    newest (lexically last date) wins. Task runs whose first sample lacks
    ``metric`` are skipped with a warning (tasks differ in their metrics). With several filters per document the
    ``filter_name`` one is used (default: the first seen); ``metric="exact_match,strict-match"`` names both, as
    lm-eval's results and the store do.
    """
    if "," in metric and filter_name is None:  # "exact_match,flexible-extract": metric and filter, as lm-eval reports
        metric, filter_name = metric.split(",", 1)
    files = find_sample_files(paths)
    model_of = {d: _model_of(d) for d in {f.parent for f in files}}  # one results_*.json read per folder
    latest = newest_per_key(files, lambda f: (model_of[f.parent], _task_of(f)))
    rows: list[dict] = []
    skipped: list[str] = []
    for (model, task), f in sorted(latest.items()):
        chosen = filter_name
        first = True
        for n, rec in iter_jsonl(f, MatrixError):
            flt = rec.get("filter")
            if chosen is None:
                chosen = flt
            if flt != chosen:
                continue
            if metric not in rec and first:
                skipped.append(f"{model}/{task}")
                break
            first = False
            if "doc_id" not in rec or metric not in rec:
                raise MatrixError(
                    f"{f}:{n}: sample lacks 'doc_id' or metric {metric!r} "
                    f"(has {sorted(k for k in rec if not isinstance(rec[k], (dict, list)))})"
                )
            rows.append({"model": model, "item": f"{task}/{rec['doc_id']}", "score": float(rec[metric]), "task": task})
    if skipped:
        if not rows:
            raise MatrixError(f"no sample file has the metric {metric!r} (checked {len(skipped)} files)")
        warnings.warn(f"skipped {len(skipped)} task run(s) without metric {metric!r}: {skipped[:5]}", stacklevel=2)
    return pd.DataFrame(rows, columns=["model", "item", "score", "task"])


def from_lmeval_samples(
    paths: Iterable[str | Path], metric: str = "acc", filter_name: str | None = None
) -> ResponseMatrix:
    """ResponseMatrix (models x ``task/doc_id`` items) with item_meta column ``task``."""
    long = read_lmeval_samples(paths, metric, filter_name)
    if long.empty:
        raise MatrixError("the sample files hold no documents")
    meta = long.drop_duplicates("item").set_index("item")[["task"]]
    return ResponseMatrix.from_long(long, item_meta=meta)
