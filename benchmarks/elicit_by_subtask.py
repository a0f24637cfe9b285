"""Where a method's gain comes from: a saved elicitation cell's arms scored per subtask and per group.

A multiple-choice cell (AGIEval English, MMLU) spreads its items round-robin over subtasks; the saved JSON
keeps each arm's per-item answers and the gold answers, and :func:`sharpbench.elicit.families.sample_items`
gives each item's subtask again (checked against the saved gold answers). This prints, for the chosen arms:

- a table of correct answers per subtask;
- for each ``--group`` (a named set of subtasks) and the remaining subtasks, each arm's accuracy and
  ``arm - first arm`` with a 95% paired bootstrap interval over the group's items.

    python benchmarks/elicit_by_subtask.py benchmarks/results/elicit_cells/qwen2.5-coder-1.5b__agieval_en.json \
        --arms plain,cot,direct --group math=agieval_aqua_rat,agieval_sat_math

Groups are named before looking at any score (here: the two AGIEval subsets whose answer is a computation),
otherwise the interval means nothing.
"""

from __future__ import annotations

import argparse
import json
import string
from pathlib import Path

import numpy as np

from sharpbench.elicit.families import family, sample_items
from sharpbench.elicit.stats import bootstrap_weights, weighted_accuracy


def cell_items(cell: dict) -> list[str]:
    """The subtask of each of the cell's items, in the cell's order (its gold answers must agree)."""
    units, questions = sample_items(family(cell["task"]), int(cell["n_items"]))
    if not questions:
        raise SystemExit(f"{cell['task']} is not a multiple-choice cell: no subtasks to split by")
    gold = [string.ascii_lowercase[int(q.answer)] for q in questions]
    if len(gold) != len(cell["gold"]) or any(g != s for g, s in zip(gold, cell["gold"]) if s is not None):
        raise SystemExit(f"{cell['model']} on {cell['task']}: the items drawn now are not the saved cell's items")
    return [sub for sub, _ in units]


def correct_by_arm(cell: dict, arms: list[str]) -> dict[str, np.ndarray]:
    """Each named arm's per-item correctness as the study scored it (0/1; for the probe and the prior,
    the share of the held-out splits in which the item was right)."""
    saved = {a["arm"]: a for a in cell["arms"]}
    missing = [a for a in arms if a not in saved]
    if missing:
        raise SystemExit(f"arms not in the cell: {missing}; it has {sorted(saved)}")
    n = int(cell["n_items"])
    out = {}
    for a in arms:
        c = saved[a].get("correct")
        if c is None:
            raise SystemExit(f"arm {a} has no per-item scores: save the study with its per-item answers")
        if len(c) != n:
            raise SystemExit(f"arm {a} holds {len(c)} items, the cell {n}")
        out[a] = np.asarray(c, dtype=float)
    return out


def group_rows(subtasks: list[str], correct: dict[str, np.ndarray], groups: dict[str, set[str]], *,
               n_boot: int = 4000, seed: int = 0) -> list[dict]:
    """Per group (and "other" for the rest): each arm's accuracy and its paired gain over the first arm."""
    subs = np.array(subtasks)
    named = set().union(*groups.values()) if groups else set()
    parts = dict(groups)
    rest = set(subs) - named
    if rest:
        parts["other"] = rest
    base = next(iter(correct))
    rows = []
    for name, members in parts.items():
        mask = np.isin(subs, sorted(members))
        if not mask.any():
            raise SystemExit(f"group {name}: none of {sorted(members)} is among the cell's subtasks")
        w = bootstrap_weights(int(mask.sum()), n_boot, seed)
        arms = np.stack([c[mask] for c in correct.values()])
        draws = weighted_accuracy(arms, w)  # (n_arms, n_boot)
        for k, arm in enumerate(correct):
            diff = draws[k] - draws[0]
            rows.append({"group": name, "n": int(mask.sum()), "arm": arm, "accuracy": float(arms[k].mean()),
                         "gain": float(arms[k].mean() - arms[0].mean()),
                         "low": float(np.quantile(diff, 0.025)), "high": float(np.quantile(diff, 0.975)),
                         "base": base})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cell", type=Path, help="a saved cell (benchmarks/results/elicit_cells/M__T.json)")
    ap.add_argument("--arms", default="plain,cot", help="comma list of arms; the first is the baseline")
    ap.add_argument("--group", action="append", default=[], help="NAME=subtask,subtask (repeatable)")
    ap.add_argument("--n-boot", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    groups = {}
    for g in args.group:
        name, _, members = g.partition("=")
        if not name or not members:
            raise SystemExit(f"--group wants NAME=subtask,subtask; got {g!r}")
        groups[name] = {m.strip() for m in members.split(",") if m.strip()}
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for cell in json.loads(args.cell.read_text())["cells"]:
        subtasks = cell_items(cell)
        correct = correct_by_arm(cell, arms)
        print(f"\n{cell['model']} on {cell['task']} ({cell['n_items']} items): correct answers per subtask\n")
        print("| subtask | n | " + " | ".join(arms) + " |")
        print("|---|---|" + "---|" * len(arms))
        for sub in dict.fromkeys(subtasks):
            mask = np.array([s == sub for s in subtasks])
            print(f"| {sub} | {int(mask.sum())} | " + " | ".join(f"{correct[a][mask].sum():.3g}" for a in arms) + " |")
        print(f"\naccuracy per group; gain over {arms[0]} with a 95% paired bootstrap interval "
              f"({args.n_boot} resamples of the group's items)\n")
        print("| group | n | arm | accuracy | gain |")
        print("|---|---|---|---|---|")
        for r in group_rows(subtasks, correct, groups, n_boot=args.n_boot, seed=args.seed):
            gain = "-" if r["arm"] == r["base"] else f"{r['gain']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
            print(f"| {r['group']} | {r['n']} | {r['arm']} | {r['accuracy']:.3f} | {gain} |")


if __name__ == "__main__":
    main()
