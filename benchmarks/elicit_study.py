"""The elicitation study of issue #19 on the packaged models: plain score against the best honest elicitation.

Runs :func:`sharpbench.elicit_study` (the same code as ``sharpbench elicit``) for
every model on every task into one store, so an interrupted or extended study
(more models, tasks, methods or items) computes only what is missing, then
writes the result (per item) as JSON, the HTML report, and prints the summary
and each method's cost next to its gain.

Usage::

    python benchmarks/elicit_study.py                         # the multiple-choice part (log-likelihood methods)
    python benchmarks/elicit_study.py --tasks mmlu,arc_challenge,gsm8k_cot,agieval_en \\
        --methods plain,variants,cot,self-consistency:8,system-prompts,vote,probe --max-gen-toks 512
    python benchmarks/elicit_study.py --dtype bfloat16 --store ~/.cache/sharpbench/elicit_bf16.duckdb \\
        --out benchmarks/results/elicit_study_bf16.json --report benchmarks/results/elicit_study_bf16.html

``--dtype bfloat16`` is ~3x faster than float32 on a CPU with AVX512-BF16 (generation and scoring); the
dtype is part of every run's key, so one store can hold both, but a study compares its arms in one dtype.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODELS = "smollm2-135m,gemma3-270m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b"
RESULTS = Path(__file__).parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--tasks", default="arc_challenge,mmlu")
    ap.add_argument("--methods", default="plain,variants,system-prompts,vote,probe")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--max-gen-toks", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--store", type=Path, default=Path.home() / ".cache" / "sharpbench" / "elicit.duckdb")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/elicit_study.json")
    ap.add_argument("--report", type=Path, default=None, help="default: benchmarks/results/elicit_study.html")
    ap.add_argument("--from-json", type=Path, nargs="+", default=None,
                    help="saved results: print their summary table (no model runs); with --out / --report, "
                         "write them combined into one result and one report (a cell two results hold is "
                         "merged: its arms united, its numbers recomputed)")
    args = ap.parse_args()
    if args.from_json is not None:
        import sharpbench as sb

        res = sb.combine_elicit([sb.ElicitResult.load(p) for p in args.from_json])
        print(markdown_table(res))
        if args.out is not None:
            res.save(args.out, per_item=True)
        if args.report is not None:
            from sharpbench.report.elicit_page import build_elicit_report

            build_elicit_report(res, args.report)
        return 0
    args.out = args.out or RESULTS / "elicit_study.json"
    args.report = args.report or RESULTS / "elicit_study.html"

    import torch

    import sharpbench as sb

    torch.set_num_threads(args.threads)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from sharpbench.cli.common import sigterm_as_interrupt
    from sharpbench.errors import EXIT_INTERRUPTED, RunInterrupted

    t0 = time.perf_counter()
    try:  # `kill PID` stops it as Ctrl-C does: whole items stored, the same command resumes
        with sigterm_as_interrupt():
            res = sb.elicit_study(args.models.split(","), args.tasks, methods=args.methods, limit=args.limit,
                                  store=args.store, settings=sb.ElicitSettings(max_gen_toks=args.max_gen_toks),
                                  load=lambda name: sb.load_model(name, dtype=args.dtype),
                                  progress=lambda m: print(f"[{time.perf_counter() - t0:7.0f} s] {m}", flush=True))
    except (KeyboardInterrupt, RunInterrupted) as exc:
        why = str(exc) or "interrupted; run the same command again to resume"  # the engine's names the store
        print(f"stopped after {time.perf_counter() - t0:.0f} s: {why}", file=sys.stderr)
        return EXIT_INTERRUPTED
    res.save(args.out, per_item=True)
    from sharpbench.report.elicit_page import build_elicit_report

    build_elicit_report(res, args.report)
    for c in res.cells:
        ratio = "undefined" if c.ratio is None else f"{c.ratio:.2f} [{c.ratio_low:.2f}, {c.ratio_high:.2f}]"
        print(f"{c.model:20s} {c.dtype or '':8s} {c.task:14s} n={c.n_items} plain {c.plain:.3f} [{c.plain_low:.3f}, {c.plain_high:.3f}]"
              f"  elicited {c.elicited:.3f} [{c.elicited_low:.3f}, {c.elicited_high:.3f}]  ratio {ratio}"
              f"  best {c.best_method}  prompt std {c.prompt_std:.3f} range {c.prompt_range:.3f}")
        for m in c.methods:
            if m.skipped:
                print(f"    {m.method:17s} {m.note}")
                continue
            secs = "" if m.seconds is None else f", {m.seconds:.0f} s"
            print(f"    {m.method:17s} {m.score:.3f} [{m.low:.3f}, {m.high:.3f}]  gain {m.gain:+.3f} "
                  f"[{m.gain_low:+.3f}, {m.gain_high:+.3f}]  {m.n_arms} arm(s), "
                  f"{m.tokens / max(c.n_items, 1):,.0f} tokens/item{secs}")
        for x in c.comparisons:
            print(f"    {x.a} - {x.b}: {x.diff:+.3f} [{x.low:+.3f}, {x.high:+.3f}]"
                  f"{'  (separated)' if x.separated else ''}")
    print(markdown_table(res))
    print(f"written {args.out} and {args.report} in {time.perf_counter() - t0:.0f} s")
    return 0


def markdown_table(res) -> str:
    """RESULTS.md's table: per cell the plain score, each method's held-out score (gain), the ratio, the paired
    comparisons and the prompt spread; a method the cell did not run (or skipped) shows as a dash. Cells saved
    before results recorded their dtype were float32 (the only dtype the study ran then)."""
    from sharpbench.elicit.plots import method_columns

    methods = [m for m in method_columns(res) if m not in ("plain", "elicited")]  # the report's order
    pairs = list(dict.fromkeys((x.a, x.b) for c in res.cells for x in c.comparisons))
    head = ["model", "dtype", "task", "n", "plain", *methods, "elicited / plain", *(f"{a} - {b}" for a, b in pairs),
            "prompt std / range", "compute"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in res.cells:
        by = {m.method: m for m in c.methods}
        cells = [c.model, c.dtype or "float32", c.task, str(c.n_items), f"{c.plain:.3f} [{c.plain_low:.3f}, {c.plain_high:.3f}]"]
        for name in methods:
            m = by.get(name)
            cells.append("-" if m is None or m.skipped else f"{m.score:.3f} ({m.gain:+.3f})")
        cells.append("undefined (plain 0)" if c.ratio is None
                     else f"{c.ratio:.2f} [{c.ratio_low:.2f}, {c.ratio_high:.2f}]")
        cmp = {(x.a, x.b): x for x in c.comparisons}
        for key in pairs:
            x = cmp.get(key)
            cells.append("-" if x is None else f"{x.diff:+.3f} [{x.low:+.3f}, {x.high:+.3f}]")
        cells.append(f"{c.prompt_std:.3f} / {c.prompt_range:.3f}")
        cells.append("unknown" if c.seconds is None else f"{c.seconds / 60:.0f} min")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
