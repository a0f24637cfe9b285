"""Real-model checks with the packaged smollm2-135m (slow: CI runs them too)."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from sharpbench.compare.hf import load_tokenizer
    from sharpbench.models import load_model

    backend = load_model("smollm2-135m")
    tok = load_tokenizer("smollm2-135m")
    state = {k: v.clone() for k, v in backend.model.state_dict().items()}
    yield backend, tok, state
    backend.model.load_state_dict(state)


def test_single_forward_equals_heretic_generate_scores(smol):
    """heretic reads the first-token logits from generate(max_new_tokens=1); one forward pass gives the same."""
    from sharpbench.compare.kld import chat_texts, next_token_logprobs
    from sharpbench.compare.prompts import harmless_prompts

    backend, tok, _ = smol
    texts = chat_texts(tok, harmless_prompts()[:4])
    ours = next_token_logprobs(backend.model, tok, texts, batch_size=4)
    enc = tok(texts, return_tensors="pt", padding=True, return_token_type_ids=False)
    with torch.no_grad():
        out = backend.model.generate(**enc, max_new_tokens=1, do_sample=False, output_logits=True,
                                     return_dict_in_generate=True, pad_token_id=tok.eos_token_id)
    ref = torch.log_softmax(out.logits[0].float(), dim=-1)
    assert torch.allclose(ours, ref, atol=1e-4)
    assert "You are a helpful assistant." in texts[0]


def test_kld_and_accuracy_loss_grow_with_damage(smol):
    from sharpbench.compare.diff import benchmark_deltas, context_texts
    from sharpbench.compare.kld import (
        chat_texts,
        first_token_kl,
        next_token_logprobs,
        per_token_kl,
    )
    from sharpbench.compare.perturb import (
        ablate_direction,
        add_gaussian_noise,
        make_direction,
    )
    from sharpbench.compare.prompts import harmless_prompts
    from sharpbench.compare.scoring import score_item_list
    from sharpbench.data.registry import get_task

    backend, tok, state = smol
    model = backend.model
    texts = chat_texts(tok, harmless_prompts()[:12])
    items = get_task("piqa").items(limit=24)
    ctx = context_texts(items, 4)
    base_lp = next_token_logprobs(model, tok, texts)
    base_res = score_item_list(backend, items)
    import copy

    base_copy = copy.deepcopy(model)
    kld, tkl, loss = {}, {}, {}
    for scale in (0.03, 0.3):
        model.load_state_dict(state)
        add_gaussian_noise(model, scale, seed=0)
        kld[scale] = first_token_kl(base_lp, next_token_logprobs(model, tok, texts)).kld
        tkl[scale] = per_token_kl(base_copy, model, tok, ctx)[0]
        deltas = benchmark_deltas({"piqa": base_res}, {"piqa": score_item_list(backend, items)})
        loss[scale] = -sum(d.delta.delta for d in deltas)  # acc + acc_norm points lost
    model.load_state_dict(state)
    r = make_direction(model, tok, "random", seed=0)
    ablate_direction(model, r, weight=1.0)
    k_ablate = first_token_kl(base_lp, next_token_logprobs(model, tok, texts)).kld
    model.load_state_dict(state)
    assert first_token_kl(base_lp, next_token_logprobs(model, tok, texts)).kld == pytest.approx(0, abs=1e-6)
    assert 0 < kld[0.03] < kld[0.3]
    assert 0 < tkl[0.03] < tkl[0.3]
    assert loss[0.3] > loss[0.03]
    assert loss[0.3] > 0.1  # heavy noise costs accuracy
    assert k_ablate > 0.01


def test_perturb_then_diff_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from sharpbench.cli.app import app

    runner = CliRunner()
    r = runner.invoke(app, ["perturb", "smollm2-135m", "--out", str(tmp_path / "v"), "--noise", "0.05"])
    assert r.exit_code == 0, r.output
    ck = tmp_path / "v" / "noise-0.05"
    assert json.loads((ck / "perturbation.json").read_text())["scale"] == 0.05
    store = tmp_path / "s.duckdb"
    r = runner.invoke(app, ["diff", "--base", "smollm2-135m", "--model", str(ck), "--n-prompts", "6",
                            "--tasks", "piqa", "--limit", "12", "--token-kl-items", "3", "--store", str(store),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["kld"]["n_prompts"] == 6 and out["kld"]["kld"] > 0
    assert {d["metric"] for d in out["deltas"]} == {"acc", "acc_norm"}
    assert all(d["n_items"] == 12 for d in out["deltas"])
    assert any(v.startswith("piqa acc_norm") for v in out["verdicts"])
    from sharpbench.store import Store

    with Store(store, read_only=True) as st:
        art = st.artifacts("diff")
        assert art and art[0]["payload"]["modified"] == str(ck)
    # Pareto re-ranking through the engine: the trials name checkpoints; the store already holds
    # their PIQA results from the diff above, so they are reused.
    import pandas as pd

    trials = tmp_path / "trials.csv"
    pd.DataFrame({"refusals": [10, 4, 20], "kld": [0.0, out["kld"]["kld"], 5.0],
                  "checkpoint": ["smollm2-135m", str(ck), str(ck)]}).to_csv(trials, index=False)
    r = runner.invoke(app, ["pareto", str(trials), "--minimize", "refusals", "--minimize", "kld",
                            "--rerank", "piqa:acc_norm", "--limit", "12", "--near", "0.05",
                            "--store", str(store), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["trials"]
    assert sorted(t["number"] for t in rows) == [0, 1]  # trial 2 is far from the front
    acc = {t["number"]: t["piqa:acc_norm"] for t in rows}
    base_acc = next(d for d in out["deltas"] if d["metric"] == "acc_norm")["base"]
    assert acc[0] == pytest.approx(base_acc)


def test_sensitivity_cli(tmp_path):
    from typer.testing import CliRunner

    from sharpbench.cli.app import app

    png = tmp_path / "sens.png"
    r = CliRunner().invoke(app, ["sensitivity", "--tasks", "mmlu_astronomy", "--variants", "chat", "--limit", "6",
                                 "--plot", str(png), "--format", "json", "--n-splits", "5"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["models"][0]
    assert set(m["accuracy"]) == {"plain", "chat=True"}
    assert m["n_items"] == 6 and 0 <= m["held_out_best"] <= 1
    assert png.stat().st_size > 1000


def test_sensitivity_stores_every_variant_and_reuses_it(tmp_path):
    from sharpbench.compare.sensitivity import run_sensitivity
    from sharpbench.store import Store

    store = tmp_path / "sens.duckdb"
    first = run_sensitivity(["smollm2-135m"], tasks="mmlu_astronomy", variants="labels", limit=5, n_splits=3,
                            store=store)
    with Store(store, read_only=True) as st:
        runs = st.runs()
        items = st.items_frame()
    names = first.models[0].variants
    assert len(runs) == len(names) and len(items) == 5 * len(names)
    assert {r["task"] for r in runs.to_dict("records")} == {f"sensitivity:mmlu_astronomy:{v}" for v in names}
    # A second run reads every answer back from the store (nothing new written) and gives the same summary.
    again = run_sensitivity(["smollm2-135m"], tasks="mmlu_astronomy", variants="labels", limit=5, n_splits=3,
                            store=store)
    with Store(store, read_only=True) as st:
        assert len(st.items_frame()) == len(items)
    assert again.models[0].to_dict() == first.models[0].to_dict()
    # Stored answers are the in-memory ones.
    mem = run_sensitivity(["smollm2-135m"], tasks="mmlu_astronomy", variants="labels", limit=5, n_splits=3)
    assert mem.models[0].accuracy == pytest.approx(first.models[0].accuracy)
