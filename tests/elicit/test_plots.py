"""The elicitation study's figures, drawn from results built with the schema (see elicit_samples.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from elicit_samples import ODD_MODEL, TASKS, sample_result, single_result

from sharpbench.elicit import plots
from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import ElicitResult

ORDER = ["plain", "variants", "system-prompts", "direct", "cot", "self-consistency:8", "vote", "probe", "elicited"]


@pytest.fixture(scope="module")
def result() -> ElicitResult:
    return sample_result()


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _labelled(fig) -> None:
    axes = _data_axes(fig)
    assert axes
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _text_at(ax, x, y) -> str:
    return next(t.get_text() for t in ax.texts if t.get_position() == (x, y))


def _legend_texts(fig_or_ax) -> list[str]:
    legends = [fig_or_ax.get_legend()] if hasattr(fig_or_ax, "get_legend") else []
    legends += list(getattr(fig_or_ax, "legends", []))
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


# --------------------------------------------------------------------------------------------- columns


def test_method_columns_follow_the_fixed_order_whatever_the_input_order(result):
    assert plots.method_columns(result) == ORDER
    shuffled = dataclasses.replace(result.cells[0], methods=list(reversed(result.cells[0].methods)))
    extra = dataclasses.replace(shuffled, methods=shuffled.methods + [dataclasses.replace(
        shuffled.methods[0], method="mystery")])
    assert plots.method_columns(ElicitResult([extra])) == ORDER[:-1] + ["mystery", "elicited"]


def test_elicited_column_comes_from_the_cell_when_it_has_no_row(result):
    c = result.cell("gemma-3-270m", "mmlu")
    m = plots.cell_method(c, "elicited")
    assert (m.score, m.low, m.high) == (c.elicited, c.elicited_low, c.elicited_high)
    assert m.gain == pytest.approx(c.elicited - c.plain)
    assert plots.cell_method(c, "nothing-like-it") is None


# --------------------------------------------------------------------------------------------- heatmap


def test_heatmap_one_panel_per_task_values_and_skipped_cells(result):
    fig = plots.method_heatmap(result)
    axes = _data_axes(fig)
    assert [ax.get_title() for ax in axes] == [f"{t}: held-out score per method" for t, *_ in TASKS]
    _labelled(fig)
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ORDER
        assert [t.get_text() for t in ax.get_yticklabels()] == result.models
    mmlu, _, gsm = axes
    # the llamacpp model cannot run the probe: one grey "skipped" cell on a multiple-choice task ...
    assert _texts(mmlu).count("skipped") == 1
    assert _text_at(mmlu, ORDER.index("probe"), result.models.index(ODD_MODEL)) == "skipped"
    # ... and on gsm8k also variants and vote for every model (no answer choices)
    assert _texts(gsm).count("skipped") == 2 * 4 + 1
    q = result.models.index("qwen2.5-coder-1.5b-instruct")
    cell = result.cell("qwen2.5-coder-1.5b-instruct", "mmlu")
    assert _text_at(mmlu, 0, q) == f"{cell.plain:.2f}"
    assert _text_at(mmlu, ORDER.index("elicited"), q) == f"{cell.elicited:.2f}"
    arr = mmlu.images[0].get_array()
    assert arr.mask[result.models.index(ODD_MODEL), ORDER.index("probe")]  # drawn grey, not coloured
    assert arr[q, 0] == pytest.approx(cell.plain)
    _close(fig)


def test_heatmap_gain_is_centred_on_zero_and_plain_reads_zero(result):
    fig = plots.method_heatmap(result, value="gain")
    ax = _data_axes(fig)[0]
    assert ax.get_title() == "mmlu: gain over plain per method"
    lo, hi = ax.images[0].get_clim()
    assert lo == pytest.approx(-hi) and hi > 0
    assert all(_text_at(ax, 0, i) == "+0.00" for i in range(len(result.models)))
    assert not any(t == "-0.00" for a in _data_axes(fig) for t in _texts(a))
    cell = result.cell("smollm2-135m-instruct", "mmlu")
    gain = cell.method("probe").gain
    assert _text_at(ax, ORDER.index("probe"), 0) == f"{gain:+.2f}"
    _close(fig)
    with pytest.raises(ElicitError, match="'score' or 'gain'"):
        plots.method_heatmap(result, value="ratio")


def test_heatmap_marks_a_method_not_run_in_one_cell(result):
    cells = [dataclasses.replace(c, methods=[m for m in c.methods if m.method != "cot"])
             if c.model == "gemma-3-270m" and c.task == "mmlu" else c for c in result.cells]
    fig = plots.method_heatmap(ElicitResult(cells))
    mmlu = _data_axes(fig)[0]
    assert _text_at(mmlu, ORDER.index("cot"), result.models.index("gemma-3-270m")) == "not run"
    assert _texts(mmlu).count("not run") == 1
    _close(fig)


# --------------------------------------------------------------------------------------------- ratio vs size


def test_ratio_vs_size_points_markers_and_left_out_models(result):
    fig = plots.ratio_vs_size(result)
    (ax,) = _data_axes(fig)
    _labelled(fig)
    assert ax.get_xscale() == "log"
    # 3 sized models x 3 tasks, less gemma on gsm8k (plain 0: ratio undefined)
    bars = ax.containers
    assert len(bars) == 8
    xs = sorted(float(b.lines[0].get_xdata()[0]) for b in bars)
    assert xs[0] == pytest.approx(1.35e8, rel=0.1) and xs[-1] == pytest.approx(1.54e9, rel=0.1)
    ys = sorted(float(b.lines[0].get_ydata()[0]) for b in bars)
    want = sorted(c.ratio for c in result.cells if c.params and c.ratio is not None)
    assert ys == pytest.approx(want)
    faces = {str(b.lines[0].get_markerfacecolor()) for b in bars
             if abs(np.log10(b.lines[0].get_xdata()[0] / 2.68e8)) < 0.1}
    assert faces == {"none"}  # the base model is hollow
    filled = [b for b in bars if abs(np.log10(b.lines[0].get_xdata()[0] / 1.54e9)) < 0.1]
    assert all(b.lines[0].get_markerfacecolor() != "none" for b in filled)
    # error bars span the ratio's interval
    c = result.cell("qwen2.5-coder-1.5b-instruct", "gsm8k_cot")
    seg = next(b for b in bars if float(b.lines[0].get_ydata()[0]) == pytest.approx(c.ratio))
    (lo, hi), = [sorted(np.asarray(s)[:, 1]) for s in seg.lines[2][0].get_segments()]
    assert (lo, hi) == pytest.approx((c.ratio_low, c.ratio_high))
    legend = " | ".join(_legend_texts(ax))
    assert f"size unknown: {ODD_MODEL}" in legend
    assert "plain score 0: gemma-3-270m / gsm8k_cot" in legend
    assert "filled: instruct" in legend and "hollow: base" in legend
    assert "chat template unknown" not in legend  # the one such model has no size: nothing drawn as a cross
    _close(fig)


def test_ratio_vs_size_without_any_size_still_draws_a_labelled_figure(result):
    cells = [dataclasses.replace(c, params=None) for c in result.cells]
    fig = plots.ratio_vs_size(ElicitResult(cells))
    (ax,) = _data_axes(fig)
    _labelled(fig)
    assert ax.containers == [] or len(ax.containers) == 0
    assert any("no model with a known size" in t for t in _texts(ax))
    _close(fig)


def test_ratio_vs_size_marks_unknown_chat_template_with_a_cross(result):
    cells = [dataclasses.replace(c, instruct=None) if c.model == "gemma-3-270m" else c for c in result.cells]
    fig = plots.ratio_vs_size(ElicitResult(cells))
    (ax,) = _data_axes(fig)
    assert "x: chat template unknown" in _legend_texts(ax)
    assert sum(b.lines[0].get_marker() == "x" for b in ax.containers) == 2
    _close(fig)


# --------------------------------------------------------------------------------------------- prompt variance


def test_prompt_variance_bars_are_the_cells_std_and_range(result):
    fig = plots.prompt_variance(result)
    std_ax, range_ax = _data_axes(fig)
    _labelled(fig)
    for ax, attr in ((std_ax, "prompt_std"), (range_ax, "prompt_range")):
        assert len(ax.containers) == len(result.tasks)
        for bars, task in zip(ax.containers, result.tasks):
            heights = [p.get_height() for p in bars.patches]
            assert heights == pytest.approx([getattr(result.cell(m, task), attr) for m in result.models])
    assert _legend_texts(range_ax) == result.tasks
    assert [t.get_text() for t in std_ax.get_xticklabels()] == result.models
    _close(fig)


# --------------------------------------------------------------------------------------------- cost vs gain


def test_cost_vs_gain_places_each_method_at_its_tokens_per_item_and_gain(result):
    fig = plots.cost_vs_gain(result)
    axes = _data_axes(fig)
    assert len(axes) == 3 and not fig.axes[3].get_visible()  # 2 x 2 grid, the fourth panel hidden
    _labelled(fig)
    mmlu = axes[0]
    assert mmlu.get_xscale() == "log"
    # 8 methods x 3 models + 7 for the model that cannot run the probe
    assert len(mmlu.containers) == 31
    cell = result.cell("gemma-3-270m", "mmlu")
    sc = cell.method("self-consistency:8")
    pts = [(float(b.lines[0].get_xdata()[0]), float(b.lines[0].get_ydata()[0])) for b in mmlu.containers]
    assert any(x == pytest.approx(sc.tokens / cell.n_items, rel=0.05) and y == pytest.approx(sc.gain)
               for x, y in pts)
    legend = _legend_texts(fig)
    assert [t for t in legend if t in ORDER] == ORDER[:-1]
    assert set(result.models) <= set(legend)
    _close(fig)


def test_cost_vs_gain_names_methods_without_a_token_count(result):
    cells = [dataclasses.replace(c, methods=[dataclasses.replace(m, tokens=0) if m.method == "probe" else m
                                             for m in c.methods]) for c in result.cells]
    fig = plots.cost_vs_gain(ElicitResult(cells))
    assert len(_data_axes(fig)[0].containers) == 31 - 3
    note = next(t for t in _legend_texts(fig) if t.startswith("not shown, no token count"))
    assert note == "not shown, no token count: probe (9 cells)"
    one = [dataclasses.replace(c, methods=[dataclasses.replace(m, tokens=0) if m.method == "cot" else m
                                           for m in c.methods]) if c.task == "mmlu" and c.model == ODD_MODEL else c
           for c in result.cells]
    fig2 = plots.cost_vs_gain(ElicitResult(one))
    assert f"not shown, no token count: cot ({ODD_MODEL}, mmlu)" in _legend_texts(fig2)
    _close(fig2)
    _close(fig)


# --------------------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("draw", [plots.method_heatmap, plots.ratio_vs_size, plots.prompt_variance,
                                  plots.cost_vs_gain])
def test_a_single_model_on_a_single_task(draw):
    fig = draw(single_result())
    _labelled(fig)
    assert len(_data_axes(fig)) == (2 if draw is plots.prompt_variance else 1)
    _close(fig)


@pytest.mark.parametrize("draw", [plots.method_heatmap, plots.ratio_vs_size, plots.prompt_variance,
                                  plots.cost_vs_gain])
def test_writes_a_path_and_refuses_an_empty_result(draw, result, tmp_path):
    out = draw(result, path=tmp_path / "f.png")
    assert out == tmp_path / "f.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = draw(result, path=tmp_path / "f.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(ElicitError, match="does not exist"):
        draw(result, path=tmp_path / "missing" / "f.png")
    with pytest.raises(ElicitError, match="no model x task cells"):
        draw(ElicitResult())


def test_a_result_read_back_from_json_plots_the_same(result, tmp_path):
    back = ElicitResult.load(result.save(tmp_path / "r.json"))
    a, b = plots.method_heatmap(result), plots.method_heatmap(back)
    assert [_texts(x) for x in _data_axes(a)] == [_texts(x) for x in _data_axes(b)]
    _close(a), _close(b)
