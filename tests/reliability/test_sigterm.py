"""Issue #18: SIGTERM to a real `sharpbench eval` stops it as Ctrl-C does: the same message, exit code 130,
whole items stored and the run marked interrupted; the same command then resumes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from sharpbench.store import Store

LIMIT = 40
PROGRESS = re.compile(r"\[sharpbench\] piqa: (\d+)/(\d+) items stored \((\d+\.\d) items/s, ETA (\d+[hms][\dms]*)\)")


def _cmd(store, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sharpbench", "eval", "--model", "smollm2-135m", "--tasks", "piqa",
            "--limit", str(LIMIT), "--batch-size", "4", "--store", str(store), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_resumes(tmp_path):
    store = tmp_path / "s.duckdb"
    proc = subprocess.Popen(_cmd(store), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env())
    seen: list[str] = []
    stored_at_signal = None
    deadline = time.monotonic() + 900
    try:
        for line in proc.stderr:
            seen.append(line)
            m = PROGRESS.search(line)
            if m and 0 < int(m.group(1)) < LIMIT:
                os.kill(proc.pid, signal.SIGTERM)  # what `kill PID`, a job scheduler or `docker stop` sends
                stored_at_signal = int(m.group(1))
                break
            assert time.monotonic() < deadline, "no progress line from sharpbench eval"
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert stored_at_signal is not None, "".join(seen)[-3000:]
    assert proc.returncode == 130, rest[-3000:]  # EXIT_INTERRUPTED, as for Ctrl-C
    assert "Traceback" not in rest
    m = re.search(r"interrupted: piqa has (\d+) items stored in (\S+); run the same command again to resume", rest)
    assert m, rest[-3000:]
    n_stored = int(m.group(1))
    assert stored_at_signal <= n_stored < LIMIT

    with Store(store, read_only=True) as st:
        (run,) = st.runs().to_dict("records")
        assert run["status"] == "interrupted" and run["n_items"] == n_stored
        assert len(st.choices_frame()) == 2 * n_stored  # whole items only

    resumed = subprocess.run(_cmd(store), capture_output=True, text=True, env=_env(), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{n_stored} items already in the store; {LIMIT - n_stored} to compute" in resumed.stderr
    with Store(store, read_only=True) as st:
        (run,) = st.runs().to_dict("records")
        assert run["status"] == "complete" and run["n_items"] == LIMIT


@pytest.mark.slow
def test_sigterm_stops_an_elicitation_study_which_then_resumes(tmp_path):
    """Every command runs under the same wrapper: `sharpbench elicit` killed mid-arm stores that arm's whole
    batches, marks it interrupted and exits 130; the same command then completes every arm."""
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "sharpbench", "elicit", "-m", "smollm2-135m", "-t", "arc_challenge", "--limit", "60",
           "--methods", "plain,variants", "--variants", "labels", "--batch-size", "1", "--n-boot", "100",
           "--n-splits", "5", "--store", str(store)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env())
    seen: list[str] = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "variant:" in line:  # plain is done, the first variant has started
                time.sleep(3)
                os.kill(proc.pid, signal.SIGTERM)
                break
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == 130, ("".join(seen) + rest)[-3000:]
    assert "Traceback" not in rest
    assert re.search(r"interrupted: \S+ has \d+ items stored in \S+; run the same command again to resume", rest), \
        rest[-3000:]
    with Store(store, read_only=True) as st:
        status = st.runs()["status"].tolist()
    assert status.count("interrupted") == 1 and "complete" in status, status  # plain finished, one variant cut

    resumed = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with Store(store, read_only=True) as st:
        runs = st.runs()
    assert set(runs["status"]) == {"complete"} and len(runs) > len(status), runs[["task", "status"]]
