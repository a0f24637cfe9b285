"""``batch_size="auto"``: the search for the largest batch that fits, its cache, and the CPU fallback.

The search tests run on the CPU against real functions and a real model that
raise a real ``torch.OutOfMemoryError`` above a size or token budget, as a GPU
with that much free memory would.  They test the search (which sizes it tries,
what it keeps, that it frees and goes on after each error), not the model: the
model's scores are the real ones wherever the budget lets a forward run.  The
last test runs a real search on a CUDA GPU where one exists.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from model_helpers import piqa_items

from sharpbench.engine.batching import (
    DEFAULT_BATCH_SIZE,
    BatchSizeError,
    parse_batch_size,
    resolve_batch_size,
    worst_case,
)
from sharpbench.engine.pipeline import run_eval
from sharpbench.models import load_model
from sharpbench.models.hf.autobatch import auto_batch_size, find_batch_size, shape_bucket

torch = pytest.importorskip("torch")


def _oom(n: int) -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n} bytes.")


class Budget:
    """A real function of the batch size: allocates ``size x 1024`` floats, raises OOM above ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tried: list[int] = []

    def __call__(self, size: int) -> None:
        self.tried.append(size)
        if size > self.limit:
            raise _oom(size * 4096)
        x = torch.ones(size, 1024)
        assert float(x.sum()) == size * 1024


# --------------------------------------------------------------------------- the search
@pytest.mark.parametrize("start, limit", [(512, 100), (64, 64), (16, 5), (120, 1)])
def test_search_keeps_the_first_size_that_fits_going_down(start, limit):
    run = Budget(limit)
    found = find_batch_size(run, start)
    assert found <= limit
    assert found == run.tried[-1]  # stopped at the first size that ran
    assert all(a > b for a, b in zip(run.tried, run.tried[1:]))  # strictly decreasing from the start
    assert run.tried[0] == start
    assert all(t > limit for t in run.tried[:-1])  # every earlier try ran out of memory
    assert found > limit // 2  # accelerate steps x0.9 (older releases halve): never below half the budget


def test_search_is_exact_in_small_steps():
    """Below 10, x0.9 steps are steps of one: the largest size that fits is found."""
    for limit in (1, 2, 5, 9):
        assert find_batch_size(Budget(limit), 9) == limit


def test_nothing_fits_gives_one_and_other_errors_propagate():
    assert find_batch_size(Budget(0), 8) == 1  # as lm-eval: the run then fails with the real error

    def broken(size: int) -> None:
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        find_batch_size(broken, 8)

    def device_assert(size: int) -> None:
        raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(RuntimeError, match="device-side assert"):
        find_batch_size(device_assert, 8)
    with pytest.raises(ValueError):
        find_batch_size(Budget(4), 0)


def test_shape_bucket_rounds_up_to_a_power_of_two():
    assert [shape_bucket(n) for n in (1, 2, 3, 64, 65, 1000)] == [1, 2, 4, 64, 128, 1024]


def test_parse_batch_size():
    assert parse_batch_size(None) is None
    assert parse_batch_size(8) == 8
    assert parse_batch_size(" 8 ") == 8
    assert parse_batch_size("auto") == "auto"
    assert parse_batch_size(" AUTO ") == "auto"
    assert parse_batch_size(np.int64(4)) == 4 and type(parse_batch_size(np.int64(4))) is int
    for bad in (0, -1, "0", "foo", "", True, 2.5, "auto:4"):
        with pytest.raises(BatchSizeError):
            parse_batch_size(bad)


# ------------------------------------------------------------- a real model, a token budget
@pytest.fixture()
def budget_model(smollm2_dir):
    """smollm2 on the CPU whose embedding refuses more than ``limit`` tokens in one forward (an OOM)."""
    backend = load_model(str(smollm2_dir), dtype="float32", device="cpu")
    state = {"limit": None, "seen": []}

    def hook(module, args):
        n = int(args[0].numel())
        state["seen"].append(n)
        if state["limit"] is not None and n > state["limit"]:
            raise _oom(n * 4 * 576)

    handle = backend.model.get_input_embeddings().register_forward_pre_hook(hook)
    yield backend, state
    handle.remove()


def _tokens_of(backend, state, per_item) -> int:
    """Tokens one forward of these items embeds (the backend's bounds set to the batch, as the search does)."""
    from sharpbench.models.hf.autobatch import _rows, _tokens

    backend.score_bounds = _rows(per_item), _tokens(per_item, False)
    state["seen"].clear()
    try:
        backend.loglikelihood([r for reqs in per_item for r in reqs])
    finally:
        backend.score_bounds = None
    assert len(state["seen"]) == 1, "the batch should be one forward pass"
    return state["seen"][0]


def test_scoring_search_on_a_model_with_a_token_budget_is_found_once(budget_model, caplog):
    backend, state = budget_model
    items = piqa_items(8)
    worst = worst_case(backend, "multiple_choice", items)
    per_item = worst(8)
    sizes = [_tokens_of(backend, state, per_item[:b]) for b in range(1, 9)]
    assert sizes == sorted(sizes)
    # the first batch of 4+ worst items that embeds more than the one before it (rows packed into padded
    # sequences: an item can fill a sequence's slack without adding tokens): fit = that many items minus one
    fit = next(b for b in range(4, 8) if sizes[b] > sizes[b - 1])
    state["limit"] = sizes[fit] - 1  # fit + 1 worst items do not fit, fit do
    calls = []

    def counted(n):
        calls.append(n)
        return worst(n)

    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        found = auto_batch_size(backend, "multiple_choice", counted, n_items=8, default=16, probe=True)
        assert found == fit
        # the bounds of one forward are now those of the worst items that fit: as many items go in one pass
        state["seen"].clear()
        run_items = [r for reqs in per_item[:fit] for r in reqs]
        backend.loglikelihood(run_items)
        assert state["seen"] == [sizes[fit - 1]]
        state["seen"].clear()
        backend.loglikelihood([r for reqs in per_item[:fit + 1] for r in reqs])  # more than fits: split, no OOM
        assert len(state["seen"]) == 2 and max(state["seen"]) <= state["limit"]
        state["seen"].clear()
        again = auto_batch_size(backend, "multiple_choice", counted, n_items=8, default=16, probe=True)
    assert again == fit
    assert state["seen"] == []  # cached: no forward the second time
    assert (backend.batch_size, backend.max_batch_tokens) == (64, 32768)  # generation's bounds are kept
    lines = [r.getMessage() for r in caplog.records if "batch size auto" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith(f"batch size auto: {fit} for multiple_choice"), lines
    assert "found in" in lines[0]


def test_few_shot_items_are_searched_through_the_prefix_tree(smollm2_dir):
    """5-shot items share their examples: the prefix-tree forward holds them once, and the bound counts them once.

    (No budget here: a hook on the model would send it through its own forward, not the tree.)
    """
    from sharpbench.data.registry import get_task
    from sharpbench.engine.runner import score_items
    from sharpbench.models.hf.autobatch import _tokens

    backend = load_model(str(smollm2_dir), dtype="float32", device="cpu")
    items = get_task("mmlu_anatomy", num_fewshot=5).items(limit=6)
    fixed = sorted(score_items(backend, items, batch_size=2), key=lambda r: r.item_id)
    per_item = worst_case(backend, "multiple_choice", items)(6)
    assert backend.prefix_tree
    assert _tokens(per_item, True) < _tokens(per_item, False) // 2  # the 5-shot examples counted once
    found = auto_batch_size(backend, "multiple_choice", worst_case(backend, "multiple_choice", items), n_items=6,
                            default=16, probe=True)
    assert found == 6
    (key,) = backend._auto_batch
    assert key[0] == "multiple_choice" and key[2] is True  # keyed as a shared-prefix shape
    assert backend.score_bounds == (len({r.context for reqs in per_item for r in reqs}), _tokens(per_item, True))
    auto = sorted(score_items(backend, items, batch_size=found), key=lambda r: r.item_id)
    np.testing.assert_allclose([c.loglik for r in auto for c in r.choices],
                               [c.loglik for r in fixed for c in r.choices], rtol=1e-5, atol=1e-4)


def test_generation_search_on_a_model_with_a_sequence_budget(budget_model, caplog):
    """Generation: ``b`` sequences at the worst prompt + ``max_gen_toks`` length; here at most 2 fit."""
    from sharpbench.data.registry import get_task

    backend, _ = budget_model
    items = get_task("gsm8k_cot").items(limit=4)
    shapes = []

    def hook(module, args):
        shapes.append(tuple(args[0].shape))
        if args[0].shape[0] > 2:
            raise _oom(int(args[0].numel()) * 4 * 576)

    handle = backend.model.get_input_embeddings().register_forward_pre_hook(hook)
    try:
        with caplog.at_level(logging.WARNING, logger="sharpbench"):
            found = auto_batch_size(backend, "generate_until", worst_case(backend, "generate_until", items),
                                    n_items=4, default=64, probe=True)
            n_tries = len(shapes)
            again = auto_batch_size(backend, "generate_until", worst_case(backend, "generate_until", items),
                                    n_items=4, default=64, probe=True)
    finally:
        handle.remove()
    assert found == again == 2
    assert [s[0] for s in shapes] == [4, 3, 2] and n_tries == 3  # cached: no forward the second time
    prompt = max(len(backend.tok_encode(it.prompt)) for it in items) + items[0].max_gen_toks
    width = shapes[0][1]
    assert prompt <= width < 2 * prompt or width == backend.max_length  # the worst length's power-of-two bucket
    lines = [r.getMessage() for r in caplog.records if "batch size auto" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("batch size auto: 2 for generate_until (sequences"), lines


def test_auto_scores_equal_fixed_batch_scores(budget_model):
    """The batch the search picks scores items exactly as a fixed batch size does."""
    from sharpbench.engine.runner import score_items

    backend, state = budget_model
    items = piqa_items(8)
    fixed = sorted(score_items(backend, items, batch_size=2), key=lambda r: r.item_id)
    state["limit"] = 10**9
    bs = auto_batch_size(backend, "multiple_choice", worst_case(backend, "multiple_choice", items), n_items=8,
                         default=16, probe=True)
    assert bs == 8
    auto = sorted(score_items(backend, items, batch_size=bs), key=lambda r: r.item_id)
    np.testing.assert_allclose([c.loglik for r in auto for c in r.choices],
                               [c.loglik for r in fixed for c in r.choices], rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------------- CPU fallback
def test_auto_on_cpu_is_the_default_logged_once(smollm2_dir, tmp_path, caplog):
    backend = load_model(str(smollm2_dir), dtype="float32", device="cpu")
    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        auto = run_eval(backend, "piqa", limit=4, batch_size="auto", store=tmp_path / "a.duckdb")
        assert resolve_batch_size(backend, "auto", "multiple_choice", piqa_items(4)) == 16
        assert resolve_batch_size(backend, "auto", "generate_until", [object()]) == DEFAULT_BATCH_SIZE["generate_until"]
    fixed = run_eval(backend, "piqa", limit=4, batch_size=16, store=tmp_path / "f.duckdb")
    assert auto.tasks[0].metrics == fixed.tasks[0].metrics
    assert auto.tasks[0].n_items == 4
    lines = [r.getMessage() for r in caplog.records if "batch size auto" in r.getMessage()]
    assert lines == [
        "batch size auto: 16 for multiple_choice (cpu: the default; free memory is probed on CUDA only)",
        "batch size auto: 128 for generate_until (cpu: the default; free memory is probed on CUDA only)",
    ]


def test_fanout_with_auto_on_cpu_stores_what_the_default_stores(tmp_path):
    """``sharpbench eval --models FILE --batch-size auto``: each shard resolves ``auto`` where its model is loaded."""
    import duckdb

    from sharpbench.engine.fanout import run_fanout

    def contents(path):
        con = duckdb.connect(str(path), read_only=True)
        try:
            return con.execute("SELECT item_id, choice, loglik, is_greedy FROM choices ORDER BY ALL").fetchall()
        finally:
            con.close()

    auto = run_fanout(["smollm2-135m"], "piqa", store=tmp_path / "a.duckdb", limit=4, shard_size=2, batch_size="auto")
    fixed = run_fanout(["smollm2-135m"], "piqa", store=tmp_path / "f.duckdb", limit=4, shard_size=2)
    assert not auto.failures and not fixed.failures and auto.n_shards == 2
    a, f = contents(tmp_path / "a.duckdb"), contents(tmp_path / "f.duckdb")
    assert len(a) == 8 and [r[:2] for r in a] == [r[:2] for r in f]
    np.testing.assert_allclose([r[2] for r in a], [r[2] for r in f], rtol=1e-6, atol=1e-5)


def test_run_eval_rejects_a_bad_batch_size_before_loading(tmp_path):
    with pytest.raises(BatchSizeError, match="positive integer or 'auto'"):
        run_eval("no-such-model", "piqa", limit=2, batch_size="foo", store=tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()


def test_evaluator_auto_on_cpu(smollm2):
    import sharpbench as sb

    ev = sb.Evaluator(smollm2.model, smollm2.tokenizer, tasks="piqa", limit=4, batch_size="auto")
    assert ev.batch_sizes == {"piqa": 16}
    fixed = sb.Evaluator(smollm2.model, smollm2.tokenizer, tasks="piqa", limit=4, batch_size=3)
    assert fixed.batch_sizes == {"piqa": 3}
    assert ev.score().metrics == fixed.score().metrics
    with pytest.raises(ValueError, match="positive integer or 'auto'"):
        sb.Evaluator(smollm2.model, smollm2.tokenizer, tasks="piqa", limit=4, batch_size="lots")


# ---------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_auto_search_on_cuda(smollm2_dir, tmp_path, caplog):
    """A real search on the GPU: scoring and generation sizes found once, scores equal to a fixed batch size."""
    backend = load_model(str(smollm2_dir), dtype="float32", device="cuda")
    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        auto = run_eval(backend, "piqa", limit=64, batch_size="auto", store=tmp_path / "a.duckdb")
        again = run_eval(backend, "piqa", limit=64, batch_size="auto", store=tmp_path / "b.duckdb")
    fixed = run_eval(backend, "piqa", limit=64, batch_size=16, store=tmp_path / "f.duckdb")
    lines = [r.getMessage() for r in caplog.records if "batch size auto" in r.getMessage()]
    assert len(lines) == 1 and "found in" in lines[0], lines
    found = int(lines[0].split()[3])
    assert 1 <= found <= 64
    for a, f in ((auto, fixed), (again, fixed)):
        for name in ("acc", "acc_norm"):
            assert a.tasks[0].metrics[name][0] == pytest.approx(f.tasks[0].metrics[name][0], abs=1 / 64)
    from sharpbench.data.registry import get_task

    gen_items = get_task("gsm8k_cot").items(limit=16)
    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        n = resolve_batch_size(backend, "auto", "generate_until", gen_items)
        assert resolve_batch_size(backend, "auto", "generate_until", gen_items) == n
    assert 1 <= n <= 16
    gen_lines = [r.getMessage() for r in caplog.records if "for generate_until" in r.getMessage()]
    assert len(gen_lines) == 1 and "found in" in gen_lines[0], gen_lines


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_auto_search_under_a_cuda_memory_cap(smollm2_dir, tmp_path):
    """The process may use only the weights plus 256 MiB of GPU memory: real out-of-memory errors on the way
    down from 512 items; the size found then scores every item under the same cap, as a fixed batch does."""
    from sharpbench.engine.runner import score_items

    backend = load_model(str(smollm2_dir), dtype="float32", device="cuda")
    items = piqa_items(512)
    fixed = sorted(score_items(backend, items, batch_size=16), key=lambda r: r.item_id)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_allocated() + (256 << 20)) / total)
    try:
        found = resolve_batch_size(backend, "auto", "multiple_choice", items)
        assert 1 <= found < 512
        auto = sorted(score_items(backend, items, batch_size=found), key=lambda r: r.item_id)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    np.testing.assert_allclose([c.loglik for r in auto for c in r.choices],
                               [c.loglik for r in fixed for c in r.choices], rtol=1e-4, atol=1e-3)
