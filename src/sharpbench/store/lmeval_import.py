"""Import lm-evaluation-harness ``--log_samples`` output into the store.

lm-eval 0.4.x writes one ``samples_<task>_<date>.jsonl`` per task (beside a
``results_<date>.json``). Each line is one document with ``doc_id``, ``doc``,
``target`` (stringified), ``arguments`` (``{"gen_args_i": {"arg_0": context,
"arg_1": continuation}}``), ``resps`` / ``filtered_resps`` (per request a
``[loglik, is_greedy]`` pair, stringified), ``filter`` and the per-item
metrics (``acc``, ``acc_norm`` ...). Only multiple-choice (loglikelihood)
samples can be imported.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sharpbench.data.lmeval_samples import SAMPLES_GLOB, newest_per_key, sample_task
from sharpbench.data.readers import iter_jsonl
from sharpbench.metrics import summarize
from sharpbench.results import ChoiceResult, ItemResult
from sharpbench.store.errors import StoreImportError
from sharpbench.store.store import RunSpec, Store

__all__ = ["import_lmeval", "find_sample_files", "parse_sample"]

_NUMERIC_METRICS = ("acc", "acc_norm", "acc_bytes", "acc_mutual_info", "exact_match")
_META_KEYS = ("subject", "category", "src", "source")


@dataclass(frozen=True)
class _RunInfo:
    num_fewshot: int
    group: str | None
    version: str | None
    template_hash: str
    fingerprint: str
    backend: str
    dtype: str
    n_total: int | None


def find_sample_files(path: str | Path) -> list[tuple[str, Path]]:
    """``(task, file)`` pairs for every ``samples_<task>_<date>.jsonl`` under ``path`` (newest per task)."""
    p = Path(path)
    if not p.exists():
        raise StoreImportError(f"{p} does not exist")
    if p.is_file() and sample_task(p) is None:
        raise StoreImportError(f"{p.name} is not named like lm-eval's samples_<task>_<date>.jsonl")
    files = [p] if p.is_file() else [f for f in sorted(p.rglob(SAMPLES_GLOB)) if sample_task(f)]
    found = newest_per_key(files, sample_task)
    if not found:
        raise StoreImportError(
            f"no lm-eval samples_<task>_<date>.jsonl files under {p} (run lm-eval with --log_samples)"
        )
    return sorted(found.items())


def import_lmeval(
    store: Store, path: str | Path, model_name: str, *, num_fewshot: int | None = None
) -> list[str]:
    """Import every task's samples under ``path`` as runs of ``model_name``; returns the run ids.

    Each task becomes one run written in one transaction (an existing run
    with the same key is replaced). ``num_fewshot`` overrides the value read
    from the ``results_*.json`` beside the samples (default 0 when absent).
    """
    if not model_name:
        raise StoreImportError("--model-name must be a non-empty name for the imported model")
    parsed = []  # read and check every file before writing anything
    for task, file in find_sample_files(path):
        info = _run_info(file.parent, task, model_name, num_fewshot)
        results, metadata, filters = [], {}, set()
        for lineno, sample in iter_jsonl(file, StoreImportError):
            if sample.get("filter", "none") != "none":
                filters.add(str(sample.get("filter")))
                continue
            try:
                res, meta = parse_sample(sample)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                raise StoreImportError(f"{file}:{lineno}: cannot read sample ({exc})") from exc
            results.append(res)
            if meta:
                metadata[res.item_id] = meta
        if not results and filters:
            raise StoreImportError(
                f"{file}: {task} is a generative task (filters {', '.join(sorted(filters))}); lm-eval's generative "
                "samples log no token counts or stop reasons, so they are not imported into the store: read them "
                "as a response matrix instead (`sharpbench matrix import FOLDER -o m.parquet --metric exact_match,<filter>`)"
            )
        if not results:
            raise StoreImportError(f"{file}: no samples with filter 'none'")
        ids = [r.item_id for r in results]
        if len(set(ids)) != len(ids):
            raise StoreImportError(f"{file}: duplicated doc_id values")
        spec = RunSpec(
            model_id=model_name, fingerprint=info.fingerprint, backend=info.backend, dtype=info.dtype,
            task=task, num_fewshot=info.num_fewshot, template_hash=info.template_hash,
            task_group=info.group, task_version=info.version, n_total=info.n_total, source="lm-eval",
        )
        parsed.append((spec, info, results, metadata))
    run_ids = []
    for spec, info, results, metadata in parsed:
        store.write_items(spec, results, metadata, replace=True)
        limit = len(results) if info.n_total and len(results) < info.n_total else None
        store.finish_run(spec.run_id, status="complete", metrics=summarize(results), limit=limit)
        run_ids.append(spec.run_id)
    return run_ids


def parse_sample(sample: dict[str, Any]) -> tuple[ItemResult, dict[str, Any]]:
    """One lm-eval sample line -> (ItemResult, item metadata)."""
    doc_id = int(sample["doc_id"])
    args = _arguments(sample["arguments"])
    resps = sample.get("filtered_resps") or sample["resps"]
    pairs = [_pair(r) for r in resps]
    if len(pairs) != len(args):
        raise ValueError(f"{len(pairs)} responses for {len(args)} requests")
    metrics_logged = {k: sample[k] for k in sample.get("metrics", []) if k in sample}
    half = len(args) // 2
    if (
        len(args) % 2 == 0
        and "acc_mutual_info" in metrics_logged
        and all(ctx == "" for ctx, _ in args[half:])
    ):
        args, pairs = args[:half], pairs[:half]  # drop the unconditional requests
    conts = [cont for _, cont in args]
    choices = [c[1:] if c.startswith(" ") else c for c in conts]
    gold = _gold(sample.get("target"), conts, choices)
    lls = np.array([p[0] for p in pairs], dtype=float)

    metrics: dict[str, float] = {}
    for name in _NUMERIC_METRICS:
        v = metrics_logged.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            metrics[name] = float(v)
    if "acc_bytes" not in metrics:
        nbytes = np.array([max(len(c.encode("utf-8")), 1) for c in choices], dtype=float)
        metrics["acc_bytes"] = float(int(np.argmax(lls / nbytes)) == gold)
    if "acc" not in metrics:
        metrics["acc"] = float(int(np.argmax(lls)) == gold)
    if np.all(np.isfinite(lls)):
        probs = np.exp(lls - lls.max())
        probs /= probs.sum()
        onehot = np.eye(len(lls))[gold]
        metrics["brier"] = float(np.sum((probs - onehot) ** 2))
    result = ItemResult(
        doc_id, gold, tuple(ChoiceResult(ll, greedy, -1) for ll, greedy in pairs), metrics
    )
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    meta = {k: doc[k] for k in _META_KEYS if isinstance(doc.get(k), (str, int, float))}
    return result, meta


# ------------------------------------------------------------------ helpers
def _arguments(raw: Any) -> list[tuple[str, str]]:
    """lm-eval's sanitized ``{"gen_args_i": {"arg_0": ctx, "arg_1": cont}}`` or a plain list of pairs."""
    if isinstance(raw, dict):
        keys = sorted(raw, key=lambda k: int(k.rsplit("_", 1)[-1]))
        out = [(raw[k]["arg_0"], raw[k]["arg_1"]) for k in keys]
    else:
        out = [(a[0], a[1]) for a in raw]
    if not out or not all(isinstance(c, str) and isinstance(x, str) for c, x in out):
        raise ValueError("arguments are not (context, continuation) string pairs: not a multiple-choice task?")
    return out


def _pair(resp: Any) -> tuple[float, bool]:
    """A filtered response ``[loglik, is_greedy]`` (strings after lm-eval's sanitising)."""
    while isinstance(resp, list) and len(resp) == 1 and isinstance(resp[0], list):
        resp = resp[0]  # unfiltered ``resps`` nest one more level
    if not isinstance(resp, (list, tuple)) or len(resp) != 2:
        raise ValueError(f"response {resp!r} is not a [loglik, is_greedy] pair")
    ll = float(resp[0])
    if math.isnan(ll):
        raise ValueError("loglik is NaN")
    greedy = resp[1] if isinstance(resp[1], bool) else str(resp[1]).strip().lower() == "true"
    return ll, bool(greedy)


def _gold(target: Any, conts: list[str], choices: list[str]) -> int:
    text = str(target).strip()
    if re.fullmatch(r"-?\d+", text):
        gold = int(text)
    elif text in choices:
        gold = choices.index(text)
    elif str(target) in conts:
        gold = conts.index(str(target))
    else:
        raise ValueError(f"target {target!r} is neither a choice index nor one of the choices")
    if not 0 <= gold < len(conts):
        raise ValueError(f"target index {gold} out of range for {len(conts)} choices")
    return gold


def _run_info(folder: Path, task: str, model_name: str, num_fewshot: int | None) -> _RunInfo:
    results: dict[str, Any] = {}
    candidates = sorted(folder.glob("results_*.json"))
    if candidates:
        try:
            results = json.loads(candidates[-1].read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            results = {}
    nshot = num_fewshot
    if nshot is None:
        raw = (results.get("n-shot") or {}).get(task)
        if raw is None:
            raw = ((results.get("configs") or {}).get(task) or {}).get("num_fewshot")
        nshot = int(raw) if isinstance(raw, (int, float)) else 0
    group = _top_group(results.get("group_subtasks") or {}, task)
    version = (results.get("versions") or {}).get(task)
    task_hash = (results.get("task_hashes") or {}).get(task)
    config = results.get("config") or {}
    model_args = config.get("model_args") or ""
    if isinstance(model_args, dict):
        dtype = str(model_args.get("dtype", "unknown"))
    else:
        m = re.search(r"dtype=([\w.]+)", str(model_args))
        dtype = m.group(1).replace("torch.", "") if m else "unknown"
    sha = results.get("model_sha") or ""
    n_samples = (results.get("n-samples") or {}).get(task) or {}
    return _RunInfo(
        num_fewshot=nshot,
        group=group,
        version=None if version is None else str(version),
        template_hash=f"lm-eval:{task_hash}" if task_hash else "lm-eval",
        fingerprint=f"lm-eval:{model_name}@{sha}" if sha else f"lm-eval:{model_name}",
        backend=f"lm-eval/{config.get('model', 'unknown')}",
        dtype=dtype,
        n_total=int(n_samples["original"]) if "original" in n_samples else None,
    )


def _top_group(group_subtasks: dict[str, list[str]], task: str) -> str | None:
    parent = {child: g for g, kids in group_subtasks.items() for child in kids if child != g}
    if task not in parent:
        return None
    seen = {task}
    while task in parent and parent[task] not in seen:
        task = parent[task]
        seen.add(task)
    return task
