"""Generation speed against the number of sequences decoding together (continuous-batching slots).

Generates greedily for the first ``--items`` gsm8k_cot 8-shot prompts (the task's own prompt and stops, up to
``--max-gen-toks`` tokens each) with sharpbench's hf backend at each slot count in ``--slots``, in one
process, and prints wall seconds, generated tokens per second and the speed-up over the first slot count.
The last count is run again at the end, so a prefix cache that a later run inherits warm shows up as a
difference between the two runs of that count.

This is the measurement behind the engine's default of 128 generation slots.

Usage::

    python benchmarks/gen_slots_ab.py --model smollm2-135m --items 128 --max-gen-toks 96 --slots 32,64,128
    python benchmarks/gen_slots_ab.py --model qwen2.5-coder-1.5b --items 128 --max-gen-toks 40 --slots 64,128
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--items", type=int, default=128)
    ap.add_argument("--max-gen-toks", type=int, default=96)
    ap.add_argument("--slots", default="32,64,128")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    slots = [int(s) for s in args.slots.split(",")]

    import torch

    import sharpbench as sb
    from sharpbench.data.registry import get_task
    from sharpbench.engine.pipeline import select_items
    from sharpbench.results import GenerationRequest

    torch.set_num_threads(args.threads)
    model = sb.load_model(args.model, dtype=args.dtype)
    items = select_items(get_task("gsm8k_cot"), ids=list(range(args.items)))
    requests = [GenerationRequest(prompt=it.prompt, until=tuple(it.until), max_gen_toks=args.max_gen_toks)
                for it in items]
    first = None
    for n in [*slots, slots[-1]]:
        t0 = time.perf_counter()
        out = model.generate(requests, batch_size=n)
        dt = time.perf_counter() - t0
        tokens = sum(g.n_tokens for g in out)
        rate = tokens / dt
        first = first or rate
        print(f"{args.model} {args.dtype} slots {n:4d}: {dt:7.1f} s, {tokens:6d} tokens, {rate:7.1f} tokens/s, "
              f"{rate / first:.2f}x the first", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
