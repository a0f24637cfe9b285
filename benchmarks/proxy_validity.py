"""Which cheap damage metric predicts the expensive one? (heretic RFC #236, on packaged models)

Part 1 reproduces the RFC's rank correlations from its published table.
Part 2 builds damaged variants of a packaged model (``--model``) in memory (Gaussian weight
noise at several scales, a random-direction ablation), measures on each the
cheap metrics (heretic first-token KLD on the shipped 100 harmless prompts,
PIQA acc_norm on a few hundred items) and the expensive reference (MMLU acc on
a few items per subject), and reports Spearman/Kendall correlations with
bootstrap CIs plus the side-by-side rank table.

It also times the KLD's single forward pass against heretic's one-token
``generate()`` on the same prompts (the peer, measured in the same run) and
prints the ratio.

    python benchmarks/proxy_validity.py                 # defaults: ~10 min on 2 idle cores
    python benchmarks/proxy_validity.py --piqa 60 --mmlu-per-subject 1 --noise 0.05,0.2   # quick
    # the README's figures (~1.6 h on 2 cores; the second run reuses the first's variants):
    python benchmarks/proxy_validity.py --model qwen2.5-coder-1.5b --threads 1 --mmlu-per-subject 2 --piqa 150 --json a.json
    python benchmarks/proxy_validity.py --model qwen2.5-coder-1.5b --threads 2 --mmlu-per-subject 2 --piqa 150 \
        --noise 0.02,0.05,0.08,0.12,0.25,0.4,0.6 --merge a.json --json b.json
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--noise", default="0.02,0.05,0.08,0.12", help="relative noise scales")
    ap.add_argument("--ablate", default="1.0", help="random-direction ablation weights ('' for none)")
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--piqa", type=int, default=200, help="PIQA items")
    ap.add_argument("--mmlu-per-subject", type=int, default=5, help="MMLU items per subject (57 subjects)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--merge", default=None,
                    help="a --json file of an earlier run with the same settings: its variants are reused, "
                         "only new ones are computed")
    args = ap.parse_args()
    settings = {k: getattr(args, k) for k in ("model", "dtype", "prompts", "piqa", "mmlu_per_subject", "batch_size")}
    earlier = {}
    if args.merge:
        with open(args.merge) as f:
            prior = json.load(f)
        if prior.get("settings") != settings:
            raise SystemExit(f"--merge {args.merge}: settings {prior.get('settings')} differ from this run's {settings}")
        earlier = prior["variants"]

    import numpy as np
    import torch

    from sharpbench.compare.correlate import correlate, rfc_correlate
    from sharpbench.compare.hf import load_tokenizer
    from sharpbench.compare.kld import chat_texts, first_token_kl, next_token_logprobs
    from sharpbench.compare.perturb import (
        ablate_direction,
        add_gaussian_noise,
        make_direction,
    )
    from sharpbench.compare.prompts import harmless_prompts
    from sharpbench.compare.scoring import score_item_list, task_results
    from sharpbench.data.registry import get_task, resolve_tasks
    from sharpbench.models import load_model

    print("== Part 1: heretic RFC #236 published table (8 gpt-oss-20b variants; reference UGI NatInt)")
    rfc = rfc_correlate()
    for c in rfc.correlations:
        print(f"  {c.metric:14s} spearman {c.spearman:.3f} [{c.spearman_ci[0]:.2f}, {c.spearman_ci[1]:.2f}]  "
              f"kendall {c.kendall:.3f} [{c.kendall_ci[0]:.2f}, {c.kendall_ci[1]:.2f}]")

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"\n== Part 2: damaged variants of {args.model} ({args.dtype}, {torch.get_num_threads()} threads)")
    t0 = time.perf_counter()
    backend = load_model(args.model, dtype=args.dtype)
    tok = load_tokenizer(args.model)
    model = backend.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    texts = chat_texts(tok, harmless_prompts()[: args.prompts])
    piqa_items = get_task("piqa").items(limit=args.piqa)
    mmlu_tasks = list(resolve_tasks("mmlu"))
    print(f"  loaded in {time.perf_counter() - t0:.1f}s; {len(texts)} prompts, {len(piqa_items)} PIQA items, "
          f"{args.mmlu_per_subject * len(mmlu_tasks)} MMLU items")

    # Peer timing: heretic's generate(max_new_tokens=1) vs our single forward pass, same prompts.
    sub = texts[:16]
    next_token_logprobs(model, tok, sub[:2], batch_size=args.batch_size)  # warm-up: the first call pays one-off costs
    t = time.perf_counter()
    ours = next_token_logprobs(model, tok, sub, batch_size=args.batch_size)
    t_fwd = time.perf_counter() - t
    t = time.perf_counter()
    gen = []
    with torch.no_grad():
        for s in range(0, len(sub), args.batch_size):
            enc = tok(sub[s : s + args.batch_size], return_tensors="pt", padding=True, return_token_type_ids=False)
            out = model.generate(**enc, max_new_tokens=1, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True, pad_token_id=tok.eos_token_id)
            gen.append(torch.log_softmax(out.logits[0].float(), dim=-1))
    t_gen = time.perf_counter() - t
    diff = (torch.cat(gen) - ours).abs().max().item()
    print(f"  first-token logprobs, {len(sub)} prompts: forward {t_fwd:.2f}s vs generate {t_gen:.2f}s "
          f"(ratio generate/forward {t_gen / t_fwd:.2f}); max |diff| {diff:.2e}")

    base_lp = next_token_logprobs(model, tok, texts, batch_size=args.batch_size)
    direction = make_direction(model, tok, "random", seed=0)
    variants = [("base", None, 0.0)]
    variants += [(f"noise-{float(s):g}", "noise", float(s)) for s in args.noise.split(",") if s.strip()]
    variants += [(f"ablate-{float(w):g}", "ablate", float(w)) for w in args.ablate.split(",") if w.strip()]
    rows = dict(earlier)
    if earlier:
        print(f"  reused from {args.merge}: {', '.join(earlier)}")
    variants = [v for v in variants if v[0] not in earlier]
    cost = {"kld": 0.0, "piqa": 0.0, "mmlu": 0.0}
    for name, kind, scale in variants:
        model.load_state_dict(state)
        if kind == "noise":
            add_gaussian_noise(model, scale, seed=0)
        elif kind == "ablate":
            ablate_direction(model, direction, weight=scale)
        t = time.perf_counter()
        kld = first_token_kl(base_lp, next_token_logprobs(model, tok, texts, batch_size=args.batch_size)).kld
        cost["kld"] += time.perf_counter() - t
        t = time.perf_counter()
        piqa = float(np.mean([r.metrics["acc_norm"] for r in score_item_list(backend, piqa_items, batch_size=args.batch_size)]))
        cost["piqa"] += time.perf_counter() - t
        t = time.perf_counter()
        res = task_results(backend, mmlu_tasks, limit=args.mmlu_per_subject, batch_size=args.batch_size)
        mmlu = float(np.mean([r.metrics["acc"] for rs in res.values() for r in rs]))
        cost["mmlu"] += time.perf_counter() - t
        rows[name] = {"kld": kld, "piqa_acc_norm": piqa, "mmlu_acc": mmlu}
        print(f"  {name:12s} KLD {kld:8.4f}  PIQA acc_norm {piqa:.3f}  MMLU acc {mmlu:.3f}  "
              f"({time.perf_counter() - t0:.0f}s elapsed)", flush=True)
    model.load_state_dict(state)

    from sharpbench.compare.errors import CompareError

    try:
        res = correlate(
            {"kld": {m: r["kld"] for m, r in rows.items()},
             "piqa_acc_norm": {m: r["piqa_acc_norm"] for m, r in rows.items()}},
            {m: r["mmlu_acc"] for m, r in rows.items()},
            reference_name="mmlu_acc",
        )
    except CompareError as exc:  # e.g. the reference does not separate the variants at all
        res = None
        print(f"\n  no rank correlation: {exc}")
    if res is not None:
        print("\n  rank table (1 = best):")
        print(res.table.to_string(float_format=lambda x: f"{x:.4f}"))
        for c in res.correlations:
            print(f"  {c.metric:14s} vs MMLU: spearman {c.spearman:.3f} [{c.spearman_ci[0]:.2f}, {c.spearman_ci[1]:.2f}] "
                  f"kendall {c.kendall:.3f} [{c.kendall_ci[0]:.2f}, {c.kendall_ci[1]:.2f}]")
    n = max(len(variants), 1)  # variants computed in this run
    print(f"\n  cost per variant: KLD {cost['kld'] / n:.1f}s, PIQA {cost['piqa'] / n:.1f}s, MMLU {cost['mmlu'] / n:.1f}s "
          f"(KLD/MMLU time ratio {cost['kld'] / max(cost['mmlu'], 1e-9):.3f}, PIQA/MMLU {cost['piqa'] / max(cost['mmlu'], 1e-9):.3f})")
    print(f"  total {time.perf_counter() - t0:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": settings, "rfc": rfc.to_artifact(), "variants": rows,
                       "correlate": None if res is None else res.to_artifact(), "cost_s": cost}, f, indent=2)


if __name__ == "__main__":
    main()
