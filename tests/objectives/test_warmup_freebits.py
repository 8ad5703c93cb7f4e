"""KL warm-up and free bits (vae_np.objectives.warmup, .free_bits): the schedule of beta, the
losses written out from the trace's terms, their gradients against central differences on every
kind of model (one and two layers, flow, VampPrior), the zero gradient of a clamped group, the
epoch hook through the training loop, and the errors.

Tolerances: gradient checks at ``check_gradients``' 1e-6 relative (float64); losses written out
from the trace's own nll, kl and kl_groups to 1e-12 relative (a sum of a few terms); a clamped
group's nudge changes the loss by exactly 0 (the floor is a constant there).
"""
import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.core.prior import MonteCarloKL, StandardNormalKL
from vae_np.gradcheck import check_gradients
from vae_np.objectives import FreeBits, KLWarmup, elbo_objective
from vae_np.priors.two_layer_kl import TwoLayerKL

MODELS = {
    "one layer": {},
    "flow": dict(flow="planar", flow_length=1),
    "vamp": dict(prior="vamp", pseudo_inputs=3),
    "two layers": dict(z2_dim=2, hidden2=(3,)),
    "two layers, sampled top KL": dict(z2_dim=2, hidden2=(3,), top_kl="sampled"),
}


def model_and_data(name, k=2, batch=4, seed=0):
    model = VAE(6, (5,), 3, "tanh", "bernoulli", seed=1, **MODELS[name])
    rng = np.random.default_rng(seed)
    return model, rng.random((batch, 6)), rng.standard_normal((k, batch, model.noise_dim))


def report_for(model, x, eps, objective):
    grads = {n: g.copy() for n, g in
             model.loss_and_grads(x, k=eps.shape[0], eps=eps, objective=objective)[1].items()}
    return check_gradients(lambda p: model.loss(x, k=eps.shape[0], eps=eps, objective=objective),
                           model.params, grads, method="coordinates")


# --------------------------------------------------------------------------- warm-up
def test_beta_rises_linearly_from_0_to_1_over_n_epochs():
    w = KLWarmup(warmup_epochs=4)
    betas = []
    for epoch in range(1, 8):
        w.begin_epoch(epoch)
        betas.append(w.beta)
    assert betas == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_warmup_loss_and_its_gradient(name):
    model, x, eps = model_and_data(name)
    w = KLWarmup(warmup_epochs=3)
    for epoch in (1, 2, 5):
        w.begin_epoch(epoch)
        v = model.forward(x, eps, objective=w).values
        np.testing.assert_allclose(v["loss"], np.mean(v["nll"].mean(0) + w.beta * v["kl"]),
                                   rtol=1e-12)
        report = report_for(model, x, eps, w)
        assert report.passed, str(report)


def test_warmup_without_its_beta_fails_the_check(monkeypatch):
    """The planted bug: d loss / d kl left at 1/B (beta forgotten in the backward)."""
    from vae_np.core.objective import NegativeELBO
    monkeypatch.setattr(KLWarmup, "backward", NegativeELBO.backward)
    model, x, eps = model_and_data("one layer")
    w = KLWarmup(warmup_epochs=3)
    w.begin_epoch(2)
    assert "encoder.mu.b" in {r.name for r in report_for(model, x, eps, w).rows if r.failed}


def test_a_step_before_the_hook_is_a_value_error():
    model, x, eps = model_and_data("one layer")
    with pytest.raises(ValueError, match="KLWarmup: beta is not set; the training loop calls "
                                         "begin_epoch"):
        model.loss(x, k=2, eps=eps, objective=KLWarmup(warmup_epochs=2))


def test_fit_calls_the_hook_each_epoch():
    """beta follows the epochs of the run: the history's loss is recon + beta kl with beta =
    0, 1/2, 1, 1 (each batch's terms at its own step, averaged; so compared per epoch)."""
    model, _, _ = model_and_data("two layers")
    X = (np.random.default_rng(2).random((40, 6)) < 0.3).astype(np.float64)
    w = KLWarmup(warmup_epochs=2)
    seen = []
    history = fit(model, X, Adam(1e-2), epochs=4, batch_size=40, k=1, objective=w,
                  rng=np.random.default_rng(3), callback=lambda e: seen.append(w.beta))
    assert seen == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]       # a step and an epoch event each
    for beta, loss, recon, kl in zip((0, 0.5, 1, 1), history["loss"], history["recon"],
                                     history["kl"]):
        np.testing.assert_allclose(loss, recon + beta * kl, rtol=1e-6)


# --------------------------------------------------------------------------- free bits
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_kl_groups_sum_to_the_kl(name):
    model, x, eps = model_and_data(name)
    t = model.forward(x, eps, objective=FreeBits(0.1))
    groups = t.values["kl_groups"]
    np.testing.assert_allclose(groups.sum(axis=1), t.values["kl"], rtol=1e-12, atol=1e-14)
    expected = {StandardNormalKL: 3, MonteCarloKL: 1, TwoLayerKL: 1 + 2}[type(model.kl_term)]
    assert groups.shape == (4, expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_free_bits_loss_and_its_gradient(name):
    model, x, eps = model_and_data(name)
    groups = model.forward(x, eps, objective=FreeBits(0.0)).values["kl_groups"].mean(axis=0)
    # a floor between the groups' batch means: some clamped, some free (one group: both sides)
    for lam in sorted({float(np.median(groups)) + 1e-3, float(groups.min()) - 0.05,
                       float(groups.max()) + 0.05}):
        fb = FreeBits(max(lam, 0.0), warmup_epochs=2)
        fb.begin_epoch(2)
        v = model.forward(x, eps, objective=fb).values
        written = v["nll"].mean() + 0.5 * np.sum(np.maximum(fb.free_bits,
                                                            v["kl_groups"].mean(axis=0)))
        np.testing.assert_allclose(v["loss"], written, rtol=1e-12)
        report = report_for(model, x, eps, fb)
        assert report.passed, str(report)


@pytest.mark.parametrize("name", ["one layer", "two layers"])
def test_a_clamped_group_passes_no_gradient(name):
    """Nudge each group's KL: where the floor holds the loss does not move at all and d kl_j is
    0; where it does not, d loss / d kl_j = 1 / B."""
    model, x, eps = model_and_data(name)
    groups = model.forward(x, eps, objective=FreeBits(0.0)).values["kl_groups"]
    means = np.sort(groups.mean(axis=0))
    lam = float(means[0] + means[1]) / 2          # the lowest group clamped, the others free
    fb = FreeBits(lam)
    t = model.trace(x, k=2, eps=eps, objective=fb)
    clamped = groups.mean(axis=0) <= lam
    assert clamped.any() and (~clamped).any()
    for j in range(groups.shape[1]):
        delta = np.zeros_like(groups)
        delta[:, j] = 1e-7
        change = model.forward(x, eps, {"kl_groups": delta}, objective=fb).loss - t.loss
        if clamped[j]:
            assert change == 0.0 and np.all(t.grads["kl_groups"][:, j] == 0)
        else:
            np.testing.assert_allclose(change, 4 * 1e-7 / 4, rtol=1e-6)
            np.testing.assert_allclose(t.grads["kl_groups"][:, j], 1 / 4, rtol=1e-12)


def test_free_bits_that_pass_a_clamped_groups_gradient_fail(monkeypatch):
    """The planted bug: the mask forgotten (every group gets beta / B)."""
    original = FreeBits.backward

    def wrong(self, trace):
        original(self, trace)
        trace.grads["kl_groups"] = np.full(trace.values["kl_groups"].shape, 1 / 4)
    monkeypatch.setattr(FreeBits, "backward", wrong)
    model, x, eps = model_and_data("one layer")
    lam = float(np.median(model.forward(x, eps, objective=FreeBits(0.0))
                          .values["kl_groups"].mean(axis=0)))
    assert not report_for(model, x, eps, FreeBits(lam)).passed


def test_the_two_layer_groups_keep_the_lower_layer_apart(monkeypatch):
    """The planted bug (once in the library): the lower group's gradient also sent to the top
    layer's closed-form KL."""
    original = TwoLayerKL.backward

    def wrong(self, trace):
        d = trace.grads
        d["kl"] = d["kl"] + d["kl_groups"][:, 0]
        original(self, trace)
    monkeypatch.setattr(TwoLayerKL, "backward", wrong)
    model, x, eps = model_and_data("two layers")
    assert not report_for(model, x, eps, FreeBits(0.05)).passed


# --------------------------------------------------------------------------- options, errors
def test_elbo_objective_builds_the_right_objective():
    assert elbo_objective() == "elbo"
    assert repr(elbo_objective(warmup_epochs=5)) == "KLWarmup(warmup_epochs=5)"
    assert repr(elbo_objective(free_bits=0.5)) == "FreeBits(free_bits=0.5, warmup_epochs=0)"
    assert repr(elbo_objective(3, 0.25)) == "FreeBits(free_bits=0.25, warmup_epochs=3)"


@pytest.mark.parametrize("build, message", [
    (lambda: FreeBits(-0.5), "free_bits must be >= 0, got -0.5"),
    (lambda: FreeBits(float("nan")), "free_bits must be a finite positive number"),
    (lambda: KLWarmup(0), "warmup_epochs must be an integer >= 1, got 0"),
    (lambda: KLWarmup(2.5), "warmup_epochs must be an integer >= 1, got 2.5"),
    (lambda: elbo_objective(warmup_epochs=-1), "warmup_epochs must be an integer >= 0, got -1"),
    (lambda: FreeBits(0.5, warmup_epochs=-2), "warmup_epochs must be an integer >= 0"),
    (lambda: VAE(4, (3,), 2).loss(np.zeros((1, 4)), objective="warmup"),
     "objective='warmup' by name has none: pass vae_np.objectives.KLWarmup"),
    (lambda: VAE(4, (3,), 2).loss(np.zeros((1, 4)), objective="free-bits"),
     "objective='free-bits' by name has none: pass vae_np.objectives.FreeBits"),
    (lambda: VAE(4, (3,), 2).loss_and_grads(np.zeros((1, 4)), objective=FreeBits(1.0),
                                            estimator="dreg"),
     "estimator must be 'standard' with an objective instance"),
])
def test_bad_values_are_value_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
