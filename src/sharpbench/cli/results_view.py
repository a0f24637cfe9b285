"""What ``sharpbench results show`` prints: a run's summary, or one item in full.

:func:`run_summary` and :func:`item_detail` collect plain dicts (the
``--format json`` output); :func:`summary_text` and :func:`item_text` render
them as plain text (no markup: generated text may hold anything).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["run_summary", "item_detail", "summary_text", "item_text"]


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"exact_match,strict-match": [v, se]}`` -> rows ``metric, filter, value, stderr``."""
    rows = []
    for name, val in (metrics or {}).items():
        metric, _, filt = str(name).partition(",")
        v, se = (val[0], val[1]) if isinstance(val, (list, tuple)) and len(val) >= 2 else (val, None)
        rows.append({"name": name, "metric": metric, "filter": filt or None, "value": _num(v), "stderr": _num(se)})
    return rows


def run_summary(st: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The run row's facts, its metrics (per filter for generative runs) and, if generative, sample statistics."""
    from sharpbench.store.store import shown_status

    kind = run.get("kind") or "multiple_choice"
    out = {
        "run_id": run["run_id"], "model": run["model_id"], "task": run["task"], "group": run.get("task_group"),
        "kind": kind, "num_fewshot": int(run["num_fewshot"]), "backend": run["backend"], "dtype": run["dtype"],
        "status": shown_status(run), "n_items": int(run["n_items"]),
        "n_total": None if run.get("n_total") is None else int(run["n_total"]),
        "primary_metric": run.get("primary_metric") or "acc", "run_config": run.get("run_config"),
        "created_at": None if run.get("created_at") is None else str(run["created_at"])[:19],
        "finished_at": None if run.get("finished_at") is None else str(run["finished_at"])[:19],
        "metrics": _metric_rows(run.get("metrics") or {}),
    }
    if kind == "generate_until":
        stats = st.generation_stats(run["run_id"])
        stats["unextracted"] = {k: {"count": c, "items": ids} for k, (c, ids) in stats["unextracted"].items()}
        out["generations"] = stats
    return out


def item_detail(st: Any, run: dict[str, Any], item_id: int) -> dict[str, Any]:
    """One stored item: gold, metrics, metadata and its choices or its samples (full text)."""
    from sharpbench.results import GenItemResult
    from sharpbench.store.errors import StoreLookupError

    run_id = run["run_id"]
    rows = st.items_frame([run_id], item_ids=[int(item_id)])
    if rows.empty:
        ids = sorted(st.stored_item_ids(run_id))
        shown = f"{ids[0]}..{ids[-1]}" if ids else "none"
        raise StoreLookupError(
            f"run {run_id[:10]} ({run['task']}) has no stored item {item_id} (stored: {len(ids)} items, ids {shown})"
        )
    row = rows.iloc[0]
    res = st.item_results(run_id, [int(item_id)])[0]
    meta = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else {}
    out: dict[str, Any] = {
        "run_id": run_id, "model": run["model_id"], "task": run["task"], "item_id": int(item_id),
        "metrics": {k: _num(v) for k, v in res.metrics.items()}, "metadata": meta,
    }
    if isinstance(res, GenItemResult):
        out["kind"] = "generate_until"
        out["gold"] = res.gold
        prompt = row.get("prompt")
        out["prompt"] = prompt if isinstance(prompt, str) else None
        out["samples"] = [
            {"index": s.index, "text": s.generation.text, "n_tokens": s.generation.n_tokens,
             "stop_reason": s.generation.stop_reason, "seconds": s.seconds,
             "extracted": dict(s.extracted), "correct": {k: _num(v) for k, v in s.correct.items()}}
            for s in res.samples
        ]
    else:
        out["kind"] = run.get("kind") or "multiple_choice"
        out["gold"] = int(res.gold)
        lls = [c.loglik for c in res.choices]
        best = max(range(len(lls)), key=lambda j: lls[j]) if lls else None
        out["choices"] = [
            {"choice": j, "loglik": c.loglik, "is_greedy": c.is_greedy,
             "n_tokens": None if c.n_tokens < 0 else c.n_tokens, "gold": j == res.gold, "argmax": j == best}
            for j, c in enumerate(res.choices)
        ]
    return out


def _fmt(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f} ± {se:.4f}" if se is not None else f"{v:.4f}"


def summary_text(d: dict[str, Any]) -> str:
    items = f"{d['n_items']}/{d['n_total']}" if d["n_total"] else str(d["n_items"])
    lines = [
        f"run {d['run_id']}: {d['model']} on {d['task']}" + (f" (group {d['group']})" if d["group"] else ""),
        f"  kind: {d['kind']}   {d['num_fewshot']}-shot   backend {d['backend']}   dtype {d['dtype']}",
        f"  status: {d['status']}   items: {items}   started {d['created_at']}"
        + (f"   finished {d['finished_at']}" if d["finished_at"] else ""),
    ]
    cfg = d.get("run_config") or {}
    for key in sorted(cfg):
        lines.append(f"  {key}: {json.dumps(cfg[key], ensure_ascii=False)}")
    if d["metrics"]:
        width = max(len(r["metric"]) for r in d["metrics"])
        fwidth = max(len(r["filter"] or "") for r in d["metrics"])
        lines.append("  metrics" + (" (per filter)" if any(r["filter"] for r in d["metrics"]) else "") + ":")
        for r in d["metrics"]:
            mark = "  <- primary" if r["name"] == d["primary_metric"] else ""
            lines.append(f"    {r['metric']:<{width}}  {(r['filter'] or ''):<{fwidth}}  {_fmt(r['value'], r['stderr'])}{mark}")
    else:
        lines.append("  metrics: none yet (the run is unfinished)")
    g = d.get("generations")
    if g:
        reasons = ", ".join(f"{k} {v}" for k, v in g["stop_reasons"].items()) or "none"
        lines.append(f"  samples: {g['n_samples']}   stop reasons: {reasons}")
        if g["mean_tokens"] is not None:
            lines.append(f"  generated tokens: mean {g['mean_tokens']:.1f}, max {g['max_tokens']}"
                         + (f"   time {g['seconds']:.1f} s" if g["seconds"] else ""))
        for name, u in g["unextracted"].items():
            if u["count"]:
                lines.append(f"  no answer extracted by {name}: {u['count']} of {g['n_samples']} samples "
                             f"(e.g. items {', '.join(map(str, u['items']))}; see --item N)")
    return "\n".join(lines)


def item_text(d: dict[str, Any]) -> str:
    lines = [f"run {d['run_id'][:10]}: {d['model']} on {d['task']}, item {d['item_id']} ({d['kind']})"]
    if d["metadata"]:
        lines.append("metadata: " + json.dumps(d["metadata"], ensure_ascii=False))
    if d["metrics"]:
        lines.append("metrics: " + "   ".join(f"{k} = {_fmt(v)}" for k, v in d["metrics"].items()))
    if d["kind"] == "generate_until":
        lines.append(f"gold: {d['gold']!r}")
        lines.append("----- prompt -----")
        lines.append(d["prompt"] if d["prompt"] is not None else "(not stored)")
        for s in d["samples"]:
            lines.append(f"----- sample {s['index']}: stop reason {s['stop_reason']}, {s['n_tokens']} tokens, "
                         f"{s['seconds']:.2f} s -----")
            lines.append(s["text"])
            lines.append("-----")
            for name, ans in s["extracted"].items():
                ok = s["correct"].get(name)
                verdict = "correct" if ok == 1.0 else ("wrong" if ok == 0.0 else f"score {_fmt(ok)}")
                lines.append(f"  {name}: extracted {ans!r} vs gold {d['gold']!r}: {verdict}")
            extra = [k for k in s["correct"] if k not in s["extracted"]]
            for name in extra:
                lines.append(f"  {name}: {_fmt(s['correct'][name])}")
    else:
        lines.append(f"gold: choice {d['gold']}")
        lines.append(f"  {'choice':>6}  {'loglik':>12}  {'tokens':>6}  greedy")
        for c in d["choices"]:
            marks = " ".join(m for m, on in (("gold", c["gold"]), ("argmax", c["argmax"])) if on)
            ntok = "-" if c["n_tokens"] is None else str(c["n_tokens"])
            lines.append(f"  {c['choice']:>6}  {c['loglik']:>12.4f}  {ntok:>6}  {'yes' if c['is_greedy'] else 'no ':<6} {marks}".rstrip())
    return "\n".join(lines)
