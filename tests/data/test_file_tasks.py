"""Local-file tasks: JSONL / CSV / Parquet data with a TOML or YAML task file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sharpbench.data import DataFileError, TaskError, get_task, resolve_tasks

ROWS = [
    {
        "qid": "q1",
        "question": "Capital of France?",
        "options": ["Paris", "Rome", "Oslo"],
        "answer": 0,
    },
    {"qid": "q2", "question": "2 + 2 =", "options": ["3", "4", "5"], "answer": "B"},
    {
        "qid": "q3",
        "question": "Largest planet?",
        "options": ["Mars", "Venus", "Jupiter"],
        "answer": "Jupiter",
    },
]
TOML = """
name = "toy"
path = "{data}"
doc_to_text = "Question: {{question}}\\nAnswer:"
choices = "options"
gold = "answer"
id = "qid"
metric_names = ["acc", "acc_norm"]
"""


def _write_task(tmp_path: Path, data_name: str, extra: str = "") -> Path:
    task_file = tmp_path / "toy.toml"
    task_file.write_text(TOML.format(data=data_name) + extra, encoding="utf-8")
    return task_file


def _write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _check_items(task) -> None:
    items = task.items()
    assert [it.gold for it in items] == [0, 1, 2]
    assert items[0].requests[0].context == "Question: Capital of France?\nAnswer:"
    assert [r.continuation for r in items[0].requests] == [" Paris", " Rome", " Oslo"]
    assert items[1].choices == ("3", "4", "5")
    assert [it.metadata["id"] for it in items] == ["q1", "q2", "q3"]
    assert [it.item_id for it in items] == [0, 1, 2]
    assert task.metric_names == ["acc", "acc_norm"]


def test_jsonl_task(tmp_path):
    _write_jsonl(tmp_path / "toy.jsonl", ROWS)
    task = get_task(str(_write_task(tmp_path, "toy.jsonl")))
    assert task.name == "toy" and task.n_docs == 3 and task.group is None
    _check_items(task)
    assert len(task.items(limit=2)) == 2


def test_csv_task_with_json_list_column(tmp_path):
    lines = ["qid,question,options,answer"]
    for r in ROWS:
        opts = json.dumps(r["options"]).replace('"', '""')
        lines.append(f'{r["qid"]},{r["question"]},"{opts}",{r["answer"]}')
    (tmp_path / "toy.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _check_items(get_task(str(_write_task(tmp_path, "toy.csv"))))


def test_parquet_task_with_choice_fields(tmp_path):
    table = pa.table(
        {
            "qid": [r["qid"] for r in ROWS],
            "question": [r["question"] for r in ROWS],
            "a": [r["options"][0] for r in ROWS],
            "b": [r["options"][1] for r in ROWS],
            "c": [r["options"][2] for r in ROWS],
            "answer": ["0", "B", "Jupiter"],
        }
    )
    pq.write_table(table, tmp_path / "toy.parquet")
    task_file = tmp_path / "toy.toml"
    task_file.write_text(
        TOML.format(data="toy.parquet").replace(
            'choices = "options"', 'choices = ["a", "b", "c"]'
        )
    )
    _check_items(get_task(str(task_file)))


def test_yaml_task_file_and_fewshot(tmp_path):
    _write_jsonl(tmp_path / "toy.jsonl", ROWS)
    (tmp_path / "toy.yaml").write_text(
        "name: toy_yaml\npath: toy.jsonl\nquestion: question\nchoices: options\ngold: answer\n"
        'description: "Quiz.\\n\\n"\n',
        encoding="utf-8",
    )
    task = get_task(str(tmp_path / "toy.yaml"), num_fewshot=1)
    items = task.items()
    # first-n few-shot pool = the other rows of the file (the evaluated row is excluded)
    assert items[0].requests[0].context == "Quiz.\n\n2 + 2 = 4\n\nCapital of France?"
    assert (
        items[1].requests[0].context == "Quiz.\n\nCapital of France? Paris\n\n2 + 2 ="
    )
    assert task.template_hash != get_task(str(tmp_path / "toy.yaml")).template_hash


def test_resolve_tasks_mixes_files_and_builtins(tmp_path):
    _write_jsonl(tmp_path / "toy.jsonl", ROWS)
    tasks = resolve_tasks(f"piqa, {_write_task(tmp_path, 'toy.jsonl')}")
    assert [t.name for t in tasks] == ["piqa", "toy"]


def test_malformed_jsonl_names_line(tmp_path):
    text = json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{not json\n"
    (tmp_path / "toy.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 3"):
        get_task(str(_write_task(tmp_path, "toy.jsonl"))).items()


def test_missing_field_names_line(tmp_path):
    rows = [ROWS[0], {"qid": "q2", "question": "x", "answer": 0}]
    _write_jsonl(tmp_path / "toy.jsonl", rows)
    with pytest.raises(
        DataFileError, match=r"line 2: missing field\(s\) \['options'\]"
    ):
        get_task(str(_write_task(tmp_path, "toy.jsonl"))).items()


def test_ragged_csv_names_line(tmp_path):
    (tmp_path / "toy.csv").write_text(
        'qid,question,options,answer\nq1,a,"[""x""]",0\nq2,b\n', encoding="utf-8"
    )
    with pytest.raises(DataFileError, match=r"line 3: 2 fields, the header has 4"):
        get_task(str(_write_task(tmp_path, "toy.csv"))).items()


def test_gold_out_of_range_names_task_and_document(tmp_path):
    rows = [ROWS[0], {**ROWS[1], "answer": 7}]
    _write_jsonl(tmp_path / "toy.jsonl", rows)
    with pytest.raises(
        TaskError, match=r"task toy, document 1: .*gold index 7 out of range"
    ):
        get_task(str(_write_task(tmp_path, "toy.jsonl"))).items()


def test_empty_choices_is_an_error(tmp_path):
    rows = [{**ROWS[0], "options": []}]
    _write_jsonl(tmp_path / "toy.jsonl", rows)
    with pytest.raises(TaskError, match=r"task toy, document 0: .*empty choice list"):
        get_task(str(_write_task(tmp_path, "toy.jsonl"))).items()


def test_bad_task_file_settings(tmp_path):
    _write_jsonl(tmp_path / "toy.jsonl", ROWS)
    with pytest.raises(DataFileError, match="unknown setting"):
        get_task(str(_write_task(tmp_path, "toy.jsonl", extra='golld = "x"\n')))
    bad = tmp_path / "bad.toml"
    bad.write_text('path = "toy.jsonl"\nchoices = "options"\ngold = "answer"\n')
    with pytest.raises(DataFileError, match="doc_to_text"):
        get_task(str(bad))
    with pytest.raises(DataFileError, match="not found"):
        get_task(str(tmp_path / "nope.toml"))


def test_gold_not_among_choices_names_task_and_document(tmp_path):
    rows = [ROWS[0], {**ROWS[1], "answer": "seven"}]
    _write_jsonl(tmp_path / "toy.jsonl", rows)
    with pytest.raises(TaskError, match=r"task toy, document 1: gold value 'seven'"):
        get_task(str(_write_task(tmp_path, "toy.jsonl"))).items()


def _gen_task_file(tmp_path, extra: str = "") -> "Path":
    (tmp_path / "arith.jsonl").write_text(
        "\n".join(json.dumps({"question": f"What is {a} + {b}?", "answer": str(a + b)}) for a, b in
                  ((2, 2), (3, 5), (10, 7), (6, 1))) + "\n", encoding="utf-8")
    p = tmp_path / "arith.toml"
    p.write_text(
        'name = "arith"\npath = "arith.jsonl"\noutput_type = "generate_until"\n'
        'doc_to_text = "Q: {question}\\nA:"\ntarget = "answer"\nuntil = ["\\n"]\nmax_gen_toks = 8\n'
        'num_fewshot = 2\n' + extra, encoding="utf-8")
    return p


def test_generative_task_file_prompts_and_scoring(tmp_path):
    extra = ('[[filter_list]]\nname = "number"\n'
             'filter = [{function = "regex", regex_pattern = "(-?[0-9]+)"}, {function = "take_first"}]\n')
    task = get_task(str(_gen_task_file(tmp_path, extra)))
    assert task.kind == "generate_until" and task.metric_names == ["exact_match,number"]
    item = task.items()[0]
    assert item.prompt == "Q: What is 3 + 5?\nA: 8\n\nQ: What is 10 + 7?\nA: 17\n\nQ: What is 2 + 2?\nA:"
    assert (item.target, item.until, item.max_gen_toks) == ("4", ("\n",), 8)
    scored = item.scoring.score([" 4, since 2 + 2 = 4"], item.target)
    assert scored.metrics == {"exact_match,number": 1.0}


@pytest.mark.parametrize("extra, match", [
    ('choices = "x"\n', "not `choices`/`gold`"),
    ('[[filter_list]]\nname = "f"\nfilter = [{function = "nope"}]\n', "nope"),
])
def test_generative_task_file_errors(tmp_path, extra, match):
    with pytest.raises(DataFileError, match=match):
        get_task(str(_gen_task_file(tmp_path, extra))).items()


def test_generative_keys_on_a_multiple_choice_file_are_refused(tmp_path):
    p = tmp_path / "mc.toml"
    p.write_text('path = "x.jsonl"\nquestion = "q"\nchoices = "c"\ngold = "g"\nuntil = ["\\n"]\n', encoding="utf-8")
    with pytest.raises(DataFileError, match="generate_until"):
        get_task(str(p))
