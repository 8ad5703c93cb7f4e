"""The importance-weighted bound as a training objective: its value and its hand-written gradient.

L_K = mean_b [logsumexp_k ln w_bk - ln K], ln w = ln p(x|z) + ln p(z) - ln q(z|x), z = mu + sigma eps.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import norm

from vae_np import VAE, Adam, fit
from vae_np.testing import central_difference
from vae_np.objectives.iwae import NegativeIWAE
from vae_np.testing.strategies import architectures, make_data

SMOOTH = ["tanh", "softplus", "sigmoid", "identity"]


def gradient_violations(model, x, eps):
    """Parameter names whose IWAE gradient disagrees with central differences of the IWAE loss
    beyond the difference quotient's own error bound (truncation + rounding, doubled; h = 1e-5,
    the default step of vae_np.testing.central_difference)."""
    k = eps.shape[0]
    model.loss_and_grads(x, k=k, eps=eps, objective="iwae")
    analytic = model.grad_flat.copy()
    start = model.flat.copy()

    def loss(v):
        model.flat[:] = v
        return model.loss(x, k=k, eps=eps, objective="iwae")
    # The rounding part of the bound scales with |f|, but the IWAE loss can be near 0 while its
    # terms (nll, ln q, ln p(z)) are O(1): terms = 4 adds 8 eps 4 / 2h, doubled 64 eps / 2h.
    fd, bound = central_difference(loss, start, terms=4.0)
    model.flat[:] = start
    bad = np.abs(analytic - fd) > 2 * bound
    return sorted({name for name, p in model.params.items()
                   if np.any(bad[_slice(model, name)])})


def _slice(model, name):
    p = model.params[name]
    offset = (p.__array_interface__["data"][0] - model.flat.__array_interface__["data"][0])
    start = offset // model.flat.itemsize
    return slice(start, start + p.size)


@settings(max_examples=40, deadline=None)
@given(architectures(activations=SMOOTH), st.integers(1, 8))
def test_iwae_gradient_equals_central_differences(arch, k):
    kwargs, run = arch
    model = VAE(**kwargs)
    x, eps = make_data(model, run["batch"], k, run["data_seed"])
    assert gradient_violations(model, x, eps) == []


def test_the_check_catches_unnormalised_weights(monkeypatch):
    """A classic slip: weighting each sample's gradient by w_k instead of w~_k = w_k / sum w."""
    model = VAE(4, (3,), 2, "tanh", "bernoulli", seed=2)
    x, eps = make_data(model, 3, 4, 1)
    assert gradient_violations(model, x, eps) == []
    backward = NegativeIWAE.backward

    def unnormalised(self, trace):
        backward(self, trace)
        d, w = trace.grads, np.exp(trace.values["log_w"])
        for name, sign in (("log_w", -1), ("nll", 1), ("log_pz", -1), ("log_q", 1)):
            d[name] = sign * w / w.shape[1]
    monkeypatch.setattr(NegativeIWAE, "backward", unnormalised)
    assert "decoder.out.W" in gradient_violations(model, x, eps)


def test_the_terms_of_ln_w_against_scipy():
    """ln p(z) and ln q(z|x) by scipy's normal density at z, and the bound by scipy's logsumexp."""
    model = VAE(5, (4,), 3, "tanh", "gaussian", seed=3)
    x, eps = make_data(model, 4, 6, 2)
    t = model.trace(x, k=6, eps=eps, objective="iwae")
    v = t.values
    mu, sigma, z = v["mu"], v["sigma"], v["z"]
    np.testing.assert_allclose(v["log_pz"], norm.logpdf(z).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(v["log_q"], norm.logpdf(z, mu, sigma).sum(-1), rtol=1e-10)
    log_w = -v["nll"] + norm.logpdf(z).sum(-1) - norm.logpdf(z, mu, sigma).sum(-1)
    expected = -np.mean(logsumexp(log_w, axis=0) - np.log(6))
    assert t.loss == pytest.approx(expected, rel=1e-12)


def test_k1_is_the_elbo_with_a_monte_carlo_kl():
    """At K = 1 the bound is nll + ln q - ln p(z) at the sample: equal to the analytic-KL ELBO
    only on average over eps (here within 4 standard errors of 4000 draws), not draw by draw."""
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=4)
    x, _ = make_data(model, 1, 1, 0)
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((4000, 1, 2))
    iwae = np.array([model.loss(x, eps=e, objective="iwae") for e in eps])
    elbo = np.array([model.loss(x, eps=e) for e in eps])
    v = model.trace(x, eps=eps[0], objective="iwae").values
    assert iwae[0] == pytest.approx(float(v["nll"][0, 0] + v["log_q"][0, 0] - v["log_pz"][0, 0]),
                                    rel=1e-12)
    assert np.max(np.abs(iwae - elbo)) > 0.1                 # not equal draw by draw
    diff = iwae - elbo
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff))


def test_more_samples_tighten_the_bound():
    """With the same K samples, logmeanexp >= mean (Jensen); on average L_1 <= L_5 <= L_50."""
    model = VAE(6, (5,), 2, "tanh", "bernoulli", seed=5)
    x, eps = make_data(model, 8, 50, 3)
    t = model.trace(x, k=50, eps=eps, objective="iwae")
    assert t.loss <= float(-t.values["log_w"].mean())
    rng = np.random.default_rng(1)
    bounds = [np.mean([-model.loss(x, k=k, rng=rng, objective="iwae") for _ in range(200)])
              for k in (1, 5, 50)]
    assert bounds[0] < bounds[1] < bounds[2]


def test_log_sum_exp_is_stable_for_very_negative_log_weights():
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, decoder_sigma=1e-3)
    x, eps = make_data(model, 2, 5, 0)
    t = model.trace(50 * x, k=5, eps=eps, objective="iwae")
    assert t.values["log_w"].max() < -1e5 and np.isfinite(t.loss)
    assert np.isfinite(model.grad_flat).all()


def test_fit_with_the_iwae_objective():
    X = (np.random.default_rng(0).random((200, 8)) < 0.3).astype(float)
    model = VAE(8, (6,), 2, "tanh", "bernoulli", seed=0)
    history = fit(model, X, Adam(1e-2), epochs=5, batch_size=50, k=5, objective="iwae",
                  rng=np.random.default_rng(0))
    assert history["loss"][-1] < history["loss"][0]
    # loss is -L_5; recon + kl the 5-sample -ELBO, above it
    # (tests/training/test_plumbing_history.py)
    assert np.all(np.array(history["recon"]) + history["kl"] > history["loss"])


@pytest.mark.parametrize("call", [
    lambda m, x: m.loss_and_grads(x, objective="nope"),
    lambda m, x: m.trace(x, objective="IWAE"),
    lambda m, x: fit(m, x, Adam(), objective=None),
])
def test_unknown_objective(call):
    model = VAE(3, (2,), 1)
    with pytest.raises(ValueError, match="objective must be one of"):
        call(model, np.full((2, 3), 0.5))


def test_negligible_weights_are_zero_not_subnormal():
    """Weights below sqrt(tiny) are set to 0: they change the gradient far below rounding, and
    their subnormal products would make the float32 backward tens of times slower."""
    model = VAE(30, (8,), 3, "tanh", "bernoulli", dtype=np.float32, seed=0)
    x = (np.random.default_rng(0).random((4, 30)) < 0.5).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((50, 4, 3)).astype(np.float32) * 8
    t = model.trace(x, k=50, eps=eps, objective="iwae")
    spread = t.values["log_w"].max(axis=0) - t.values["log_w"].min(axis=0)
    assert spread.min() > 100                  # some weights are below e^-100 ~ 4e-44
    tiny = np.finfo(np.float32).tiny
    for name in ("nll", "logits", "g1", "c1"):
        a = np.abs(t.grads[name])
        assert not np.any((a > 0) & (a < tiny)), name
    dnll = t.grads["nll"]
    assert np.any(dnll == 0) and np.allclose(dnll.sum(axis=0), 1 / 4, rtol=1e-6)
