"""Kill -9 a real `sharpbench eval` mid-run, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sharpbench.store import Store

# (task, few-shot args, items, choices per item, reference flags): PIQA 0-shot, and MMLU 5-shot through the
# prefix tree + cache, its reference run on the plain path (--no-prefix-cache)
CASES = {
    "piqa": ("piqa", [], 60, 2, []),
    "mmlu-5shot-prefix-cache": ("mmlu_anatomy", ["--num-fewshot", "5"], 30, 4, ["--no-prefix-cache"]),
}


def _cmd(store, case, *extra: str) -> list[str]:
    task, fewshot, limit, _, _ = CASES[case]
    return [sys.executable, "-m", "sharpbench", "eval", "--model", "smollm2-135m", "--tasks", task, *fewshot,
            "--limit", str(limit), "--batch-size", "8", "--store", str(store), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, case):
    task, _, LIMIT, n_choices, ref_flags = CASES[case]
    progress = re.compile(rf"\[sharpbench\] {task}: (\d+)/(\d+) items stored")
    ref_store, store = tmp_path / "ref.duckdb", tmp_path / "tmp.duckdb"
    ref = subprocess.run(_cmd(ref_store, case, "--output-json", str(tmp_path / "ref.json"), *ref_flags),
                         capture_output=True, text=True, env=_env(), timeout=900)
    assert ref.returncode == 0, ref.stderr[-2000:]

    proc = subprocess.Popen(_cmd(store, case), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=_env())
    stored_at_kill = None
    deadline = time.monotonic() + 900
    try:
        for line in proc.stderr:
            m = progress.search(line)
            if m and 0 < int(m.group(1)) < LIMIT:
                os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
                stored_at_kill = int(m.group(1))
                break
            assert time.monotonic() < deadline, "no progress line from sharpbench eval"
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and stored_at_kill is not None

    with Store(store, read_only=True) as st:  # read-only: leaves the killed run's status as found
        (run,) = st.runs().to_dict("records")
        # At least what was reported; at most one more chunk committed before the signal landed.
        n_killed = run["n_items"]
        assert stored_at_kill <= n_killed < LIMIT and run["status"] == "running"
        assert len(st.choices_frame()) == n_choices * n_killed  # whole items only

    resumed = subprocess.run(_cmd(store, case, "--output-json", str(tmp_path / "resumed.json")),
                             capture_output=True, text=True, env=_env(), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{n_killed} items already in the store; {LIMIT - n_killed} to compute" in resumed.stderr
    report = json.loads((tmp_path / "resumed.json").read_text())
    assert report["tasks"][0]["n_computed"] == LIMIT - n_killed

    with Store(store, read_only=True) as st, Store(ref_store, read_only=True) as rs:
        (run,) = st.runs().to_dict("records")
        assert run["status"] == "complete" and run["n_items"] == LIMIT
        got, want = st.choices_frame(), rs.choices_frame()
        assert len(got) == LIMIT * n_choices
        assert not got.duplicated(["run_id", "item_id", "choice"]).any()
        assert got["run_id"].tolist() == want["run_id"].tolist()  # same run key in both stores
        assert got[["item_id", "choice"]].values.tolist() == want[["item_id", "choice"]].values.tolist()
        # Batches differ between the two runs (float32 sums in another order): tiny tolerance.
        np.testing.assert_allclose(got["loglik"], want["loglik"], rtol=0, atol=1e-4)
        assert got["n_tokens"].tolist() == want["n_tokens"].tolist()
        items_got, items_want = st.items_frame(), rs.items_frame()
        assert items_got["acc"].tolist() == items_want["acc"].tolist()
        assert items_got["gold"].tolist() == items_want["gold"].tolist()
    ref_report = json.loads((tmp_path / "ref.json").read_text())
    assert report["tasks"][0]["metrics"]["acc"]["value"] == ref_report["tasks"][0]["metrics"]["acc"]["value"]
