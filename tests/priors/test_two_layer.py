"""The two-stochastic-layer model (vae_np.priors.two_layer): Burda's log weight, its hand-written
backward against central differences on drawn architectures, the three named sources of dz in
the trace and in ``explain``, the closed-form and the sampled top KL, and the errors.

Tolerances: the gradient checks use ``check_model``'s (1e-6 relative, the float64 central
difference's own rounding floor); the forward values are compared with an independent NumPy
and scipy.stats route to 1e-10 relative (float64 sums of at most a few dozen terms of order 10).
Every random draw comes from a seeded generator; eps (z1's and z2's noise) is frozen.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from vae_np import VAE, Adam, fit
from vae_np.evaluate import active_units_per_layer, elbo, iwae_nll, layer_means
from vae_np.gradcheck import check_model
from vae_np.priors.two_layer import TwoLayerPrior
from vae_np.priors.two_layer_kl import TwoLayerKL
from vae_np.teaching.explain import explain, format_lesson
from vae_np.testing.strategies import architectures, make_data

SMOOTH = ["tanh", "sigmoid", "softplus"]


def small(**kw):
    options = dict(z2_dim=2, hidden2=(4,))
    options.update(kw)
    return VAE(5, (4,), 3, "tanh", "bernoulli", seed=3, **options)


def data(model, batch=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, model.x_dim)), rng.standard_normal((k, batch, model.noise_dim))


def failed(report):
    return {r.name for r in report.rows if r.failed}


# --------------------------------------------------------------------------- gradients
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(activations=SMOOTH, likelihoods=["bernoulli", "gaussian"]),
       st.integers(1, 3), st.lists(st.integers(1, 4), max_size=2),
       st.sampled_from(["analytic", "sampled"]), st.sampled_from(["elbo", "iwae"]))
def test_the_gradient_equals_central_differences_on_drawn_models(arch, z2_dim, hidden2, top_kl,
                                                                 objective):
    kwargs, run = arch
    kwargs["init_std"] = None      # the default init keeps both MLPs well conditioned
    model = VAE(**kwargs, z2_dim=z2_dim, hidden2=tuple(hidden2), top_kl=top_kl)
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    assert eps.shape[-1] == kwargs["z_dim"] + z2_dim
    grads = {n: g.copy() for n, g in
             model.loss_and_grads(x, k=run["k"], eps=eps, objective=objective)[1].items()}
    from vae_np.gradcheck import check_gradients
    report = check_gradients(lambda p: model.loss(x, k=run["k"], eps=eps, objective=objective),
                             model.params, grads, method="coordinates")
    assert report.passed, str(report)


@pytest.mark.parametrize("posterior", [{}, dict(flow="radial", flow_length=2)])
def test_with_a_flow_posterior_for_z1_the_gradient_holds(posterior):
    model = small(**posterior)
    x, eps = data(model)
    for objective in ("elbo", "iwae"):
        grads = {n: g.copy() for n, g in
                 model.loss_and_grads(x, k=2, eps=eps, objective=objective)[1].items()}
        from vae_np.gradcheck import check_gradients
        report = check_gradients(lambda p: model.loss(x, k=2, eps=eps, objective=objective),
                                 model.params, grads, method="coordinates")
        assert report.passed, str(report)


def test_check_model_draws_the_noise_of_both_layers():
    """Without eps, check_model draws (k, B, noise_dim) itself (z_dim alone was too narrow)."""
    model = small()
    x, _ = data(model)
    assert check_model(model, x, k=2, method="coordinates").passed


# --------------------------------------------------------------------------- planted bugs
def _patched(monkeypatch, change):
    original = TwoLayerPrior.backward

    def wrong(self, trace):
        original(self, trace)
        change(trace.grads, trace.values)
    monkeypatch.setattr(TwoLayerPrior, "backward", wrong)


@pytest.mark.parametrize("bug, where", [
    ("dz1_q dropped", "encoder.mu.b"),
    ("dz1_p dropped", "encoder.mu.b"),
    ("dz1_p doubled", "encoder.sigma.b"),
])
def test_each_source_of_dz_is_needed(bug, where, monkeypatch):
    def change(d, v):
        if bug == "dz1_q dropped":
            d["z"] = d["z1_x"] + d["z1_p"]
        elif bug == "dz1_p dropped":
            d["z"] = d["z1_x"] + d["z1_q"]
        else:
            d["z"] = d["z1_x"] + 2 * d["z1_p"] + d["z1_q"]
    model = small()
    x, eps = data(model)
    with monkeypatch.context() as patch:
        _patched(patch, change)
        # the encoder's gradient reads the wrong dz; recompute it by running the posterior again
        report = check_model(model, x, k=2, eps=eps, method="coordinates")
    assert not report.passed and where in failed(report)


def test_a_dropped_log_q2_term_fails(monkeypatch):
    """ln q(z2|z1) = ... - sum ln sigma2: without its -1/sigma2 the q(z2|z1) heads are wrong
    under IWAE (the closed-form ELBO does not read ln q(z2|z1))."""
    original = TwoLayerPrior.backward

    def wrong(self, trace):
        trace.grads.pop("log_q2", None)
        g = trace.grads.get("log_pz")
        if g is not None:       # keep the split of ln p(z) but lose ln q(z2|z1)'s share
            trace.grads["log_pz1"], trace.grads["log_pz2"] = g, g
            del trace.grads["log_pz"]
        original(self, trace)
    monkeypatch.setattr(TwoLayerPrior, "backward", wrong)
    model = small()
    x, eps = data(model)
    from vae_np.gradcheck import check_gradients
    grads = {n: g.copy() for n, g in
             model.loss_and_grads(x, k=2, eps=eps, objective="iwae")[1].items()}
    report = check_gradients(lambda p: model.loss(x, k=2, eps=eps, objective="iwae"),
                             model.params, grads, method="coordinates")
    assert "q_z2.sigma.b" in failed(report)


def test_the_closed_form_top_kl_gradient_is_checked(monkeypatch):
    """dKL/dsigma2 doubled in the closed-form top KL: the ELBO's check fails on q(z2|z1)."""
    original = TwoLayerKL.backward

    def wrong(self, trace):
        original(self, trace)
        d, v = trace.grads, trace.values
        d["sigma2"] = d["sigma2"] + d["kl2"].reshape(-1, 1) * (v["sigma2"] - 1 / v["sigma2"])
    monkeypatch.setattr(TwoLayerKL, "backward", wrong)
    model = small()
    x, eps = data(model)
    assert "q_z2.sigma.b" in failed(check_model(model, x, k=2, eps=eps, method="coordinates"))


# --------------------------------------------------------------------------- values
def _mlp(params, prefix, n, h):
    for i in range(n):
        h = np.tanh(h @ params[f"{prefix}.{i}.W"] + params[f"{prefix}.{i}.b"])
    return h


def test_the_log_weight_is_burdas_written_out():
    """ln w = ln p(x|z1) + ln p(z1|z2) + ln p(z2) - ln q(z1|x) - ln q(z2|z1), each density from
    scipy.stats.norm at networks recomputed here from the parameters (sigma = exp(s / 2))."""
    model = small(hidden2=(4, 3))
    x, eps = data(model, batch=4, k=3)
    P = model.params
    h = np.tanh(x @ P["encoder.0.W"] + P["encoder.0.b"])
    mu, sigma = h @ P["encoder.mu.W"] + P["encoder.mu.b"], np.exp(
        0.5 * (h @ P["encoder.sigma.W"] + P["encoder.sigma.b"]))
    z1 = mu + sigma * eps[..., :3]
    hq = _mlp(P, "q_z2", 2, z1)
    mu2 = hq @ P["q_z2.mu.W"] + P["q_z2.mu.b"]
    sigma2 = np.exp(0.5 * (hq @ P["q_z2.sigma.W"] + P["q_z2.sigma.b"]))
    z2 = mu2 + sigma2 * eps[..., 3:]
    hp = _mlp(P, "p_z1", 2, z2)
    mu1p = hp @ P["p_z1.mu.W"] + P["p_z1.mu.b"]
    sigma1p = np.exp(0.5 * (hp @ P["p_z1.sigma.W"] + P["p_z1.sigma.b"]))
    logits = np.tanh(z1 @ P["decoder.0.W"] + P["decoder.0.b"]) @ P["decoder.out.W"] + P[
        "decoder.out.b"]
    log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=-1)
    written = (log_px + norm.logpdf(z1, mu1p, sigma1p).sum(-1) + norm.logpdf(z2).sum(-1)
               - norm.logpdf(z1, mu, sigma).sum(-1) - norm.logpdf(z2, mu2, sigma2).sum(-1))
    np.testing.assert_allclose(model.log_weights(x, k=3, eps=eps), written, rtol=1e-10)
    # the ELBO with the sampled top KL is the mean log weight; IWAE the log-mean-exp
    sampled = small(hidden2=(4, 3), top_kl="sampled")
    np.testing.assert_allclose(sampled.loss(x, k=3, eps=eps), -written.mean(), rtol=1e-10)
    lme = np.log(np.mean(np.exp(written), axis=0))
    np.testing.assert_allclose(model.loss(x, k=3, eps=eps, objective="iwae"), -lme.mean(),
                               rtol=1e-10)


def test_the_closed_form_top_kl_is_the_gaussian_kl_given_z1():
    """kl = 1/K sum_k [ln q(z1|x) - ln p(z1|z2) + KL(q(z2|z1) || N(0, I))]: the top layer's KL
    written out from the trace's mu2 and sigma2, the rest from the two log-densities."""
    model = small()
    x, eps = data(model, k=3)
    v = model.forward(x, eps).values
    kl2 = 0.5 * np.sum(v["mu2"] ** 2 + v["sigma2"] ** 2 - 1 - np.log(v["sigma2"] ** 2), axis=1)
    expected = np.mean(v["log_q"] - v["log_pz1"] + kl2.reshape(3, -1), axis=0)
    np.testing.assert_allclose(v["kl"], expected, rtol=1e-12)


def test_the_noise_of_z2_rides_in_eps_and_is_frozen_with_it():
    model = small()
    x, eps = data(model, k=2)
    t = model.trace(x, k=2, eps=eps)
    np.testing.assert_array_equal(t.values["eps"], eps[..., :3])
    np.testing.assert_array_equal(t.values["eps2"], eps[..., 3:])
    assert model.loss(x, k=2, eps=eps) == model.loss(x, k=2, eps=eps)
    with pytest.raises(ValueError, match=r"eps must have shape \(2, 3, 5\) \(k, batch, "
                                         r"noise_dim\)"):
        model.loss(x, k=2, eps=eps[..., :3])


# --------------------------------------------------------------------------- the trace, explain
def test_three_named_sources_of_dz_in_the_trace_and_the_equations():
    model = small()
    x, eps = data(model)
    for objective in ("elbo", "iwae"):
        t = model.trace(x, k=2, eps=eps, objective=objective)
        eq = model.grad_equations(objective)
        for name in ("z1_x", "z1_p", "z1_q"):
            assert name in t.values and np.abs(t.grads[name]).max() > 1e-6
        assert eq["z"].startswith("dz = dz1_x + dz1_p + dz1_q")
        assert eq["z1_x"] == "dz1_x = dc1 W^T   (decoder.0)"
        assert set(eq) >= set(t.grads) - {"x", "eps"}


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("arch", [dict(z2_dim=1, hidden2=(2,)),
                                  dict(z2_dim=2, hidden2=(2,), top_kl="sampled"),
                                  dict(z2_dim=1, hidden2=(2,), prior="vamp", pseudo_inputs=2)])
def test_explain_checks_every_quantity_of_the_two_layer_step(arch, objective):
    """Every d<name> (each source of dz on its own, by a nudge of its alias) and every parameter
    against central differences; the lines fit 100 columns."""
    result = explain(batch=2, k=2, objective=objective, **arch)
    assert result["passed"], result["first_failure"]
    names = [r["name"] for r in result["backward"]]
    assert {"z1_x", "z1_p", "z1_q", "z", "z2", "mu2", "sigma2", "log_pz1"} <= set(names)
    assert names.index("z1_x") < names.index("z1_p") < names.index("z1_q") < names.index("z")
    text = format_lesson(result)
    assert max(len(line) for line in text.splitlines()) <= 100


def test_explain_names_a_planted_bug_in_the_prior(monkeypatch):
    def change(d, v):
        d["z1_q"] = 2 * d["z1_q"]
        d["z"] = d["z1_x"] + d["z1_p"] + d["z1_q"]
    _patched(monkeypatch, change)
    result = explain(batch=2, k=2, z2_dim=1, hidden2=(2,))
    assert not result["passed"] and result["first_failure"] == "z1_q"


# --------------------------------------------------------------------------- training, evaluation
def test_fit_trains_it_and_evaluate_reports_each_layer():
    rng = np.random.default_rng(5)
    X = (rng.random((60, 5)) < 0.3).astype(np.float64)
    model = small()
    before = model.flat.copy()
    history = fit(model, X, Adam(1e-2), epochs=3, batch_size=20, k=2, objective="iwae",
                  rng=np.random.default_rng(6))
    assert np.all(np.isfinite(history["loss"])) and np.abs(model.flat - before).max() > 0
    units = active_units_per_layer(model, X, threshold=0.0)
    assert [v.shape for _, v in units] == [(3,), (2,)]
    means, P = layer_means(model, X), model.params          # z2's: mu2 at z1 = mu1(x)
    mu2 = _mlp(P, "q_z2", 1, model.encode(X)[0]) @ P["q_z2.mu.W"] + P["q_z2.mu.b"]
    np.testing.assert_allclose(means[1], mu2, rtol=1e-12)
    np.testing.assert_allclose(units[1][1], mu2.var(axis=0), rtol=1e-12)
    nll, per = iwae_nll(model, X[:4], k=50)
    assert np.all(np.isfinite(per)) and elbo(model, X[:4], k=2).loss > nll - 1.0
    samples = model.sample(7, rng=np.random.default_rng(1))
    assert samples.shape == (7, 5) and np.all((samples >= 0) & (samples <= 1))


def test_iwae_at_k_1_is_the_elbo_with_the_sampled_top_kl():
    """At k = 1 the IWAE bound is ln w itself: the ELBO whose KL is sampled, sample by sample."""
    model = small(top_kl="sampled")
    x, eps = data(model, k=1)
    np.testing.assert_allclose(model.loss(x, k=1, eps=eps, objective="iwae"),
                               model.loss(x, k=1, eps=eps), rtol=1e-13)


def test_the_config_rebuilds_the_model_and_names_the_top_prior():
    model = small(prior="vamp", pseudo_inputs=3)
    config = model.config()
    assert (config["prior"], config["z2_dim"], config["hidden2"], config["pseudo_inputs"]) == (
        "vamp", 2, [4], 3)
    again = VAE(**config)
    np.testing.assert_array_equal(again.flat, model.flat)
    assert repr(again) == repr(model) and "p(z2) VampPrior (3 pseudo-inputs)" in repr(model)
    assert model.z2_dim == 2 and model.top_kl is None and model.prior.top_kl == "sampled"


@pytest.mark.parametrize("kwargs, message", [
    (dict(z2_dim=0), "z2_dim must be an integer >= 1, got 0"),
    (dict(hidden2=(3,)), "hidden2 applies to a second stochastic layer: pass z2_dim"),
    (dict(z2_dim=2, hidden2="100"), "hidden2 must be a sequence of positive ints"),
    (dict(z2_dim=2, top_kl="exact"), "top_kl must be one of \\['analytic', 'sampled'\\]"),
    (dict(z2_dim=2, prior="vamp", pseudo_inputs=2, top_kl="analytic"),
     "top_kl='analytic' needs a top prior with a closed-form KL"),
    (dict(prior="two-layer"), "prior must be one of \\['normal', 'vamp'\\], got 'two-layer'; "
                              "'two-layer' is asked for by its options"),
])
def test_bad_options_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAE(5, (4,), 3, **kwargs)


def test_dreg_is_refused_with_the_reason():
    model = small()
    x, eps = data(model)
    with pytest.raises(ValueError, match="estimator='dreg' is not supported with two stochastic "
                                         "layers .*ln q\\(z2\\|z1\\)"):
        model.loss_and_grads(x, k=2, eps=eps, objective="iwae", estimator="dreg")
