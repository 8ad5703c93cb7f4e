"""vae_np.derivations.score_reparam: the score-function and reparameterization gradients of E_q[f(z)].

Unbiasedness is tested statistically with fixed seeds: the mean of n single-sample estimates must
lie within 4 standard errors of the exact gradient (a correct estimator fails a given check with
probability ~6e-5; the seeds are fixed, so the tests are deterministic).
"""
import math

import numpy as np
import pytest

from vae_np.derivations.score_reparam import (
    GradientEstimate, reparameterization_gradient, score_function_gradient)

CASES = {
    # f, f', exact (dJ/dmu, dJ/dsigma) for J = E_{N(mu, sigma^2)}[f]
    "square": (lambda z: z * z, lambda z: 2 * z, lambda m, s: (2 * m, 2 * s)),
    "cube": (lambda z: z ** 3, lambda z: 3 * z * z,
             lambda m, s: (3 * m * m + 3 * s * s, 6 * m * s)),          # E z^3 = m^3 + 3 m s^2
    "cos": (np.cos, lambda z: -np.sin(z),
            lambda m, s: (-math.sin(m) * math.exp(-s * s / 2),
                          -s * math.cos(m) * math.exp(-s * s / 2))),
    "linear": (lambda z: 3 * z - 1, lambda z: np.full_like(z, 3.0), lambda m, s: (3.0, 0.0)),
}
SETTINGS = [(0.0, 1.0), (1.3, 0.4), (-0.7, 2.0)]


@pytest.mark.parametrize("mu,sigma", SETTINGS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_both_estimators_are_unbiased(name, mu, sigma):
    f, df, exact = CASES[name]
    exact = np.array(exact(mu, sigma))
    rng = np.random.default_rng(10 * sorted(CASES).index(name) + SETTINGS.index((mu, sigma)))
    for est in (score_function_gradient(f, mu, sigma, 100_000, rng),
                reparameterization_gradient(f, df, mu, sigma, 100_000, rng)):
        assert isinstance(est, GradientEstimate)
        # for the linear f the reparam. d/dmu is the constant 3: SE = 0 and the mean is exact
        ok = np.abs(est.mean - exact) <= 4 * est.stderr + 1e-12
        assert np.all(ok), (est.mean, exact, est.stderr)


def test_fields_are_consistent():
    rng = np.random.default_rng(0)
    est = score_function_gradient(np.sin, 0.2, 0.9, 1000, rng)
    assert est.n == 1000
    assert est.mean.shape == est.variance.shape == est.stderr.shape == (2,)
    assert np.allclose(est.stderr, np.sqrt(est.variance / 1000))
    mean, variance, stderr, n = est                   # unpacks like a tuple
    assert n == 1000


def test_reparameterization_variance_of_square_matches_theory():
    # f = z^2: the single-sample reparam estimate is 2 z (1, eps), z = mu + sigma eps, so
    # Var[d/dmu] = 4 sigma^2 exactly; the sample variance of n Gaussian values has relative SE
    # sqrt(2 / (n - 1)).
    mu, sigma, n = 0.5, 0.7, 200_000
    est = reparameterization_gradient(lambda z: z * z, lambda z: 2 * z, mu, sigma, n,
                                      np.random.default_rng(4))
    assert abs(est.variance[0] / (4 * sigma ** 2) - 1) < 4 * math.sqrt(2 / (n - 1))


def test_reparameterization_has_lower_variance_for_smooth_f():
    rng = np.random.default_rng(1)
    for name in ("square", "cube", "cos"):
        f, df, _ = CASES[name]
        score = score_function_gradient(f, 0.3, 0.8, 50_000, rng)
        reparam = reparameterization_gradient(f, df, 0.3, 0.8, 50_000, rng)
        assert np.all(score.variance > reparam.variance)


def test_score_function_needs_no_derivative_and_works_for_a_step():
    # f = 1[z > 0] has no useful derivative; the score-function estimate still matches
    # dJ/dmu = N(0; mu, sigma^2) = phi(mu / sigma) / sigma.
    mu, sigma = 0.4, 1.1
    est = score_function_gradient(lambda z: (z > 0).astype(float), mu, sigma, 200_000,
                                  np.random.default_rng(2))
    exact = math.exp(-0.5 * (mu / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    assert abs(est.mean[0] - exact) < 4 * est.stderr[0]


def test_a_wrong_derivative_is_detected():
    # the check can fail: df = f instead of f' gives a biased "gradient" far outside 4 SE
    f, _, exact = CASES["square"]
    est = reparameterization_gradient(f, f, 0.5, 1.0, 100_000, np.random.default_rng(3))
    assert np.any(np.abs(est.mean - np.array(exact(0.5, 1.0))) > 4 * est.stderr)


def test_same_seed_same_estimate_and_global_rng_untouched():
    state = np.random.get_state()[1].copy()
    a = score_function_gradient(np.exp, 0.1, 0.5, 500, np.random.default_rng(7))
    b = score_function_gradient(np.exp, 0.1, 0.5, 500, np.random.default_rng(7))
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.variance, b.variance)
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma=0.0), "sigma"),
    (dict(sigma=-1.0), "sigma"),
    (dict(mu=float("nan")), "mu"),
    (dict(mu=np.array([1.0, 2.0])), "mu"),
    (dict(n=1), "n"),
    (dict(n=2.5), "n"),
    (dict(rng=np.random.RandomState(0)), "rng"),
])
def test_invalid_arguments(kwargs, match):
    args = dict(mu=0.0, sigma=1.0, n=10, rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        score_function_gradient(np.sin, **args)
    with pytest.raises(ValueError, match=match):
        reparameterization_gradient(np.sin, np.cos, **args)


def test_f_must_be_vectorized():
    with pytest.raises(ValueError, match="same shape"):
        score_function_gradient(lambda z: 1.0, 0.0, 1.0, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="df"):
        reparameterization_gradient(np.sin, lambda z: np.sum(z), 0.0, 1.0, 10,
                                    np.random.default_rng(0))
