"""benchmarks/irt_vs_peers.py (issue #21 item 3): warm workers, interleaved repeats, both prior settings."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "irt_vs_peers.py"
_spec = importlib.util.spec_from_file_location("irt_vs_peers", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("irt_vs_peers", bench)
_spec.loader.exec_module(bench)


def test_same_prior_setting_gives_mirt_the_prior_sharpbench_resolved():
    from sharpbench.irt.priors import PRESETS, ItemPrior

    y = (np.random.default_rng(0).random((29, 40)) < 0.6).astype(float)
    y[:, 0] = 1.0  # a constant item
    pr = bench.resolved_prior(y, "4pl")
    assert pr == PRESETS["strong"].to_dict()  # < 50 respondents
    assert bench.resolved_prior(np.vstack([y] * 10), "2pl") == PRESETS["weak"].to_dict()  # constant item
    # the asymptote weight g^alpha (1-g)^beta on the logit scale is Beta(alpha + 1, beta + 1) in g, up to a constant
    prior = ItemPrior(g_alpha=pr["g_alpha"], g_beta=pr["g_beta"])
    g = np.linspace(0.01, 0.99, 50)
    ours = prior.logpdf("g", np.log(g / (1 - g)))
    theirs = stats.beta(pr["g_alpha"] + 1, pr["g_beta"] + 1).logpdf(g)
    assert np.ptp(ours - theirs) < 1e-9


def test_worker_fits_warm_and_reports_errors(tmp_path):
    from sharpbench.irt.simulate import simulate

    y, _ = simulate(200, 30, seed=1)
    npz = tmp_path / "m.npz"
    np.savez(npz, full=y, train=y)

    class Args:
        peers_python = sys.executable
        threads = 1

    w = bench.Worker("sharpbench", Args)
    try:
        req = {"npz": str(npz), "key": "train", "model": "3pl", "setting": "default",
               "prior": bench.resolved_prior(y, "3pl")}
        first = w.fit({**req, "cols": 10})
        assert len(first["a"]) == 10
        second = w.fit(req)
        assert len(second["a"]) == len(second["g"]) == 30 and second["converged"]
        assert second["prior"] == req["prior"] and second["seconds"] > 0
        bad = w.fit({**req, "model": "5pl"})
        assert "error" in bad
        assert "error" not in w.fit(req)  # the worker keeps serving after an error
    finally:
        w.close()


def test_run_times_settings_interleaved_and_scores_each(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(_PATH), "--quick", "--methods", "sharpbench,sharpbench-map", "--only", "sim_1000x500",
           "--repeat", "2", "--irt-models", "2pl", "--peers-python", sys.executable, "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "warm-up: one fit of the same matrix" in res.stdout
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"sharpbench", "sharpbench-map"}
    for r in rows.values():
        assert len(r["seconds_all"]) == 2 and np.isfinite(r["heldout"]) and "rmse_a" in r
    assert rows["sharpbench-map"]["time_ratio_vs_sharpbench"] > 0
    assert "px=map" in rows["sharpbench-map"]["note"]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
