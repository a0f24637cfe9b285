"""Figures of an elicitation study (:class:`~sharpbench.elicit.result.ElicitResult`).

Each function draws one matplotlib figure on the Agg canvas (no pyplot, no
display needed) and returns it, or writes it to ``path`` (PNG, SVG or PDF by
the suffix) and returns the path. Every axes that shows data has a title and
both axis labels, so the figures embed in the HTML report as they are.

* :func:`method_heatmap`: model x method, one panel per task (score or gain);
* :func:`ratio_vs_size`: elicited / plain against the number of parameters;
* :func:`prompt_variance`: spread of accuracy across prompt arms per model;
* :func:`cost_vs_gain`: tokens processed per item against the gain over plain.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import CellResult, ElicitResult, MethodScore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METHOD_ORDER",
    "cost_vs_gain",
    "method_columns",
    "method_heatmap",
    "prompt_variance",
    "ratio_vs_size",
]

METHOD_ORDER = (
    "plain", "variants", "system-prompts", "direct", "cot", "self-consistency", "vote", "probe", "prior", "elicited",
)
"""The column order of every method table and plot; a method is placed by its name before any ``:``
(``self-consistency:8`` sits with ``self-consistency``). Unknown methods go just before ``elicited``, in order of
appearance."""

_SKIPPED_COLOUR = "#c8c8c8"
_NOT_RUN_COLOUR = "#ffffff"


# --------------------------------------------------------------------------------------------- helpers


def _check(result: ElicitResult) -> None:
    if not isinstance(result, ElicitResult):
        raise ElicitError(f"expected an ElicitResult, got {type(result).__name__}")
    if not result.cells:
        raise ElicitError("nothing to plot: the result has no model x task cells; run `sharpbench elicit` first")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: str | Path | None) -> Figure | Path:
    if path is None:
        return fig
    p = Path(path)
    if not p.parent.exists():
        raise ElicitError(f"cannot write {p}: folder {p.parent} does not exist")
    fig.savefig(p, dpi=110)
    return p


def _short(label: Any, n: int = 32) -> str:
    s = str(label)
    return s if len(s) <= n else s[: n - 1] + "…"


def _method_rank(name: str) -> float:
    base = name.split(":", 1)[0]
    return METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER) - 1.5  # before elicited


def _fmt(x: float, value: str) -> str:
    r = round(float(x), 2) + 0.0  # no "-0.00"
    return f"{r:.2f}" if value == "score" else ("+0.00" if r == 0 else f"{r:+.2f}")


def method_columns(result: ElicitResult) -> list[str]:
    """Every method in the result, in :data:`METHOD_ORDER`, ending with ``elicited``."""
    seen = dict.fromkeys(m.method for c in result.cells for m in c.methods)
    seen.setdefault("elicited")
    names = list(seen)
    return sorted(names, key=lambda n: (_method_rank(n), names.index(n)))


def cell_method(cell: CellResult, name: str) -> MethodScore | None:
    """The cell's row for ``name``; ``elicited`` is built from the cell when it has no row of its own."""
    m = cell.method(name)
    if m is None and name == "elicited":
        gain = cell.elicited - cell.plain
        return MethodScore("elicited", cell.elicited, cell.elicited_low, cell.elicited_high, gain=gain)
    if m is not None and m.method == "plain" and m.gain is None and m.score is not None:
        m = replace(m, gain=0.0)
    return m


# --------------------------------------------------------------------------------------------- heatmap


def method_heatmap(result: ElicitResult, value: str = "score", *, path: str | Path | None = None) -> Figure | Path:
    """Model x method heatmap, one panel per task, each cell annotated with its value.

    Parameters
    ----------
    result
        The study.
    value
        ``"score"`` (held-out accuracy, colour scale 0 to 1) or ``"gain"`` (score minus plain,
        colour scale centred on 0).
    path
        Write the figure there instead of returning it.

    Returns
    -------
    Figure or Path
        Columns follow :data:`METHOD_ORDER`. A skipped method is a grey cell reading "skipped";
        a method that was not asked for in that cell is white and reads "not run".
    """
    import matplotlib as mpl

    _check(result)
    if value not in ("score", "gain"):
        raise ElicitError(f"unknown heatmap value {value!r}: use 'score' or 'gain'")
    cols, models, tasks = method_columns(result), result.models, result.tasks
    grids, status = {}, {}
    for t in tasks:
        v = np.full((len(models), len(cols)), np.nan)
        s = np.full((len(models), len(cols)), "not run", dtype=object)
        for i, mod in enumerate(models):
            try:
                cell = result.cell(mod, t)
            except KeyError:
                continue
            for j, name in enumerate(cols):
                m = cell_method(cell, name)
                if m is None:
                    continue
                if m.skipped:
                    s[i, j] = "skipped"
                    continue
                x = m.score if value == "score" else m.gain
                if x is None:
                    continue
                v[i, j], s[i, j] = x, "ok"
        grids[t], status[t] = v, s
    if value == "score":
        cmap, vmin, vmax, cbar = mpl.colormaps["viridis"], 0.0, 1.0, "held-out accuracy (fraction correct)"
    else:
        span = max((np.nanmax(np.abs(g)) for g in grids.values() if np.isfinite(g).any()), default=0.0) or 0.05
        cmap, vmin, vmax, cbar = mpl.colormaps["RdBu"], -span, span, "gain over plain (accuracy points, fraction)"
    cmap = cmap.with_extremes(bad=_SKIPPED_COLOUR)
    norm = mpl.colors.Normalize(vmin, vmax)
    heights = [0.42 * len(models) + 1.3 for _ in tasks]
    fig = _new_figure(max(6.5, 0.95 * len(cols) + 3.2), sum(heights) + 0.4)
    axes = fig.subplots(len(tasks), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    im = None
    for ax, t in zip(axes, tasks):
        v, s = grids[t], status[t]
        im = ax.imshow(np.ma.masked_invalid(v), aspect="auto", cmap=cmap, norm=norm)
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if s[i, j] == "not run":
                    ax.add_patch(mpl.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=_NOT_RUN_COLOUR,
                                                       edgecolor="#e0e0e0"))
                    ax.text(j, i, "not run", ha="center", va="center", fontsize=6.5, color="#909090")
                elif s[i, j] == "skipped":
                    ax.text(j, i, "skipped", ha="center", va="center", fontsize=7, color="#404040",
                            style="italic")
                else:
                    x = v[i, j]
                    shade = norm(x)
                    dark = shade < 0.45 if value == "score" else abs(shade - 0.5) > 0.3
                    ax.text(j, i, _fmt(x, value), ha="center", va="center", fontsize=7.5,
                            color="white" if dark else "black")
        ax.set_xticks(range(len(cols)), [_short(c, 20) for c in cols], rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(models)), [_short(m) for m in models], fontsize=8)
        what = "held-out score" if value == "score" else "gain over plain"
        ax.set(title=f"{_short(t, 40)}: {what} per method", xlabel="method", ylabel="model")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.9 if len(tasks) > 1 else 1.0)
    cb.set_label(cbar)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------- ratio vs size


def _task_colours(tasks: list[str]) -> dict[str, Any]:
    import matplotlib as mpl

    pal = mpl.colormaps["tab10"]
    return {t: pal(i % 10) for i, t in enumerate(tasks)}


def ratio_vs_size(result: ElicitResult, *, path: str | Path | None = None) -> Figure | Path:
    """Elicited / plain ratio against model size, with its interval, one series (colour) per task.

    Parameters
    ----------
    result
        The study.
    path
        Write the figure there instead of returning it.

    Returns
    -------
    Figure or Path
        x: parameters (log scale); y: ratio with its 95% interval as error bars. Filled markers:
        instruct models (with a chat template); hollow: base models; a cross: not known. Models
        whose size is unknown and cells whose plain score is 0 (ratio undefined) are left out and
        named in the legend. Tasks are nudged sideways a little so their bars do not overlap.
    """
    from matplotlib.lines import Line2D

    _check(result)
    tasks = result.tasks
    colours = _task_colours(tasks)
    fig = _new_figure(8.5, 5.0)
    ax = fig.subplots()
    no_size = [m for m in result.models if all(c.params is None for c in result.cells if c.model == m)]
    no_ratio, top = [], {}
    shown, unknown_template = 0, False
    for k, t in enumerate(tasks):
        nudge = 10 ** (0.018 * (k - (len(tasks) - 1) / 2))
        for c in (c for c in result.cells if c.task == t):
            if c.params is None or not c.params > 0:
                continue
            if c.ratio is None or not math.isfinite(c.ratio):
                no_ratio.append(f"{c.model} / {c.task}")
                continue
            lo = c.ratio_low if c.ratio_low is not None else c.ratio
            hi = c.ratio_high if c.ratio_high is not None else c.ratio
            face = colours[t] if c.instruct else "none"
            marker = "x" if c.instruct is None else "o"
            unknown_template |= c.instruct is None
            ax.errorbar([c.params * nudge], [c.ratio], yerr=[[max(c.ratio - lo, 0)], [max(hi - c.ratio, 0)]],
                        fmt=marker, ms=7, mfc=face, mec=colours[t], color=colours[t], capsize=3, lw=1.2)
            top[c.model] = (c.params, max(hi, top.get(c.model, (0, -np.inf))[1]))
            shown += 1
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    if shown:
        ax.set_xscale("log")
        for model, (x, y) in top.items():
            ax.annotate(_short(model, 28), (x, y), xytext=(0, 6), textcoords="offset points", ha="center",
                        fontsize=7, color="#333333")
        xs = [x for x, _ in top.values()]
        ax.set_xlim(min(xs) / 2.2, max(xs) * 2.2)
        ax.margins(y=0.15)
    else:
        ax.set_xscale("log")
        ax.set_xlim(1e7, 1e11)
        ax.text(0.5, 0.5, "no model with a known size and a plain score above 0", transform=ax.transAxes,
                ha="center", va="center", color="#555555")
    handles = [Line2D([], [], color=colours[t], marker="o", ls="none", label=_short(t, 30)) for t in tasks]
    handles += [
        Line2D([], [], color="black", marker="o", ls="none", label="filled: instruct (chat template)"),
        Line2D([], [], color="black", marker="o", mfc="none", ls="none", label="hollow: base model"),
        Line2D([], [], color="grey", ls="--", label="elicited = plain"),
    ]
    if unknown_template:
        handles.append(Line2D([], [], color="black", marker="x", ls="none", label="x: chat template unknown"))
    if no_size:
        handles.append(Line2D([], [], ls="none", label=_short("not shown, size unknown: " + ", ".join(no_size), 90)))
    if no_ratio:
        handles.append(Line2D([], [], ls="none",
                              label=_short("not shown, plain score 0: " + ", ".join(no_ratio), 90)))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set(title="Elicited / plain score against model size (95% interval)",
           xlabel="model parameters (log scale)", ylabel="ratio: held-out elicited / plain")
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------- prompt variance


def prompt_variance(result: ElicitResult, *, path: str | Path | None = None) -> Figure | Path:
    """Per model, the std and the range of accuracy across prompt arms, grouped bars per task.

    Parameters
    ----------
    result
        The study.
    path
        Write the figure there instead of returning it.

    Returns
    -------
    Figure or Path
        Two panels: standard deviation (left) and range, max minus min (right), of accuracy across
        the prompt arms (variants, system prompts, direct, chain of thought); one bar per task.
    """
    _check(result)
    models, tasks = result.models, result.tasks
    colours = _task_colours(tasks)
    fig = _new_figure(max(8.0, 1.4 * len(models) * max(1, len(tasks)) / 2 + 4), 4.6)
    axes = fig.subplots(1, 2)
    width = 0.8 / len(tasks)
    x = np.arange(len(models))
    for ax, attr, label in ((axes[0], "prompt_std", "std of accuracy across prompt arms (fraction)"),
                            (axes[1], "prompt_range", "range (max - min) of accuracy across arms (fraction)")):
        for k, t in enumerate(tasks):
            vals = []
            for m in models:
                try:
                    vals.append(float(getattr(result.cell(m, t), attr)))
                except KeyError:
                    vals.append(np.nan)
            ax.bar(x + (k - (len(tasks) - 1) / 2) * width, vals, width, color=colours[t], label=_short(t, 30))
        ax.set_xticks(x, [_short(m, 30) for m in models], rotation=25 if len(models) > 2 else 0, ha="right"
                      if len(models) > 2 else "center", fontsize=8)
        ax.set(xlabel="model", ylabel=label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title("Prompt sensitivity: std across prompt arms")
    axes[1].set_title("Prompt sensitivity: range across prompt arms")
    axes[1].legend(title="task", fontsize=7, title_fontsize=7)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------- cost vs gain


def cost_vs_gain(result: ElicitResult, *, path: str | Path | None = None) -> Figure | Path:
    """What each method costs against what it gains: tokens per item (log x) vs gain over plain (y).

    Parameters
    ----------
    result
        The study.
    path
        Write the figure there instead of returning it.

    Returns
    -------
    Figure or Path
        One panel per task; colour: method, marker: model; y error bars: the gain's 95% interval.
        Tokens are those the model processed for the method (prompt plus generated) divided by the
        cell's items. Skipped methods and methods without a token count are left out and named in
        the legend.
    """
    import matplotlib as mpl
    from matplotlib.lines import Line2D

    _check(result)
    models, tasks = result.models, result.tasks
    methods = [m for m in method_columns(result) if m not in ("elicited", "prior")]  # the prior costs nothing
    pal = mpl.colormaps["tab10"]
    colour = {m: pal(i % 10) for i, m in enumerate(methods)}
    markers = "osD^vP*Xh<>p"
    marker = {m: markers[i % len(markers)] for i, m in enumerate(models)}
    ncols = 1 if len(tasks) == 1 else 2
    nrows = math.ceil(len(tasks) / ncols)
    fig = _new_figure(6.0 * ncols + 3.0, 4.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    nudge = {m: 10 ** (0.012 * (i - (len(models) - 1) / 2)) for i, m in enumerate(models)}
    no_tokens: dict[str, list[str]] = {}
    used_methods: set[str] = set()
    for ax, t in zip(axes, tasks):
        drawn = 0
        for c in (c for c in result.cells if c.task == t):
            for m in c.methods:
                if m.skipped or m.method == "prior":
                    continue
                gain = 0.0 if m.method == "plain" and m.gain is None else m.gain
                if gain is None:
                    continue
                if not m.tokens or m.tokens <= 0 or c.n_items <= 0:
                    no_tokens.setdefault(m.method, []).append(f"{c.model}, {c.task}")
                    continue
                lo = m.gain_low if m.gain_low is not None else gain
                hi = m.gain_high if m.gain_high is not None else gain
                ax.errorbar([m.tokens / c.n_items * nudge[c.model]], [gain], yerr=[[max(gain - lo, 0)], [max(hi - gain, 0)]],
                            fmt=marker[c.model], ms=6, color=colour.get(m.method, "black"), capsize=2, lw=1)
                used_methods.add(m.method)
                drawn += 1
        ax.axhline(0.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        if not drawn:
            ax.set_xlim(1e1, 1e4)
            ax.text(0.5, 0.5, "no method with a token count", transform=ax.transAxes, ha="center",
                    va="center", color="#555555")
        ax.set(title=f"{_short(t, 40)}: cost and gain per method",
               xlabel="tokens processed per item (prompt + generated, log scale)",
               ylabel="gain over plain (fraction, 95% interval)")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colour[m], marker="o", ls="none", label=_short(m, 24))
               for m in methods if m in used_methods]
    handles += [Line2D([], [], color="black", marker=marker[m], mfc="none", ls="none", label=_short(m, 28))
                for m in models]
    handles.append(Line2D([], [], color="grey", ls="--", label="no gain (plain)"))
    if no_tokens:
        shown = "; ".join(f"{m} ({where[0]})" if len(where) == 1 else f"{m} ({len(where)} cells)"
                          for m, where in no_tokens.items())
        handles.append(Line2D([], [], ls="none", label=_short("not shown, no token count: " + shown, 100)))
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    return _finish(fig, path)
