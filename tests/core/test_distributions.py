"""Distributional tests: the sampler, the sigma head and the KL mean the same Gaussian.

A sampler that reads the sigma head as a log-std (std = exp(s)) while the KL reads it as a
log-variance (variance = exp(s)) passes every finite-difference check; only moments of z catch it.
Here:

* z = mu + sigma * eps, through ops.reparameterize_forward with sigma from each sigma
  parameterization, has sample mean mu and sample variance sigma^2, where sigma^2 is computed from
  the head s by the parameterization's documented meaning (exp(s) for "logvar",
  (softplus(s) + sigma_min)^2 for "softplus"), independently of the library;
* the same through the model (model.encode, and the z of the model's own forward pass), and the
  KL the model adds to its loss equals the closed form evaluated at the sample moments of z;
* KL >= 0, KL = 0 exactly at mu = 0, sigma = 1, and the closed form equals a quadrature of
  integral q(z) (ln q(z) - ln p(z)) dz.

Monte Carlo tolerances are 6 standard errors (a false alarm probability of ~2e-9 per check):
SE(mean) = sigma / sqrt(N), SE(variance) = sigma^2 sqrt(2 / (N - 1)) for Gaussian samples. The
draws are seeded, so a run is reproducible.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from strategies import SIGMA_PARAM_NAMES, arrays, floats, matrix_shapes, seeds
from vae_np import VAE, ops

N_SAMPLES = 100_000
N_FORWARD = 10_000
Z_SCORE = 6.0


def head_variance(sigma_param, s, sigma_min=1e-4):
    """sigma^2 from the encoder's head s, by the documented meaning (not by the library)."""
    if sigma_param == "logvar":
        return np.exp(s)                                  # s = ln sigma^2
    return (np.log1p(np.exp(s)) + sigma_min) ** 2          # sigma = softplus(s) + sigma_min


def closed_form_kl(mu, var):
    """KL(N(mu, var) || N(0, 1)) summed over the last axis, from its textbook form."""
    return 0.5 * np.sum(mu ** 2 + var - 1 - np.log(var), axis=-1)


def assert_moments(z, mu, var, what=""):
    """Sample mean and variance over axis 0 of z match mu and var within 6 standard errors."""
    n = z.shape[0]
    mean, sample_var = z.mean(axis=0), z.var(axis=0, ddof=1)
    se_mean = np.sqrt(var / n)
    se_var = var * np.sqrt(2 / (n - 1))
    assert np.all(np.abs(mean - mu) <= Z_SCORE * se_mean), (what, mean, mu)
    assert np.all(np.abs(sample_var - var) <= Z_SCORE * se_var), (what, sample_var, var)
    return mean, sample_var


def kl_mc_tolerance(mu, var, n):
    """6 standard errors of closed_form_kl at the sample moments (delta method, per example)."""
    # dKL/dmean = mu (SE sqrt(var/n)),  dKL/dvar = (1 - 1/var)/2 (SE var sqrt(2/(n-1)))
    se2 = mu ** 2 * var / n + (0.5 * (1 - 1 / var)) ** 2 * var ** 2 * 2 / (n - 1)
    return Z_SCORE * np.sqrt(se2.sum(axis=-1)) + 1e-12


def assert_kl_matches_samples(kl, sample_mean, sample_var, mu, var, n=N_SAMPLES):
    """The KL (B,) equals the closed form at the sample moments of n draws of z, within 6
    standard errors."""
    gap = np.abs(kl - closed_form_kl(sample_mean, sample_var))
    tol = kl_mc_tolerance(mu, var, n)
    assert np.all(gap <= tol), (kl, gap, tol)


# --------------------------------------------------------------------------- ops level
@pytest.mark.parametrize("sigma_param", SIGMA_PARAM_NAMES)
@given(data=st.data(), seed=seeds)
def test_sampler_moments_match_the_sigma_head(sigma_param, data, seed):
    B, Z = data.draw(matrix_shapes())
    mu, s = data.draw(arrays((B, Z), -3, 3)), data.draw(arrays((B, Z), -3, 3))
    forward = ops.SIGMA_PARAMETERIZATIONS[sigma_param][0]
    sigma, _ = forward(s)
    var = head_variance(sigma_param, s)
    np.testing.assert_allclose(sigma ** 2, var, rtol=1e-13)
    eps = np.random.default_rng(seed).standard_normal((N_SAMPLES, B, Z))
    z, _ = ops.reparameterize_forward(mu, sigma, eps)
    assert_moments(z, mu, var, sigma_param)
    # The KL means the same variance as the sampler.
    kl, _ = ops.kl_forward(mu, sigma)
    np.testing.assert_allclose(kl, closed_form_kl(mu, var), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("sigma_param", SIGMA_PARAM_NAMES)
def test_sampler_and_kl_agree_far_from_unit_variance(sigma_param):
    """Heads far from s = 0, where std = exp(s) and var = exp(s) differ by factors of e^3 and
    more, so a sampler/KL disagreement would miss by hundreds of standard errors."""
    mu = np.array([[0.0, 1.5, -2.0]])
    s = np.array([[-3.0, 2.0, 4.0]])
    sigma, _ = ops.SIGMA_PARAMETERIZATIONS[sigma_param][0](s)
    eps = np.random.default_rng(1).standard_normal((N_SAMPLES, 1, 3))
    z, _ = ops.reparameterize_forward(mu, sigma, eps)
    mean, var = assert_moments(z, mu, head_variance(sigma_param, s), sigma_param)
    kl, _ = ops.kl_forward(mu, sigma)
    assert_kl_matches_samples(kl, mean, var, mu, sigma ** 2)


def test_moment_check_catches_a_log_std_sampler():
    """The check above is not vacuous: a sampler reading the logvar head as a log-std
    (std = exp(s)) while the KL reads it as a log-variance fails it by a wide margin."""
    mu, s = np.zeros((1, 2)), np.array([[-2.0, 2.0]])
    eps = np.random.default_rng(2).standard_normal((N_SAMPLES, 1, 2))
    z_wrong = mu + np.exp(s) * eps                        # the buggy sampler
    kl, _ = ops.kl_forward(mu, ops.sigma_logvar_forward(s)[0])
    sample_kl = closed_form_kl(z_wrong.mean(0), z_wrong.var(0, ddof=1))
    assert np.all(np.abs(kl - sample_kl) > 100 * kl_mc_tolerance(mu, np.exp(s), N_SAMPLES))
    with pytest.raises(AssertionError):
        assert_moments(z_wrong, mu, head_variance("logvar", s))


# --------------------------------------------------------------------------- model level
@pytest.mark.parametrize("sigma_param", SIGMA_PARAM_NAMES)
@given(seed=st.integers(0, 1000), depth=st.integers(0, 2), B=st.integers(1, 3),
       Z=st.integers(1, 3), activation=st.sampled_from(["tanh", "relu", "softplus"]))
def test_model_sampler_and_kl_agree(sigma_param, seed, depth, B, Z, activation):
    model = VAE(4, (3,) * depth, Z, activation, "gaussian", sigma_param, seed=seed, init_std=0.8)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, 4))
    mu, sigma = model.encode(x)
    # (a) encode + reparameterize
    eps = rng.standard_normal((N_SAMPLES, B, Z))
    z, _ = ops.reparameterize_forward(mu, sigma, eps)
    mean, var = assert_moments(z, mu, sigma ** 2, "encode + reparameterize")
    # (b) the z of the model's own forward pass (the path loss_and_grads differentiates), with
    #     K = N_FORWARD frozen eps: the same mu and sigma, so the same moments. (Fewer draws: each
    #     one also goes through the decoder.)
    v = model.forward(x, eps[:N_FORWARD]).values
    np.testing.assert_array_equal(v["mu"], mu)
    np.testing.assert_array_equal(v["sigma"], sigma)
    assert_moments(v["z"], mu, sigma ** 2, "model forward")
    np.testing.assert_array_equal(v["z"], z[:N_FORWARD])
    # (c) the KL in the model's loss is the KL of the distribution z is drawn from
    _, kl = model.elbo_terms(x, k=1, eps=eps[0])
    np.testing.assert_allclose(kl, closed_form_kl(mu, sigma ** 2), rtol=1e-12, atol=1e-13)
    assert_kl_matches_samples(kl, mean, var, mu, sigma ** 2)


@pytest.mark.parametrize("sigma_param", SIGMA_PARAM_NAMES)
def test_model_sigma_head_meaning(sigma_param):
    """Depth 0: the head is s = x W + b, computed here by hand; encode's sigma^2 is its variance."""
    model = VAE(3, (), 2, "tanh", "gaussian", sigma_param, seed=3, init_std=1.5, sigma_min=0.01)
    x = np.random.default_rng(0).normal(size=(4, 3))
    s = x @ model.params["encoder.sigma.W"] + model.params["encoder.sigma.b"]
    mu_by_hand = x @ model.params["encoder.mu.W"] + model.params["encoder.mu.b"]
    mu, sigma = model.encode(x)
    np.testing.assert_allclose(mu, mu_by_hand, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(sigma ** 2, head_variance(sigma_param, s, 0.01), rtol=1e-13)


# --------------------------------------------------------------------------- KL
@given(mu=arrays(matrix_shapes(), -1e3, 1e3), data=st.data())
def test_kl_nonnegative(mu, data):
    sigma = data.draw(arrays(mu.shape, elements=st.one_of(
        floats(1e-3, 1e3), floats(1 - 1e-6, 1 + 1e-6), st.just(1.0))))
    kl, _ = ops.kl_forward(mu, sigma)
    assert kl.shape == mu.shape[:1]
    assert np.all(np.isfinite(kl))
    assert np.all(kl >= 0), kl


@given(shape=matrix_shapes())
def test_kl_zero_exactly_at_the_prior(shape):
    kl, _ = ops.kl_forward(np.zeros(shape), np.ones(shape))
    assert np.all(kl == 0.0)
    _, cache = ops.kl_forward(np.zeros(shape), np.ones(shape))
    dmu, dsigma = ops.kl_backward(np.ones(shape[0]), cache)
    assert np.all(dmu == 0.0) and np.all(dsigma == 0.0)


@given(mu=st.lists(floats(-4, 4), min_size=1, max_size=3), data=st.data())
def test_kl_equals_quadrature(mu, data):
    """Closed form vs sum_j integral q_j(z) (ln q_j(z) - ln p(z)) dz by scipy.integrate.quad.

    quad is asked for 1e-12 absolute / 1e-10 relative accuracy over mu +- 40 sigma (beyond which
    q < e^-800); the comparison allows 1e-8 relative + 1e-10 absolute, well above that.
    """
    sigma = data.draw(st.lists(floats(0.05, 5), min_size=len(mu), max_size=len(mu)))
    total = 0.0
    for m, s in zip(mu, sigma):
        def integrand(z, m=m, s=s):
            log_q = -0.5 * ((z - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
            log_p = -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
            return np.exp(log_q) * (log_q - log_p)
        value, _ = integrate.quad(integrand, m - 40 * s, m + 40 * s, points=[m], limit=200,
                                  epsabs=1e-12, epsrel=1e-10)
        total += value
    kl, _ = ops.kl_forward(np.array([mu]), np.array([sigma]))
    np.testing.assert_allclose(kl[0], total, rtol=1e-8, atol=1e-10)

