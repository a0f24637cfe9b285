"""Embed matplotlib figures in HTML as base64 PNG, with their title and axis labels as data attributes.

Every axes that draws data must carry a title and both axis labels; a figure
without them is a bug, so :func:`figure_html` raises :class:`ReportError`.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from sharpbench.errors import InputError

__all__ = ["ReportError", "figure_html", "new_figure"]


class ReportError(InputError, RuntimeError):
    """The report cannot be built; the message says what to do."""


def new_figure(width: float = 7.0, height: float = 4.0, ncols: int = 1) -> tuple[Any, Any]:
    """A matplotlib figure (Agg backend) and its axes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=(width, height), constrained_layout=True)
    return fig, ax


def _is_colorbar(ax: Any) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def figure_html(fig: Any, caption: str = "", dpi: int = 90) -> str:
    """Render ``fig`` to a ``<figure>`` with an embedded PNG, then close it.

    The ``<figure>`` carries ``data-title``, ``data-xlabel`` and ``data-ylabel``
    (axes joined by `` | ``) and the image's ``alt`` text lists them.
    """
    import matplotlib.pyplot as plt

    titles, xlabels, ylabels = [], [], []
    for ax in fig.axes:
        if _is_colorbar(ax) or not ax.get_visible():
            continue
        t, x, y = ax.get_title(), ax.get_xlabel(), ax.get_ylabel()
        if not (t and x and y):
            plt.close(fig)
            raise ReportError(f"plot axes lacks a title or axis label (title={t!r}, x={x!r}, y={y!r})")
        titles.append(t)
        xlabels.append(x)
        ylabels.append(y)
    if not titles:
        plt.close(fig)
        raise ReportError("figure has no axes to show")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    title, xl, yl = (" | ".join(v) for v in (titles, xlabels, ylabels))
    alt = f"{title}. x axis: {xl}. y axis: {yl}."
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="plot" data-title="{html.escape(title)}" data-xlabel="{html.escape(xl)}" '
        f'data-ylabel="{html.escape(yl)}"><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
        f"{cap}</figure>"
    )
