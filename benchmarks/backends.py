"""Items per second of each backend on the same PIQA items and packaged model, in one run.

Backends: ``hf`` float32 and bfloat16 (transformers weights dequantized from
the GGUF), ``llamacpp`` (in-process llama-cpp-python on the GGUF) and
``openai`` (the same GGUF behind a llama-cpp-python server on 127.0.0.1,
started here with BOS prepended so that its echoed logprobs are aligned).
Each backend scores the same items once after a short warm-up; the table
shows items/s, the ratio to hf float32, and each backend's per-item accuracy
agreement and mean |delta loglik| against hf float32 on the same tokens
(the openai row is compared with hf float32 with BOS prepended, as it is
served).

Usage::

    python benchmarks/backends.py --limit 100 --threads 2 [--skip openai]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _score(backend, items):
    from sharpbench.engine.runner import score_items

    list(score_items(backend, items[:2]))  # warm-up (thread pools, caches, first-request setup)
    t0 = time.perf_counter()
    results = sorted(score_items(backend, items), key=lambda r: r.item_id)  # each backend's own order
    return results, time.perf_counter() - t0


def _compare(results, reference):
    agree = np.mean([a.metrics["acc"] == b.metrics["acc"] for a, b in zip(results, reference)])
    diffs = [abs(p.loglik - q.loglik) for a, b in zip(results, reference) for p, q in zip(a.choices, b.choices)]
    return float(agree), float(np.mean(diffs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="piqa")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma-separated rows to skip: hf-bf16, llamacpp, openai")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    import torch

    from sharpbench.data.registry import resolve_tasks
    from sharpbench.models import load_model
    from sharpbench.models.packaged import gguf_path

    torch.set_num_threads(args.threads)
    items = resolve_tasks(args.task)[0].items(limit=args.limit)
    rows = []
    ref, secs = _score(load_model(args.model), items)
    rows.append({"backend": "hf float32", "seconds": secs, "agree": 1.0, "dloglik": 0.0})
    if "hf-bf16" not in skip:
        res, secs = _score(load_model(args.model, dtype="bfloat16"), items)
        rows.append({"backend": "hf bfloat16", "seconds": secs, **dict(zip(("agree", "dloglik"), _compare(res, ref)))})
    if "llamacpp" not in skip:
        res, secs = _score(load_model(args.model, backend="llamacpp", n_threads=args.threads), items)
        rows.append({"backend": "llamacpp (GGUF)", "seconds": secs,
                     **dict(zip(("agree", "dloglik"), _compare(res, ref)))})
    if "openai" not in skip:
        from sharpbench.models.llama_server import LlamaServer

        ref_bos, _ = _score(load_model(args.model, add_bos_token=True), items)
        with LlamaServer(gguf_path(args.model), n_threads=args.threads) as srv:
            backend = load_model(args.model, backend="openai", base_url=srv.base_url, tokenizer=args.model,
                                 add_bos_token=True)
            res, secs = _score(backend, items)
        rows.append({"backend": "openai (llama-cpp-python server)", "seconds": secs,
                     **dict(zip(("agree", "dloglik"), _compare(res, ref_bos)))})
    base = rows[0]["seconds"]
    print(f"\n{args.model} on {len(items)} {args.task} items, {args.threads} threads "
          f"(torch {torch.__version__})\n")
    print("| backend | seconds | items/s | vs hf float32 | acc agreement | mean abs dloglik |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        r["items_per_s"] = len(items) / r["seconds"]
        print(f"| {r['backend']} | {r['seconds']:.1f} | {r['items_per_s']:.2f} | {base / r['seconds']:.2f}x | "
              f"{r['agree']:.2f} | {r['dloglik']:.3f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"model": args.model, "task": args.task, "n_items": len(items), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
