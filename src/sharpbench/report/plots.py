"""Report plots; each returns an HTML ``<figure>`` (see :mod:`sharpbench.report.figures`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sharpbench.report.figures import figure_html, new_figure

__all__ = [
    "heatmap",
    "histogram",
    "icc_plot",
    "interval_plot",
    "line_plot",
    "reliability_plot",
    "scatter_plot",
]

_MAX_ROWS = 40


def _short(label: str, n: int = 38) -> str:
    s = str(label)
    return s if len(s) <= n else s[: n - 1] + "…"


def interval_plot(
    labels: Sequence[str], values: np.ndarray, low: np.ndarray, high: np.ndarray, *,
    title: str, xlabel: str, ylabel: str = "model", caption: str = "", lower_is_better: bool = False,
    xlim: tuple[float, float] | None = None,
) -> str:
    """Horizontal point-and-interval plot (e.g. accuracy with 95% CIs), best at the top.

    ``lower_is_better`` (e.g. ranks) puts the smallest value at the top and inverts the x axis.
    ``xlim`` fixes the x range (e.g. (0, 1) for fractions); intervals are clipped to it.
    """
    key = np.asarray(values, dtype=float)
    order = np.argsort(-key if lower_is_better else key)[-_MAX_ROWS:]
    labels = [_short(labels[i], 56) for i in order]
    v, lo, hi = (np.asarray(a, dtype=float)[order] for a in (values, low, high))
    if xlim is not None:
        lo, hi = np.clip(lo, *xlim), np.clip(hi, *xlim)
    fig, ax = new_figure(8.5, max(2.5, 0.28 * len(labels) + 1.2))
    y = np.arange(len(labels))
    ax.errorbar(v, y, xerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], fmt="o", ms=4, capsize=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if xlim is not None:
        pad = 0.02 * (xlim[1] - xlim[0])
        ax.set_xlim(xlim[0] - pad, xlim[1] + pad)
    if lower_is_better:
        ax.invert_xaxis()
    ax.grid(axis="x", alpha=0.3)
    return figure_html(fig, caption)


def heatmap(
    table: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, cbar: str, caption: str = "",
    center: float | None = None,
) -> str:
    """Annotated heatmap of a models x columns table (rows limited to the first 40)."""
    t = table.iloc[:_MAX_ROWS]
    fig, ax = new_figure(max(6.0, 0.55 * t.shape[1] + 3.5), max(3.0, 0.3 * t.shape[0] + 1.8))
    v = t.to_numpy(dtype=float)
    cmap, kw = "viridis", {}
    if center is not None:
        span = np.nanmax(np.abs(v - center)) or 1.0
        cmap, kw = "RdBu", {"vmin": center - span, "vmax": center + span}
    im = ax.imshow(v, aspect="auto", cmap=cmap, **kw)
    ax.set_xticks(range(t.shape[1]), [_short(c, 30) for c in t.columns], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(t.shape[0]), [_short(r) for r in t.index], fontsize=7)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label(cbar)
    return figure_html(fig, caption)


def reliability_plot(curves: dict[str, pd.DataFrame], *, title: str, caption: str = "") -> str:
    """Reliability diagram: accuracy vs mean confidence per bin, one line per model."""
    fig, ax = new_figure(5.5, 4.5)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    for name, t in list(curves.items())[:10]:
        ax.plot(t["confidence"], t["accuracy"], marker="o", ms=3, label=_short(name, 50))
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title, xlabel="mean top-label confidence (probability)",
           ylabel="accuracy (fraction correct)")
    ax.legend(fontsize=7)
    return figure_html(fig, caption)


def scatter_plot(
    x: np.ndarray, y: np.ndarray, *, title: str, xlabel: str, ylabel: str, labels: Sequence[str] | None = None,
    caption: str = "", diagonal: bool = False,
) -> str:
    """Scatter, optionally annotated (up to 30 labels) and with the y = x line."""
    fig, ax = new_figure(5.5, 4.5)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ax.scatter(x, y, s=12, alpha=0.7)
    if diagonal:
        lo, hi = np.nanmin([x.min(), y.min()]), np.nanmax([x.max(), y.max()])
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey")
    if labels is not None and len(labels) <= 30:
        for xi, yi, lab in zip(x, y, labels):
            ax.annotate(_short(lab, 22), (xi, yi), fontsize=6, alpha=0.8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return figure_html(fig, caption)


def line_plot(
    series: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str, xlabel: str, ylabel: str,
    bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, caption: str = "",
) -> str:
    """Several lines (x, y) with optional shaded bands (low, high)."""
    fig, ax = new_figure(6.5, 4.0)
    for name, (x, y) in list(series.items())[:12]:
        (line,) = ax.plot(x, y, marker=".", label=_short(name, 30))
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return figure_html(fig, caption)


def icc_plot(a: np.ndarray, d: np.ndarray, names: Sequence[str], *, title: str, caption: str = "") -> str:
    """Item characteristic curves of 2PL items, P = sigmoid(a * theta + d)."""
    theta = np.linspace(-4, 4, 161)
    fig, ax = new_figure(6.0, 4.0)
    for ai, di, n in list(zip(a, d, names))[:12]:
        ax.plot(theta, 1 / (1 + np.exp(-(ai * theta + di))), label=_short(n, 20))
    ax.set(title=title, xlabel="ability theta (logits)", ylabel="P(correct) (probability)", ylim=(0, 1))
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    return figure_html(fig, caption)


def histogram(values: np.ndarray, *, title: str, xlabel: str, caption: str = "", bins: int = 30) -> str:
    """Histogram of a numeric array (count on the y axis)."""
    fig, ax = new_figure(6.0, 3.5)
    v = np.asarray(values, dtype=float)
    ax.hist(v[np.isfinite(v)], bins=bins)
    ax.set(title=title, xlabel=xlabel, ylabel="count (items)")
    return figure_html(fig, caption)
