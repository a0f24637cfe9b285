"""Per-item multiple-choice metrics and their aggregation, as lm-eval 0.4.13 computes them.

References: ``ConfigurableTask.process_results`` (``lm_eval/api/task.py``),
``mean``/``mean_stderr``/``brier_score``/``pooled_sample_stderr``/
``aggregate_subtask_metrics`` (``lm_eval/api/metrics.py``) and
``Group.aggregate`` (``lm_eval/api/group.py``). Pure numpy over
:class:`~sharpbench.results.ItemResult`: the engine computes per-item metrics
with it and the store summarizes runs with it (so it sits below both).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from sharpbench.errors import InputError
from sharpbench.results import ItemResult

ITEM_METRICS = ("acc", "acc_norm", "acc_bytes", "brier")
OPTIONAL_METRICS = ("acc_mutual_info",)


class MetricError(InputError, ValueError):
    """Metric inputs of the wrong shape or unknown metric names."""


def item_metrics(
    logliks: Sequence[float],
    gold: int,
    choices: Sequence[str],
    *,
    unconditional: Sequence[float] | None = None,
) -> dict[str, float]:
    """Per-item metrics from the choices' logliks.

    Parameters
    ----------
    logliks : sequence of float, shape (n_choices,)
        Sum of continuation log-probabilities of each choice.
    gold : int
        Index of the correct choice.
    choices : sequence of str, shape (n_choices,)
        Choice strings (``doc_to_choice``; no target delimiter) for the
        character (``acc_norm``) and utf-8 byte (``acc_bytes``) normalisations.
    unconditional : sequence of float, optional
        ``loglik("", delimiter + choice)`` of each choice; adds
        ``acc_mutual_info`` (argmax of conditional minus unconditional).

    Returns
    -------
    dict
        ``acc``, ``acc_norm``, ``acc_bytes`` (0/1, ties go to the first index
        like ``np.argmax``), ``brier`` (sum over choices of the squared error of
        ``softmax(logliks)`` against the one-hot gold; lm-eval's ``brier_score``
        is the mean of this), and ``acc_mutual_info`` when requested.
    """
    lls = np.asarray(logliks, dtype=np.float64)
    n = lls.shape[0]
    if lls.ndim != 1 or n == 0 or len(choices) != n:
        raise MetricError(f"need one loglik per choice, got {lls.shape} for {len(choices)} choices")
    if not 0 <= gold < n:
        raise MetricError(f"gold index {gold} out of range for {n} choices")
    chars = np.array([float(len(c)) for c in choices])
    nbytes = np.array([float(len(c.encode("utf-8"))) for c in choices])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "acc": float(np.argmax(lls) == gold),
            "acc_norm": float(np.argmax(lls / chars) == gold),
            "acc_bytes": float(np.argmax(lls / nbytes) == gold),
        }
    probs = np.exp(lls - lls.max())
    probs /= probs.sum()
    out["brier"] = float(np.sum((probs - np.eye(n)[gold]) ** 2))
    if unconditional is not None:
        unc = np.asarray(unconditional, dtype=np.float64)
        if unc.shape != lls.shape:
            raise MetricError(f"unconditional logliks {unc.shape} do not match choices {lls.shape}")
        out["acc_mutual_info"] = float(np.argmax(lls - unc) == gold)
    return out


def mean_stderr(values: Sequence[float]) -> float:
    """Sample standard deviation / sqrt(n) (lm-eval ``mean_stderr``); NaN for n < 2."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise MetricError(f"values must be 1-D, got shape {arr.shape}")
    n = arr.shape[0]
    if n < 2:
        return math.nan
    return float(arr.std(ddof=1) / math.sqrt(n))


def aggregate(results: Iterable[ItemResult], metric_names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Mean and standard error of each per-item metric over ``results``.

    lm-eval reports ``brier_score`` without a standard error; here every
    metric gets ``mean_stderr`` of its per-item values.

    Raises
    ------
    MetricError
        If a metric is missing from some item or there are no results.
    """
    results = list(results)
    if not results:
        raise MetricError("no item results to aggregate")
    out = {}
    for name in metric_names:
        missing = [r.item_id for r in results if name not in r.metrics]
        if missing:
            raise MetricError(f"metric {name!r} missing for {len(missing)} item(s), e.g. {missing[:3]}")
        vals = [r.metrics[name] for r in results]
        out[name] = (float(sum(vals) / len(vals)), mean_stderr(vals))
    return out


def common_metric_names(results: Sequence[ItemResult]) -> list[str]:
    """Metrics every result has, in first-seen order."""
    if not results:
        return []
    common = set.intersection(*(set(r.metrics) for r in results))
    return [k for k in results[0].metrics if k in common]


def summarize(
    results: Sequence[ItemResult], metric_names: Iterable[str] | None = None
) -> dict[str, tuple[float, float]]:
    """Aggregate per-item metrics to ``{name: (value, stderr)}`` (NaN stderr where undefined).

    ``metric_names`` defaults to :func:`common_metric_names` (those every
    result has); no results or no names give ``{}``.
    """
    names = list(metric_names) if metric_names is not None else common_metric_names(results)
    if not results or not names:
        return {}
    agg = aggregate(list(results), names)
    return {k: (float(v[0]), float("nan") if v[1] is None else float(v[1])) for k, v in agg.items()}


def pooled_stderr(stderrs: Sequence[float], sizes: Sequence[int]) -> float:
    """lm-eval ``pooled_sample_stderr``: stderr of the size-weighted mean of subtask means."""
    se = np.asarray(stderrs, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    if se.shape != n.shape or se.ndim != 1 or se.size == 0:
        raise MetricError(f"stderrs {se.shape} and sizes {n.shape} must be equal non-empty 1-D arrays")
    pooled_var = np.sum((n - 1) * se**2 * n) / (n.sum() - n.size)
    return float(np.sqrt(pooled_var / n.sum()))


def aggregate_groups(
    subtasks: Mapping[str, tuple[float, float, int]], *, weight_by_size: bool = True
) -> tuple[float, float]:
    """Group score from its leaf subtasks' ``(value, stderr, n_items)``, as lm-eval 0.4.13.

    The value is the size-weighted mean of the subtask values
    (``aggregate_subtask_metrics``; plain mean when ``weight_by_size=False``);
    the stderr is ``pooled_sample_stderr`` (or ``sqrt(sum se^2) / k`` unweighted).
    lm-eval aggregates a nested group (MMLU -> categories -> subjects) over
    all its *leaf* tasks directly, so pass the leaves.
    """
    if not subtasks:
        raise MetricError("no subtasks to aggregate")
    vals = np.array([v[0] for v in subtasks.values()], dtype=np.float64)
    ses = np.array([v[1] for v in subtasks.values()], dtype=np.float64)
    sizes = np.array([v[2] for v in subtasks.values()], dtype=np.float64)
    w = sizes if weight_by_size else np.ones_like(sizes)
    value = float(np.sum(vals * w) / np.sum(w))
    if weight_by_size:
        stderr = pooled_stderr(ses, sizes)
    else:
        stderr = float(np.sqrt(np.sum(ses**2)) / ses.size)
    return value, stderr
