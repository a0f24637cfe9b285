"""Generative items in the store: their sample rows, the resume fingerprint, and rebuilding results.

A generative item (:class:`~sharpbench.results.GenItemResult`) is one
``items`` row (``gold = -1``, ``n_choices = 0``, ``gold_text``, ``prompt``,
its ``"exact_match,<filter>"`` metrics in ``extra_metrics``) plus one
``generations`` row per sample. See :mod:`sharpbench.store.schema`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from typing import Any, Iterable, Mapping

import pandas as pd

from sharpbench.results import GenItemResult, GenSample, Generation

__all__ = [
    "GEN_COLUMNS", "INVALID", "clean_text", "gen_results", "generation_rows", "generation_stats", "sample_hash",
    "samples_by_item", "valid_samples",
]

INVALID = "[invalid]"  # lm-eval's extracted answer where a filter's regex did not match
UNANSWERED = (INVALID, "[invalidanswer]")  # ... and minerva's answer when a generation states no final answer

GEN_COLUMNS: tuple[str, ...] = (
    "run_id", "item_id", "sample", "text", "n_tokens", "stop_reason", "extracted", "correct", "seconds",
    "content_hash",
)

# Fields of a GenItem that do not change what one sample is generated and scored from.
_NOT_SAMPLE_CONTENT = frozenset({"item_id", "repeats", "metadata"})
_SURROGATE = re.compile("[\ud800-\udfff]")


def sample_hash(item: Any) -> str:
    """Fingerprint of what each sample of a generative item is generated from, without ``repeats``.

    Every field of the :class:`~sharpbench.data.task.GenItem` except
    ``item_id``, ``repeats`` and ``metadata`` (the scoring by its ``key``), so
    a sample stored by a run with 4 repeats is reused by a run asking for 8,
    while a changed prompt, stop sequence, sampling setting or scoring makes
    every stored sample stale.
    """
    if not dataclasses.is_dataclass(item):
        raise TypeError(f"expected a GenItem, got {type(item).__name__}")
    parts = []
    for f in dataclasses.fields(item):
        if f.name in _NOT_SAMPLE_CONTENT:
            continue
        v = getattr(item, f.name)
        if f.name == "scoring":
            v = getattr(v, "key", repr(v))
        elif isinstance(v, tuple):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        parts.append([f.name, v])
    blob = json.dumps(parts, ensure_ascii=False, default=repr)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def clean_text(text: Any) -> str:
    """``text`` as a str DuckDB can store: lone surrogates (undecodable bytes) become U+FFFD."""
    s = "" if text is None else str(text)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", s)


def _json_obj(d: Mapping[str, Any] | None, *, numbers: bool) -> str | None:
    if not d:
        return None
    out = {}
    for k, v in d.items():
        if numbers:
            v = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
        else:
            v = None if v is None else clean_text(v)
        out[clean_text(k)] = v
    return json.dumps(out, ensure_ascii=False, allow_nan=False)


def generation_rows(run_id: str, res: GenItemResult, content_hash: str | None, rows: dict[str, list]) -> None:
    """Append the ``generations`` rows of one item's samples to the column lists in ``rows``."""
    if not res.samples:
        raise ValueError(f"item {res.item_id}: no samples to store")
    seen = set()
    for s in res.samples:
        if not isinstance(s, GenSample):
            raise TypeError(f"item {res.item_id}: expected GenSample, got {type(s).__name__}")
        idx = int(s.index)
        if idx < 0 or idx in seen:
            raise ValueError(f"item {res.item_id}: sample index {idx} is negative or repeated")
        seen.add(idx)
        g = s.generation
        sec = None if s.seconds is None or not math.isfinite(float(s.seconds)) else float(s.seconds)
        for col, v in zip(GEN_COLUMNS, (
            run_id, int(res.item_id), idx, clean_text(g.text), int(g.n_tokens), str(g.stop_reason),
            _json_obj(s.extracted, numbers=False), _json_obj(s.correct, numbers=True), sec, content_hash,
        )):
            rows[col].append(v)


def _decode(obj: Any, as_float: bool) -> dict[str, Any]:
    if not isinstance(obj, str):
        return {}
    d = json.loads(obj)
    if as_float:
        return {k: (math.nan if v is None else float(v)) for k, v in d.items()}
    return {k: ("" if v is None else str(v)) for k, v in d.items()}


def samples_by_item(gens: pd.DataFrame) -> dict[int, list[GenSample]]:
    """``generations`` rows (ordered by item and sample) -> item id -> its :class:`GenSample` list."""
    out: dict[int, list[GenSample]] = {}
    for row in gens.itertuples(index=False):
        sec = row.seconds
        out.setdefault(int(row.item_id), []).append(
            GenSample(
                index=int(row.sample),
                generation=Generation(str(row.text), int(row.n_tokens), str(row.stop_reason)),
                extracted=_decode(row.extracted, False),
                correct=_decode(row.correct, True),
                seconds=0.0 if sec is None or pd.isna(sec) else float(sec),
            )
        )
    return out


def gen_results(item_rows: Iterable[Any], gens: pd.DataFrame, metrics_of) -> dict[int, GenItemResult]:
    """Rebuild :class:`GenItemResult` objects from ``items`` rows and their ``generations`` rows."""
    samples = samples_by_item(gens)
    out = {}
    for row in item_rows:
        iid = int(row.item_id)
        gold = row.gold_text
        out[iid] = GenItemResult(
            iid, "" if gold is None or (isinstance(gold, float) and math.isnan(gold)) else str(gold),
            tuple(samples.get(iid, ())), metrics_of(row),
        )
    return out


def valid_samples(con, run_id: str, items: Iterable[Any]) -> dict[int, set[int]]:
    """Item id -> indices of its stored samples that are reusable: current :func:`sample_hash`, index < repeats."""
    want = {int(it.item_id): (sample_hash(it), int(it.repeats)) for it in items}
    if not want:
        return {}
    rows = con.execute(
        "SELECT item_id, sample, content_hash FROM generations WHERE run_id = ? AND item_id IN (SELECT unnest(?))",
        [run_id, sorted(want)],
    ).fetchall()
    out: dict[int, set[int]] = {}
    for iid, s, h in rows:
        h_want, repeats = want[int(iid)]
        if h is not None and h == h_want and int(s) < repeats:
            out.setdefault(int(iid), set()).add(int(s))
    return out


def generation_stats(con, run_id: str, examples: int = 3) -> dict[str, Any]:
    """Counts by stop reason, token and time totals, and unextracted answers per filter of a run's samples.

    See :meth:`sharpbench.store.Store.generation_stats`.
    """
    n, mean_tok, max_tok, secs = con.execute(
        "SELECT count(*), avg(n_tokens), max(n_tokens), sum(seconds) FROM generations WHERE run_id = ?", [run_id],
    ).fetchone()
    reasons = con.execute(
        "SELECT stop_reason, count(*) FROM generations WHERE run_id = ? GROUP BY 1 ORDER BY 2 DESC, 1", [run_id],
    ).fetchall()
    unextracted: dict[str, tuple[int, list[int]]] = {}
    for iid, extracted in con.execute(
        "SELECT item_id, extracted FROM generations WHERE run_id = ? ORDER BY item_id, sample", [run_id]
    ).fetchall():
        for name, value in (json.loads(extracted) if extracted else {}).items():
            count, ids = unextracted.get(name, (0, []))
            if value in UNANSWERED:
                count += 1
                if len(ids) < examples and int(iid) not in ids:
                    ids.append(int(iid))
            unextracted[name] = (count, ids)
    return {
        "n_samples": int(n), "stop_reasons": {str(k): int(v) for k, v in reasons},
        "mean_tokens": None if mean_tok is None else float(mean_tok),
        "max_tokens": None if max_tok is None else int(max_tok),
        "seconds": None if secs is None else float(secs), "unextracted": unextracted,
    }
