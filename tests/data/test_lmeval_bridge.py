"""The lm-eval task bridge (``--tasks lmeval:NAME``) against lm-eval 0.4.13's own ``simple_evaluate``.

lm-eval's task loader builds the tasks over local data (``datasets.load_dataset``
replaced as in :mod:`lmeval_peer`); sharpbench scores the requests with its
engine and store; the metrics must be lm-eval's, per item and aggregated, for a
multiple-choice task (few-shot), a generative task (filters) and a rolling
log-likelihood task (weighted perplexities through the task's own ``process_results``).
"""

from __future__ import annotations

import sys

import datasets
import lmeval_peer as peer
import pytest

from sharpbench.data.errors import TaskError, UnknownTaskError
from sharpbench.data.lmeval_bridge import LMEvalTask, is_lmeval_name, load_lmeval_task

LM_TASKS = peer.LM_TASKS
WIKI = [
    {"page": " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role @-@ "
             "playing video game developed by Sega and Media.Vision for the PlayStation Portable . Released in "
             "January 2011 in Japan , it is the third game in the Valkyria series . \n"},
    {"page": " = Tower Building of the Little Rock Arsenal = \n\n The Tower Building is a building in Little Rock , "
             "Arkansas . It was built in 1840 and is the oldest building in the city 's MacArthur Park . \n"},
    {"page": " = Short = \n\n A short page . \n"},
]

LAMBADA = [
    {"text": "She opened the door and saw that it was raining, so she went back inside to get her umbrella"},
    {"text": "The cat sat on the mat and looked at the dog, which was sleeping by the fire"},
    {"text": "He paid for the coffee and left a generous tip for the waiter"},
    {"text": "After years of practice, the young pianist finally played the concerto without a single mistake"},
]


def _gsm8k_docs():
    from sharpbench.data.builtin.gen_tasks import _gsm8k_docs

    return _gsm8k_docs()


def _local(path, name=None, **kw):
    """``datasets.load_dataset`` over local data: the packaged MC sets, gsm8k and a tiny wikitext."""
    if (path, name) == ("openai/gsm8k", "main"):
        test = datasets.Dataset.from_list(_gsm8k_docs())
        return datasets.DatasetDict({"train": test, "test": test})
    if path == "EleutherAI/lambada_openai":
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(LAMBADA)})
    if path == "EleutherAI/wikitext_document_level":
        ds = datasets.Dataset.from_list(WIKI)
        return datasets.DatasetDict({"train": ds, "validation": ds, "test": ds})
    return peer.fake_load_dataset(peer.hub_table())(path, name, **kw)


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _local)


def _manager():
    import lm_eval.tasks

    dirs = [LM_TASKS / d for d in ("arc", "gsm8k", "wikitext", "lambada")]
    return lm_eval.tasks.TaskManager(include_path=[str(d) for d in dirs], include_defaults=False)


def _lmeval_run(model, task: str, limit: int, **kw):
    """lm-eval's own run of ``task`` (samples per doc and filter, aggregated results)."""
    import lm_eval

    out = lm_eval.simple_evaluate(model=model, tasks=[task], limit=limit, log_samples=True,
                                  task_manager=_manager(), **kw)
    rows = out["samples"][task]
    return rows, out["results"][task]


# ---------------------------------------------------------------------- fast tests
def test_prefix_and_names(local_data):
    from sharpbench.data.registry import get_task, resolve_tasks

    assert is_lmeval_name("lmeval:arc_easy") and not is_lmeval_name("arc_easy")
    t = load_lmeval_task("lmeval:arc_easy", task_manager=_manager())
    assert isinstance(t, LMEvalTask) and t.name == "lmeval:arc_easy" and t.kind == "multiple_choice"
    assert t.metric_names == ["acc", "acc_norm"] and t.version == "1.0"
    items = t.items(3)
    assert [len(it.requests) for it in items] == [len(it.choices) for it in items]
    assert t.items(2) == items[:2]
    # the run key: stable, and it changes with num_fewshot
    assert t.template_hash == load_lmeval_task("arc_easy", task_manager=_manager()).template_hash
    assert t.template_hash != load_lmeval_task("arc_easy", 2, task_manager=_manager()).template_hash
    with pytest.raises(TaskError, match="needs a task name"):
        load_lmeval_task("lmeval:")
    with pytest.raises(UnknownTaskError, match="Did you mean: lmeval:arc_easy"):
        load_lmeval_task("lmeval:arc_eas", task_manager=_manager())
    with pytest.raises(TaskError, match="group or tag"):
        load_lmeval_task("lmeval:ai2_arc", task_manager=_manager())
    # the registry sends the prefix to the bridge (default task manager: every lm-eval task)
    (r,) = resolve_tasks("lmeval:arc_easy")
    assert isinstance(r, LMEvalTask) and isinstance(get_task("lmeval:arc_easy"), LMEvalTask)


def test_yaml_path_task(local_data, tmp_path):
    src = (LM_TASKS / "arc" / "arc_easy.yaml").read_text()
    (tmp_path / "my_arc.yaml").write_text(src.replace("task: arc_easy", "task: my_arc"))
    t = load_lmeval_task(f"lmeval:{tmp_path / 'my_arc.yaml'}")
    assert t.name == "lmeval:my_arc"
    ref = load_lmeval_task("lmeval:arc_easy", task_manager=_manager())
    assert [it.requests for it in t.items(4)] == [it.requests for it in ref.items(4)]
    with pytest.raises(TaskError, match="not found"):
        load_lmeval_task(f"lmeval:{tmp_path / 'nope.yaml'}")


def test_without_lmeval_names_the_install(monkeypatch):
    import sharpbench.data.lmeval_bridge as bridge

    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(TaskError, match=r"pip install lm-eval==0\.4\.13"):
        bridge.load_lmeval_task("lmeval:arc_easy")


def test_gen_items_follow_gen_kwargs(local_data):
    from sharpbench.data.gen import GenOptions

    t = load_lmeval_task("lmeval:gsm8k_cot", task_manager=_manager())
    assert t.kind == "generate_until" and t.num_fewshot == 8
    assert t.metric_names == ["exact_match,strict-match", "exact_match,flexible-extract"]
    it = t.items(1)[0]
    assert it.max_gen_toks == 256 and "Q:" in it.until and it.prompt.endswith("A:")
    short = t.with_options(GenOptions({"max_gen_toks": 32}))
    assert short.items(1)[0].max_gen_toks == 32 and short.template_hash != t.template_hash
    s = it.scoring.score(["... The answer is 18.", "no number"], it.target)
    assert s.extracted["strict-match"][1] == "[invalid]" and s.unextracted["strict-match"] == (False, True)


# ---------------------------------------------------------------------- parity with lm-eval's own runs
@pytest.mark.lmeval
@pytest.mark.slow
def test_multiple_choice_matches_lmeval(local_data, smollm2_dir, smollm2, tmp_path):
    from lm_eval.models.huggingface import HFLM

    from sharpbench.engine.pipeline import run_eval
    from sharpbench.store import Store

    n, shots = 20, 2
    lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu")
    rows, lm_res = _lmeval_run(lm, "arc_easy", n, num_fewshot=shots, bootstrap_iters=1000)
    task = load_lmeval_task("lmeval:arc_easy", shots, task_manager=_manager())
    # the prompts are lm-eval's own (few-shot sampling included)
    lm_args = {r["doc_id"]: [tuple(a) for a in r["arguments"]] for r in rows}
    assert {it.item_id: [(q.context, q.continuation) for q in it.requests] for it in task.items(n)} == lm_args
    report = run_eval(smollm2, [task], limit=n, store=tmp_path / "s.duckdb", batch_size=4)
    rep = report.tasks[0]
    assert rep.task == "lmeval:arc_easy" and rep.n_items == n
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        ours = {r.item_id: r for r in st.item_results(rep.run_id)}
    for r in rows:  # per item: lm-eval's acc / acc_norm, and the log-likelihoods
        got = ours[r["doc_id"]]
        assert (got.metrics["acc"], got.metrics["acc_norm"]) == (r["acc"], r["acc_norm"]), r["doc_id"]
        for c, resp in zip(got.choices, r["resps"], strict=True):
            assert c.loglik == pytest.approx(float(resp[0][0]), abs=1e-4)
    for m in ("acc", "acc_norm"):
        assert rep.metrics[m][0] == pytest.approx(lm_res[f"{m},none"], abs=1e-12)
        assert rep.metrics[m][1] == pytest.approx(lm_res[f"{m}_stderr,none"], rel=1e-9)
    # resumed from the store: nothing recomputed, the same metrics
    again = run_eval(smollm2, [task], limit=n, store=tmp_path / "s.duckdb", batch_size=4).tasks[0]
    assert again.n_computed == 0 and again.metrics == rep.metrics


@pytest.mark.lmeval
@pytest.mark.slow
def test_generative_matches_lmeval(local_data, smollm2_dir, smollm2, tmp_path):
    from lm_eval.models.huggingface import HFLM

    from sharpbench.data.gen import GenOptions
    from sharpbench.engine.pipeline import run_eval
    from sharpbench.store import Store

    n, max_gen = 5, 32
    lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu")
    rows, lm_res = _lmeval_run(lm, "gsm8k_cot", n, gen_kwargs=f"max_gen_toks={max_gen}", bootstrap_iters=1000)
    task = load_lmeval_task("lmeval:gsm8k_cot", task_manager=_manager())
    report = run_eval(smollm2, [task], limit=n, store=tmp_path / "s.duckdb", gen_kwargs={"max_gen_toks": max_gen},
                      batch_size=4)
    rep = report.tasks[0]
    assert rep.kind == "generate_until" and rep.n_items == n
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        ours = {r.item_id: r for r in st.item_results(rep.run_id)}
    assert sorted(ours) == list(range(n))
    for r in rows:  # one row per (doc, filter): the same text, the same extracted answer and exact_match
        got = ours[r["doc_id"]]
        assert got.samples[0].generation.text == r["resps"][0][0], r["doc_id"]
        assert got.samples[0].extracted[r["filter"]] == r["filtered_resps"][0]
        assert got.metrics[f"exact_match,{r['filter']}"] == r["exact_match"]
    for key in ("exact_match,strict-match", "exact_match,flexible-extract"):
        assert rep.metrics[key][0] == pytest.approx(lm_res[key], abs=1e-12)
        se = lm_res[key.replace(",", "_stderr,")]
        assert rep.metrics[key][1] == pytest.approx(se, rel=1e-9)
    assert task.with_options(GenOptions({"max_gen_toks": max_gen})).template_hash == rep_hash(tmp_path, rep.run_id)


def rep_hash(tmp_path, run_id):
    from sharpbench.store import Store

    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        return st.get_run(run_id)["template_hash"]


@pytest.mark.lmeval
@pytest.mark.slow
def test_rolling_task_matches_lmeval(local_data, smollm2_dir, tmp_path):
    from lm_eval.models.huggingface import HFLM

    from sharpbench.engine.pipeline import run_eval
    from sharpbench.models import load_model
    from sharpbench.store import Store

    lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu", max_length=64)
    rows, lm_res = _lmeval_run(lm, "wikitext", len(WIKI))
    ours = load_model(str(smollm2_dir), dtype="float32", max_length=64)
    task = load_lmeval_task("lmeval:wikitext", task_manager=_manager())
    assert task.kind == "loglikelihood_rolling"
    rep = run_eval(ours, [task], store=tmp_path / "s.duckdb", batch_size=2).tasks[0]
    assert rep.kind == "loglikelihood_rolling" and rep.n_items == len(WIKI)
    for m in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert rep.metrics[m][0] == pytest.approx(lm_res[f"{m},none"], rel=1e-5)
    by_doc = {r["doc_id"]: r for r in rows}  # per item: the summed log-likelihood of the document
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        for r in st.item_results(rep.run_id):
            assert r.metrics["loglik"] == pytest.approx(by_doc[r.item_id]["word_perplexity"][0], abs=1e-4)
        run = st.get_run(rep.run_id)
    # the run record holds the weighted aggregates too (not means of per-item values)
    assert run["metrics"]["bits_per_byte"][0] == pytest.approx(lm_res["bits_per_byte,none"], rel=1e-5)


@pytest.mark.lmeval
@pytest.mark.parametrize("name,shots", [("gsm8k_cot", None), ("arc_easy", 2)])
def test_chat_prompts_are_lmevals(local_data, name, shots):
    """``with_style``: lm-eval renders the chat prompts itself, through the model's template as HFLM does."""
    import functools
    import types

    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from sharpbench.data.chat import ChatSetup, PromptStyle
    from sharpbench.models import packaged

    try:
        tok = AutoTokenizer.from_pretrained(str(packaged.ensure_checkpoint("smollm2-135m")))
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs it
        pytest.skip(str(err))
    setup = ChatSetup(apply_chat_template=True, system_prompt="Be careful.", fewshot_as_multiturn=True)
    plain = load_lmeval_task(f"lmeval:{name}", shots, task_manager=_manager())
    task = plain.with_style(PromptStyle(setup, tok, "smollm2-135m"))
    assert task.template_hash != plain.template_hash

    ref = peer.load_lm_task(_manager(), name, plain.num_fewshot)
    ref.build_all_requests(
        limit=3, rank=0, world_size=1, system_instruction=setup.system_prompt, apply_chat_template=True,
        fewshot_as_multiturn=True,
        chat_template=functools.partial(HFLM.apply_chat_template, types.SimpleNamespace(tokenizer=tok,
                                                                                          chat_template_args={})),
    )
    want = {}
    for inst in sorted(ref.instances, key=lambda i: (i.doc_id, i.idx)):
        want.setdefault(inst.doc_id, []).append(inst.arguments[0])
    items = task.items(3)
    if task.kind == "generate_until":
        assert {it.item_id: [it.prompt] for it in items} == want
        assert items[0].prompt.startswith("<|im_start|>system\nBe careful.")
    else:
        assert {it.item_id: [r.context for r in it.requests] for it in items} == want
    assert plain.items(1)[0] != items[0]


LOCAL_YAML = """task: local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
doc_to_choice: "{{{{choices}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
metadata:
  version: 1.0
"""
LOCAL_ROWS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "answer": 0},
    {"question": "How many legs does a spider have?", "choices": ["six", "eight", "ten"], "answer": 1},
    {"question": "What is the opposite of hot?", "choices": ["warm", "cold", "big"], "answer": 1},
    {"question": "Which animal barks?", "choices": ["cat", "cow", "dog"], "answer": 2},
]


@pytest.mark.lmeval
@pytest.mark.slow
def test_cli_yaml_task_over_local_json(tmp_path, smollm2_dir):
    """``sharpbench eval --tasks lmeval:/path/task.yaml``: lm-eval's loader reads the local data; a rerun reuses."""
    import json

    from typer.testing import CliRunner

    from sharpbench.cli.app import app
    from sharpbench.store import Store

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in LOCAL_ROWS))
    yaml = tmp_path / "local_mc.yaml"
    yaml.write_text(LOCAL_YAML.format(data=data))
    store = tmp_path / "s.duckdb"
    args = ["eval", "--model", str(smollm2_dir), "--tasks", f"lmeval:{yaml}", "--store", str(store),
            "--output-json", str(tmp_path / "out.json")]
    first = CliRunner().invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "4 items computed" in first.output
    out = json.loads((tmp_path / "out.json").read_text())
    (task,) = out["tasks"]
    assert task["task"] == "lmeval:local_mc" and task["n_items"] == 4
    with Store(store, read_only=True) as st:
        items = st.item_results(task["run_id"])
    assert task["metrics"]["acc"]["value"] == pytest.approx(sum(r.metrics["acc"] for r in items) / 4)
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0 and "0 items computed, 4 reused" in again.output


@pytest.mark.lmeval
@pytest.mark.slow
def test_loglikelihood_task_with_perplexity_aggregation(local_data, smollm2_dir, smollm2, tmp_path):
    """``output_type: loglikelihood`` (lambada): acc per item and lm-eval's non-mean ``perplexity`` aggregation."""
    import math

    from lm_eval.models.huggingface import HFLM

    from sharpbench.engine.pipeline import run_eval
    from sharpbench.store import Store

    lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu")
    rows, lm_res = _lmeval_run(lm, "lambada_openai", len(LAMBADA), bootstrap_iters=0)
    task = load_lmeval_task("lmeval:lambada_openai", task_manager=_manager())
    assert task.output_type == "loglikelihood" and task.kind == "multiple_choice"
    rep = run_eval(smollm2, [task], store=tmp_path / "s.duckdb", batch_size=2).tasks[0]
    assert rep.metrics["perplexity"][0] == pytest.approx(lm_res["perplexity,none"], rel=1e-5)
    assert rep.metrics["acc"][0] == lm_res["acc,none"]
    assert math.isnan(rep.metrics["perplexity"][1])  # lm-eval bootstraps it; sharpbench only when asked
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        ours = {r.item_id: r for r in st.item_results(rep.run_id)}
    for r in rows:
        assert ours[r["doc_id"]].metrics["acc"] == r["acc"]
        assert ours[r["doc_id"]].metrics["perplexity"] == pytest.approx(r["perplexity"], abs=1e-4)
