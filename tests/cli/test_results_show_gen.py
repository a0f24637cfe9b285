"""`sharpbench results show` / `results matrix` on generative runs, and an analysis command on their matrix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.metrics import summarize
from sharpbench.results import ChoiceResult, GenItemResult, GenSample, Generation, ItemResult
from sharpbench.store import RunSpec, Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_gen_helpers import gen_item, gen_result, gen_spec  # noqa: E402

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def gen_store(tmp_path_factory) -> tuple[Path, str, str]:
    """(store, generative run id, multiple-choice run id)."""
    path = tmp_path_factory.mktemp("gen") / "s.duckdb"
    with Store(path) as st:
        spec = gen_spec(run_config={"gen_kwargs": {"max_gen_toks": 64}, "system_prompt": "You are careful."})
        items = {i: gen_item(i, repeats=2) for i in range(5)}
        res = [gen_result(i, range(2), right={0, 1}, flex_right={0, 1, 2}) for i in range(5)]
        # item 4: the model never stopped and printed something odd
        res[4] = GenItemResult(4, "8", (
            GenSample(0, Generation("Let me think [bold]step[/bold] by step... 4 + 4 = 8", 64, "length"),
                      {"strict-match": "[invalid]", "flexible-extract": "8"},
                      {"strict-match": 0.0, "flexible-extract": 1.0}, 2.5),
            GenSample(1, Generation("", 1, "eos"), {"strict-match": "[invalid]", "flexible-extract": "[invalid]"},
                      {"strict-match": 0.0, "flexible-extract": 0.0}, 0.1),
        ), {"exact_match,strict-match": 0.0, "exact_match,flexible-extract": 1.0})
        st.write_items(spec, res, gen_items=items)
        st.finish_run(spec.run_id, status="complete", metrics=summarize(st.item_results(spec.run_id)))
        mc = RunSpec("m1", "fp1", "hf", "float32", "piqa", 0, "t")
        st.write_items(mc, [ItemResult(0, 1, (ChoiceResult(-1.0, True, 2), ChoiceResult(-2.5, False, 3)),
                                       {"acc": 0.0, "acc_norm": 0.0})])
        st.finish_run(mc.run_id, status="complete", metrics={"acc": (0.0, float("nan"))})
    return path, spec.run_id, mc.run_id


def test_show_generative_run_summary(gen_store):
    path, run_id, _ = gen_store
    res = _invoke("results", "show", run_id[:8], "--store", path)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert f"run {run_id}: m1 on gsm8k_cot" in out and "kind: generate_until" in out
    assert "exact_match  strict-match      0.4000 ± 0.2449  <- primary" in out
    assert "exact_match  flexible-extract  0.8000 ± 0.2000" in out
    assert 'system_prompt: "You are careful."' in out
    assert "samples: 10   stop reasons: length 5, stop 4, eos 1" in out
    assert "no answer extracted by strict-match: 6 of 10 samples (e.g. items 2, 3, 4" in out
    assert "no answer extracted by flexible-extract: 1 of 10 samples (e.g. items 4" in out

    data = json.loads(_invoke("results", "show", run_id, "--store", path, "--format", "json").stdout)
    assert data["kind"] == "generate_until" and data["primary_metric"] == "exact_match,strict-match"
    by_name = {m["name"]: m for m in data["metrics"]}
    assert by_name["exact_match,flexible-extract"]["value"] == pytest.approx(0.8)
    assert by_name["exact_match,flexible-extract"]["filter"] == "flexible-extract"
    assert data["generations"]["unextracted"]["strict-match"] == {"count": 6, "items": [2, 3, 4]}


def test_show_generative_item(gen_store):
    path, run_id, _ = gen_store
    res = _invoke("results", "show", run_id[:10], "--item", "4", "--store", path)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "item 4 (generate_until)" in out and "gold: '8'" in out
    assert "----- prompt -----\nQ: what is 4 + 4?\nA:\n" in out
    # the full generation, brackets and all (no markup), with its stop reason and token count
    assert "----- sample 0: stop reason length, 64 tokens, 2.50 s -----\n" \
           "Let me think [bold]step[/bold] by step... 4 + 4 = 8\n" in out
    assert "  strict-match: extracted '[invalid]' vs gold '8': wrong" in out
    assert "  flexible-extract: extracted '8' vs gold '8': correct" in out
    assert "----- sample 1: stop reason eos, 1 tokens, 0.10 s -----" in out
    assert "exact_match,strict-match = 0.0000   exact_match,flexible-extract = 1.0000" in out

    data = json.loads(_invoke("results", "show", run_id, "-i", "1", "--store", path, "-f", "json").stdout)
    assert data["gold"] == "2" and data["prompt"] == gen_item(1).prompt and len(data["samples"]) == 2
    assert data["samples"][1] == {
        "index": 1, "text": "1 plus 1 is 2. The answer is 2.", "n_tokens": 11, "stop_reason": "length",
        "seconds": 1.25, "extracted": {"strict-match": "2", "flexible-extract": "2"},
        "correct": {"strict-match": 1.0, "flexible-extract": 1.0},
    }


def test_show_multiple_choice_item_and_summary(gen_store):
    path, _, mc_id = gen_store
    res = _invoke("results", "show", mc_id, "--item", "0", "--store", path)
    assert res.exit_code == 0, res.output
    assert "item 0 (multiple_choice)" in res.stdout and "gold: choice 1" in res.stdout
    lines = res.stdout.splitlines()
    assert any(ln.split()[:4] == ["0", "-1.0000", "2", "yes"] and ln.endswith("argmax") for ln in lines)
    assert any(ln.split()[:4] == ["1", "-2.5000", "3", "no"] and ln.endswith("gold") for ln in lines)
    res = _invoke("results", "show", mc_id, "--store", path)
    assert "kind: multiple_choice" in res.stdout and "acc" in res.stdout


def test_show_errors(gen_store, tmp_path):
    path, run_id, _ = gen_store
    res = _invoke("results", "show", "zzz", "--store", path)
    assert res.exit_code == 2 and "error: no run 'zzz'" in res.stderr
    res = _invoke("results", "show", run_id, "--item", "99", "--store", path)
    assert res.exit_code == 2 and "has no stored item 99 (stored: 5 items, ids 0..4)" in res.stderr
    res = _invoke("results", "show", "", "--store", path)
    assert res.exit_code == 2 and "name a run" in res.stderr
    res = _invoke("results", "show", run_id, "--store", tmp_path / "none.duckdb")
    assert res.exit_code == 1 and "no store at" in res.stderr
    res = _invoke("results", "show", run_id, "--store", path, "--format", "xml")
    assert res.exit_code == 2


def test_ambiguous_run_prefix(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        ids = []
        for n in range(40):  # enough runs that two share a first hex digit
            spec = gen_spec(fp=f"fp{n}")
            st.write_items(spec, [gen_result(0)])
            ids.append(spec.run_id)
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    res = _invoke("results", "show", first, "--store", path)
    assert res.exit_code == 2 and "is ambiguous" in res.stderr


def test_results_list_shows_kind_and_primary_metric(gen_store):
    path, run_id, _ = gen_store
    rows = json.loads(_invoke("results", "--store", path, "--format", "json").stdout)
    gen = next(r for r in rows if r["run_id"] == run_id)
    assert gen["kind"] == "generate_until" and gen["metric"] == "exact_match,strict-match"
    assert gen["score"] == pytest.approx(0.4) and gen["acc"] is None
    res = _invoke("results", "--store", path)
    assert "generate_until" in res.stdout and "0.4 ±" in res.stdout  # 4 significant digits (cli.output.cell)


def _ability_store(path: Path, n_models: int = 12, n_items: int = 30) -> None:
    """Generative runs of models of increasing ability on items of increasing difficulty (a Rasch-like pattern)."""
    rng = np.random.default_rng(0)
    theta = np.linspace(-2, 2, n_models)
    b = np.linspace(-1.5, 1.5, n_items)
    with Store(path) as st:
        for m in range(n_models):
            right = {i for i in range(n_items) if rng.random() < 1 / (1 + np.exp(-(theta[m] - b[i]) * 1.7))}
            flex = right | {i for i in range(n_items) if rng.random() < 0.3}
            spec = gen_spec(model=f"model{m:02d}", fp=f"fp{m}")
            st.write_items(spec, [gen_result(i, range(1), right=right, flex_right=flex) for i in range(n_items)],
                           gen_items={i: gen_item(i) for i in range(n_items)})
            st.finish_run(spec.run_id, status="complete", metrics=summarize(st.item_results(spec.run_id)))


def test_matrix_of_generative_runs_feeds_irt_fit(tmp_path):
    path = tmp_path / "s.duckdb"
    _ability_store(path)
    out = tmp_path / "m.parquet"
    res = _invoke("results", "matrix", "--store", path, "-o", out)
    assert res.exit_code == 0, res.output
    assert "12 models x 30 items" in res.stdout
    flex = tmp_path / "flex.csv"
    res = _invoke("results", "matrix", "--store", path, "-o", flex, "--metric", "exact_match,flexible-extract")
    assert res.exit_code == 0, res.output
    with Store(path, read_only=True) as st:
        strict_m = st.response_matrix()
        flex_m = st.response_matrix(metric="exact_match,flexible-extract")
    assert flex_m.values.sum() > strict_m.values.sum()  # the flexible filter accepts more answers

    res = _invoke("irt", "fit", out, "--model", "1pl", "--format", "json")
    assert res.exit_code == 0, res.output
    fit = json.loads(res.stdout)
    assert fit["converged"] and fit["n_respondents"] == 12 and fit["n_cells"] == 360
    assert {it["item"] for it in fit["items"]} == {f"gsm8k_cot/{i}" for i in range(30)}
    # 1PL: the number right is sufficient, so the abilities order the models as their exact_match does
    theta = {a["model"]: a["theta"] for a in fit["abilities"]}
    right = dict(zip(strict_m.models, np.nansum(strict_m.values, axis=1)))
    for x in right:
        for y in right:
            if right[x] > right[y]:
                assert theta[x] > theta[y], (x, y)

    res = _invoke("results", "matrix", "--store", path, "-o", out)
    assert res.exit_code == 2 and "exists; pass --force" in res.stderr
    res = _invoke("results", "matrix", "--store", path, "-o", tmp_path / "x.csv", "--metric", "exact_match,nope")
    assert res.exit_code == 1 and "not stored for the selected runs (stored: exact_match,strict-match" in res.stderr
