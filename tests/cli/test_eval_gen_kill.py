"""Kill -9 a real generative `sharpbench eval` mid-run, resume it, extend it with more samples.

Sampled generation (seeded per item and sample) with 2 repeats: the resumed
run computes only the missing items and ends with exactly the texts of an
uninterrupted run; asking for 3 repeats afterwards adds sample 2 and keeps
samples 0 and 1 as stored.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from sharpbench.store import Store

TASK, LIMIT = "gsm8k_cot_zeroshot", 16
GEN = ["--gen-kwargs", "max_gen_toks=12,do_sample=true,temperature=0.8", "--seed", "5"]


def _cmd(store, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sharpbench", "eval", "--model", "smollm2-135m", "--tasks", TASK,
            "--limit", str(LIMIT), "--batch-size", "4", "--store", str(store), *GEN, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def _texts(store) -> dict[tuple[int, int], tuple[str, float]]:
    with Store(store, read_only=True) as st:
        g = st.generations_frame()
    return {(int(i), int(s)): (t, float(sec)) for i, s, t, sec in zip(g["item_id"], g["sample"], g["text"],
                                                                       g["seconds"])}


@pytest.mark.slow
def test_sigkill_resume_and_more_repeats(tmp_path):
    ref_store, store = tmp_path / "ref.duckdb", tmp_path / "tmp.duckdb"
    ref = subprocess.run(_cmd(ref_store, "--repeats", "2"), capture_output=True, text=True, env=_env(), timeout=900)
    assert ref.returncode == 0, ref.stderr[-2000:]

    progress = re.compile(rf"\[sharpbench\] {TASK}: (\d+)/(\d+) items stored")
    proc = subprocess.Popen(_cmd(store, "--repeats", "2"), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=_env())
    stored_at_kill = None
    deadline = time.monotonic() + 900
    try:
        for line in proc.stderr:
            m = progress.search(line)
            if m and 0 < int(m.group(1)) < LIMIT:
                os.kill(proc.pid, signal.SIGKILL)
                stored_at_kill = int(m.group(1))
                break
            assert time.monotonic() < deadline, "no progress line from sharpbench eval"
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and stored_at_kill is not None
    killed = _texts(store)
    n_killed = len({i for i, _ in killed})
    assert stored_at_kill <= n_killed < LIMIT
    assert len(killed) == 2 * n_killed  # whole items: both samples of each stored item

    resumed = subprocess.run(_cmd(store, "--repeats", "2"), capture_output=True, text=True, env=_env(), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{n_killed} items already in the store; {LIMIT - n_killed} to compute" in resumed.stderr
    want = {k: t for k, (t, _) in _texts(ref_store).items()}
    got = _texts(store)
    assert {k: t for k, (t, _) in got.items()} == want  # seeded samples: the same texts as one uninterrupted run
    assert all(got[k] == v for k, v in killed.items())  # stored samples were not recomputed

    more = subprocess.run(_cmd(store, "--repeats", "3"), capture_output=True, text=True, env=_env(), timeout=900)
    assert more.returncode == 0, more.stderr[-2000:]
    after = _texts(store)
    assert len(after) == 3 * LIMIT
    assert all(after[k] == got[k] for k in got)  # samples 0 and 1 kept as stored (same text and seconds)
    with Store(store, read_only=True) as st:
        (run,) = st.runs().to_dict("records")
        assert run["status"] == "complete" and run["n_items"] == LIMIT
