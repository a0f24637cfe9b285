"""The fast 2PL EM: SQUAREM, the certified Newton M-step, sparse missing cells, EAP reuse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharpbench.irt import TwoPL, estimate_abilities
from sharpbench.irt.data import Responses, start_values
from sharpbench.irt.em import e_step, expected_counts, posterior, run_em
from sharpbench.irt.mstep2pl import _value_parts, ascent_certified, m_step_2pl
from sharpbench.irt.priors import PRESETS, ItemPrior
from sharpbench.irt.quadrature import make_quadrature
from sharpbench.irt.simulate import simulate
from sharpbench.irt.squarem import squarem


def test_squarem_solves_a_slow_linear_map_in_few_steps():
    """F(x) = A x + b with spectral radius 0.95: plain iteration needs ~300 steps, SQUAREM far fewer."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    A = Q @ np.diag([0.95, 0.9, 0.5, 0.3, 0.1, 0.0]) @ Q.T
    b = rng.standard_normal(6)
    fixed = np.linalg.solve(np.eye(6) - A, b)

    def step(x):
        return -float((x - fixed) @ (x - fixed)), A @ x + b

    plain = squarem(step, np.zeros(6), tol=1e-8, max_evals=2000, accelerate=False)
    fast = squarem(step, np.zeros(6), tol=1e-8, max_evals=2000)
    assert plain.converged and fast.converged
    assert plain.n_evals > 250
    assert fast.n_evals < plain.n_evals / 5, fast.n_evals
    np.testing.assert_allclose(fast.x, fixed, atol=1e-6)


def test_squarem_rejects_an_extrapolation_that_lowers_the_objective():
    """A map whose objective punishes any move away from the plain iterates: every jump is undone."""
    calls = []

    def step(x):
        calls.append(x.copy())
        on_path = np.isclose(x[0] * 2.0 ** np.round(-np.log2(max(abs(x[0]), 1e-300))), 1.0)
        return (0.0 if on_path else -1e6), 0.5 * x

    rejected = []
    res = squarem(step, np.array([1.0]), tol=1e-6, max_evals=200, on_reject=lambda: rejected.append(1))
    assert res.converged
    assert res.n_rejected == len(rejected) > 0
    with pytest.raises(ValueError, match="merit"):
        squarem(step, np.array([1.0]), tol=1e-6, max_evals=5, merit="nope")


def test_accelerated_and_plain_em_reach_the_same_fit(lsat7):
    y, _ = simulate(800, 40, seed=31, missing=0.02)
    for data in (y, lsat7):
        fast = TwoPL(prior=None, tol=1e-7, max_iter=3000).fit(data)
        resp = Responses.from_values(data)
        quad = make_quadrature(fast.quadrature)
        plain = run_em(resp, quad, start_values(data, ("a", "d"), False), ("a", "d"), PRESETS["none"],
                       tol=1e-7, max_iter=3000, accelerate=False)
        assert fast.converged and plain.converged
        np.testing.assert_allclose(fast.items["a"], plain.coords["a"], atol=2e-5)
        np.testing.assert_allclose(fast.items["d"], plain.coords["d"], atol=2e-5)
        assert fast.loglik == pytest.approx(plain.loglik, abs=1e-6)
        assert fast.n_iter < plain.n_iter
    # the classic slow case: plain (PX-)EM needs 105 iterations on LSAT7 at tol 1e-8, SQUAREM 23
    assert TwoPL(prior=None, tol=1e-8).fit(lsat7).n_iter <= 40


def test_history_is_the_marginal_loglik_and_px_em_without_prior_never_lowers_it(lsat7):
    fit = TwoPL(prior=None, tol=1e-8).fit(lsat7)
    h = np.array(fit.history)
    assert h.size == fit.n_iter and np.all(h < 0)
    assert fit.loglik >= h.max() - 1e-6


def _newton_step(theta, a, d, r1, n, prior):
    """The unprotected (capped) Newton step of m_step_2pl and its certificate."""
    _, (g_a, g_d, h_aa, h_ad, h_dd) = _value_parts(theta, a, d, r1, n, True)
    pg, pi = prior.grad_info("a", a)
    g_a, h_aa = g_a + pg, h_aa + pi + 1e-8
    pg, pi = prior.grad_info("d", d)
    g_d, h_dd = g_d + pg, h_dd + pi + 1e-8
    det = h_aa * h_dd - h_ad**2
    s_a = (h_dd * g_a - h_ad * g_d) / det
    s_d = (h_aa * g_d - h_ad * g_a) / det
    cap = np.minimum(1.0, 2.0 / np.maximum(np.maximum(np.abs(s_a), np.abs(s_d)), 1e-300))
    s_a, s_d = s_a * cap, s_d * cap
    sure = ascent_certified(s_a, s_d, h_aa, h_ad, h_dd, n.sum(0), float(np.abs(theta).max()))
    return s_a, s_d, sure


def _penalised(theta, a, d, r1, n, prior):
    f, _ = _value_parts(theta, a, d, r1, n, False)
    return f + prior.logpdf("a", a) + prior.logpdf("d", d)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-4, 3.0), prior=st.sampled_from(["none", "weak", "strong"]))
def test_certified_newton_steps_never_lower_the_objective(seed, scale, prior):
    """Whenever the Taylor certificate accepts a step, the penalised objective really does not drop."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-4, 4, 25)
    J = 60
    a_true, d_true = rng.lognormal(0, 0.4, J), rng.normal(0, 1.5, J)
    n = rng.uniform(0.0, 30.0, (25, J)) * np.exp(-0.5 * theta**2)[:, None]
    p = 1 / (1 + np.exp(-(np.multiply.outer(theta, a_true) + d_true)))
    r1 = n * np.clip(p + rng.normal(0, 0.05, p.shape), 0, 1)
    pr = PRESETS[prior]
    opt = {"a": a_true, "d": d_true}
    for _ in range(30):  # the optimum of these counts
        opt = m_step_2pl(theta, r1, n, opt, pr)
    # start near or far from it
    a = opt["a"] + scale * rng.standard_normal(J)
    d = opt["d"] + scale * rng.standard_normal(J)
    s_a, s_d, sure = _newton_step(theta, a, d, r1, n, pr)
    f0 = _penalised(theta, a, d, r1, n, pr)
    f1 = _penalised(theta, a + s_a, d + s_d, r1, n, pr)
    assert np.all(f1[sure] >= f0[sure] - 1e-10 * (1 + np.abs(f0[sure])))
    if scale < 1e-3:  # near the optimum every step is certified
        assert sure.mean() > 0.9
    # the M-step as a whole never lowers any item's objective
    new = m_step_2pl(theta, r1, n, {"a": a, "d": d}, pr)
    f2 = _penalised(theta, new["a"], new["d"], r1, n, pr)
    assert np.all(f2 >= f0 - 1e-10 * (1 + np.abs(f0)))


def test_sparse_missing_cells_match_dense_products():
    y, _ = simulate(300, 80, seed=8)
    rng = np.random.default_rng(1)
    y[rng.random(y.shape) < 0.02] = np.nan
    sparse = Responses.from_values(y, collapse=False)
    assert sparse.missing is not None and sparse.O is None and not sparse.complete
    dense = Responses(R=sparse.R, O=(~np.isnan(y)).astype(float), n_obs=sparse.n_obs)  # the dense O path
    np.testing.assert_array_equal(sparse.R, np.nan_to_num(y, nan=0.0))
    np.testing.assert_array_equal(sparse.n_obs, (~np.isnan(y)).sum(1))
    many = Responses.from_values(np.where(np.random.default_rng(2).random(y.shape) < 0.2, np.nan, y))
    assert many.missing is None and many.O is not None  # 20% missing: dense mask
    quad = make_quadrature("even:61")
    coords = {"a": rng.lognormal(0, 0.3, 80), "d": rng.normal(0, 1, 80)}
    out_s = e_step(sparse, quad, coords)
    out_d = e_step(dense, quad, coords)
    assert out_s[0] == pytest.approx(out_d[0], rel=1e-12)
    for x, z in zip(out_s[1:], out_d[1:]):
        np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-12)
    # counts restricted to a subset of nodes equal the full counts' rows
    _, _, post = posterior(sparse, quad, coords)
    keep = post.sum(0) > 1e-3
    r1, n = expected_counts(sparse, post[:, keep])
    np.testing.assert_allclose(r1, out_d[2][keep], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(n, out_d[3][keep], rtol=1e-10, atol=1e-12)


def test_extreme_logits_take_the_overflow_free_path():
    """Slopes at their bound on far nodes (|z| > 700): finite objective equal to the stable formula."""
    theta = np.linspace(-40, 40, 9)
    a, d = np.array([20.0, -20.0, 0.5]), np.array([0.0, 30.0, -1.0])
    n = np.ones((9, 3))
    r1 = 0.5 * n
    f, parts = _value_parts(theta, a, d, r1, n, True)
    z = np.multiply.outer(theta, a) + d
    ref = (r1 * z - n * np.logaddexp(0, z)).sum(0)
    np.testing.assert_allclose(f, ref, rtol=1e-12)
    assert all(np.isfinite(x).all() for x in parts)


def test_fit_reuses_the_final_posterior_for_eap_abilities():
    y, _ = simulate(200, 150, seed=9, missing=0.01)
    fit = TwoPL(quadrature="even:121").fit(y)
    th, se = estimate_abilities(y, fit.items["a"], fit.items["d"], method="eap")
    np.testing.assert_allclose(fit.abilities["theta"], th, atol=1e-10)
    np.testing.assert_allclose(fit.abilities["se"], se, atol=1e-10)


def test_custom_gaussian_prior_uses_the_fast_m_step():
    y, _ = simulate(150, 30, seed=10)
    fit = TwoPL(prior=ItemPrior(a_mean=1.0, a_sd=1.0, d_sd=3.0)).fit(y)
    assert fit.converged and np.isfinite(fit.items[["a", "d"]].to_numpy()).all()


def test_factored_counts_give_the_dense_m_step():
    """r1 kept as post.T @ R (never multiplied out) and n as one column: same Newton step."""
    from sharpbench.irt.mstep2pl import FactoredCounts

    rng = np.random.default_rng(3)
    y, _ = simulate(120, 90, seed=12)
    post = rng.dirichlet(np.ones(15), size=120)  # (N, Q)
    theta = np.linspace(-2.5, 2.5, 15)
    r1 = post.T @ y
    n_col = post.sum(0)[:, None]
    coords = {"a": rng.lognormal(0, 0.3, 90), "d": rng.normal(0, 1, 90)}
    for pr in (PRESETS["none"], PRESETS["strong"]):
        dense = m_step_2pl(theta, r1, np.repeat(n_col, 90, axis=1), coords, pr)
        fact = m_step_2pl(theta, FactoredCounts(np.ascontiguousarray(post.T), y), n_col, coords, pr)
        np.testing.assert_allclose(fact["a"], dense["a"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fact["d"], dense["d"], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="does not match"):
        FactoredCounts(post.T[:, :5], y)
