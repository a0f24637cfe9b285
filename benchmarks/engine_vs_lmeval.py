"""Time sharpbench's scoring engine against lm-eval 0.4.13's HFLM on the same items.

Both run in this one process on the same converted checkpoint, dtype, items and
thread count.  Prints wall and CPU time of each, the speed-up, a compute lower
bound and each engine's time / bound, acc / acc_norm of both and the largest
per-request loglik difference.

Two lower bounds.  The per-item bound: every context token and every
continuation token except the last passes through the transformer body once (2 x body params FLOPs per token, with
body = all parameters except the input embedding and the output layer), and
the output layer runs only at scored positions (2 x vocab x hidden per scored
token); attention score FLOPs are ignored (short sequences).  Divided by the
GFLOP/s that ``torch.nn.functional.linear`` reaches on the model's own layer
shapes (1024 rows; the fastest of 7 trials) at the same dtype and thread
count, measured before and after the engines run; the faster of the two is
used (the lower bound).  The prefix-tree bound counts each distinct token of
the radix tree of all contexts once instead (a few-shot prefix shared by a
subject's questions once): what an engine that computes every shared prefix
once must still do.  The per-item / tree ratio is the work the tree saves;
the engine's time over the tree bound is how far it is from the hardware.  For
bfloat16 the rate is the faster of a bfloat16 GEMM and a float32 GEMM on the
widened operands (the same products), whichever this CPU runs faster.

``--local-rate`` (with ``--skip-lmeval``) times sharpbench one runner window
at a time and measures the matmul rate between windows; each window is
bounded at the faster of the rates just before and after it, so the bound
follows a machine whose speed changes during the run.

``--device cuda`` runs both engines on the GPU: times are then wall-clock
seconds after a device synchronize, the matmul rate is measured on the GPU
(float32 without TF32, as both engines run it), and ``--threads`` only sets
the host threads.

``--breakdown`` profiles one more sharpbench run with ``torch.profiler`` and
prints where its CPU time goes: GEMMs of the body and of the output layer
(with their achieved GFLOP/s at the real shapes), attention, the float32
log-softmax, and everything else.  ``--skip-lmeval`` times sharpbench alone.

``--gemm-floor`` (with ``--local-rate``) also records, after each timed
window, the matrix products sharpbench issued for it and replays them back to
back, alone (:mod:`gemm_floor`), before the rate is measured: their time over
the window's bound is what the products, as torch/MKL run them at these
shapes, already cost against the bound before any attention, norm, rotary,
SiLU or log-softmax work; the rest of the engine's time is that work.

Usage::

    python benchmarks/engine_vs_lmeval.py --task piqa --dtype float32 --threads 1 --limit 100
    python benchmarks/engine_vs_lmeval.py --task mmlu --num-fewshot 5 --limit 20     # 10 subjects
    python benchmarks/engine_vs_lmeval.py --task arc_easy --limit 50 --skip-lmeval --breakdown
    python benchmarks/engine_vs_lmeval.py --task piqa --skip-lmeval --local-rate
    python benchmarks/engine_vs_lmeval.py --task piqa --skip-lmeval --local-rate --gemm-floor
    python benchmarks/engine_vs_lmeval.py --task piqa --device cuda --batch-size 64 --dtype bfloat16 --vs-float32
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


MMLU_SUBJECTS = (
    "high_school_biology", "college_physics", "abstract_algebra", "anatomy", "astronomy",
    "business_ethics", "econometrics", "formal_logic", "global_facts", "marketing",
)


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _timed(fn):
    _sync()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync()
    return out, time.perf_counter() - w0, time.process_time() - c0


def layer_weights(model) -> list:
    """The linear weights of the model's first decoder layer."""
    import torch

    layer = model.base_model.layers[0]
    return [m.weight.detach() for m in layer.modules() if isinstance(m, torch.nn.Linear)]


def matmul_gflops(weights, rows: int = 1024, trials: int = 7) -> float:
    """Best achieved GFLOP/s of F.linear on ``rows`` input rows over the given weights (their dtype).

    Each trial multiplies once by every weight; the fastest trial counts (as
    ``timeit`` does: slower trials measure interference, not the hardware).
    """
    import torch
    import torch.nn.functional as F

    x_by_k = {w.shape[1]: torch.randn(rows, w.shape[1], dtype=w.dtype, device=w.device) for w in weights}
    clock = time.process_time if weights[0].device.type == "cpu" else time.perf_counter
    flops = sum(2.0 * rows * w.shape[0] * w.shape[1] for w in weights)
    best = float("inf")
    with torch.inference_mode():
        for w in weights:  # warm-up
            F.linear(x_by_k[w.shape[1]], w)
        for _ in range(trials):
            _sync()
            t0 = clock()
            for w in weights:
                F.linear(x_by_k[w.shape[1]], w)
            _sync()
            best = min(best, clock() - t0)
    return flops / best / 1e9


def best_matmul_gflops(model) -> float:
    """The matmul rate the bound uses, at the model's dtype.

    For bfloat16 it is the faster of a bfloat16 GEMM and a float32 GEMM on the
    widened operands (which computes the same products exactly), so the bound
    never credits a slow GEMM path of this CPU.
    """
    import torch

    weights = layer_weights(model)
    rate = matmul_gflops(weights)
    if weights[0].dtype == torch.bfloat16:
        rate = max(rate, matmul_gflops([w.float() for w in weights]))
    return rate


def param_split(model) -> tuple[int, int]:
    """(body parameters, output-layer parameters)."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())  # shared (tied) tensors counted once
    tied = head.data_ptr() == emb.data_ptr()
    body = total - emb.numel() - (0 if tied else head.numel())
    return int(body), int(head.numel())


_GEMM_OPS = {"aten::mm", "aten::addmm", "mkl::_mkl_linear"}
_ATTN_OPS = {
    "aten::bmm",
    "aten::baddbmm",
    "aten::_softmax",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::index_copy_",
}
_HEAD_OPS = {"aten::_log_softmax", "aten::amax", "aten::gather"}


def breakdown(run, vocab: int) -> None:
    """Profile ``run()`` once and print the CPU-time split (self time per op class)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu_breakdown(run)
        return
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    split = {"body GEMM": 0.0, "output-layer GEMM": 0.0, "attention": 0.0, "log-softmax/argmax": 0.0}
    flops = {"body GEMM": 0.0, "output-layer GEMM": 0.0}
    total = 0.0
    other: dict[str, float] = {}
    for e in prof.events():
        t = e.self_cpu_time_total / 1e6
        total += t
        if e.name in _GEMM_OPS and e.input_shapes:
            sh = e.input_shapes  # mm(x, w.t()); addmm(bias, x, w.t()); _mkl_linear(x, packed, w, ...)
            if e.name == "aten::mm":
                (m, k), n = sh[0], sh[1][1]
            elif e.name == "aten::addmm":
                (m, k), n = sh[1], sh[2][1]
            else:
                (m, k), n = sh[0], sh[2][0]
            key = "output-layer GEMM" if n == vocab else "body GEMM"
            split[key] += t
            flops[key] += 2.0 * m * k * n
        elif e.name in _ATTN_OPS:
            split["attention"] += t
        elif e.name in _HEAD_OPS:
            split["log-softmax/argmax"] += t
        else:
            other[e.name] = other.get(e.name, 0.0) + t
    split["other (norms, rotary, gathers, small ops)"] = total - sum(split.values())
    print(f"breakdown of one profiled sharpbench run ({total:.2f} s self CPU time, profiler overhead included):")
    for k, t in split.items():
        rate = f"  {flops[k] / t / 1e9:6.1f} GFLOP/s" if k in flops and t > 0 else ""
        print(f"  {k:<44}{t:8.2f} s {100 * t / total:6.1f}%{rate}")
    top = sorted(other.items(), key=lambda kv: -kv[1])[:8]
    print("  largest 'other' ops: " + ", ".join(f"{n.removeprefix('aten::')} {t:.2f} s" for n, t in top))


def gpu_breakdown(run) -> None:
    """Profile ``run()`` on the GPU: device busy time against wall time, and the costliest kernels/ops."""
    from torch.profiler import ProfilerActivity, profile

    w0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        _sync()
    wall = time.perf_counter() - w0
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    if kernels:
        busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
    else:  # kernels attached to their host ops only
        busy = sum(e.self_device_time_total for e in prof.events()) / 1e6
    print(
        f"GPU breakdown: {wall:.2f} s wall (profiled), kernels busy {busy:.2f} s "
        f"({100 * busy / wall:.0f}%), {len(kernels)} kernel launches"
    )
    table = prof.key_averages()
    for key in ("self_cpu_time_total", "self_device_time_total"):
        print(table.table(sort_by=key, row_limit=10, max_name_column_width=48))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="piqa", choices=["piqa", "arc_easy", "mmlu"])
    ap.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (mmlu: lm-eval's first_n)")
    ap.add_argument(
        "--subjects", default=",".join(MMLU_SUBJECTS),
        help="with --task mmlu: comma-separated subjects (default: 10 across the four categories)",
    )
    ap.add_argument(
        "--no-prefix-cache", action="store_true", help="sharpbench without its prefix tree/cache (the plain path)"
    )
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--limit", type=int, default=None, help="first N items (default: all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default="smollm2-135m", help="packaged name or checkpoint directory")
    ap.add_argument("--order", default="lmeval-first", choices=["lmeval-first", "sharpbench-first"])
    ap.add_argument("--skip-lmeval", action="store_true", help="time sharpbench only (no lm-eval run)")
    ap.add_argument("--breakdown", action="store_true", help="profile one more sharpbench run")
    ap.add_argument(
        "--gemm-floor",
        action="store_true",
        help="with --local-rate: replay each window's matrix products alone and time them against its bound",
    )
    ap.add_argument(
        "--local-rate",
        action="store_true",
        help="with --skip-lmeval: measure the matmul rate between the runner's windows and bound each window by it",
    )
    ap.add_argument(
        "--vs-float32",
        action="store_true",
        help="bfloat16: also score with sharpbench in float32 and print each engine's |delta loglik| from it",
    )
    args = ap.parse_args(argv)
    if args.local_rate and not args.skip_lmeval:
        ap.error("--local-rate times sharpbench alone: add --skip-lmeval")
    if args.gemm_floor and (not args.local_rate or args.device != "cpu"):
        ap.error("--gemm-floor runs inside --local-rate's windows, on the CPU")

    import numpy as np
    import torch

    from sharpbench.data.registry import get_task
    from sharpbench.engine.metrics import aggregate, item_metrics
    from sharpbench.models.hf.prefix import distinct_tokens
    from sharpbench.engine.requests import encode_item
    from sharpbench.engine.runner import default_window, score_items
    from sharpbench.models import load_model, packaged

    torch.set_num_threads(args.threads)
    if args.model in packaged.PACKAGED_MODELS:
        ckpt = str(packaged.ensure_checkpoint(args.model))
    else:
        ckpt = args.model
    if args.task == "mmlu":
        names = [f"mmlu_{s.strip()}" for s in args.subjects.split(",") if s.strip()]
    else:
        names = [args.task]
    items = [it for n in names for it in get_task(n, num_fewshot=args.num_fewshot).items(limit=args.limit)]
    if len(names) > 1:  # ids restart in every subject: number the items through
        items = [dataclasses.replace(it, item_id=i) for i, it in enumerate(items)]
    backend = load_model(ckpt, dtype=args.dtype, device=args.device, prefix_cache=not args.no_prefix_cache)
    gpu = args.device == "cuda"
    n_req = sum(len(it.requests) for it in items)

    def run_ours(subset=items):
        return {r.item_id: r for r in score_items(backend, subset, batch_size=args.batch_size)}

    if gpu:  # CUDA context, kernels and allocator warmed outside the timed runs
        run_ours(items[:64])
    body, head = param_split(backend.model)

    def work(subset) -> tuple[float, int, int]:
        """FLOPs the per-item bound counts for ``subset``, its unique tokens and its scored tokens."""
        enc = [encode_item(backend, it) for it in subset]
        unique = sum(e.packed_length for e in enc)
        scored = sum(len(r.continuation) for e in enc for r in e.requests)
        return 2.0 * body * unique + 2.0 * head * scored, unique, scored

    def tree_work(subset) -> tuple[float, int]:
        """FLOPs of the prefix-tree bound: each distinct token of the tree of all contexts once."""
        reqs = [r for it in subset for r in encode_item(backend, it).requests]
        distinct = distinct_tokens([r.context for r in reqs]) + sum(len(r.continuation) - 1 for r in reqs)
        scored = sum(len(r.continuation) for r in reqs)
        return 2.0 * body * distinct + 2.0 * head * scored, distinct

    local_bound = None
    floor_cpu = 0.0
    if args.gemm_floor:
        from gemm_floor import record_gemms, replay_gemms

    def run_ours_by_window():
        """sharpbench one runner window at a time, the matmul rate measured (untimed) between windows.

        Each window's bound uses the faster of the rates measured just before
        and just after it, so the bound follows this machine's speed through
        the run instead of one moment's.  The windows are the runner's own
        (:func:`default_window`), so the batches are those of one whole run.
        """
        nonlocal local_bound, floor_cpu
        size = default_window(args.batch_size)
        out, wall, cpu, local_bound = {}, 0.0, 0.0, 0.0
        rate = rates[0]  # measured just before
        for s in range(0, len(items), size):
            chunk = items[s : s + size]
            res, w, c = _timed(lambda chunk=chunk: run_ours(chunk))
            if args.gemm_floor:
                floor_cpu += replay_gemms(record_gemms(lambda chunk=chunk: run_ours(chunk)))[0]
            nxt = best_matmul_gflops(backend.model)
            local_bound += work(chunk)[0] / (max(rate, nxt) * 1e9)
            rate = nxt
            out.update(res)
            wall, cpu = wall + w, cpu + c
        return out, wall, cpu

    rates = [best_matmul_gflops(backend.model)]
    if args.local_rate:
        ours, t_sb, c_sb = run_ours_by_window()
    elif args.skip_lmeval:
        ours, t_sb, c_sb = _timed(run_ours)
    else:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=ckpt, dtype=args.dtype, batch_size=args.batch_size, device=args.device)
        insts = [
            Instance("loglikelihood", {}, (r.context, r.continuation), i)
            for it in items
            for i, r in enumerate(it.requests)
        ]

        def run_lmeval(subset=insts):
            return lm.loglikelihood(subset, disable_tqdm=True)

        if gpu:
            run_lmeval(insts[:128])

        if args.order == "lmeval-first":
            ref, t_lm, c_lm = _timed(run_lmeval)
            ours, t_sb, c_sb = _timed(run_ours)
        else:
            ours, t_sb, c_sb = _timed(run_ours)
            ref, t_lm, c_lm = _timed(run_lmeval)
    rates.append(best_matmul_gflops(backend.model))

    # compute lower bound (the faster matmul measurement gives the lower bound)
    flops, unique, scored = work(items)
    gflops = max(rates)
    bound = flops / (gflops * 1e9)
    t_flops, distinct = tree_work(items)
    t_bound = t_flops / (gflops * 1e9)
    acc_sb = aggregate(ours.values(), ["acc", "acc_norm"])

    print(
        f"task={args.task} items={len(items)} requests={n_req} model={args.model} dtype={args.dtype} "
        f"device={args.device} threads={args.threads} batch_size={args.batch_size} torch={torch.__version__} "
        f"load average={os.getloadavg()[0]:.2f}"
    )
    print(
        f"unique tokens={unique}  scored tokens={scored}  body params={body / 1e6:.1f}M  head params={head / 1e6:.1f}M"
    )
    print(
        f"prefix tree: {distinct} distinct tokens ({unique / distinct:.2f}x fewer than item by item)  ->  "
        f"tree bound {t_bound:.2f} s"
    )
    print(
        f"matmul rate: {gflops:.1f} GFLOP/s (before/after: {rates[0]:.1f}/{rates[1]:.1f})  ->  "
        f"lower bound {bound:.2f} s ({flops / 1e12:.3f} TFLOP)"
    )
    # On a GPU the host mostly waits: wall time is the figure there, CPU time on the CPU.
    clock = "wall" if gpu else "cpu"
    k_sb = t_sb if gpu else c_sb
    print(
        f"{'engine':<12}{'wall s':>10}{'cpu s':>10}{clock + '/bound':>11}{'/tree bound':>12}{'acc':>8}{'acc_norm':>10}"
    )
    if not args.skip_lmeval:
        ours_ll = np.array([c.loglik for it in items for c in ours[it.item_id].choices])
        ref_ll = np.array([r[0] for r in ref])
        lm_results, k = [], 0
        for it in items:
            n = len(it.requests)
            lm_results.append(item_metrics(ref_ll[k : k + n], it.gold, it.choices))
            k += n
        acc_lm = {m: float(np.mean([r[m] for r in lm_results])) for m in ("acc", "acc_norm")}
        print(
            f"{'lm-eval':<12}{t_lm:>10.2f}{c_lm:>10.2f}{(t_lm if gpu else c_lm) / bound:>11.2f}"
            f"{(t_lm if gpu else c_lm) / t_bound:>12.2f}{acc_lm['acc']:>8.4f}{acc_lm['acc_norm']:>10.4f}"
        )
    print(
        f"{'sharpbench':<12}{t_sb:>10.2f}{c_sb:>10.2f}{k_sb / bound:>11.2f}{k_sb / t_bound:>12.2f}"
        f"{acc_sb['acc'][0]:>8.4f}{acc_sb['acc_norm'][0]:>10.4f}"
    )
    if not args.skip_lmeval:
        ours_greedy = [c.is_greedy for it in items for c in ours[it.item_id].choices]
        print(f"speed-up (lm-eval / sharpbench): wall {t_lm / t_sb:.2f}x  cpu {c_lm / c_sb:.2f}x")
        print(
            f"max |delta loglik| = {np.abs(ours_ll - ref_ll).max():.3e}  "
            f"greedy mismatches = {sum(bool(r[1]) != g for r, g in zip(ref, ours_greedy))}"
        )
    if local_bound is not None:
        print(
            f"bound at the rate measured around each window: {local_bound:.2f} s  ->  "
            f"sharpbench {clock}/bound {k_sb / local_bound:.2f}"
        )
    if args.gemm_floor:
        print(
            f"GEMM floor: sharpbench's matrix products replayed alone take {floor_cpu:.2f} s cpu = "
            f"{floor_cpu / local_bound:.2f} x that bound; the other {k_sb - floor_cpu:.2f} s "
            f"({100 * (k_sb - floor_cpu) / k_sb:.0f}% of sharpbench's time, "
            f"{(k_sb - floor_cpu) / local_bound:.2f} x the bound) is attention, norms, rotary, SiLU, "
            "log-softmax, gathers and Python"
        )
    if args.vs_float32 and args.dtype != "float32":
        ref32 = load_model(ckpt, dtype="float32", device=args.device)
        ll32 = {r.item_id: r for r in score_items(ref32, items, batch_size=args.batch_size)}
        ll32 = np.array([c.loglik for it in items for c in ll32[it.item_id].choices])
        sb_ll = np.array([c.loglik for it in items for c in ours[it.item_id].choices])
        engines = [("sharpbench", sb_ll)] + ([] if args.skip_lmeval else [("lm-eval", ref_ll)])
        for name, ll in engines:
            d = np.abs(ll - ll32)
            print(f"{name} {args.dtype} vs sharpbench float32: mean |delta loglik| {d.mean():.3f}, max {d.max():.3f}")
    if args.threads == 1 and not gpu:
        print(
            "note: cpu time (process_time) is the robust figure on a shared machine; wall time includes waiting"
        )
    if args.breakdown:
        breakdown(run_ours, backend.model.get_output_embeddings().weight.shape[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
