"""Fill the gold answers into saved elicitation results made before cells kept them (sessions 11-12).

Without them, a combined study cannot form the probe's answer-prior baseline for those cells. The gold
answer of each item is read from the task's data, for the items the study chose (same task and limit),
and checked against every arm's answers: wherever an arm was right, its answer must be that gold answer.
Any mismatch stops the script before it writes.

    python benchmarks/elicit_fill_gold.py benchmarks/results/elicit_study_bf16_q15_arc.json ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sharpbench.elicit.families import family, sample_items
from sharpbench.elicit.stats import canonical
from sharpbench.elicit.study import LETTERS


def gold_of(task: str, limit: int) -> list[str]:
    fam = family(task)
    if not fam.is_mc:
        raise SystemExit(f"{task}: not multiple choice (gsm8k cells keep their gold answers from the arms)")
    _, questions = sample_items(fam, limit)
    return [canonical(LETTERS[q.answer], **fam.match) for q in questions]


def main(paths: list[str]) -> None:
    for p in map(Path, paths):
        doc = json.loads(p.read_text())
        limit = int(doc["settings"]["limit"])
        for cell in doc["cells"]:
            gold = gold_of(cell["task"], limit)
            if len(gold) != cell["n_items"]:
                raise SystemExit(f"{p}: {cell['task']} has {cell['n_items']} items, the task's sample {len(gold)}")
            checked = 0
            for arm in cell["arms"]:
                for j, (ans, ok) in enumerate(zip(arm.get("answers") or [], arm["correct"])):
                    if ok == 1 and ans is not None:
                        checked += 1
                        if ans != gold[j]:
                            raise SystemExit(f"{p}: {cell['task']} item {j}: arm {arm['arm']} was right with "
                                             f"{ans!r}, the task's gold is {gold[j]!r}; nothing written")
            if cell.get("gold") not in (None, gold):
                raise SystemExit(f"{p}: {cell['task']}: the saved gold answers differ from the task's")
            cell["gold"] = gold
            print(f"{p}: {cell['model']} on {cell['task']}: {len(gold)} gold answers, {checked} right answers agree")
        p.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
