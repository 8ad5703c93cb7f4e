"""decode, encode and reconstruct against the model written out by hand in NumPy.

The gradient checks never see ``decode``: it runs the likelihood's ``mean`` (and the Gaussian mean
link's ``apply``), not the traced forward pass, so a mean link that forgets its sigmoid, or a
continuous Bernoulli decoder that returns lambda = sigmoid(l) instead of its mean, trains and
checks correctly and draws the wrong pictures. Here the expected values come from the parameters
alone: the decoder's layers in plain NumPy, the Bernoulli mean sigmoid(l), the continuous
Bernoulli's mean by Gauss-Legendre quadrature of its density (proportional to e^(l x) on [0, 1]).
"""
import numpy as np
import pytest

from vae_np import VAE

NODES, WEIGHTS = np.polynomial.legendre.leggauss(60)
X01, W01 = (NODES + 1) / 2, WEIGHTS / 2                  # Gauss-Legendre on [0, 1]


def by_hand(model, name, inputs):
    """inputs @ W + b for the parameters ``name``.W/b of ``model``."""
    return inputs @ model.params[name + ".W"] + model.params[name + ".b"]


def decoder_output(model, z):
    """The decoder's last dense output (logits or the mean head), tanh layers, by hand."""
    g = z
    for i in range(len(model.hidden)):
        g = np.tanh(by_hand(model, f"decoder.{i}", g))
    return by_hand(model, "decoder.out", g)


def continuous_bernoulli_mean(logits):
    """E[x] under p(x) proportional to lambda^x (1 - lambda)^(1 - x) = (1 - lambda) e^(l x)."""
    density = np.exp(np.multiply.outer(logits, X01))                 # (..., nodes)
    return (density * X01) @ W01 / (density @ W01)


EXPECTED_MEAN = {
    ("bernoulli", "identity"): lambda out: 1 / (1 + np.exp(-out)),
    ("continuous-bernoulli", "identity"): continuous_bernoulli_mean,
    ("gaussian", "identity"): lambda out: out,
    ("gaussian", "sigmoid"): lambda out: 1 / (1 + np.exp(-out)),
    ("gaussian-learned", "identity"): lambda out: out,
    ("gaussian-learned", "sigmoid"): lambda out: 1 / (1 + np.exp(-out)),
}


@pytest.mark.parametrize("likelihood, decoder_mean", list(EXPECTED_MEAN))
@pytest.mark.parametrize("hidden", [(), (5, 4)])
def test_decode_is_the_likelihoods_mean(likelihood, decoder_mean, hidden):
    model = VAE(6, hidden, 3, "tanh", likelihood, dtype=np.float64, seed=1,
                decoder_mean=decoder_mean, init_std=1.0)
    z = np.random.default_rng(2).normal(0, 2, (7, 3))
    expected = EXPECTED_MEAN[likelihood, decoder_mean](decoder_output(model, z))
    np.testing.assert_allclose(model.decode(z), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sigma_param", ["logvar", "softplus"])
def test_encode_and_reconstruct_by_hand(sigma_param):
    model = VAE(6, (5,), 3, "tanh", "gaussian", sigma_param, dtype=np.float64, seed=3,
                decoder_mean="sigmoid", sigma_min=0.05)
    x = np.random.default_rng(4).random((4, 6))
    h = np.tanh(by_hand(model, "encoder.0", x))
    s = by_hand(model, "encoder.sigma", h)
    sigma = np.exp(s / 2) if sigma_param == "logvar" else np.log1p(np.exp(s)) + 0.05
    mu, got_sigma = model.encode(x)
    np.testing.assert_allclose(mu, by_hand(model, "encoder.mu", h), rtol=1e-13)
    np.testing.assert_allclose(got_sigma, sigma, rtol=1e-13)
    np.testing.assert_allclose(model.reconstruct(x),
                               1 / (1 + np.exp(-decoder_output(model, mu))), rtol=1e-13)


@pytest.mark.parametrize("likelihood, decoder_mean", [("gaussian", "sigmoid"),
                                                      ("gaussian-learned", "identity")])
def test_decode_agrees_with_the_traced_mean_at_eps_zero(likelihood, decoder_mean):
    """At eps = 0 the trace's z is mu, so its x~ is what reconstruct draws."""
    model = VAE(6, (5,), 2, "tanh", likelihood, dtype=np.float64, seed=5,
                decoder_mean=decoder_mean)
    x = np.random.default_rng(6).random((3, 6))
    trace = model.trace(x, eps=np.zeros((3, 2)))
    np.testing.assert_allclose(trace.values["x~"][0], model.reconstruct(x), rtol=1e-13)
