"""Elicitation results shaped like a real study, built from the schema (for the plot and report tests).

Four models (one of unknown size and chat template, with ``<>&`` in its name), three tasks; skipped
methods with notes; a cell whose plain score is 0 (ratio ``None``); arms, comparisons, token counts.
"""

from __future__ import annotations

import numpy as np

from sharpbench.elicit.result import (
    ArmScore,
    CellResult,
    Comparison,
    ElicitResult,
    MethodScore,
)

ODD_MODEL = "my <fine-tune> & co"

MODELS = [  # name, params, instruct, skill, backend
    ("smollm2-135m-instruct", 1.35e8, True, 0.0, "hf"),
    ("gemma-3-270m", 2.68e8, False, 0.03, "hf"),
    ("qwen2.5-coder-1.5b-instruct", 1.54e9, True, 0.18, "hf"),
    (ODD_MODEL, None, None, 0.08, "llamacpp"),
]
TASKS = [  # name, items, plain accuracy at skill 0, generative, tokens per item (plain)
    ("mmlu", 200, 0.27, False, 420),
    ("arc_challenge", 200, 0.24, False, 160),
    ("gsm8k_cot", 100, 0.02, True, 900),
]
SKIP_PROBE = "skipped: the probe needs hidden states; the llamacpp backend has none"
SKIP_VARIANTS = "skipped: gsm8k_cot has no answer choices for a multiple-choice prompt variant"


def _cell(rng, model, params, instruct, skill, backend, task, n, base, generative, tok) -> CellResult:
    plain = 0.0 if (model == "gemma-3-270m" and task == "gsm8k_cot") else float(np.clip(base + skill, 0, 1))
    se = max(np.sqrt(max(plain * (1 - plain), 0.01) / n), 0.01)
    methods = [MethodScore("plain", plain, max(plain - 2 * se, 0), min(plain + 2 * se, 1), 0.0, 0.0, 0.0, 1,
                           "lm-eval", tok * n, 12.5)]
    arms = [ArmScore("plain", "lm-eval", plain, n, tok * n, 12.5)]
    plan = [("variants", 6, 1.0), ("system-prompts", 4, 1.3), ("direct", 1, 1.5), ("cot", 1, 6.0),
            ("self-consistency:8", 1, 48.0), ("vote", 6, 6.0), ("probe", 1, 1.0)]
    prompt_acc = [plain]
    for name, k, cost in plan:
        if name == "probe" and backend == "llamacpp":
            methods.append(MethodScore("probe", None, note=SKIP_PROBE))
            continue
        if name in ("variants", "vote") and generative:
            methods.append(MethodScore(name, None, note=SKIP_VARIANTS))
            continue
        lift = {"cot": 0.08 if generative else -0.01, "self-consistency:8": 0.12 if generative else 0.01,
                "probe": 0.09}.get(name, 0.02)
        score = float(np.clip(plain + lift + rng.normal(0, 0.015), 0, 1))
        gain = score - plain
        note = None
        if name == "system-prompts":
            note = "chat template" if instruct else "as a text preamble"
        tokens = int(tok * n * cost * (1.0 if name != "cot" or generative else 1.2))
        methods.append(MethodScore(name, score, max(score - 2 * se, 0), min(score + 2 * se, 1), gain,
                                   gain - 1.5 * se, gain + 1.5 * se, k, f"{name}-arm-1" if k > 1 else name,
                                   tokens, round(tokens / 9000, 1), note))
        for a in range(k if name not in ("vote", "probe") else 0):
            acc = float(np.clip(score + rng.normal(0, 0.03), 0, 1))
            arms.append(ArmScore(name, f"{name}-arm-{a}", acc, n, tokens // k, round(tokens / k / 9000, 1)))
            if name in ("variants", "system-prompts", "direct", "cot"):
                prompt_acc.append(acc)
    scored = [m for m in methods if m.score is not None and m.method not in ("probe",)]
    best = max(scored, key=lambda m: m.score)
    elicited = best.score
    ratio = None if plain == 0 else elicited / plain
    comps = [Comparison("probe", "elicited", 0.09 - (elicited - plain), 0.09 - (elicited - plain) - 0.05,
                        0.09 - (elicited - plain) + 0.05)] if backend != "llamacpp" else []
    if not generative:
        comps.insert(0, Comparison("vote", "best single prompt", 0.004, -0.021, 0.03))
    return CellResult(
        model=model, task=task, n_items=n, plain=plain, plain_low=methods[0].low, plain_high=methods[0].high,
        elicited=elicited, elicited_low=max(elicited - 2 * se, 0), elicited_high=min(elicited + 2 * se, 1),
        ratio=ratio, ratio_low=None if ratio is None else ratio * 0.9, ratio_high=None if ratio is None else ratio * 1.12,
        best_method=best.method, prompt_std=float(np.std(prompt_acc)),
        prompt_range=float(np.ptp(prompt_acc)), methods=methods, arms=arms, comparisons=comps,
        params=params, instruct=instruct)


def sample_result(models=MODELS, tasks=TASKS, seed: int = 19) -> ElicitResult:
    """The study: every model x task (see the module docstring)."""
    rng = np.random.default_rng(seed)
    cells = [_cell(rng, *m, *t) for m in models for t in tasks]
    return ElicitResult(cells=cells, settings={"limit": 200, "splits": 20, "n_boot": 1000, "seed": seed,
                                               "methods": "plain,variants,system-prompts,cot,self-consistency:8,"
                                                          "vote,probe"})


def single_result() -> ElicitResult:
    """One model, one task."""
    return sample_result(models=MODELS[:1], tasks=TASKS[:1])
