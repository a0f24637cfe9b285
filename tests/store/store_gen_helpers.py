"""Generative results for store tests: real GenItem / GenItemResult objects, no model involved."""

from __future__ import annotations

from dataclasses import dataclass

from sharpbench.data.task import GenItem
from sharpbench.results import GenItemResult, GenSample, Generation
from sharpbench.store import RunSpec

FILTERS = ("strict-match", "flexible-extract")


@dataclass(frozen=True)
class Scoring:
    """Stands in for the task's answer scoring: the store only reads its ``key``."""

    key: str = "exact_match:strict-match,flexible-extract"


def gen_spec(model="m1", fp="fp1", task="gsm8k_cot", **kw) -> RunSpec:
    return RunSpec(model, fp, "hf", "float32", task, 8, "tmpl-gen", task_group=None, task_version="3.0",
                   kind="generate_until", **kw)


def gen_item(i: int, repeats: int = 1, prompt: str | None = None) -> GenItem:
    return GenItem(i, prompt if prompt is not None else f"Q: what is {i} + {i}?\nA:", str(2 * i), Scoring(),
                   until=("Question:", "\n\n"), max_gen_toks=64, repeats=repeats)


def gen_result(i: int, samples=range(1), right: set[int] | frozenset = frozenset(), flex_right=None) -> GenItemResult:
    """Item ``i``; strict-match correct when ``i`` in ``right``, flexible-extract when in ``flex_right``."""
    flex_right = right if flex_right is None else flex_right
    out = []
    for s in samples:
        ok = i in right
        text = f"{i} plus {i} is {2 * i if ok else 2 * i + 1}. The answer is {2 * i if ok else 2 * i + 1}."
        out.append(GenSample(
            index=s,
            generation=Generation(text, 10 + s, "stop" if s % 2 == 0 else "length"),
            extracted={"strict-match": str(2 * i) if ok else "[invalid]",
                       "flexible-extract": str(2 * i) if i in flex_right else str(2 * i + 1)},
            correct={"strict-match": float(ok), "flexible-extract": float(i in flex_right)},
            seconds=0.25 + s,
        ))
    metrics = {f"exact_match,{f}": out[0].correct[f] for f in FILTERS}
    return GenItemResult(i, str(2 * i), tuple(out), metrics)
