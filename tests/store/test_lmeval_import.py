"""Import of lm-evaluation-harness --log_samples output (real files written by lm-eval 0.4.13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sharpbench.store import Store, StoreImportError
from sharpbench.store.lmeval_import import import_lmeval

from store_lmeval_fixture import DOCS, hash_loglik

FIXTURE = Path(__file__).parent / "data" / "lmeval_toy"


def _samples_file(folder: Path) -> Path:
    return next(folder.rglob("samples_toy_mc_*.jsonl"))


def _results_json(folder: Path) -> dict:
    return json.loads(next(folder.rglob("results_*.json")).read_text())


def _check_import(store: Store, folder: Path, results: dict) -> None:
    (run_id,) = import_lmeval(store, folder, "hash-lm")
    run = store.get_run(run_id)
    assert (run["model_id"], run["task"], run["num_fewshot"], run["n_items"]) == ("hash-lm", "toy_mc", 1, 10)
    assert (run["task_version"], run["n_total"], run["limit"], run["status"]) == ("2.0", 12, 10, "complete")
    assert run["backend"] == "lm-eval/HashLM" and run["source"] == "lm-eval"

    samples = [json.loads(line) for line in _samples_file(folder).read_text().splitlines()]
    stored = {r.item_id: r for r in store.item_results(run_id)}
    assert sorted(stored) == sorted(s["doc_id"] for s in samples)
    for s in samples:
        res = stored[s["doc_id"]]
        assert res.gold == DOCS[s["doc_id"]]["label"]
        args = [(a["arg_0"], a["arg_1"]) for a in s["arguments"].values()]
        expected = [hash_loglik(*a) for a in args]  # what the stand-in model returned to lm-eval
        assert [(c.loglik, c.is_greedy) for c in res.choices] == expected
        assert res.metrics["acc"] == s["acc"] and res.metrics["acc_norm"] == s["acc_norm"]

    # Aggregates equal lm-eval's own numbers from results_*.json.
    peer = results["results"]["toy_mc"]
    assert run["metrics"]["acc"][0] == pytest.approx(peer["acc,none"], abs=1e-12)
    assert run["metrics"]["acc"][1] == pytest.approx(peer["acc_stderr,none"], rel=1e-9)
    assert run["metrics"]["acc_norm"][0] == pytest.approx(peer["acc_norm,none"], abs=1e-12)
    briers = [r.metrics["brier"] for r in stored.values()]
    assert np.mean(briers) == pytest.approx(float(peer["brier_score,none"]), rel=1e-9)

    m = store.response_matrix(models=["hash-lm"])
    assert m.items[0].startswith("toy_mc/") and set(m.item_meta["subject"]) == {"toy"}


def test_import_fixture_matches_lmeval(tmp_path):
    with Store(tmp_path / "s.duckdb") as st:
        _check_import(st, FIXTURE, _results_json(FIXTURE))
        # Importing again replaces the run: no duplicated rows.
        import_lmeval(st, FIXTURE, "hash-lm")
        assert len(st.items_frame()) == 10 and len(st.choices_frame()) == 30


def test_import_single_file_and_nshot_override(tmp_path):
    with Store(tmp_path / "s.duckdb") as st:
        (rid,) = import_lmeval(st, _samples_file(FIXTURE), "x", num_fewshot=3)
        assert st.get_run(rid)["num_fewshot"] == 3


def test_bad_line_writes_nothing(tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(FIXTURE, folder)
    f = _samples_file(folder)
    lines = f.read_text().splitlines()
    lines[3] = lines[3][:50]
    f.write_text("\n".join(lines) + "\n")
    with Store(tmp_path / "s.duckdb") as st:
        with pytest.raises(StoreImportError, match=rf"{f.name}: line 4: invalid JSON"):
            import_lmeval(st, folder, "m")
        assert st.runs().empty and st.items_frame().empty


def test_generation_samples_are_refused(tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    sample = {"doc_id": 0, "target": "42", "arguments": {"gen_args_0": {"arg_0": "Q?", "arg_1": {"until": ["\n"]}}},
              "resps": [["42"]], "filtered_resps": ["42"], "filter": "none", "metrics": ["exact_match"]}
    (folder / "samples_gsm_2024-01-01T00-00-00.000001.jsonl").write_text(json.dumps(sample) + "\n")
    with Store(tmp_path / "s.duckdb") as st:
        with pytest.raises(StoreImportError, match="not a multiple-choice task"):
            import_lmeval(st, folder, "m")


def test_no_samples(tmp_path):
    with Store(tmp_path / "s.duckdb") as st:
        with pytest.raises(StoreImportError, match="no lm-eval samples"):
            import_lmeval(st, tmp_path, "m")
        with pytest.raises(StoreImportError, match="does not exist"):
            import_lmeval(st, tmp_path / "nope", "m")


@pytest.mark.slow
@pytest.mark.lmeval
def test_import_fresh_lmeval_output(tmp_path):
    """Regenerate the samples with the installed lm-eval and import them."""
    pytest.importorskip("lm_eval")
    from store_lmeval_fixture import generate

    results = generate(tmp_path / "gen")
    with Store(tmp_path / "s.duckdb") as st:
        _check_import(st, tmp_path / "gen" / "results", json.loads(json.dumps(results, default=str)))


def test_group_and_task_names_from_lmeval_layout(tmp_path):
    from sharpbench.store.lmeval_import import _top_group, find_sample_files

    nested = {"mmlu": ["mmlu_stem", "mmlu_other"], "mmlu_stem": ["mmlu_abstract_algebra"], "mmlu_other": []}
    assert _top_group(nested, "mmlu_abstract_algebra") == "mmlu"
    assert _top_group(nested, "piqa") is None
    src = _samples_file(FIXTURE)
    for name in ("samples_mmlu_abstract_algebra_2024-05-01T12-30-45.123456.jsonl",
                 "samples_mmlu_abstract_algebra_2024-06-01T00-00-00.000001.jsonl"):
        shutil.copy(src, tmp_path / name)
    ((task, newest),) = find_sample_files(tmp_path)
    assert task == "mmlu_abstract_algebra" and newest.name.startswith("samples_mmlu_abstract_algebra_2024-06")


def test_generative_samples_are_refused_with_the_way_to_read_them(tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    lines = [json.dumps({"doc_id": 0, "filter": f, "exact_match": 1.0, "target": "4", "resps": [["4"]],
                         "filtered_resps": ["4"], "arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": {"until": ["\n"]}}}})
             for f in ("strict-match", "flexible-extract")]
    (folder / "samples_gsm8k_2026-01-01T00-00-00.jsonl").write_text("\n".join(lines))
    with Store(tmp_path / "s.duckdb") as st:
        with pytest.raises(StoreImportError, match=r"gsm8k is a generative task \(filters flexible-extract, "
                                                   r"strict-match\).*sharpbench matrix import FOLDER"):
            import_lmeval(st, folder, "m")
        assert st.runs().empty
