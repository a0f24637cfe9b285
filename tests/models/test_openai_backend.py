"""The openai backend against a REAL llama-cpp-python server on 127.0.0.1 serving the packaged SmolLM2 GGUF.

Tolerance: the server computes with the GGUF's quantized weights and 8-bit
quantized activations, the hf backend with the dequantized float32 weights;
per-item accuracy must agree on >= 90% of the items (measured: see README,
benchmarks/backends.py) and per-choice logliks within a mean of 0.6 nats.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("httpx")

from sharpbench.data.registry import resolve_tasks  # noqa: E402
from sharpbench.engine.runner import score_items  # noqa: E402
from sharpbench.models import load_model  # noqa: E402
from sharpbench.models.errors import ServerError, TokenAlignmentError  # noqa: E402
from sharpbench.models.llama_server import LlamaServer  # noqa: E402
from sharpbench.models.openai_api import OpenAIBackend  # noqa: E402
from sharpbench.models.packaged import gguf_path  # noqa: E402
from sharpbench.store import Store  # noqa: E402

TEST_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2  # one core per xdist worker

pytestmark = [pytest.mark.slow, pytest.mark.server]
N_ITEMS = int(os.environ.get("SHARPBENCH_TEST_SERVER_ITEMS", "100"))
KEY = "sb-test-key-7f3a9c"  # the server requires it; it must never reach the store


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with LlamaServer(gguf_path("smollm2-135m"), api_key=KEY, log=log, n_threads=TEST_THREADS) as srv:
        yield srv


@pytest.fixture(scope="module")
def piqa_items():
    return resolve_tasks("piqa")[0].items(limit=N_ITEMS)


@pytest.fixture(scope="module")
def served_results(server, piqa_items):
    os.environ["SB_TEST_KEY"] = KEY
    backend = OpenAIBackend("smollm2", base_url=server.base_url, tokenizer="smollm2-135m", add_bos_token=True,
                            api_key_env="SB_TEST_KEY", max_concurrency=2)
    return {r.item_id: r for r in score_items(backend, piqa_items)}


def test_served_per_item_accuracy_agrees_with_hf(served_results, piqa_items):
    hf = load_model("smollm2-135m", add_bos_token=True)  # same tokens: BOS + context + continuation
    local = {r.item_id: r for r in score_items(hf, piqa_items)}
    ids = [it.item_id for it in piqa_items]
    agree = np.mean([served_results[i].metrics["acc"] == local[i].metrics["acc"] for i in ids])
    diffs = [abs(a.loglik - b.loglik) for i in ids for a, b in zip(served_results[i].choices, local[i].choices)]
    print(f"served vs hf on {len(ids)} PIQA items: acc agreement {agree:.3f}, "
          f"mean |dloglik| {np.mean(diffs):.3f}, max {np.max(diffs):.3f}")
    assert agree >= 0.90
    assert np.mean(diffs) < 0.6
    # Not a constant or broken scorer: the server's accuracy is well above chance on these items.
    assert np.mean([served_results[i].metrics["acc"] for i in ids]) > 0.55


def test_server_without_bos_fails_the_alignment_probe(tmp_path):
    with LlamaServer(gguf_path("smollm2-135m"), add_bos=False, log=tmp_path / "s.log", n_threads=TEST_THREADS) as srv:
        backend = OpenAIBackend("smollm2", base_url=srv.base_url, tokenizer="smollm2-135m")
        with pytest.raises(TokenAlignmentError, match="one position late"):
            backend.loglikelihood([])


def test_mismatched_tokenizer_is_a_clear_error(server, piqa_items, monkeypatch):
    monkeypatch.setenv("SB_TEST_KEY", KEY)
    backend = OpenAIBackend("smollm2", base_url=server.base_url, tokenizer="gemma3-270m", add_bos_token=True,
                            api_key_env="SB_TEST_KEY")
    with pytest.raises(TokenAlignmentError, match="tokenizer"):
        list(score_items(backend, piqa_items[:4]))


def test_missing_api_key_is_rejected_without_retries(server, monkeypatch):
    monkeypatch.delenv("SB_NO_KEY", raising=False)
    backend = OpenAIBackend("smollm2", base_url=server.base_url, tokenizer="smollm2-135m", add_bos_token=True,
                            api_key_env="SB_NO_KEY", max_retries=3, backoff=5.0)
    t0 = time.monotonic()
    with pytest.raises(ServerError, match="401"):
        backend.check_alignment()
    assert time.monotonic() - t0 < 5  # a 401 is not retried


def _eval_args(store, base_url, limit):
    return [sys.executable, "-m", "sharpbench", "eval", "--backend", "openai", "--model", "smollm2",
            "--tasks", "piqa", "--limit", str(limit), "--batch-size", "2", "--store", str(store),
            "-M", f"base_url={base_url}", "-M", "tokenizer=smollm2-135m", "-M", "add_bos_token=true",
            "-M", "api_key_env=SB_TEST_KEY", "-M", "max_retries=1", "-M", "backoff=0.2"]


def test_server_killed_mid_run_then_restarted_resumes_without_duplicates(tmp_path, served_results):
    limit = min(12, N_ITEMS)
    env = dict(os.environ, SB_TEST_KEY=KEY)
    store = tmp_path / "served.duckdb"
    srv = LlamaServer(gguf_path("smollm2-135m"), api_key=KEY, log=tmp_path / "s.log", n_threads=TEST_THREADS).start()
    try:
        proc = subprocess.Popen(_eval_args(store, srv.base_url, limit), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()
            if "items stored" in line and not line.strip().endswith(f"{limit}/{limit} items stored"):
                break  # some, not all, items are stored
        srv.kill()  # the server dies mid-run
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert "failed after 2 attempts" in err
        with Store(store, read_only=True) as st:
            partial = st.items_frame()
        assert 0 < len(partial) < limit
        srv.start()  # same port
        done = subprocess.run(_eval_args(store, srv.base_url, limit), capture_output=True, text=True, env=env,
                              timeout=900)
        assert done.returncode == 0, done.stderr
        assert f"{len(partial)} items already in the store" in done.stderr
    finally:
        srv.kill()
    con = duckdb.connect(str(store), read_only=True)
    try:
        n, n_distinct = con.execute("SELECT count(*), count(DISTINCT item_id) FROM items").fetchone()
        n_choices = con.execute("SELECT count(*) FROM choices").fetchone()[0]
        rows = con.execute("SELECT item_id, choice, loglik FROM choices ORDER BY item_id, choice").fetchall()
    finally:
        con.close()
    assert n == n_distinct == limit
    assert n_choices == 2 * limit  # PIQA: two choices per item, none written twice
    for item_id, choice, loglik in rows:  # same results as the uninterrupted run of the first fixture
        assert loglik == pytest.approx(served_results[item_id].choices[choice].loglik, abs=1e-4)
    assert KEY.encode() not in store.read_bytes()
