"""Report sections from the JSON artifacts other analyses save in the store.

Renderers know the usual payload shapes (IRT item parameters, distillation
scores, adaptive trajectories, diffs, correlations, sensitivity) but never trust
them: a payload they cannot read falls back to a generic table view, so a
changed schema degrades the report instead of breaking it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.report import plots
from sharpbench.report.sections import Section, table_html

__all__ = ["artifact_sections", "records"]

_TITLES = {
    "irt": "IRT item maps", "distill_hard": "Hard-subset distillation", "distill_tiny": "Tiny-subset distillation",
    "adaptive": "Adaptive testing", "diff": "Model diffs", "correlate": "Correlations",
    "sensitivity": "Prompt sensitivity", "elicit": "Elicitation studies", "pareto": "Pareto fronts", "skills": "Skill analyses",
    "rank": "Rank aggregation (saved)", "calibration": "Calibration (saved)",
}


def records(obj: Any) -> pd.DataFrame | None:
    """A DataFrame from a list of records or a dict of equal-length lists; None otherwise."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        return pd.DataFrame(obj)
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        lens = {len(v) for v in obj.values()}
        if len(lens) == 1:
            return pd.DataFrame(obj)
    return None


def _generic(name: str, payload: dict) -> list[str]:
    blocks = []
    scalars = {k: v for k, v in payload.items() if isinstance(v, (int, float, str, bool)) or v is None}
    if scalars:
        blocks.append(table_html(pd.DataFrame({"value": {k: str(v) for k, v in scalars.items()}})))
    for k, v in payload.items():
        df = records(v)
        if df is not None:
            df = df.map(lambda x: x if isinstance(x, (int, float, str, bool)) or x is None else str(x)[:60])
            blocks.append(f"<h4>{html.escape(k)}</h4>" + table_html(df, max_rows=20))
        elif isinstance(v, list) and v and all(isinstance(x, (str, int, float)) for x in v):
            blocks.append(f"<p><b>{html.escape(k)}</b>: {html.escape(', '.join(map(str, v[:30])))}"
                          f"{' …' if len(v) > 30 else ''}</p>")
    return blocks


def _short_title(name: str, what: str, n: int = 60) -> str:
    """``"<name>: <what>"`` with the name shortened so the title fits the figure."""
    keep = max(8, n - len(what) - 2)
    return f"{name if len(name) <= keep else name[: keep - 1] + '…'}: {what}"


def _numeric_cols(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def _irt(name: str, p: dict) -> list[str]:
    items = records(p.get("items")) if "items" in p else records(p)
    if items is None or "a" not in items.columns:
        raise KeyError("items with a")
    a = items["a"].to_numpy(float)
    if "b" in items.columns:
        b = items["b"].to_numpy(float)
        d = items["d"].to_numpy(float) if "d" in items.columns else -a * b
    else:
        d = items["d"].to_numpy(float)
        b = -d / np.where(a == 0, np.nan, a)
    ids = items[items.columns[0]].astype(str).tolist() if items.columns[0] not in ("a", "b", "d") else \
        [str(i) for i in items.index]
    inside = np.isfinite(b) & (np.abs(b) <= 6)
    note = f" ({int((~inside).sum())} items with |b| > 6 not shown)" if (~inside).any() else ""
    out = [plots.scatter_plot(b[inside], a[inside], title=_short_title(name, "difficulty vs discrimination"),
                              xlabel="difficulty b = -d/a (logits)", ylabel="discrimination a (per logit)",
                              labels=[i for i, k in zip(ids, inside) if k] if inside.sum() <= 30 else None,
                              caption=f"Slope-intercept fit a*theta + d; b = -d/a{note}.")]
    pick = np.argsort(-a)[: min(8, a.size)]
    out.append(plots.icc_plot(a[pick], d[pick], [ids[i] for i in pick],
                              title=f"{name}: ICCs of the most discriminating items"))
    ab = records(p.get("abilities"))
    if ab is not None:
        out.append(table_html(ab, max_rows=30))
    return out


def _distill_hard(name: str, p: dict) -> list[str]:
    out = []
    scores = records(p.get("scores"))
    metrics = records(p.get("metrics"))
    if scores is not None and "fraction_deleted" in scores.columns:
        # score-trend: x = fraction of items deleted, one line per model (top models and the reference)
        x = scores["fraction_deleted"].to_numpy(float)
        models = [c for c in _numeric_cols(scores) if c != "fraction_deleted"]
        ref = p.get("reference")
        keep = [m for m in [ref, *(p.get("top_models") or [])] if m in models][:10] or models[:10]
        out.append(plots.line_plot({m: (x, scores[m].to_numpy(float)) for m in keep},
                                   title=_short_title(name, "score trend (reference + top models)"),
                                   xlabel="fraction of items deleted (share)", ylabel="score (fraction correct)"))
    elif scores is not None:
        out.append(table_html(scores, max_rows=30))
    if metrics is not None and "fraction_deleted" in metrics.columns:
        x = metrics["fraction_deleted"].to_numpy(float)
        series = {c: (x, metrics[c].to_numpy(float)) for c in ("std_top", "voter_penalty") if c in metrics.columns}
        if series:
            out.append(plots.line_plot(series, title=_short_title(name, "discrimination and voter penalty"),
                                       xlabel="fraction of items deleted (share)",
                                       ylabel="std of top-N / voter penalty (fraction correct)"))
    summary = records(p.get("summary"))
    if summary is not None:
        out.append(table_html(summary, index=False))
    if not out:
        raise KeyError("no scores/metrics")
    return out


def _fmt(v: Any) -> str:
    """A summary value for a table: floats to 3 decimals, a 2-number list as an interval ``lo – hi``."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"{_fmt(float(v[0]))} – {_fmt(float(v[1]))}"
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return ", ".join(_fmt(float(x)) for x in v[:10]) + (" …" if len(v) > 10 else "")
    return str(v)


def _adaptive(name: str, p: dict) -> list[str]:
    traj = records(p.get("trajectory"))
    if traj is None or "theta" not in traj.columns:
        raise KeyError("trajectory")
    x = np.arange(1, len(traj) + 1)
    th = traj["theta"].to_numpy(float)
    se = traj["se"].to_numpy(float) if "se" in traj.columns else np.zeros_like(th)
    out = [plots.line_plot({"theta": (x, th)}, bands={"theta": (th - se, th + se)},
                           title=_short_title(name, "ability trajectory (± 1 SE)"), xlabel="items administered (count)",
                           ylabel="theta estimate (logits)")]
    if isinstance(p.get("summary"), dict):
        summary = {(f"{k} (95% interval)" if k.endswith("_ci") else k): _fmt(v) for k, v in p["summary"].items()}
        out.append(table_html(pd.DataFrame({"value": summary})))
    return out


def _diff(name: str, p: dict) -> list[str]:
    deltas = records(p.get("deltas"))
    out = []
    if deltas is not None and {"delta", "ci_low", "ci_high"} <= set(deltas.columns):
        lab = [" ".join(str(r.get(k, "")) for k in ("task", "metric")).strip() or str(i)
               for i, r in deltas.iterrows()]
        out.append(plots.interval_plot(lab, 100 * deltas["delta"].to_numpy(float),
                                       100 * deltas["ci_low"].to_numpy(float), 100 * deltas["ci_high"].to_numpy(float),
                                       title=f"{name}: modified − base (95% CI)", xlabel="difference (points)",
                                       ylabel="task / metric"))
    if isinstance(p.get("verdicts"), list):
        out.append("<ul>" + "".join(f"<li>{html.escape(str(v))}</li>" for v in p["verdicts"]) + "</ul>")
    if not out:
        raise KeyError("deltas")
    return out


def _correlate(name: str, p: dict) -> list[str]:
    corr = records(p.get("correlations"))
    table = records(p.get("table"))
    if corr is None and table is None:
        raise KeyError("correlations")
    out = []
    if table is not None:
        num = [c for c in _numeric_cols(table) if not str(c).endswith("rank")]
        ref = p.get("reference")
        if ref in table.columns and len(num) >= 2:
            other = next(c for c in num if c != ref)
            out.append(plots.scatter_plot(table[ref].to_numpy(float), table[other].to_numpy(float),
                                          title=f"{name}: {other} vs {ref}", xlabel=f"{ref} (reference score)",
                                          ylabel=f"{other} (metric value)",
                                          labels=table[table.columns[0]].astype(str).tolist()))
    if corr is not None:
        out.append(table_html(corr.map(lambda x: str(x) if isinstance(x, (list, dict)) else x), index=False))
    return out


def _sensitivity(name: str, p: dict) -> list[str]:
    """``sharpbench sensitivity`` payload: per model, accuracy per prompt variant plus summary figures."""
    models = p.get("models")
    if not isinstance(models, list) or not models or not isinstance(models[0].get("accuracy"), dict):
        raise KeyError("models with accuracy per variant")
    acc = pd.DataFrame({m["model"]: m["accuracy"] for m in models}).T  # models x variants
    acc.index.name = "model"
    out = [plots.heatmap(acc, title=_short_title(name, "accuracy per prompt variant"),
                         xlabel="prompt variant", ylabel="model", cbar="accuracy (fraction correct)")]
    keys = ("n_items", "plain", "mean", "std", "min", "max", "spread", "best_variant", "best_ratio_to_plain",
            "majority_vote", "held_out_best", "optimism")
    summary = pd.DataFrame([{k: m.get(k) for k in ("model", *keys)} for m in models])
    # figures an older payload lacks are left out (a column) or blank (a cell), never printed as "None"
    summary = summary.dropna(axis=1, how="all")
    out.append(table_html(summary.astype(object).where(summary.notna(), ""), index=False))
    return out


_RENDERERS: dict[str, Callable[[str, dict], list[str]]] = {
    "irt": _irt, "distill_hard": _distill_hard, "adaptive": _adaptive, "diff": _diff,
    "correlate": _correlate, "sensitivity": _sensitivity,
}


_CAL_COLS = ("n_items", "accuracy", "mean_confidence", "ece", "brier", "dcs", "binning")


def _calibration_kind(arts: list[dict], min_items: int = 10) -> list[str] | None:
    """All saved ``calibration`` results (one per run, from ``calibration --save``) as one table.

    Rows are sorted by size (most items first); the note counts those below ``min_items``.
    """
    rows = [{"run": str(a["name"]), **{c: a["payload"].get(c) for c in _CAL_COLS}}
            for a in arts if isinstance(a.get("payload"), dict)]
    if not rows or not any(r["ece"] is not None for r in rows):
        return None
    df = pd.DataFrame(rows).dropna(axis=1, how="all").sort_values("run").reset_index(drop=True)
    out = []
    if "binning" in df.columns and df["binning"].nunique() == 1:  # one binning: say it once
        out.append(f'<p class="note">ECE binning: {html.escape(str(df["binning"].iloc[0]))}.</p>')
        df = df.drop(columns="binning")
    if "n_items" in df.columns:  # the runs with most items first; say how many are small
        df = df.sort_values(["n_items", "run"], ascending=[False, True], kind="stable").reset_index(drop=True)
        small = int((df["n_items"].fillna(0).astype(float) < min_items).sum())
        if small:
            out.append(f'<p class="note">Largest runs first; {small} of {len(df)} have fewer than {min_items} '
                       "items (their ECE is mostly noise).</p>")
    return [*out, table_html(df, index=False, max_rows=200)]


def _elicit_kind(arts: list[dict], min_items: int = 10) -> list[str] | None:
    """Saved ``sharpbench elicit`` studies: each one's summary table (the full page: ``elicit --report``)."""
    from sharpbench.elicit.result import ElicitResult
    from sharpbench.report.elicit_tables import summary_table

    blocks = []
    for a in arts[:6]:
        res = ElicitResult.from_dict(a["payload"])
        blocks += [f"<h3>{html.escape(str(a['name']))}</h3>", table_html(summary_table(res), index=False)]
    return blocks


_KIND_RENDERERS: dict[str, Callable[..., list[str] | None]] = {"calibration": _calibration_kind,
                                                                "elicit": _elicit_kind}
#: Artifact kinds that cache per-item work for reruns (the elicitation probe), not results to show.
HIDDEN_KINDS = frozenset({"elicit-probe", "elicit-cost"})


def artifact_sections(artifacts: list[dict], *, min_items: int = 10) -> list[Section]:
    """One section per artifact kind; each artifact rendered by its kind's renderer or generically."""
    from sharpbench.report.figures import ReportError

    by_kind: dict[str, list[dict]] = {}
    for a in artifacts:
        if str(a["kind"]) not in HIDDEN_KINDS:
            by_kind.setdefault(str(a["kind"]), []).append(a)
    order = list(_TITLES)
    out = []
    for kind, arts in sorted(by_kind.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order),
                                                              kv[0])):
        sec = Section(_TITLES.get(kind, kind.replace("_", " ").capitalize()),
                      f"{len(arts)} saved {html.escape(kind)} result(s).")
        whole = _KIND_RENDERERS.get(kind)
        try:
            blocks = whole(arts, min_items=min_items) if whole is not None else None
        except (KeyError, TypeError, ValueError, AttributeError):
            blocks = None
        if blocks is not None:
            sec.blocks.extend(blocks)
            out.append(sec)
            continue
        for a in arts[:6]:
            name, payload = str(a["name"]), a["payload"]
            sec.blocks.append(f"<h3>{html.escape(name)}</h3>")
            fn = _RENDERERS.get(kind)
            try:
                blocks = fn(name, payload) if fn is not None and isinstance(payload, dict) else None
            except (KeyError, TypeError, ValueError, ReportError):
                blocks = None
            if blocks is None:
                blocks = _generic(name, payload) if isinstance(payload, dict) else [
                    f"<pre>{html.escape(str(payload)[:2000])}</pre>"]
            sec.blocks.extend(blocks)
        if len(arts) > 6:
            sec.blocks.append(f'<p class="note">{len(arts) - 6} more {html.escape(kind)} results not shown</p>')
        out.append(sec)
    return out
