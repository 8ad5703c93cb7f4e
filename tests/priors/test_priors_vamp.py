"""The VampPrior (vae_np.priors.vamp): the mixture's fast kernel against its formula, its
backward (the pseudo-inputs' included) against central differences on drawn architectures, its
log-density against scipy.stats at the encoder's own outputs, the shared weights' gradient added
to the posterior's, and the errors.

Tolerances: gradient checks at ``check_model``'s and ``assert_backward``'s (1e-6 relative plus
the measured quotient noise); the matrix-product mixture against the direct formula to 1e-12
relative (float64, both sides; the expanded square of sum_j (z - mu)^2 / sigma^2 loses at most
~Z x (|z| + |mu|)^2 / sigma^2 x eps64 = 1e-12 here); a float32 model's ln p(z) against a float64
one's to 1e-5 relative (float32 rounding of the encoder on u and of z, 1e-7 x a few dozen terms).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import norm

from vae_np import VAE, Adam, fit
from vae_np.gradcheck import check_gradients, check_model
from vae_np.priors.vamp import (VampMixture, mixture_log_density_backward,
                                mixture_log_density_forward, mixture_log_density_reference)
from vae_np.testing import assert_backward
from vae_np.testing.strategies import architectures, make_data

SMOOTH = ["tanh", "sigmoid", "softplus"]


def data(model, batch=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, model.x_dim)), rng.standard_normal((k, batch, model.noise_dim))


def report_for(model, x, eps, objective):
    grads = {n: g.copy() for n, g in
             model.loss_and_grads(x, k=eps.shape[0], eps=eps, objective=objective)[1].items()}
    return check_gradients(lambda p: model.loss(x, k=eps.shape[0], eps=eps, objective=objective),
                           model.params, grads, method="coordinates")


# --------------------------------------------------------------------------- the mixture op
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2 ** 31))
def test_the_fast_mixture_equals_its_formula(n, m, z_dim, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (n, z_dim))
    mu, sigma = rng.normal(0, 1, (m, z_dim)), rng.uniform(0.2, 2.0, (m, z_dim))
    fast, _ = mixture_log_density_forward(z, mu, sigma)
    np.testing.assert_allclose(fast, mixture_log_density_reference(z, mu, sigma), rtol=1e-12,
                               atol=1e-12)
    # and the reference is ln(1/M sum_m prod_j N(z_j; mu_mj, sigma_mj)) by scipy
    comps = norm.logpdf(z[:, None, :], mu[None], sigma[None]).sum(-1)
    np.testing.assert_allclose(fast, logsumexp(comps, axis=1) - np.log(m), rtol=1e-12)


def _op():
    def forward(z, mu, sigma):
        return mixture_log_density_forward(z, mu, sigma)

    def backward(dlog_p, cache):
        return mixture_log_density_backward(dlog_p, cache)
    return forward, backward


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2 ** 31))
def test_the_mixture_backward_equals_central_differences(n, m, z_dim, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, z_dim))
    mu, sigma = rng.normal(0, 1, (m, z_dim)), rng.uniform(0.3, 2.0, (m, z_dim))
    forward, backward = _op()
    assert_backward(forward, backward, z, mu, sigma, names=["z", "mu", "sigma"],
                    complex_step=False)


# --------------------------------------------------------------------------- the model
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(activations=SMOOTH, likelihoods=["bernoulli", "gaussian"]),
       st.integers(1, 4), st.sampled_from(["elbo", "iwae"]))
def test_the_gradient_equals_central_differences_on_drawn_models(arch, m, objective):
    """Every parameter, the pseudo-inputs prior.u and the encoder weights they share included."""
    kwargs, run = arch
    kwargs["init_std"] = None
    model = VAE(**kwargs, prior="vamp", pseudo_inputs=m)
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    report = report_for(model, x, eps, objective)
    assert report.passed, str(report)


def test_the_two_layer_model_with_a_vamp_top_prior():
    model = VAE(5, (4,), 3, "tanh", seed=2, z2_dim=2, hidden2=(3,), prior="vamp",
                pseudo_inputs=4)
    assert model.params["prior.v"].shape == (4, 3)          # pseudo-inputs in z1's space
    x, eps = data(model)
    for objective in ("elbo", "iwae"):
        assert report_for(model, x, eps, objective).passed
    assert np.abs(model.loss_and_grads(x, k=2, eps=eps)[1]["prior.v"]).max() > 1e-6


def test_ln_p_is_the_mixture_of_the_posteriors_at_the_pseudo_inputs():
    """log_pz = ln 1/M sum_m N(z; mu(u_m), sigma(u_m)^2), the components from model.encode on
    the pseudo-inputs and the densities from scipy.stats."""
    model = VAE(5, (4,), 3, "tanh", seed=2, prior="vamp", pseudo_inputs=6)
    x, eps = data(model, k=3)
    t = model.forward(x, eps, objective="iwae")
    mu, sigma = model.encode(model.params["prior.u"])
    z = t.values["z"]
    comps = norm.logpdf(z[:, :, None, :], mu, sigma).sum(-1)                  # (K, B, M)
    np.testing.assert_allclose(t.values["log_pz"], logsumexp(comps, axis=-1) - np.log(6),
                               rtol=1e-12)
    np.testing.assert_allclose(t.values["kl"], np.mean(t.values["log_q"] - t.values["log_pz"], 0),
                               rtol=1e-12)


def test_a_float32_model_keeps_the_mixture_accurate():
    m64 = VAE(8, (6,), 4, "tanh", seed=1, prior="vamp", pseudo_inputs=5)
    m32 = VAE(**{**m64.config(), "dtype": "float32"})
    x, eps = data(m64, k=2)
    v64, v32 = m64.forward(x, eps, objective="iwae").values, m32.forward(
        x.astype(np.float32), eps.astype(np.float32), objective="iwae").values
    assert v32["log_pz"].dtype == np.float32
    np.testing.assert_allclose(v32["log_pz"], v64["log_pz"], rtol=1e-5)


@pytest.mark.parametrize("bug", ["overwrite shared", "no shared path", "du sign"])
def test_the_shared_path_is_checked(bug, monkeypatch):
    """Breaks of backward_shared: the encoder's weights lose the posterior's share (written with
    = instead of +=), or the prior's share, or d u is negated: the check names what is wrong."""
    original = VampMixture.backward_shared

    def wrong(self, trace):
        if bug == "no shared path":
            self.du[...] = 0
            return
        saved = [layer.dW.copy() for layer in self.layers]
        original(self, trace)
        if bug == "overwrite shared":
            for layer, before in zip(self.layers, saved):
                layer.dW -= before
        else:
            self.du *= -1
    monkeypatch.setattr(VampMixture, "backward_shared", wrong)
    model = VAE(5, (4,), 3, "tanh", seed=2, prior="vamp", pseudo_inputs=3)
    x, eps = data(model)
    names = {r.name for r in report_for(model, x, eps, "iwae").rows if r.failed}
    expected = {"overwrite shared": {"encoder.0.W"}, "no shared path": {"prior.u"},
                "du sign": {"prior.u"}}[bug]
    assert expected <= names


def test_fit_moves_the_pseudo_inputs_and_sample_draws_from_the_mixture():
    rng = np.random.default_rng(3)
    X = (rng.random((60, 5)) < 0.4).astype(np.float64)
    model = VAE(5, (4,), 2, "tanh", seed=2, prior="vamp", pseudo_inputs=3)
    u = model.params["prior.u"].copy()
    history = fit(model, X, Adam(1e-2), epochs=3, batch_size=20, k=2,
                  rng=np.random.default_rng(4))
    assert np.all(np.isfinite(history["loss"])) and np.abs(model.params["prior.u"] - u).max() > 0
    z = model.prior.sample(4000, np.random.default_rng(5))
    mu, sigma = model.encode(model.params["prior.u"])
    # the mixture's mean and variance: 1/M sum mu_m, 1/M sum (sigma_m^2 + mu_m^2) - mean^2
    mean = mu.mean(axis=0)
    var = (sigma ** 2 + mu ** 2).mean(axis=0) - mean ** 2
    se = np.sqrt(var / 4000)
    assert np.all(np.abs(z.mean(axis=0) - mean) < 4 * se)


@pytest.mark.parametrize("kwargs, message", [
    (dict(prior="vamp"), "pseudo_inputs must be an integer >= 1 .* with prior='vamp', got None"),
    (dict(pseudo_inputs=0), "pseudo_inputs must be an integer >= 1, got 0"),
    (dict(prior="vamp", pseudo_inputs=2.5), "pseudo_inputs must be an integer >= 1, got 2.5"),
    (dict(prior="normal", pseudo_inputs=3), "the options \\{'pseudo_inputs': 3\\} apply to "
                                            "prior='vamp', not prior='normal'"),
    (dict(prior="vampire"), "prior must be one of \\['normal', 'vamp'\\], got 'vampire'"),
    (dict(pseudo_inputs=2, flow="planar", flow_length=1),
     "prior='vamp' needs the diagonal Gaussian posterior"),
])
def test_bad_options_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAE(5, (4,), 3, **kwargs)


def test_dreg_is_refused_and_the_keyword_alone_chooses_it():
    model = VAE(5, (4,), 3, pseudo_inputs=2)
    assert model.config()["prior"] == "vamp" and model.pseudo_inputs == 2
    x, eps = data(model)
    with pytest.raises(ValueError, match="estimator='dreg' is not supported with VampPrior"):
        model.loss_and_grads(x, k=2, eps=eps, objective="iwae", estimator="dreg")
    assert check_model(model, x, k=2, eps=eps, method="coordinates").passed
