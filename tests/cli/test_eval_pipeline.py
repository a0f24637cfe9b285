"""run_eval / evaluate_items with a deterministic in-process backend, real tasks, real engine and store."""

from __future__ import annotations

import hashlib
import warnings

import pytest

from sharpbench.engine.metrics import aggregate
from sharpbench.engine.pipeline import (
    ContextTooLongWarning,
    EvalInterrupted,
    evaluate_items,
    run_eval,
)
from sharpbench.engine.results import ChoiceResult
from sharpbench.store import Store, StoreLockedError


class HashBackend:
    """Scores a request by hashing its tokens: deterministic, batch-independent, instant."""

    name = "fake"
    model_id = "hash-model"
    fingerprint = "sha256:hash-model"
    dtype = "float32"

    def __init__(self, max_length: int = 4096, interrupt_after: int | None = None) -> None:
        self.max_length = max_length
        self.interrupt_after = interrupt_after
        self.n_requests = 0
        self.n_calls = 0

    @property
    def prefix_token_id(self) -> int:
        return 0

    def tok_encode(self, text: str, *, add_special_tokens: bool | None = None) -> list[int]:
        return [b + 1 for b in text.encode("utf-8")]

    def loglikelihood(self, requests):
        self.n_calls += 1
        if self.interrupt_after is not None and self.n_calls > self.interrupt_after:
            raise KeyboardInterrupt
        self.n_requests += len(requests)
        out = []
        for r in requests:
            h = hashlib.sha256(repr((r.context[-64:], r.continuation)).encode()).digest()
            out.append(ChoiceResult(-int.from_bytes(h[:4], "big") / 2**28, h[4] % 2 == 0, len(r.continuation)))
        return out


def test_rerun_reuses_and_larger_limit_computes_only_missing(tmp_path):
    path = tmp_path / "s.duckdb"
    lm = HashBackend()
    first = run_eval(lm, "piqa", limit=12, store=path, batch_size=4)
    (t,) = first.tasks
    assert (t.n_items, t.n_computed, t.n_reused) == (12, 12, 0)
    assert lm.n_requests == 24

    again = run_eval(lm, "piqa", limit=12, store=path)
    assert again.tasks[0].n_computed == 0 and lm.n_requests == 24  # nothing scored
    assert again.tasks[0].metrics == t.metrics

    more = run_eval(lm, "piqa", limit=20, store=path)
    assert (more.tasks[0].n_computed, more.tasks[0].n_reused) == (8, 12)
    assert lm.n_requests == 40

    smaller = run_eval(lm, "piqa", limit=5, store=path)  # a subset of what is stored
    assert smaller.tasks[0].n_items == 5 and smaller.tasks[0].n_computed == 0
    with Store(path) as st:
        run = st.get_run(t.run_id)
        assert (run["n_items"], run["limit"], run["status"], run["n_total"]) == (20, 20, "complete", 1838)
        results = st.item_results(t.run_id)
        assert [r.item_id for r in results] == list(range(20))
        assert run["metrics"]["acc"][0] == pytest.approx(aggregate(results, ["acc"])["acc"][0])
        assert len(st.choices_frame()) == 40


def test_interrupt_keeps_whole_items_and_resumes(tmp_path):
    ref = run_eval(HashBackend(), "piqa", limit=20, store=tmp_path / "ref.duckdb", batch_size=4)
    path = tmp_path / "s.duckdb"
    with pytest.raises(EvalInterrupted, match="run the same command again"):
        run_eval(HashBackend(interrupt_after=2), "piqa", limit=20, store=path, batch_size=4)
    with Store(path) as st:
        (run,) = st.runs().to_dict("records")
        assert run["status"] == "interrupted" and run["n_items"] == 8
        assert len(st.choices_frame()) == 16
    lm = HashBackend()
    resumed = run_eval(lm, "piqa", limit=20, store=path, batch_size=4)
    assert resumed.tasks[0].n_computed == 12 and lm.n_requests == 24
    assert resumed.tasks[0].metrics == ref.tasks[0].metrics
    with Store(path) as st, Store(tmp_path / "ref.duckdb") as rs:
        assert st.item_results(resumed.tasks[0].run_id) == rs.item_results(ref.tasks[0].run_id)


def test_item_ids_and_evaluate_items(tmp_path):
    path = tmp_path / "s.duckdb"
    lm = HashBackend()
    rep = run_eval(lm, "piqa", item_ids=[100, 3], store=path)
    assert rep.tasks[0].n_items == 2 and lm.n_requests == 4
    from sharpbench.data.registry import get_task

    with Store(path) as st:
        res = evaluate_items(lm, get_task("piqa"), [3, 7, 100], st)
        assert [r.item_id for r in res] == [3, 7, 100]
        assert lm.n_requests == 6  # only item 7 was new
        assert st.get_run(rep.tasks[0].run_id)["limit"] is None  # item-id runs leave the limit alone
    with pytest.raises(ValueError, match="no item"):
        run_eval(lm, "piqa", item_ids=[10**6], store=path)


def test_groups_and_metadata(tmp_path):
    path = tmp_path / "s.duckdb"
    rep = run_eval(HashBackend(), "mmlu_anatomy,mmlu_astronomy,piqa", limit=6, store=path)
    (g,) = rep.groups
    assert g.group == "mmlu" and g.n_items == 12 and set(g.tasks) == {"mmlu_anatomy", "mmlu_astronomy"}
    accs = [t.metrics["acc"][0] for t in rep.tasks if t.group == "mmlu"]
    assert g.metrics["acc"][0] == pytest.approx(sum(accs) / 2)  # equal sizes
    with Store(path) as st:
        m = st.response_matrix()
        assert m.item_meta.loc["mmlu_anatomy/0", "subject"] == "anatomy"
        assert m.item_meta.loc["mmlu_anatomy/0", "group"] == "mmlu"
        assert m.shape == (1, 18)
    d = rep.to_dict()
    assert d["groups"][0]["metrics"]["acc"]["value"] == pytest.approx(g.metrics["acc"][0])


def test_context_longer_than_window_is_counted(tmp_path):
    from sharpbench.data.registry import get_task

    items = get_task("mmlu_anatomy").items(limit=8)
    # HashBackend tokens are bytes: an item is truncated when context + continuation > 300 bytes.
    expected = sum(
        any(len(r.context.encode()) + len(r.continuation.encode()) > 300 for r in it.requests) for it in items
    )
    assert 0 < expected < 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = run_eval(HashBackend(max_length=300), "mmlu_anatomy", limit=8, store=tmp_path / "s.duckdb")
    assert rep.tasks[0].n_truncated == expected
    msgs = [w for w in caught if issubclass(w.category, ContextTooLongWarning)]
    assert len(msgs) == 1 and f"{expected} item(s)" in str(msgs[0].message)


def test_locked_store_fails_before_loading_the_model(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "s.duckdb"
    code = f"from sharpbench.store import Store; s = Store({str(path)!r}); print('ok', flush=True); input()"
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            run_eval("no-such-model-anywhere", "piqa", limit=2, store=path)
    finally:
        holder.communicate("\n", timeout=30)


@pytest.mark.slow
def test_fully_stored_rerun_does_not_load_the_model(tmp_path):
    import subprocess
    import sys

    store = tmp_path / "s.duckdb"
    code = (
        "import sys; from sharpbench.engine.pipeline import run_eval; "
        f"r = run_eval('smollm2-135m', 'piqa', limit=4, store={str(store)!r}); "
        "print(r.n_computed, r.tasks[0].n_reused, round(r.tasks[0].metrics['acc'][0], 6), "
        "'torch' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert first[:2] == ["4", "0"] and first[3] == "True"
    # Identity from the packaged model's digest: every item is stored, so torch is never even imported.
    assert again[:2] == ["0", "4"] and again[2] == first[2] and again[3] == "False"
