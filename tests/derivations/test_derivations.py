"""vae_np.derivations: every claim passes, returns well-formed records, and can fail.

Tolerances live in the claims themselves (each derived from the numerics); these tests check that
the claims pass for several seeds, that their records are complete and JSON-serialisable, and that
deliberately wrong inputs make the same comparison helpers report failure.
"""
import dataclasses
import json
import math

import numpy as np
import pytest

from vae_np import ops
from vae_np.testing import central_difference
from vae_np.derivations import CLAIMS, Claim, compare_gradients, make_claim, run_claims
from vae_np.derivations import _record, elbo, kl, linear, linear_model, mle
from vae_np.derivations import decoder
from vae_np.derivations.decoder import SIGMA_MIN, maximize_sigma_likelihood
from vae_np.derivations.gradient_estimators import TEST_FUNCTIONS

FAST_CLAIMS = [name for name in CLAIMS if name != "linear_vae"]


def check_record(record, group):
    assert isinstance(record, Claim)
    assert record.name.startswith(group + ".")
    for text in (record.statement, record.equation, record.tolerance_reason):
        assert isinstance(text, str) and text.strip()
    assert "=" in record.equation or "<" in record.equation or ">" in record.equation
    for side in (record.lhs, record.rhs):
        values = side if isinstance(side, tuple) else (side,)
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
    assert math.isfinite(record.error) and record.error >= 0
    assert math.isfinite(record.tolerance) and record.tolerance >= 0
    assert isinstance(record.passed, bool)
    if record.passed:
        assert record.error <= record.tolerance     # a passing record never shows a violation
    as_dict = record.to_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert as_dict["status"] == ("pass" if record.passed else "FAIL")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", FAST_CLAIMS)
def test_claim_passes_and_is_well_formed(name, seed):
    records = CLAIMS[name](seed=seed)
    assert records, f"{name} returned no records"
    for record in records:
        check_record(record, name)
    failed = [(r.name, r.error, r.tolerance) for r in records if not r.passed]
    assert not failed


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
def test_linear_vae_claim_passes(seed):
    records = linear.linear_vae(seed=seed)
    for record in records:
        check_record(record, "linear_vae")
    assert [r.name for r in records] == [
        "linear_vae.closed_form", "linear_vae.ml_is_maximum", "linear_vae.gradient",
        "linear_vae.elbo", "linear_vae.sigma", "linear_vae.decoder_covariance"]
    assert all(r.passed for r in records), [(r.name, r.error, r.tolerance) for r in records]
    # with sigma fixed at 1 instead of learned, the best ELBO stays well below ln p_ML
    assert records[3].details["sigma_fixed_at_1_gap"] > 0.5


def test_every_claim_is_documented_with_its_equation():
    for name, function in CLAIMS.items():
        doc = function.__doc__ or ""
        assert "Claim" in doc and "=" in doc, name


def test_claims_are_deterministic_given_the_seed():
    first = [r.to_dict() for r in run_claims(["kl_closed_form", "estimators"], seed=5)]
    second = [r.to_dict() for r in run_claims(["kl_closed_form", "estimators"], seed=5)]
    assert first == second
    other = [r.to_dict() for r in run_claims(["kl_closed_form"], seed=6)]
    assert other[1]["rhs"] != first[1]["rhs"]


def test_claims_do_not_touch_the_global_rng():
    state = np.random.get_state()[1].copy()
    run_claims(["kl_integrals", "kl_closed_form", "ml_kl"], seed=0)
    assert np.array_equal(np.random.get_state()[1], state)


def test_run_claims_order_and_errors():
    names = [r.name.split(".")[0] for r in run_claims(["ml_kl", "kl_integrals"], seed=0)]
    assert names == ["ml_kl"] * 2 + ["kl_integrals"] * 3
    with pytest.raises(ValueError, match="valid claims: kl_integrals"):
        run_claims(["no_such_claim"])
    with pytest.raises(ValueError, match="seed"):
        run_claims(["ml_kl"], seed=-1)
    assert run_claims("ml_kl")[0].name == "ml_kl.same_optimum"


def test_run_claims_by_record_name():
    records = run_claims(["kl_gradient.doubled_expression", "estimators.sin"], seed=0)
    assert [r.name for r in records] == ["kl_gradient.doubled_expression",
                                         "estimators.sin.score", "estimators.sin.reparam"]
    with pytest.raises(ValueError, match="kl_gradient has kl_gradient.library"):
        run_claims(["kl_gradient.nope"])
    with pytest.raises(ValueError, match="unknown claim 'kl'"):
        run_claims(["kl"])


def test_claim_is_frozen():
    record = make_claim("x.y", "s", "a = b", 1.0, 1.0, 0.0, 1e-12, "exact")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.passed = False
    assert record.passed
    assert not make_claim("x.y", "s", "a = b", 1.0, 2.0, 1.0, 0.5, "r").passed
    assert not make_claim("x.y", "s", "a = b", 1.0, float("nan"), float("nan"), 0.5, "r").passed


# --------------------------------------------------------------------------- the checks can fail
def kl_gradients(seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(3, 2))
    sigma = rng.uniform(0.3, 2.0, size=(3, 2))
    dmu, dsigma = ops.kl_backward(np.ones(3), ops.kl_forward(mu, sigma)[1])
    n = mu.size

    def total(v):
        return float(np.sum(ops.kl_forward(v[:n].reshape(3, 2), v[n:].reshape(3, 2))[0]))

    fd, bound = central_difference(total, np.concatenate([mu.ravel(), sigma.ravel()]))
    analytic = np.concatenate([dmu.ravel(), dsigma.ravel()])
    return analytic, fd, bound


def test_compare_gradients_accepts_the_true_kl_gradient():
    analytic, fd, bound = kl_gradients()
    record = compare_gradients("t.ok", "s", "a = b", analytic, fd, bound, 1.0)
    assert record.passed and abs(record.lhs - 1) < 1e-8


def test_compare_gradients_rejects_the_doubled_kl_gradient():
    # 2(1/sigma - sigma) grad sigma - 2 mu grad mu used as the gradient of -KL: twice the truth
    analytic, fd, bound = kl_gradients()
    record = compare_gradients("t.doubled", "s", "a = b", 2 * analytic, fd, bound, 1.0)
    assert not record.passed
    assert abs(record.lhs - 2) < 1e-8          # the measured ratio exposes the factor
    assert record.error > 1e3 * record.tolerance
    # ... and it is exactly what the doubled-expression claim says it is
    assert compare_gradients("t.x2", "s", "a = b", 2 * analytic, fd, bound, 2.0).passed


def test_compare_gradients_rejects_a_small_error_in_one_component():
    analytic, fd, bound = kl_gradients()
    analytic[3] *= 1 + 1e-5
    assert not compare_gradients("t.small", "s", "a = b", analytic, fd, bound).passed


def test_monte_carlo_record_catches_a_sampler_reading_sigma_as_a_variance():
    # The sampler reads the sigma head as a variance. With sigma != 1 the sample
    # average of ln q/p no longer matches the closed-form KL: the 4-SE check must fail.
    rng = np.random.default_rng(0)
    mu, sigma = np.array([0.3, -0.5]), np.array([0.5, 1.8])
    closed = float(ops.kl_forward(mu[None], sigma[None])[0][0])
    right = rng.normal(mu, sigma, size=(100_000, 2))
    wrong = rng.normal(mu, sigma ** 2, size=(100_000, 2))
    ok = kl.monte_carlo_record("t.ok", "right", closed, kl.log_ratio_q_p(right, mu, sigma).sum(1))
    bad = kl.monte_carlo_record("t.bad", "wrong", closed, kl.log_ratio_q_p(wrong, mu, sigma).sum(1))
    assert ok.passed and not bad.passed


def test_mixture_elbo_identity_and_bound_by_hand():
    rng = np.random.default_rng(3)
    weights, means, sds = elbo._mixture(rng)
    lj = elbo.mixture_log_joint(0.7, weights, means, sds)
    log_px = np.logaddexp.reduce(lj)
    post = np.exp(lj - log_px)
    assert elbo.discrete_elbo(post, lj) == pytest.approx(log_px, abs=1e-13)
    q = rng.dirichlet(np.ones(lj.size))
    assert elbo.discrete_elbo(q, lj) < log_px
    assert elbo.discrete_elbo(q, lj) + elbo.discrete_kl(q, lj - log_px) == pytest.approx(log_px,
                                                                                       abs=1e-13)


def test_vae_path_quadrature_agrees_with_monte_carlo():
    model = elbo._continuous_model(0)
    x = np.array([0.3, -0.2])
    value, _ = elbo.vae_elbo_by_quadrature(model, x, elbo.EPS_STEP)
    recon, kl_ = model.elbo_terms(x[None], k=200_000, rng=np.random.default_rng(1))
    log_w = model.log_weights(x[None], k=200_000, rng=np.random.default_rng(1))[:, 0]
    se = log_w.std(ddof=1) / np.sqrt(log_w.size)
    assert abs(-(recon[0] + kl_[0]) - value) < 4 * se
    assert abs(log_w.mean() - value) < 4 * se


def test_ml_kl_optimum_is_the_closed_form_mle():
    record = mle.ml_kl(seed=4)[0]
    assert record.details["grid_vs_closed_form"] <= 0.0005 + 1e-12
    assert record.details["runner_up_margin"] > 1e-10
    assert record.details["min_kl"] > 0     # the data are not binomial


def test_learned_sigma_without_bound_passes_any_ceiling_and_with_bound_does_not():
    ceiling = -4 * math.log(SIGMA_MIN) - 2 * math.log(2 * math.pi)
    free, grad = maximize_sigma_likelihood(0, 0.0, steps=200)
    bounded, _ = maximize_sigma_likelihood(0, SIGMA_MIN, steps=200)
    assert free[-1]["elbo"] > ceiling and np.allclose(grad, 1.0)      # the gradient never decays
    assert all(b["elbo"] < ceiling for b in bounded)
    assert [t["max_sigma_theta"] for t in free] == sorted(t["max_sigma_theta"] for t in free)[::-1]


def test_linear_elbo_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    X, _ = linear.ppca_data(rng, n=40)
    for learn_sigma, beta in [(True, 1.0), (False, 1.0), (False, 3.0)]:
        theta = linear_model.initial_theta(rng, linear.D, 3, learn_sigma)
        theta = theta + 0.4 * rng.standard_normal(theta.size)
        _, grad = linear_model.elbo_and_grad(theta, X, 3, learn_sigma, 0.2, beta)
        fd, bound = central_difference(
            lambda v: linear_model.elbo_and_grad(v, X, 3, learn_sigma, 0.2, beta)[0], theta)
        assert np.all(np.abs(grad - fd) <= bound + 4 * np.finfo(float).eps * np.abs(grad))


def test_linear_elbo_gradient_check_fails_with_a_doubled_kl_gradient(monkeypatch):
    rng = np.random.default_rng(1)
    X, _ = linear.ppca_data(rng, n=40)
    theta = linear_model.initial_theta(rng, linear.D, 2) + 0.4 * rng.standard_normal(30)
    original = linear_model.kl_terms

    def doubled(m, t):
        value, dm, dt = original(m, t)
        return value, 2 * dm, 2 * dt

    monkeypatch.setattr(linear_model, "kl_terms", doubled)
    _, grad = linear_model.elbo_and_grad(theta, X, 2)
    fd, bound = central_difference(lambda v: linear_model.elbo_and_grad(v, X, 2)[0], theta)
    assert not np.all(np.abs(grad - fd) <= bound)


def test_exact_linear_elbo_matches_monte_carlo():
    # the closed-form ELBO of linear_model against ln p(x|z) + ln p(z) - ln q(z|x) from scipy.stats
    from scipy.stats import norm
    rng = np.random.default_rng(2)
    X, _ = linear.ppca_data(rng, n=30)
    theta = linear_model.initial_theta(rng, linear.D, 2) + 0.3 * rng.standard_normal(30)
    p = linear_model.unpack(theta, linear.D, 2)
    sigma, tau = math.exp(float(p["r"])), np.exp(p["t"])
    m = X @ p["V"].T + p["c"]
    z = m + tau * rng.standard_normal((20_000, *m.shape))                  # (S, n, q)
    mean = z @ p["W"].T + p["b"]
    log_w = (norm.logpdf(X, mean, sigma).sum(-1) + norm.logpdf(z).sum(-1)
             - norm.logpdf(z, m, tau).sum(-1))                             # (S, n)
    estimate, se = log_w.mean(), log_w.mean(axis=1).std(ddof=1) / math.sqrt(log_w.shape[0])
    exact, _ = linear_model.elbo_and_grad(theta, X, 2)
    assert abs(estimate - exact) < 4 * se


def test_ppca_closed_form_is_a_maximum():
    rng = np.random.default_rng(2)
    X, _ = linear.ppca_data(rng, n=500)
    ml = linear.ppca_ml(X, linear.Q)
    C = ml["W"] @ ml["W"].T + ml["sigma2"] * np.eye(linear.D)
    best, _ = linear.gaussian_loglik(X, ml["mean"], C)
    assert best == pytest.approx(ml["log_likelihood"], abs=1e-10)
    for _ in range(10):
        W = ml["W"] + 0.02 * rng.standard_normal(ml["W"].shape)
        s2 = ml["sigma2"] * (1 + 0.02 * rng.standard_normal())
        other, _ = linear.gaussian_loglik(X, ml["mean"], W @ W.T + s2 * np.eye(linear.D))
        assert other < best


# --------------------------------------------------------------------------- numerical tools
def test_central_difference_bound_holds():
    def f(v):
        return float(np.sin(v[0]) * np.exp(v[1]) + v[0] ** 3)

    x = np.array([0.4, -1.2])
    grad, bound = central_difference(f, x)
    exact = np.array([np.cos(0.4) * np.exp(-1.2) + 3 * 0.16, np.sin(0.4) * np.exp(-1.2)])
    assert np.all(np.abs(grad - exact) <= bound)
    assert np.all(bound < 1e-8)
    assert np.array_equal(x, [0.4, -1.2])                  # input not mutated


def test_quad_on_a_cancelling_integral_is_quiet_and_bounded(recwarn):
    value, bound = _record.quad(lambda t: t * math.exp(-t * t), -30, 30, points=[0.0])
    assert abs(value) <= bound < 1e-12
    assert not [w for w in recwarn if "roundoff" in str(w.message)]


def test_sum_rounding_scales_with_terms():
    assert _record.sum_rounding([1.0, -1.0]) == pytest.approx(2 * 6 * _record.EPS * 2)
    assert _record.sum_rounding(np.ones(100)) > _record.sum_rounding(np.ones(10))


def test_estimator_test_functions_have_the_right_exact_gradients():
    mu, sigma = 0.3, 0.8
    for name, (f, df, exact, _) in TEST_FUNCTIONS.items():
        nodes, weights = np.polynomial.hermite_e.hermegauss(80)
        weights = weights / math.sqrt(2 * math.pi)

        def J(v):
            return float(weights @ f(v[0] + v[1] * nodes))

        fd, bound = central_difference(J, np.array([mu, sigma]))
        assert np.allclose(fd, exact(mu, sigma), atol=1e-8), name


def test_bounded_note_states_the_comparison_of_its_numbers(monkeypatch):
    # A bug that lets the bounded run exceed its ceiling must not print "peak < ceiling".
    free = [dict(step=50, elbo=12.0, stderr=0.1, max_sigma_theta=1e-3),
            dict(step=100, elbo=122.442, stderr=0.1, max_sigma_theta=1e-15)]
    monkeypatch.setattr(decoder, "maximize_sigma_likelihood",
                        lambda seed, sigma_min: (free, np.ones(4)))
    bounded = decoder.learned_sigma(0)[1]
    assert not bounded.passed
    assert "peaks at 122.442 > ceiling 8.307" in bounded.details["note"]
    assert decoder.compare(1.0, 2.0) == "<" and decoder.compare(2.0, 2.0) == "="


def test_records_carry_a_relation_and_a_unit():
    assert make_claim("x.y", "s", "a = b", 1.0, 1.0, 0.0, 1.0, "r").relation == "="
    with pytest.raises(ValueError, match="relation must be one of"):
        make_claim("x.y", "s", "a = b", 1.0, 1.0, 0.0, 1.0, "r", relation="==")
    records = run_claims(["elbo_mixture", "estimators.sin", "kl_gradient.library"], seed=0)
    by_name = {r.name: r for r in records}
    assert by_name["elbo_mixture.bound"].relation == "<="
    assert by_name["estimators.sin.score"].unit == "SE"
    assert by_name["kl_gradient.library"].relation == "ratio"
    assert all(r.unit for r in records)


def test_every_record_of_every_claim_names_its_unit():
    for name in FAST_CLAIMS:
        for record in CLAIMS[name](seed=0):
            assert record.unit, record.name
