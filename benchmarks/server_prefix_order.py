"""Does sending requests in prefix-tree order let a real server's prefix cache serve MMLU few-shot prompts?

The openai backend cannot reuse a server's key/value states for prompt
logprobs itself, but it can send the requests of items sharing a few-shot
prefix one after another: llama.cpp (its slot keeps the last prompt's states
and evaluates only the tokens after the longest common prefix) and vLLM (APC)
then compute the shared part once.  This script starts a real
llama-cpp-python server on 127.0.0.1 serving the packaged GGUF, scores the
same MMLU few-shot items through the openai backend (one request at a time)
in prefix-tree order and in the runner's other order (longest first), A/B
interleaved, and prints the wall time of each, the speed-up, and how far the
two orders' logliks differ (llama.cpp's kernels depend on how many tokens a
batch has, so a prompt evaluated after a cached prefix can differ from one
evaluated whole by quantization-level noise).

Usage::

    python benchmarks/server_prefix_order.py --subjects anatomy,astronomy --limit 10 --num-fewshot 5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m", help="packaged model (its GGUF is served)")
    ap.add_argument("--subjects", default="anatomy,astronomy")
    ap.add_argument("--limit", type=int, default=10, help="items per subject")
    ap.add_argument("--num-fewshot", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="A/B rounds (each runs both orders)")
    ap.add_argument("--threads", type=int, default=2, help="server threads")
    ap.add_argument("--n-ctx", type=int, default=1024)
    args = ap.parse_args(argv)

    from sharpbench.data.registry import get_task
    from sharpbench.engine.runner import score_items
    from sharpbench.models.llama_server import LlamaServer
    from sharpbench.models.openai_api import OpenAIBackend
    from sharpbench.models.packaged import gguf_path

    items = [
        it
        for s in args.subjects.split(",")
        for it in get_task(f"mmlu_{s.strip()}", num_fewshot=args.num_fewshot).items(limit=args.limit)
    ]
    items = [dataclasses.replace(it, item_id=i) for i, it in enumerate(items)]
    key = "sb-bench-key"
    os.environ["SB_BENCH_KEY"] = key
    times: dict[str, list[float]] = {"tree": [], "longest-first": []}
    results: dict[str, dict] = {}
    with LlamaServer(gguf_path(args.model), api_key=key, n_ctx=args.n_ctx, n_threads=args.threads) as srv:
        backends = {
            name: OpenAIBackend(args.model, base_url=srv.base_url, tokenizer=args.model, add_bos_token=True,
                                api_key_env="SB_BENCH_KEY", max_concurrency=1, tree_order=name == "tree")
            for name in times
        }
        list(score_items(backends["tree"], items[:1]))  # warm-up
        for r in range(args.rounds):
            order = list(times) if r % 2 == 0 else list(times)[::-1]
            for name in order:
                t0 = time.perf_counter()
                results[name] = {x.item_id: x for x in score_items(backends[name], items)}
                times[name].append(time.perf_counter() - t0)
    tokens = sum(len(r.context) + len(r.continuation) for it in items for r in it.requests)
    print(f"{len(items)} MMLU {args.num_fewshot}-shot items ({args.subjects}), {args.model} GGUF behind "
          f"llama-cpp-python's server, one request at a time, {args.rounds} A/B rounds ({tokens} prompt chars)")
    for name, ts in times.items():
        print(f"  {name:<14} wall s per run: {', '.join(f'{t:.1f}' for t in ts)}  (best {min(ts):.1f})")
    print(f"  speed-up of tree order: {min(times['longest-first']) / min(times['tree']):.2f}x (best runs)")
    a = np.array([c.loglik for i in sorted(results["tree"]) for c in results["tree"][i].choices])
    b = np.array([c.loglik for i in sorted(results["tree"]) for c in results["longest-first"][i].choices])
    acc = [np.mean([results[n][i].metrics["acc"] for i in results[n]]) for n in times]
    print(f"  |delta loglik| between the orders: mean {np.abs(a - b).mean():.4f}, max {np.abs(a - b).max():.4f}; "
          f"acc tree {acc[0]:.3f}, longest-first {acc[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
