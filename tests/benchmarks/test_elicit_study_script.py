"""benchmarks/elicit_study.py: `kill PID` stops the study as Ctrl-C does (whole items stored, exit 130), and the
same command then finishes it from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharpbench.store import Store

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "elicit_study.py"


@pytest.mark.slow
def test_sigterm_stores_what_is_whole_and_the_same_command_resumes(tmp_path):
    store, out = tmp_path / "s.duckdb", tmp_path / "e.json"
    cmd = [sys.executable, str(_SCRIPT), "--models", "smollm2-135m", "--tasks", "arc_challenge", "--limit", "30",
           "--methods", "plain,variants", "--threads", "1", "--store", str(store), "--out", str(out),
           "--report", str(tmp_path / "e.html")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: list[str] = []
    try:
        for line in proc.stdout:  # the study's progress lines
            seen.append(line)
            if "variant:" in line:  # plain is stored, a variant is being scored
                time.sleep(2)
                os.kill(proc.pid, signal.SIGTERM)
                break
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == 130, "".join(seen)[-2000:] + err[-3000:]
    assert "Traceback" not in err and "run the same command again to resume" in err
    assert not out.exists()  # nothing half-made is saved as a result
    with Store(store, read_only=True) as st:
        runs = st.runs()
    assert "complete" in set(runs.status) and "running" not in set(runs.status)  # the cut arm is closed
    n_runs = len(runs)

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.exists() and "elicited / plain" in done.stdout
    with Store(store, read_only=True) as st:
        again = st.runs()
    assert set(again.status) == {"complete"} and len(again) >= n_runs  # the stored arms reused, none redone
