"""sharpbench with and without its prefix tree/cache on the same items, A/B interleaved, in one process.

Each round scores the items once with the prefix cache and once without
(alternating which goes first), on one backend whose ``prefix_cache`` flag is
flipped between runs.  Prints the CPU seconds of every run (``process_time``,
the robust figure on a shared machine; wall time includes waiting), the
ratio of the medians, the prefix tree's distinct tokens against the tokens
item by item, and the largest |delta loglik| between the two paths.

Usage::

    python benchmarks/prefix_cache_ab.py --task piqa --rounds 3               # 0-shot: must not get slower
    python benchmarks/prefix_cache_ab.py --task mmlu_anatomy --num-fewshot 5 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="piqa")
    ap.add_argument("--num-fewshot", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N items (default: the full split)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from sharpbench.data.registry import get_task
    from sharpbench.models.hf.prefix import distinct_tokens
    from sharpbench.engine.requests import encode_item
    from sharpbench.engine.runner import score_items
    from sharpbench.models import load_model

    torch.set_num_threads(args.threads)
    items = get_task(args.task, num_fewshot=args.num_fewshot).items(limit=args.limit)
    backend = load_model(args.model, dtype=args.dtype)
    enc = [encode_item(backend, it) for it in items]
    reqs = [r for e in enc for r in e.requests]
    per_item = sum(e.packed_length for e in enc)
    tree = distinct_tokens([r.context for r in reqs]) + sum(len(r.continuation) - 1 for r in reqs)
    cpu: dict[str, list[float]] = {"prefix cache": [], "plain": []}
    out: dict[str, dict] = {}
    list(score_items(backend, items[: args.batch_size], batch_size=args.batch_size))  # warm-up
    for r in range(args.rounds):
        order = list(cpu) if r % 2 == 0 else list(cpu)[::-1]
        for name in order:
            backend.prefix_cache = name == "prefix cache"
            t0 = time.process_time()
            out[name] = {x.item_id: x for x in score_items(backend, items, batch_size=args.batch_size)}
            cpu[name].append(time.process_time() - t0)
    a = np.array([c.loglik for i in sorted(out["plain"]) for c in out["prefix cache"][i].choices])
    b = np.array([c.loglik for i in sorted(out["plain"]) for c in out["plain"][i].choices])
    acc = {n: np.mean([out[n][i].metrics["acc"] for i in out[n]]) for n in out}
    print(
        f"task={args.task} num_fewshot={args.num_fewshot} items={len(items)} model={args.model} dtype={args.dtype} "
        f"threads={args.threads} batch_size={args.batch_size} load average={os.getloadavg()[0]:.2f}"
    )
    print(f"tokens item by item {per_item}, in the prefix tree {tree} ({per_item / tree:.2f}x fewer)")
    for name, ts in cpu.items():
        print(f"  {name:<13} cpu s per run: {', '.join(f'{t:.1f}' for t in ts)}  (median {statistics.median(ts):.1f})")
    ratio = statistics.median(cpu["plain"]) / statistics.median(cpu["prefix cache"])
    print(f"  plain / prefix cache (medians): {ratio:.2f}x")
    print(f"  max |delta loglik| {np.abs(a - b).max():.2e}; acc prefix cache {acc['prefix cache']:.4f}, "
          f"plain {acc['plain']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
