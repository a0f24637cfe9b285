"""What the elicitation study's multiple-choice items give away without a model: surface-cue baselines.

The probe reads the hidden state after each answer option, so it can learn anything the option's text
carries: its position, its length, its words shared with the question. Before a probe score says "the
model knows more than it says", it must beat what those cues alone reach. For the study's items (the same
task, limit, splits and seed) this prints:

- chance (the mean of 1 / number of options) and the always-"A" score;
- the longest and the shortest option (the first one on ties);
- the answer prior held out (:func:`sharpbench.elicit.stats.answer_prior`: the answer most often right in
  one half, given to the other), as the study reports it beside every probe;
- a surface probe: the study's own probe estimator (:func:`sharpbench.elicit.probe.probe_held_out`, the
  same splits, C grid and cross-validation) fitted on surface features of each option instead of hidden
  states: position (one-hot), log characters, log words, length relative to the item's other options,
  longest / shortest flags, and the share of the option's words found in the question;

then each model's probe score from the combined study, when given.

    python benchmarks/elicit_cue_baselines.py [--study benchmarks/results/elicit_study_all.json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from sharpbench.elicit.families import family, sample_items
from sharpbench.elicit.probe import C_GRID, probe_held_out
from sharpbench.elicit.settings import ElicitSettings
from sharpbench.elicit.stats import answer_prior, half_splits

TASKS = ("arc_challenge", "mmlu", "agieval_en")
WORD = re.compile(r"[a-z0-9]+")
MAX_OPTIONS = 10


def surface_features(question: str, options: list[str]) -> np.ndarray:
    """Per option, its surface features: shape (n_options, 1, 10 + 7) (one "layer" for the probe)."""
    q_words = set(WORD.findall(question.lower()))
    chars = np.array([len(o) for o in options], dtype=float)
    rows = []
    for k, o in enumerate(options):
        words = WORD.findall(o.lower())
        pos = np.zeros(MAX_OPTIONS)
        pos[min(k, MAX_OPTIONS - 1)] = 1.0
        z = (chars[k] - chars.mean()) / (chars.std() or 1.0)
        overlap = sum(w in q_words for w in words) / len(words) if words else 0.0
        rows.append(np.concatenate([pos, [math.log1p(chars[k]), math.log1p(len(words)), z,
                                          float(chars[k] == chars.max()), float(chars[k] == chars.min()),
                                          chars[k] / (chars.sum() or 1.0), overlap]]))
    return np.asarray(rows)[:, None, :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", type=Path, default=Path("benchmarks/results/elicit_study_all.json"))
    args = ap.parse_args()
    s = ElicitSettings()
    probes: dict[str, dict[str, float]] = {}
    if args.study.is_file():
        for c in json.loads(args.study.read_text())["cells"]:
            for m in c["methods"]:
                if m["method"] == "probe" and m.get("score") is not None:
                    probes.setdefault(c["task"], {})[c["model"]] = m["score"]
    print("| task | n | chance | always A | longest | shortest | answer prior (held out) | surface probe (held out) "
          "| model probes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in TASKS:
        _, qs = sample_items(family(t), s.limit)
        gold = np.array([q.answer for q in qs])
        lengths = [np.array([len(o) for o in q.options]) for q in qs]
        chance = np.mean([1 / len(q.options) for q in qs])
        longest = np.mean([int(np.argmax(n)) == g for n, g in zip(lengths, gold)])
        shortest = np.mean([int(np.argmin(n)) == g for n, g in zip(lengths, gold)])
        prior = answer_prior([str(g) for g in gold], half_splits(len(qs), s.n_splits, s.seed)).mean()
        feats = [surface_features(q.question, list(q.options)) for q in qs]
        surface = probe_held_out(feats, gold, n_splits=s.probe_splits, seed=s.seed, C=C_GRID)
        models = ", ".join(f"{m} {v:.3f}" for m, v in probes.get(t, {}).items()) or "-"
        print(f"| {t} | {len(qs)} | {chance:.3f} | {np.mean(gold == 0):.3f} | {longest:.3f} | {shortest:.3f} | "
              f"{prior:.3f} | {surface.accuracy:.3f} | {models} |")


if __name__ == "__main__":
    main()
