"""Calibrate an item bank: response matrix -> IRT fit -> :class:`ItemBank`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.adaptive.bank import BankError, ItemBank
from sharpbench.matrix.core import ResponseMatrix

__all__ = ["IRT_MODELS", "calibrate_bank", "misfit_sd", "restrict_to_task"]

IRT_MODELS = {"1pl": "OnePL", "2pl": "TwoPL", "3pl": "ThreePL", "4pl": "FourPL"}


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def _ids(ids: Sequence[str], most: int = 5) -> str:
    return ", ".join(repr(i) for i in ids[:most]) + (", ..." if len(ids) > most else "")


def restrict_to_task(
    matrix: ResponseMatrix, items: Sequence[Any], item_texts: pd.Series | None = None
) -> ResponseMatrix:
    """The matrix with the task items' metadata, after checking that its items ARE the task's items.

    Task items are matched by ``metadata["question_id"]`` when present, else by
    ``item_id``. Numeric ids of two benchmarks overlap by coincidence (ChemBench's
    0..2853 are mostly MMLU-Pro question ids too), so a shared id proves nothing:

    * every matrix item must be a task item (a matrix recorded on the task has
      no other ids);
    * with ``item_texts`` (matrix item id -> question text, e.g. from
      ``mmlu_pro_items.jsonl``; else a text column of ``matrix.item_meta``) each
      matched item's question must occur in the task's prompt for that id.

    Raises :class:`BankError` naming the count and ids that fail.
    """
    from sharpbench.adaptive.live import item_key

    meta = pd.DataFrame(
        [{"item": item_key(it), **{k: v for k, v in (it.metadata or {}).items() if k != "question_id"}}
         for it in items]
    ).set_index("item")
    keep = [i for i in matrix.items if i in meta.index]
    if not keep:
        raise BankError(
            f"the matrix shares no item id with the task (matrix ids like {matrix.items[0]!r}, task ids like "
            f"{meta.index[0]!r}): it was not recorded on this benchmark"
        )
    foreign = [i for i in matrix.items if i not in meta.index]
    if foreign:
        raise BankError(
            f"{len(foreign)} of the matrix's {matrix.n_items} items are not items of this task (ids "
            f"{_ids(foreign)}); the other {len(keep)} ids only coincide with task ids: a matrix recorded on "
            "this benchmark has no other items. Check --tasks and the matrix (--no-task-check skips this)"
        )
    if item_texts is None and len(matrix.item_meta.columns):
        col = next((c for c in ("question", "text", "prompt", "query") if c in matrix.item_meta.columns), None)
        item_texts = matrix.item_meta[col] if col else None
    if item_texts is not None:
        prompts = {item_key(it): _norm(it.requests[0].context) if it.requests else "" for it in items}
        texts = {str(k): _norm(v) for k, v in item_texts.items() if isinstance(v, str) and v.strip()}
        checked = [i for i in keep if i in texts]
        differ = [i for i in checked if texts[i] not in prompts[i]]
        if not checked:
            raise BankError(
                "the item table has no question text for any matrix item, so the matrix cannot be checked "
                "against the task (--no-task-check skips this)"
            )
        if differ:
            raise BankError(
                f"{len(differ)} of {len(checked)} matrix items have a question text that is not the task's "
                f"question under the same id (ids {_ids(differ)}): the matrix was not recorded on this "
                "benchmark (--no-task-check skips this)"
            )
    sub = matrix.select(items=keep)
    return ResponseMatrix(sub.values, sub.models, sub.items, meta.loc[keep], sub.model_meta)


def calibrate_bank(matrix: ResponseMatrix, name: str, *, benchmark: str, model: str = "2pl",
                   min_slope: float = 0.0, **fit_options: Any) -> ItemBank:
    """Fit an IRT model with :mod:`sharpbench.irt` and wrap it as an :class:`ItemBank`.

    Non-binary matrices are binarised at 0.5. Every item goes into the fit,
    constant ones (all models right, or all wrong) included: the IRT fit's item
    prior (``prior="auto"``: strong below 50 models) keeps their parameters
    finite, so a model weaker or stronger than every calibration model still
    gets a graded prediction on them. Items whose fitted slope is <= ``min_slope``
    stay out of the bank (they do not measure the ability, or measure it
    backwards); they are listed in ``info["excluded_items"]`` with their mean
    calibration score in ``info["excluded_pvalues"]``, at which they still count
    in predicted full-benchmark accuracies (:meth:`ItemBank.expected_accuracy`).
    """
    from sharpbench import irt

    if model.lower() not in IRT_MODELS:
        raise BankError(f"unknown IRT model {model!r}; choose one of {sorted(IRT_MODELS)}")
    binary = matrix if matrix.is_binary else matrix.binarize()
    if binary.constant_items().all():
        raise BankError("every item is answered identically by all models: nothing to calibrate")
    fit = getattr(irt, IRT_MODELS[model.lower()])(**fit_options).fit(binary)
    meta = binary.item_meta if len(binary.item_meta.columns) else None
    bank = ItemBank.from_fit(fit, name=name, benchmark=benchmark, item_meta=meta, min_slope=min_slope,
                             info={"irt_model": model.upper(), "n_models": binary.n_models,
                                   "n_constant_items": int(binary.constant_items().sum())})
    pvalues = binary.item_pvalues()
    bank.info["excluded_pvalues"] = {i: float(np.nan_to_num(pvalues[i])) for i in bank.info["excluded_items"]}
    bank.info["misfit_sd"] = misfit_sd(bank, binary)
    return bank


def misfit_sd(bank: ItemBank, matrix: ResponseMatrix) -> float:
    """How far the unidimensional model misses whole-benchmark accuracies of the calibration models.

    Root mean square over models of (observed accuracy - expected accuracy at
    the model's MAP ability from all its answers). With thousands of items the
    ability is known almost exactly, so what remains is model misfit (a model
    stronger in some subjects than its single theta says); adaptive CIs add it
    in quadrature so they do not shrink below it. In-sample, so a lower bound.
    """
    from sharpbench.irt.ability import estimate_abilities

    frame = matrix.to_frame().reindex(columns=list(bank.item_ids))
    theta, _ = estimate_abilities(frame.to_numpy(dtype=float), *bank.params(), method="map")
    predicted = bank.expected_accuracy(theta)
    observed = np.nanmean(matrix.values, axis=1)
    return float(np.sqrt(np.mean((observed - predicted) ** 2)))
