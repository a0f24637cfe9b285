"""Accuracies of the packaged models on the generative tasks (the first figures users compare with published ones).

Runs ``sharpbench eval``'s pipeline (``run_eval``) for every (model, task)
into one store, so an interrupted or extended run (more items, more models)
computes only what is missing; prints exact_match per filter with its
standard error, items, generated tokens and wall time, and writes them as
JSON.  Greedy decoding, the tasks' own prompts and stops; ``--max-gen-toks``
caps generation where a task allows thousands of tokens (MMLU-Pro's 2048: a
small model that never stops would take hours on a CPU); the cap is printed.

Usage::

    python benchmarks/gen_accuracy.py --models smollm2-135m,qwen2.5-coder-0.5b --tasks gsm8k_cot --limit 200
    python benchmarks/gen_accuracy.py --tasks gsm8k_cot,minerva_math500,mmlu_pro_cot --limit 200 \\
        --max-gen-toks mmlu_pro_cot=512,minerva_math500=512 --store ~/.cache/sharpbench/gen_accuracy.duckdb
    python benchmarks/gen_accuracy.py --models qwen2.5-coder-1.5b --dtype bfloat16   # ~3x faster on AVX512-BF16

``--dtype`` is part of each row (rows without one are float32): the same model and task in two dtypes are
two rows, which shows what the dtype changes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODELS = "smollm2-135m,gemma3-270m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b"
TASKS = "gsm8k_cot,minerva_math500,mmlu_pro_cot"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--max-gen-toks", default="mmlu_pro_cot=512",
                    help="TASK=N,... caps (default: MMLU-Pro at 512; other tasks keep lm-eval's)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--store", type=Path, default=Path.home() / ".cache" / "sharpbench" / "gen_accuracy.duckdb")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gen_accuracy.json")
    args = ap.parse_args()

    import torch

    from sharpbench.engine.pipeline import run_eval
    from sharpbench.models import load_model

    torch.set_num_threads(args.threads)
    caps = {k: int(v) for k, v in (p.split("=") for p in args.max_gen_toks.split(",") if p)}
    args.store.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["model"], r["task"], r["limit"], r.get("max_gen_toks"), r.get("dtype", "float32")) for r in rows}
    for model in args.models.split(","):
        backend = None
        for task in args.tasks.split(","):
            key = (model, task, args.limit, caps.get(task), args.dtype)
            if key in done:
                continue
            backend = backend or load_model(model, dtype=args.dtype)
            t0 = time.perf_counter()
            rep = run_eval(backend, task, limit=args.limit, store=args.store, batch_size=args.batch_size,
                           gen_kwargs={"max_gen_toks": caps[task]} if task in caps else None,
                           progress=_Progress(f"{model} {task}", t0))
            t = rep.tasks[0]
            row = {"model": model, "task": task, "limit": args.limit, "max_gen_toks": caps.get(task), "dtype": args.dtype,
                   "n_items": t.n_items, "n_computed": t.n_computed, "wall_s": time.perf_counter() - t0,
                   "metrics": {k: {"value": v[0], "stderr": v[1]} for k, v in t.metrics.items()},
                   "generation": t.generation, "machine_load": os.getloadavg()[0]}
            rows.append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=2, default=str))
            shown = ", ".join(f"{k} {v[0]:.3f} ± {v[1]:.3f}" for k, v in t.metrics.items())
            print(f"{model:22s} {args.dtype:8s} {task:18s} n={t.n_items} ({t.n_computed} computed, {row['wall_s']:.0f} s): {shown}",
                  flush=True)
    return 0


class _Progress:
    """``run_eval``'s progress callback: a line every minute (items stored so far), for logs of long runs."""

    def __init__(self, label: str, t0: float) -> None:
        self.label, self.t0, self.last, self.done = label, t0, t0, 0

    def __call__(self, n: int, task: str) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= 60:
            self.last = now
            print(f"  [{now - self.t0:6.0f} s] {self.label}: {self.done} items stored", flush=True)


if __name__ == "__main__":
    sys.exit(main())
