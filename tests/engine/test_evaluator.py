"""sb.Evaluator on the packaged SmolLM2: the same scores as sb.evaluate, edits, LoRA, KL, storing."""

from __future__ import annotations

import copy

import pytest

import sharpbench as sb
from sharpbench.store import Store

N_ITEMS = 4


@pytest.fixture(scope="module")
def hf(smollm2_dir):
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    model.eval()
    return model, tok


@pytest.fixture(scope="module")
def ev(hf):
    model, tok = hf
    return sb.Evaluator(model, tok, tasks="piqa", limit=N_ITEMS, kld_prompts="harmless", kld_limit=3)


def _logliks(score, task="piqa"):
    return [[c.loglik for c in r.choices] for r in score.results[task]]


def _flat(score, task="piqa"):
    return [ll for row in _logliks(score, task) for ll in row]


def test_scores_equal_stored_results_of_evaluate(ev, smollm2_dir, tmp_path):
    out = ev.score()
    report = sb.evaluate(str(smollm2_dir), "piqa", limit=N_ITEMS, store=tmp_path / "s.duckdb")
    with Store(tmp_path / "s.duckdb") as st:
        stored = st.item_results(report.tasks[0].run_id)
    assert [r.item_id for r in out.results["piqa"]] == list(range(N_ITEMS))
    assert [[c.loglik for c in r.choices] for r in stored] == _logliks(out)
    assert [r.metrics for r in stored] == [r.metrics for r in out.results["piqa"]]
    assert out.metrics["piqa"] == report.tasks[0].metrics
    assert out.metric("acc_norm") == report.tasks[0].metrics["acc_norm"][0]


def test_in_place_edit_changes_the_score_and_restoring_restores_it(ev, hf):
    import torch

    model, _ = hf
    before = _logliks(ev.score())
    weight = model.model.layers[3].mlp.down_proj.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.mul_(1.5)
    try:
        edited = _logliks(ev.score())
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert edited != before
    assert _logliks(ev.score()) == before


def test_kld_is_zero_unchanged_and_positive_after_an_edit(ev, hf):
    import torch

    model, _ = hf
    ref = ev.reference_logprobs()
    assert ref.shape[0] == 3
    assert ev.kld(ref) == 0.0
    weight = model.model.layers[2].self_attn.o_proj.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.mul_(2.0)
    try:
        assert ev.kld(ref) > 1e-4
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert ev.kld(ref) == 0.0


def test_lora_adapter_counts_and_disable_adapter_gives_the_base_score(hf, ev):
    peft = pytest.importorskip("peft")
    import torch

    model, tok = hf
    base = copy.deepcopy(model)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=1, lora_alpha=1, target_modules=["q_proj", "down_proj"],
                                                     init_lora_weights=False))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_" in name:
                p.mul_(4.0)
    lev = sb.Evaluator(lora, tok, tasks="piqa", limit=N_ITEMS)
    q = lora.base_model.model.model.layers[0].self_attn.q_proj
    weight, saved = q.base_layer.weight, q.base_layer.weight.detach().clone()
    base_ll = _flat(ev.score())
    adapted = _flat(lev.score())
    # the adapter is folded into a fresh weight for the call only: the base weight is back, bit for bit
    assert q.base_layer.weight is weight and torch.equal(weight, saved) and not q.disable_adapters
    with lora.disable_adapter():
        disabled = lev.score()
    assert adapted != pytest.approx(base_ll, rel=1e-5, abs=1e-3)  # the adapter is scored, not skipped
    assert _flat(disabled) == pytest.approx(base_ll, rel=1e-5, abs=1e-3)
    assert disabled.metrics == ev.score().metrics
    merged = lora.merge_and_unload()  # the adapter folded into the weights: the same scores
    assert _flat(sb.Evaluator(merged, tok, tasks="piqa", limit=N_ITEMS).score()) == pytest.approx(adapted, rel=1e-5, abs=1e-3)


def test_score_can_store_the_call_under_a_label(ev, tmp_path):
    path = tmp_path / "runs.duckdb"
    with pytest.raises(ValueError, match="label"):
        ev.score(store=path)
    out = ev.score(store=path, label="trial-17")
    with Store(path) as st:
        run = st.get_run(out.run_ids["piqa"])
        stored = st.item_results(out.run_ids["piqa"])
    assert run["fingerprint"] == "in-memory, edited:trial-17"
    assert run["status"] == "complete"
    assert [[c.loglik for c in r.choices] for r in stored] == _logliks(out)
    other = ev.score(store=path, label="trial-18")
    assert other.run_ids["piqa"] != out.run_ids["piqa"]


def test_item_ids_and_several_tasks(hf):
    model, tok = hf
    ev2 = sb.Evaluator(model, tok, tasks="piqa,arc_easy", item_ids={"piqa": [5, 2]}, limit=2)
    out = ev2.score()
    assert [r.item_id for r in out.results["piqa"]] == [2, 5]
    assert [r.item_id for r in out.results["arc_easy"]] == [0, 1]
    with pytest.raises(ValueError, match="several tasks"):
        out.metric("acc")


def test_clear_errors_for_a_wrong_model_or_tokenizer(hf):
    model, tok = hf
    with pytest.raises(TypeError, match="not a causal language model"):
        sb.Evaluator(model.model, tok, tasks="piqa", limit=1)  # the decoder without its LM head
    with pytest.raises(TypeError, match="tokenizer"):
        sb.Evaluator(model, None, tasks="piqa", limit=1)
    with pytest.raises(TypeError, match="transformers model"):
        sb.Evaluator(object(), tok, tasks="piqa", limit=1)
    big = copy.deepcopy(tok)
    n_embed = model.get_input_embeddings().weight.shape[0]
    big.add_tokens([f"<extra_{i}>" for i in range(n_embed - len(big) + 1)])
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        sb.Evaluator(model, big, tasks="piqa", limit=1)
    with pytest.raises(ValueError, match="kld_prompts"):
        sb.Evaluator(model, tok, tasks="piqa", limit=1).reference_logprobs()


def test_a_forward_hook_is_honoured(ev, hf):
    model, _ = hf
    before = _flat(ev.score())
    handle = model.model.layers[5].mlp.register_forward_hook(lambda mod, inp, out: out * 0.5)
    try:
        hooked = _flat(ev.score())
    finally:
        handle.remove()
    assert hooked != pytest.approx(before, rel=1e-5, abs=1e-3)  # scored with the model's own forward
    assert _flat(ev.score()) == before


def test_generative_task_in_memory_with_a_lora_adapter(hf, tmp_path):
    """Generation through the Evaluator: the same text as run_eval; an adapter changes it, disabling it restores it."""
    peft = pytest.importorskip("peft")
    import json

    import torch

    from sharpbench.engine.pipeline import run_eval

    model, tok = hf
    rows = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in ((2, 2), (3, 5), (10, 7))]
    (tmp_path / "arith.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    task = tmp_path / "arith.toml"
    task.write_text('path = "arith.jsonl"\noutput_type = "generate_until"\ndoc_to_text = "Q: {question}\\nA:"\n'
                    'target = "answer"\nuntil = ["\\n"]\nmax_gen_toks = 12\nnum_fewshot = 1\n', encoding="utf-8")

    def texts(score):
        return [r.samples[0].generation.text for r in score.results[task.stem]]

    plain = sb.Evaluator(model, tok, tasks=str(task)).score()
    report = run_eval(sb.Evaluator(model, tok, tasks=str(task)).backend, str(task), store=tmp_path / "s.duckdb")
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        stored = [r.samples[0].generation.text for r in st.item_results(report.tasks[0].run_id)]
    assert texts(plain) == stored
    lora = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(r=1, lora_alpha=1, target_modules=["q_proj"],
                                                                     init_lora_weights=False))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_" in name:
                p.mul_(40.0)
    lev = sb.Evaluator(lora, tok, tasks=str(task))
    assert texts(lev.score()) != texts(plain)  # the adapter is generated with, not skipped
    with lora.disable_adapter():
        assert texts(lev.score()) == texts(plain)
