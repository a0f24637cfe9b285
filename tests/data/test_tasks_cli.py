"""``sharpbench tasks list`` and ``sharpbench tasks show``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.data import get_task

runner = CliRunner()


def test_list_json_has_every_task_with_counts():
    res = runner.invoke(app, ["tasks", "list", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["piqa"]["n_docs"] == 1838 and rows["piqa"]["split"] == "validation"
    assert (
        rows["mmlu_anatomy"]["group"] == "mmlu"
        and rows["mmlu_anatomy"]["metrics"] == "acc"
    )
    assert rows["arc_easy"]["metrics"] == "acc,acc_norm"
    assert rows["arc_easy"]["kind"] == "multiple_choice"
    assert rows["gsm8k_cot"]["kind"] == "generate_until" and rows["gsm8k_cot"]["n_docs"] == 1319
    assert rows["gsm8k_cot"]["metrics"] == "exact_match,strict-match,exact_match,flexible-extract"
    assert len(rows) == 90 + 69 + 66  # multiple choice + generative + elicitation (#19)


def test_list_group_table_and_groups():
    res = runner.invoke(
        app, ["tasks", "list", "--group", "agieval_en"], env={"COLUMNS": "200"}
    )
    assert (
        res.exit_code == 0
        and "agieval_lsat_ar" in res.output
        and "piqa" not in res.output
    )
    res = runner.invoke(app, ["tasks", "list", "--groups", "-f", "csv"])
    assert res.exit_code == 0 and res.output.startswith("group,n_tasks")
    assert runner.invoke(app, ["tasks", "list", "--group", "nope"]).exit_code == 2


def test_show_prints_exact_requests():
    res = runner.invoke(
        app,
        [
            "tasks",
            "show",
            "mmlu_anatomy",
            "--n",
            "2",
            "--num-fewshot",
            "1",
            "-f",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    items = get_task("mmlu_anatomy", num_fewshot=1).items(limit=2)
    assert payload["num_fewshot"] == 1 and len(payload["items"]) == 2
    for got, it in zip(payload["items"], items, strict=True):
        assert [(r["context"], r["continuation"]) for r in got["requests"]] == [
            (r.context, r.continuation) for r in it.requests
        ]
    text = runner.invoke(app, ["tasks", "show", "copa", "--n", "1"])
    assert (
        text.exit_code == 0 and "The man turned on the faucet therefore" in text.output
    )


def test_show_unknown_task_suggests():
    res = runner.invoke(app, ["tasks", "show", "arc_esy"])
    assert res.exit_code == 2
    assert "arc_easy" in res.output


def test_show_generative_task_prints_prompt_and_settings():
    res = runner.invoke(app, ["tasks", "show", "gsm8k_cot", "--n", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    item = json.loads(res.output)["items"][0]
    assert item["prompt"].startswith("Q: There are 15 trees") and item["prompt"].endswith("\nA:")
    assert item["until"] == ["Q:", "</s>", "<|im_end|>"] and item["target"] == "18"
    res = runner.invoke(app, ["tasks", "show", "gsm8k_cot", "--n", "1"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "max_gen_toks 256" in res.output
