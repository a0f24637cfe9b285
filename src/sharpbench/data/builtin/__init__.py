"""Catalogue of built-in tasks and groups (names -> spec factories)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from sharpbench.data.base import TaskSpec
from sharpbench.data.builtin import agieval, common, gen_tasks, mmlu, mmlu_pro


@dataclass(frozen=True)
class GroupInfo:
    """A named set of tasks and how lm-eval aggregates it.

    ``weight_by_size=True``: the group score is the mean over all items of all
    member tasks (lm-eval's ``aggregate_metric_list: weight_by_size: true``);
    otherwise the unweighted mean of the task scores.
    """

    name: str
    tasks: tuple[str, ...]
    metric: str = "acc"
    weight_by_size: bool = True
    description: str = ""


# ``metadata.version`` of lm-eval 0.4.13's task YAMLs (shown in the results table as lm-eval does).
LMEVAL_VERSIONS: dict[str, str] = {
    "piqa": "1.0", "arc_easy": "1.0", "arc_challenge": "1.0", "hellaswag": "1.0", "winogrande": "1.0",
    "boolq": "2.0", "openbookqa": "1.0", "sciq": "1.0", "social_iqa": "0.0", "copa": "1.0",
    **{name: "1.0" for name in mmlu.SPECS},
    **{name: "1.0" for name in agieval.SPECS},
}  # fmt: skip


def _with_version(name: str, factory: Callable[[], TaskSpec]) -> Callable[[], TaskSpec]:
    version = LMEVAL_VERSIONS.get(name)
    if version is None:
        return factory
    return lambda: dataclasses.replace(factory(), version=version)


BUILTIN_SPECS: dict[str, Callable[[], TaskSpec]] = {
    name: _with_version(name, factory)
    for name, factory in {**common.SPECS, **mmlu.SPECS, **agieval.SPECS, **mmlu_pro.SPECS, **gen_tasks.SPECS}.items()
}

BUILTIN_GROUPS: dict[str, GroupInfo] = {
    "mmlu": GroupInfo(
        "mmlu",
        tuple(mmlu.SPECS),
        description="57 MMLU subjects (lm-eval: size-weighted mean of the 4 category groups)",
    ),
    **{
        name: GroupInfo(name, tuple(tasks), description=f"MMLU {name[5:]} subjects")
        for name, tasks in mmlu.CATEGORY_GROUPS.items()
    },
    "agieval_en": GroupInfo(
        "agieval_en",
        tuple(agieval.SPECS),
        description="7 AGIEval English MC subsets (lm-eval's group also has 3 unpackaged ones)",
    ),
    mmlu_pro.GROUP_BY_CATEGORY: GroupInfo(
        mmlu_pro.GROUP_BY_CATEGORY,
        tuple(n for n in mmlu_pro.SPECS if n != "mmlu_pro"),
        description="MMLU-Pro split into its 14 categories",
    ),
    "mmlu_gen": GroupInfo(
        "mmlu_gen", gen_tasks.GROUPS["mmlu_gen"], metric="exact_match,get_response",
        description="57 MMLU subjects, generative: the answer letter only (lm-eval's mmlu_generative)",
    ),
    "agieval_en_cot": GroupInfo(
        "agieval_en_cot", gen_tasks.GROUPS["agieval_en_cot"], metric="exact_match,custom-extract",
        description="7 AGIEval English subsets, zero-shot chain of thought, 'the answer is (X)'",
    ),
    "mmlu_cot": GroupInfo(
        "mmlu_cot", gen_tasks.GROUPS["mmlu_cot"], metric="exact_match,custom-extract",
        description="57 MMLU subjects, MMLU-Pro's zero-shot chain of thought, 'the answer is (X)'",
    ),
    "agieval_en_direct": GroupInfo(
        "agieval_en_direct", gen_tasks.GROUPS["agieval_en_direct"], metric="exact_match,letter-extract",
        description="7 AGIEval English subsets, the answer letter directly (agieval_en_cot's questions)",
    ),
}
