"""The extension points carry new components without a change to the core (vae_np.core.registry).

Each toy below is written here, in the test, and plugged in the way a new component is: its own
class and one registry line (``register_objective``, ``register_prior``), undone after the test.

- A new objective (a beta-weighted ELBO, beta = 1/2) trains with ``fit`` and its gradient equals
  central differences of its own loss; a planted bug (the KL's gradient left at beta = 1) fails.
- A learned prior, p(z) = N(z; m, I) with its mean m in the flat parameter vector, offers its
  closed-form KL to a diagonal Gaussian q (the model uses it) and falls back to the Monte Carlo
  KL with a flow posterior; its gradient (m included) equals central differences under the ELBO
  and the IWAE bound, and two planted bugs (dm's sign, the KL term's dmu) fail. Under DReG it
  is refused unless its backward reads d log_pz_theta for its mean; one that does gets exactly
  IWAE's gradient for the mean (DReG's w~^2 weight is for z's path only).
- A prior that draws noise of its own (a hierarchy in miniature: p(z) = E_u N(z; a u, I),
  u ~ N(0, 1), ln p(z) estimated with one u per sample) takes its u from the model's eps, so
  frozen eps freezes it: the gradient check holds, ``fit`` draws it, and a prior that drew u
  from a generator of its own (unfrozen) fails the check.
- The diagonal Gaussian posterior's backward alone, for a gradient arriving on each of its
  outputs (z, ln q, the path-only ln q, mu, sigma), against central differences
  (``vae_np.testing.assert_backward``), with both sigma heads.

Tolerances are those of the library's checkers (``check_gradients``' 1e-6 relative, and
``assert_backward``'s 1e-6 plus its measured truncation and rounding bound); float64 throughout.
"""
import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.core.layers import FlatParameters
from vae_np.core.objective import OBJECTIVES, NegativeELBO, register_objective
from vae_np.core.posterior import LOG_Q_PATH, SIGMA_HEADS, DiagonalGaussian
from vae_np.core.prior import (LOG_PZ_THETA, PRIOR_PARAMETER_GRADIENT, PRIORS, MonteCarloKL,
                                 register_prior)
from vae_np.core.registry import Family
from vae_np.core.trace import Trace
from vae_np.gradcheck import check_gradients, check_model
from vae_np.numerics import LN_2PI
from vae_np.testing import BackwardMismatch, assert_backward


@pytest.fixture
def registry_line(request):
    """``registry_line(register, registry, name, cls)``: the component's one registry line, and its
    removal after the test (so that no other test sees the toy)."""
    def add(register, registry, name, cls):
        register(name, cls)
        request.addfinalizer(lambda: registry.pop(name))
    return add


def data(model, batch=3, k=2, seed=0):
    """x in (0, 1) and frozen eps (k, batch, noise_dim) from a seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, model.x_dim)), rng.standard_normal((k, batch, model.noise_dim))


def gradient_report(model, x, eps, objective="elbo"):
    """The model's gradient against central differences of its loss, every coordinate."""
    _, grads = model.loss_and_grads(x, k=eps.shape[0], eps=eps, objective=objective)
    grads = {name: g.copy() for name, g in grads.items()}
    return check_gradients(lambda p: model.loss(x, k=eps.shape[0], eps=eps, objective=objective),
                           model.params, grads, method="coordinates")


# --------------------------------------------------------------------------- (a) an objective
class HalfKLELBO(NegativeELBO):
    """The beta-ELBO with beta = 1/2: loss = mean_b [1/K sum_k nll + kl / 2]."""
    beta = 0.5
    equation = "loss = mean_b [ 1/K sum_k nll + beta kl ]"
    grad_equations = {**NegativeELBO.grad_equations, "kl": "dkl = beta / B"}

    def forward(self, trace, model):
        v = trace.values
        trace.record("loss", np.mean(v["nll"].mean(axis=0) + self.beta * v["kl"]), self.equation)

    def backward(self, trace):
        super().backward(trace)
        trace.grads["kl"] = trace.grads["kl"] * self.beta

    def history_loss(self, trace, recon, kl):
        return float(trace.loss)


def test_a_new_objective_plugs_in_with_one_registry_line(registry_line):
    registry_line(register_objective, OBJECTIVES, "half-kl", HalfKLELBO)
    model = VAE(5, (4,), 2, "tanh", "gaussian", seed=1)
    x, eps = data(model)
    report = gradient_report(model, x, eps, "half-kl")
    assert report.passed, str(report)
    elbo = model.loss_and_grads(x, k=2, eps=eps)[1]["encoder.mu.b"].copy()
    half = model.loss_and_grads(x, k=2, eps=eps, objective="half-kl")[1]["encoder.mu.b"]
    assert np.abs(half - elbo).max() > 1e-3            # its own gradient, not the ELBO's
    assert set(model.grad_equations("half-kl")) == set(model.trace(x, eps=eps[:1]).grads)
    X = np.random.default_rng(2).random((60, 5))
    history = fit(model, X, Adam(1e-2), epochs=4, batch_size=20, k=2, objective="half-kl",
                  rng=np.random.default_rng(3))
    assert history["loss"][-1] < history["loss"][0]
    # the history reports this objective's loss: recon + kl / 2 (an ELBO would be recon + kl)
    np.testing.assert_allclose(history["loss"],
                               np.add(history["recon"], 0.5 * np.array(history["kl"])),
                               rtol=1e-12)


def test_the_objective_check_fails_when_the_kl_gradient_ignores_beta(registry_line, monkeypatch):
    registry_line(register_objective, OBJECTIVES, "half-kl", HalfKLELBO)
    monkeypatch.setattr(HalfKLELBO, "backward", NegativeELBO.backward)   # dkl = 1 / B
    model = VAE(5, (4,), 2, "tanh", "gaussian", seed=1)
    x, eps = data(model)
    report = gradient_report(model, x, eps, "half-kl")
    assert not report.passed
    assert {"encoder.mu.W", "encoder.sigma.b"} <= {r.name for r in report.rows if r.failed}


class NeedsTeleport(NegativeELBO):
    requires = {"teleport": "this objective needs a posterior that teleports"}


def test_an_objective_needing_a_capability_the_posterior_lacks_is_refused(registry_line):
    registry_line(register_objective, OBJECTIVES, "teleport", NeedsTeleport)
    for kwargs, where in (({}, "this posterior"), (dict(flow="radial", flow_length=1),
                                                   "flow='radial', flow_length=1")):
        model = VAE(4, (3,), 2, **kwargs)
        with pytest.raises(ValueError, match=f"objective='teleport' is not supported with "
                                             f"{where}: this objective needs a posterior that "
                                             f"teleports, and this posterior does not offer it"):
            model.loss(np.zeros((1, 4)), objective="teleport")


# --------------------------------------------------------------------------- (b) a learned prior
class LearnedMeanPrior(Family):
    """p(z) = N(z; m, I), m (Z,) learned: the parameter "prior.mean", drawn N(0, 0.5^2)."""
    options = {"learned_mean": False}
    noise_dim = 0
    work_per_sample = 0
    label = "N(m, I) prior"

    @staticmethod
    def param_spec(model, learned_mean):
        return [("prior.mean", (model.z_dim,), lambda rng, shape: rng.normal(0, 0.5, shape))]

    def __init__(self, model, store, learned_mean):
        self.m, self.dm = store.params["prior.mean"], store.grads["prior.mean"]
        self.z_dim, self.dtype = model.z_dim, model.dtype

    def forward(self, trace, eps):
        pass

    def log_density(self, trace):
        if "log_pz" not in trace.values:
            diff = trace.values["z"] - self.m
            trace.record("log_pz", -0.5 * np.sum(diff * diff, axis=-1) - 0.5 * self.z_dim * LN_2PI,
                         "ln p(z) = -1/2 |z - m|^2 - Z/2 ln 2 pi")
        return trace.values["log_pz"]

    def kl_term(self, posterior):
        if posterior.gaussian is None:
            return MonteCarloKL(posterior, self)
        return GaussianToLearnedMeanKL(self, *posterior.gaussian)

    def backward(self, trace):
        d, v = trace.grads, trace.values
        dm = d.pop("prior.mean", np.zeros(self.z_dim))         # the closed-form KL's share
        if "log_pz" in d:
            diff = v["z"] - self.m
            d["z"] = d["z"] + d["log_pz"][..., None] * -diff        # d ln p/dz = -(z - m)
            dm = dm + np.sum(d["log_pz"][..., None] * diff, axis=(0, 1))   # d ln p/dm = z - m
        self.dm[...] = dm
        d["prior.mean"] = self.dm

    def backward_shared(self, trace):
        pass

    def sample(self, n, rng):
        return self.m + rng.standard_normal((n, self.z_dim), dtype=self.dtype)

    def grad_equations(self, eq, terms):
        eq["prior.mean"] = "dm = sum dln p(z) (z - m) - sum_b dkl (mu - m)"
        if "log_pz" in eq:
            eq["z"] += " - dln p(z) * (z - m)"


class GaussianToLearnedMeanKL:
    """KL(N(mu, sigma^2) || N(m, I)) = 1/2 sum_j (sigma^2 + (mu - m)^2 - 1 - ln sigma^2)."""

    def __init__(self, prior, mu_name, sigma_name):
        self.prior, self.mu, self.sigma = prior, mu_name, sigma_name

    def forward(self, trace):
        v = trace.values
        diff = v[self.mu] - self.prior.m
        s2 = v[self.sigma] ** 2
        trace.record("kl", 0.5 * np.sum(s2 + diff * diff - 1 - np.log(s2), axis=-1),
                     "kl = 1/2 sum_j (sigma^2 + (mu - m)^2 - 1 - ln sigma^2)")

    def backward(self, trace):
        d, v = trace.grads, trace.values
        if "kl" in d:
            diff = v[self.mu] - self.prior.m
            d[self.mu] = d["kl"][:, None] * diff
            d[self.sigma] = d["kl"][:, None] * (v[self.sigma] - 1 / v[self.sigma])
            d["prior.mean"] = -np.sum(d["kl"][:, None] * diff, axis=0)

    def grad_equations(self, eq, terms):
        if "kl" in eq:
            terms.setdefault(self.mu, []).append("dkl * (mu - m)")
            terms.setdefault(self.sigma, []).append("dkl * (sigma - 1/sigma)")


@pytest.fixture
def learned_mean(registry_line):
    registry_line(register_prior, PRIORS, "learned-mean", LearnedMeanPrior)


@pytest.mark.parametrize("posterior", [{}, dict(flow="planar", flow_length=2)])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_a_learned_prior_plugs_in_and_its_gradient_is_right(learned_mean, posterior, objective):
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2, learned_mean=True, **posterior)
    assert "prior.mean" in model.params and model.learned_mean is True
    assert np.abs(model.params["prior.mean"]).max() > 0.05          # drawn by its own rule
    x, eps = data(model, k=3)
    report = gradient_report(model, x, eps, objective)
    assert report.passed, str(report)
    grads = model.loss_and_grads(x, k=3, eps=eps, objective=objective)[1]
    assert np.abs(grads["prior.mean"]).max() > 1e-3
    trace = model.trace(x, k=3, eps=eps, objective=objective)
    assert set(model.grad_equations(objective)) >= set(trace.grads) - {"x", "eps"}
    again = VAE(**model.config())
    np.testing.assert_array_equal(again.flat, model.flat)
    assert "N(m, I) prior" in repr(model)


def test_the_closed_form_kl_is_used_only_when_the_pair_has_one(learned_mean):
    """With a Gaussian q the prior's closed form is the KL; with a flow (no closed form) the KL is
    the Monte Carlo 1/K sum_k [ln q - ln p], read from the trace's log_q and log_pz."""
    gaussian = VAE(5, (4,), 2, "tanh", seed=2, learned_mean=True)
    x, eps = data(gaussian, k=3)
    v = gaussian.forward(x, eps).values
    assert "log_pz" not in v
    mu, sigma, m = v["mu"], v["sigma"], gaussian.params["prior.mean"]
    written_out = 0.5 * np.sum(sigma ** 2 + (mu - m) ** 2 - 1 - 2 * np.log(sigma), axis=-1)
    np.testing.assert_allclose(v["kl"], written_out, rtol=1e-12)
    flow = VAE(5, (4,), 2, "tanh", seed=2, learned_mean=True, flow="radial", flow_length=1)
    v = flow.forward(x, eps).values
    z = v["z"]
    log_p = -0.5 * np.sum((z - flow.params["prior.mean"]) ** 2, axis=-1) - LN_2PI
    np.testing.assert_allclose(v["log_pz"], log_p, rtol=1e-12)
    np.testing.assert_allclose(v["kl"], np.mean(v["log_q"] - log_p, axis=0), rtol=1e-12)


def _flip_dm(backward):
    def wrong(self, trace):
        backward(self, trace)
        self.dm *= -1
    return wrong


def test_the_prior_checks_fail_on_planted_bugs(learned_mean, monkeypatch):
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2, learned_mean=True)
    x, eps = data(model, k=3)
    with monkeypatch.context() as patch:
        patch.setattr(LearnedMeanPrior, "backward", _flip_dm(LearnedMeanPrior.backward))
        report = gradient_report(model, x, eps, "iwae")
        assert [r.name for r in report.rows if r.failed] == ["prior.mean"]
    original = GaussianToLearnedMeanKL.backward

    def mu_without_m(self, trace):             # dKL/dmu taken as mu, the N(0, I) prior's
        original(self, trace)
        trace.grads[self.mu] = trace.grads["kl"][:, None] * trace.values[self.mu]
    monkeypatch.setattr(GaussianToLearnedMeanKL, "backward", mu_without_m)
    report = gradient_report(model, x, eps, "elbo")
    assert "encoder.mu.b" in {r.name for r in report.rows if r.failed}


# --------------------------------------------------------------------------- a learned prior, DReG
class LearnedMeanPriorDReG(LearnedMeanPrior):
    """The learned-mean prior that reads DReG's d log_pz_theta for its mean (and d log_pz for z),
    as ``vae_np.core.prior`` asks of a prior with parameters."""
    capabilities = frozenset({PRIOR_PARAMETER_GRADIENT})

    def backward(self, trace):
        d, v = trace.grads, trace.values
        dm = d.pop("prior.mean", np.zeros(self.z_dim))
        if "log_pz" in d:
            diff = v["z"] - self.m
            d["z"] = d["z"] + d["log_pz"][..., None] * -diff           # z's path: d log_pz
            g = d.get(LOG_PZ_THETA, d["log_pz"])                       # m's: d log_pz_theta
            dm = dm + np.sum(g[..., None] * diff, axis=(0, 1))
        self.dm[...] = dm
        d["prior.mean"] = self.dm


def _copy(grads):
    return {name: g.copy() for name, g in grads.items()}


def test_dreg_refuses_a_prior_with_parameters_that_does_not_read_their_gradient(learned_mean):
    """Weighting d ln p(z) by w~^2 is DReG's rule for the encoder's path through z; the prior's
    mean would get it too (a biased gradient), so the model refuses the pair, in one sentence."""
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2, learned_mean=True)
    x, eps = data(model, k=3)
    with pytest.raises(ValueError, match=r"estimator='dreg' is not supported with N\(m, I\) "
                                         r"prior: the DReG estimator sends a prior's own "
                                         r"parameters the IWAE gradient .* this prior's backward "
                                         r"does not read it .*; use estimator='standard'"):
        model.loss_and_grads(x, k=3, eps=eps, objective="iwae", estimator="dreg")
    model.loss_and_grads(x, k=3, eps=eps, objective="iwae")       # IWAE itself is fine
    plain = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2)          # no parameters: not asked
    plain.loss_and_grads(x, k=3, eps=eps, objective="iwae", estimator="dreg")


def test_dreg_gives_a_prior_that_reads_it_the_iwae_gradient_of_its_parameters(registry_line):
    """DReG's gradient of the prior's mean equals IWAE's exactly (the same numbers: the same
    normalised weights, the same sum), the decoder's too, while the encoder's is DReG's own; with
    the mean at 0 the prior is N(0, I), and every DReG gradient is the standard normal model's."""
    registry_line(register_prior, PRIORS, "learned-mean", LearnedMeanPriorDReG)
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2, learned_mean=True)
    x, eps = data(model, k=3)
    iwae = _copy(model.loss_and_grads(x, k=3, eps=eps, objective="iwae")[1])
    dreg = _copy(model.loss_and_grads(x, k=3, eps=eps, objective="iwae", estimator="dreg")[1])
    np.testing.assert_array_equal(dreg["prior.mean"], iwae["prior.mean"])
    assert np.abs(iwae["prior.mean"]).max() > 1e-3
    for name in ("decoder.0.W", "decoder.out.b"):
        np.testing.assert_array_equal(dreg[name], iwae[name])
    assert np.abs(dreg["encoder.mu.b"] - iwae["encoder.mu.b"]).max() > 1e-4
    model.params["prior.mean"][...] = 0
    plain = VAE(5, (4,), 2, "tanh", "bernoulli", seed=2)
    np.testing.assert_array_equal(plain.flat, model.flat[:plain.flat.size])   # same layout
    ours = model.loss_and_grads(x, k=3, eps=eps, objective="iwae", estimator="dreg")[1]
    theirs = plain.loss_and_grads(x, k=3, eps=eps, objective="iwae", estimator="dreg")[1]
    for name, g in theirs.items():      # the same sums in the same order: 1e-12 is rounding room
        np.testing.assert_allclose(ours[name], g, rtol=1e-12, atol=1e-15, err_msg=name)


# --------------------------------------------------------------------------- a prior with noise
class ScaleMixturePrior(Family):
    """p(z) = E_u[N(z; a u, I)], u ~ N(0, 1), a (Z,) learned ("prior.a"): ln p(z) is estimated by
    ln N(z; a u, I) with one u per sample, the prior's own noise (noise_dim = 1), recorded as u."""
    options = {"scale_mixture": False}
    noise_dim = 1
    work_per_sample = 0
    label = "scale-mixture prior"

    @staticmethod
    def param_spec(model, scale_mixture):
        return [("prior.a", (model.z_dim,), lambda rng, shape: rng.normal(0, 1, shape))]

    def __init__(self, model, store, scale_mixture):
        self.a, self.da = store.params["prior.a"], store.grads["prior.a"]
        self.z_dim, self.dtype = model.z_dim, model.dtype

    def forward(self, trace, eps):
        trace.record("u", eps, "u ~ N(0, 1)   (the prior's own noise)")

    def log_density(self, trace):
        if "log_pz" not in trace.values:
            diff = trace.values["z"] - self.a * trace.values["u"]
            trace.record("log_pz", -0.5 * np.sum(diff * diff, axis=-1) - 0.5 * self.z_dim * LN_2PI,
                         "ln p(z) ~ ln N(z; a u, I)")
        return trace.values["log_pz"]

    def kl_term(self, posterior):
        return MonteCarloKL(posterior, self)

    def backward(self, trace):
        d, v = trace.grads, trace.values
        diff = v["z"] - self.a * v["u"]
        d["z"] = d["z"] + d["log_pz"][..., None] * -diff
        self.da[...] = np.sum(d["log_pz"][..., None] * diff * v["u"], axis=(0, 1))
        d["prior.a"] = self.da

    def backward_shared(self, trace):
        pass

    def sample(self, n, rng):
        u = rng.standard_normal((n, 1), dtype=self.dtype)
        return self.a * u + rng.standard_normal((n, self.z_dim), dtype=self.dtype)

    def grad_equations(self, eq, terms):
        eq["prior.a"] = "da = sum dln p(z) (z - a u) u"
        eq["z"] += " - dln p(z) * (z - a u)"


@pytest.fixture
def scale_mixture(registry_line):
    registry_line(register_prior, PRIORS, "scale-mixture", ScaleMixturePrior)


def test_a_prior_with_its_own_noise_is_frozen_with_eps(scale_mixture):
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=4, scale_mixture=True)
    assert model.noise_dim == 3                       # z's 2, then the prior's u
    x, eps = data(model, k=3)
    trace = model.trace(x, k=3, eps=eps)
    np.testing.assert_array_equal(trace.values["u"], eps[..., 2:])
    np.testing.assert_array_equal(trace.values["eps"], eps[..., :2])
    assert check_model(model, x, k=3, eps=eps, method="coordinates").passed
    assert gradient_report(model, x, eps, "iwae").passed
    a = model.params["prior.a"].copy()
    X = np.random.default_rng(5).random((40, 5))
    history = fit(model, X, Adam(1e-2), epochs=2, batch_size=20, k=2,
                  rng=np.random.default_rng(6))
    assert np.all(np.isfinite(history["loss"])) and np.abs(model.params["prior.a"] - a).max() > 0
    with pytest.raises(ValueError, match=r"eps must have shape \(2, 3, 3\) \(k, batch, noise_dim\)"):
        model.loss(x, k=2, eps=eps[:2, :, :2])


def test_a_prior_drawing_unfrozen_noise_fails_the_check(scale_mixture, monkeypatch):
    """The reason the noise goes through eps: u drawn by the prior itself changes on every call,
    and the same check cannot pass."""
    rng = np.random.default_rng(7)
    monkeypatch.setattr(ScaleMixturePrior, "forward", lambda self, trace, eps: trace.record(
        "u", rng.standard_normal(eps.shape), "u drawn by the prior"))
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=4, scale_mixture=True)
    x, eps = data(model, k=3)
    assert not check_model(model, x, k=3, eps=eps, method="coordinates").passed


# --------------------------------------------------------------------------- (c) the posterior
OUTPUTS = ["z", "log_q", LOG_Q_PATH, "mu", "sigma"]
NAMES = ["h", "W_mu", "b_mu", "W_s", "b_s", "eps", "mu0", "sigma0"]


def posterior_op(output, sigma_param):
    """The DiagonalGaussian as an op of the ops convention: forward(h, W_mu, b_mu, W_s, b_s,
    eps, mu0, sigma0) -> (one of its outputs, cache), backward(dout, cache) -> (dh, dW_mu, db_mu,
    dW_s, db_s). The gradient arrives on that output alone (z gets zeros, as from a decoder that
    does not depend on it). For the path-only output the forward is written out here: ln N(z;
    mu0, sigma0) at z = mu + sigma eps with mu0, sigma0 (the constants, equal to mu and sigma
    at the point checked) held fixed."""
    def forward(h, W_mu, b_mu, W_s, b_s, eps, mu0, sigma0):
        store = FlatParameters([("encoder.mu.W", W_mu.shape), ("encoder.mu.b", b_mu.shape),
                                ("encoder.sigma.W", W_s.shape), ("encoder.sigma.b", b_s.shape)],
                               np.float64)
        for name, value in zip(store.params, (W_mu, b_mu, W_s, b_s)):
            store.params[name][...] = value
        posterior = DiagonalGaussian(store, SIGMA_HEADS[sigma_param](1e-4), "h", eps.shape[-1])
        trace = Trace()
        z = posterior.forward(trace, h, eps)
        if output == LOG_Q_PATH:
            r = (z - mu0) / sigma0
            out = (-0.5 * np.sum(r * r, axis=-1) - np.sum(np.log(sigma0), axis=-1)
                   - 0.5 * z.shape[-1] * LN_2PI)
        elif output == "log_q":
            out = posterior.log_density(trace)
        else:
            out = trace.values[output]
        return out, (posterior, trace, store)

    def backward(dout, cache):
        posterior, trace, store = cache
        d = trace.grads
        d["z"] = dout if output == "z" else np.zeros_like(trace.values["z"])
        if output != "z":
            d[output] = dout
        dh = posterior.backward(trace, need_dh=True)
        return (dh,) + tuple(store.grads[name].copy() for name in store.params)
    return forward, backward


def posterior_inputs(seed=0, B=3, H=4, Z=2, K=3):
    rng = np.random.default_rng(seed)
    h, eps = rng.standard_normal((B, H)), rng.standard_normal((K, B, Z))
    W_mu, b_mu = rng.normal(0, 0.5, (H, Z)), rng.normal(0, 0.5, Z)
    W_s, b_s = rng.normal(0, 0.5, (H, Z)), rng.normal(0, 0.5, Z)
    return h, W_mu, b_mu, W_s, b_s, eps


@pytest.mark.parametrize("sigma_param", sorted(SIGMA_HEADS))
@pytest.mark.parametrize("output", OUTPUTS)
def test_the_gaussian_posterior_backward_for_each_output(output, sigma_param):
    forward, backward = posterior_op(output, sigma_param)
    inputs = posterior_inputs()
    _, (_, trace, _) = forward(*inputs, np.zeros(1), np.ones(1))
    mu0, sigma0 = trace.values["mu"], trace.values["sigma"]
    assert_backward(forward, backward, *inputs, mu0, sigma0, names=NAMES,
                    constants=["eps", "mu0", "sigma0"], complex_step=False)


@pytest.mark.parametrize("output, broken", [
    ("log_q", "the log-density's term dropped"),
    (LOG_Q_PATH, "the path derivative's sign flipped"),
    ("mu", "the gradient arriving on mu ignored"),
])
def test_the_posterior_check_fails_on_a_broken_backward(output, broken, monkeypatch):
    """Each break changes what reaches the posterior's backward from one output: the check of
    that output fails."""
    original = DiagonalGaussian.backward

    def wrong(self, trace, need_dh=True):
        d = trace.grads
        if broken.startswith("the log-density"):
            d.pop("log_q", None)
        elif broken.startswith("the path"):
            d[LOG_Q_PATH] = -d[LOG_Q_PATH]
        else:
            d.pop("mu", None)
        return original(self, trace, need_dh)
    monkeypatch.setattr(DiagonalGaussian, "backward", wrong)
    forward, backward = posterior_op(output, "logvar")
    inputs = posterior_inputs()
    _, (_, trace, _) = forward(*inputs, np.zeros(1), np.ones(1))
    with pytest.raises(BackwardMismatch):
        assert_backward(forward, backward, *inputs, trace.values["mu"], trace.values["sigma"],
                        names=NAMES, constants=["eps", "mu0", "sigma0"], complex_step=False)


def test_an_unknown_keyword_is_a_type_error_as_python_says():
    with pytest.raises(TypeError, match="unexpected keyword argument 'flows'"):
        VAE(4, (3,), 2, flows="planar")
