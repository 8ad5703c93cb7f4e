"""The full VAE gradient against finite differences, for hypothesis-drawn architectures.

Architectures (vae_np.testing.strategies.architectures): depth 0-3 hidden layers of width <= 5,
every activation, every likelihood ("gaussian-learned" with and without decoder_sigma_min), both
sigma parameterizations, both decoder means, k in 1..4, batch <= 4, frozen eps.

Per-coordinate check: vae_np.gradcheck.generic.check_gradients on *every* parameter, tolerance 1e-6 (the
checker's default: ten times the ~1e-7 a correct float64 central difference typically reaches;
its error floor is the quotient's own rounding noise). A ReLU/leaky-ReLU coordinate whose
+-h step straddles a kink is reported as skipped; at least 90% of the coordinates
must be conclusive. test_report_max_error draws its own fixed set of architectures (hypothesis,
derandomized) and prints the largest error over them (run with -s to see it), whatever else ran.

Directional check, independent of the checker: u . grad vs the central difference
(L(theta + h u) - L(theta - h u)) / 2h (vae_np.testing.central_difference of t -> L(theta + t u)
at t = 0) for random unit u over the whole flat vector, with the tolerance of
vae_np.testing.numerical (1e-6 relative + 1e-8 F, F ~ the size of the loss's terms).

float32 against float64: the same parameters, data and noise give gradients that differ by
rounding only. A first-order count of the roundings along the longest path (an encoder weight:
about 35 operations forward and as many backward, each within eps32 / 2) bounds the norm-wise
relative difference by ~35 eps32 for a well-conditioned point; the test allows 64 eps32 = 7.6e-6.
Measured over 300 drawn architectures: 1.3e-8 to 4.8e-7 (at most 4 eps32); a factor 2 in any
tensor is an error above 1e-2. check_model(..., reference="float64") gives a float32 model a
verdict (see vae_np.gradcheck.model for its tolerance, sqrt(eps32)).
"""
import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from strategies import (FD_ATOL_PER_F, FD_RTOL, architectures, assert_unchanged, make_data,
                        snapshot)
from vae_np import VAE
from vae_np.gradcheck import check_gradients, check_model
from vae_np.testing import central_difference

TOL = 1e-6
EPS32 = float(np.finfo(np.float32).eps)
FLOAT32_NORM_TOL = 64 * EPS32


def build(arch):
    kwargs, run = arch
    model = VAE(**kwargs)
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    return model, x, run["k"], eps


def every_coordinate(arch, eps_2d, min_conclusive=0.9):
    """check_gradients on every coordinate of the drawn model; asserts the invariants of a call,
    no failure and a share ``min_conclusive`` of conclusive coordinates, and returns the report
    and a description of the model."""
    kwargs, run = arch
    model = VAE(**kwargs)
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"], eps_2d=eps_2d)
    note(repr(model))
    before = snapshot(x, eps)
    loss, grads = model.loss_and_grads(x, k=run["k"], eps=eps)
    grads = {n: g.copy() for n, g in grads.items()}
    assert_unchanged(before, x, eps)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
    assert loss == model.loss(x, k=run["k"], eps=eps)
    # The checker sizes the rounding noise of a difference quotient by |f|. The loss is a sum of
    # about D + Z terms of order 1 (per pixel and per latent unit), which can cancel to a loss
    # near 0 (a continuous Bernoulli nll below its KL: -0.11 from terms of size ~4) while the sum
    # still rounds like its terms. Adding that size as a constant leaves every derivative as it
    # is and makes |f| say how the loss rounds.
    recon, kl = model.elbo_terms(x, k=run["k"], eps=eps)
    offset = model.x_dim + model.z_dim + float(np.mean(np.abs(recon)) + np.mean(kl))
    report = check_gradients(lambda params: model.loss(x, k=run["k"], eps=eps) + offset,
                             model.params, grads, method="coordinates", tol=TOL)
    note(str(report))
    checked = sum(r.checked for r in report.rows)
    assert checked == model.flat.size                     # every coordinate
    assert not any(r.failed for r in report.rows), str(report)
    # A ReLU-type model has coordinates whose +-h step straddles a kink, or reaches one in a
    # tiny net (a 1-1-2-1 stack), where the quotient cannot be judged: skipped or inconclusive by
    # design. Such a model must still give a verdict on half of its coordinates; a smooth one
    # (no kink at all, below) on the share ``min_conclusive``; test_report_max_error asks 90 %
    # of all coordinates, pooled, of every kind of model.
    conclusive = checked - sum(r.skipped_kink + r.inconclusive for r in report.rows)
    relu_type = kwargs["activation"] in ("relu", "leaky_relu")
    required = min(min_conclusive, 0.5) if relu_type else min_conclusive
    assert conclusive >= required * checked, str(report)
    if kwargs["activation"] not in ("relu", "leaky_relu"):
        assert all(r.skipped_kink == 0 for r in report.rows), str(report)
    return report, repr(model) + f", k={run['k']}, batch={run['batch']}"


# The headline test: four times the profile's example count (tiny models, ~10 ms an example).
@settings(max_examples=4 * settings().max_examples)
@given(arch=architectures(), eps_2d=st.booleans())
def test_full_gradient_every_coordinate(arch, eps_2d):
    every_coordinate(arch, eps_2d)


@given(arch=architectures(), seed=st.integers(0, 1000))
def test_full_gradient_random_directions(arch, seed):
    model, x, k, eps = build(arch)
    loss, grads = model.loss_and_grads(x, k=k, eps=eps)
    g = model.grad_flat.copy()
    recon, kl = model.elbo_terms(x, k=k, eps=eps)
    f_terms = 1 + float(np.mean(np.abs(recon)) + np.mean(kl))
    theta = model.flat.copy()
    rng = np.random.default_rng(seed)
    for _ in range(3):
        u = rng.standard_normal(theta.size)
        u /= np.linalg.norm(u)
        h = 1e-6 * max(1.0, float(np.max(np.abs(theta))))

        def along(t, u=u):                        # L(theta + t u)
            model.flat[:] = theta + t[0] * u
            return model.loss(x, k=k, eps=eps)
        numeric = float(central_difference(along, np.zeros(1), h)[0][0])   # step h at t = 0
        model.flat[:] = theta
        analytic = float(u @ g)
        bound = FD_RTOL * (abs(analytic) + abs(numeric)) + FD_ATOL_PER_F * f_terms
        # A kink inside [theta - hu, theta + hu] can only occur for ReLU-type activations.
        if arch[0]["activation"] in ("relu", "leaky_relu") and abs(analytic - numeric) > bound:
            f_plus, f_0, f_minus = along([h]), along([0.0]), along([-h])
            model.flat[:] = theta
            if abs(f_plus - 2 * f_0 + f_minus) / h > 0.1 * abs(analytic - numeric):
                continue
        assert abs(analytic - numeric) <= bound, (analytic, numeric, repr(model))
    # and the library's own directional check (per tensor and all at once) agrees
    report = check_model(model, x, k=k, eps=eps, method="directional", tol=TOL,
                         rng=np.random.default_rng(seed))
    assert report.passed, str(report)


# --------------------------------------------------------------------------- frozen eps
@given(arch=architectures(), seed=st.integers(0, 1000))
def test_backward_uses_the_forward_draw(arch, seed):
    """With no eps given, forward and backward share one draw: the result equals passing that
    draw explicitly (same seeded generator), gradient and all."""
    model, x, k, _ = build(arch)
    loss_a, grads_a = model.loss_and_grads(x, k=k, rng=np.random.default_rng(seed))
    grads_a = {n: g.copy() for n, g in grads_a.items()}
    eps = np.random.default_rng(seed).standard_normal((k, x.shape[0], model.z_dim))
    loss_b, grads_b = model.loss_and_grads(x, k=k, eps=eps)
    assert loss_a == loss_b
    for name in grads_a:
        np.testing.assert_array_equal(grads_a[name], grads_b[name], err_msg=name)


def test_frozen_eps_makes_the_loss_deterministic():
    model = VAE(5, (4,), 2, "tanh", "bernoulli", seed=1)
    x = np.random.default_rng(0).random((3, 5))
    eps = np.random.default_rng(1).standard_normal((2, 3, 2))
    assert model.loss(x, k=2, eps=eps) == model.loss(x, k=2, eps=eps)
    # fresh noise on every evaluation would make a difference quotient meaningless
    assert model.loss(x, k=2) != model.loss(x, k=2)


@given(arch=architectures())
def test_k_samples_average_single_sample_losses(arch):
    """loss(K samples) = mean_k loss(eps_k): recon is averaged over k, the KL does not depend on
    eps; the gradients average the same way."""
    model, x, k, eps = build(arch)
    loss, grads = model.loss_and_grads(x, k=k, eps=eps)
    g_k = model.grad_flat.copy()
    singles, g_singles = [], []
    for i in range(k):
        singles.append(model.loss_and_grads(x, k=1, eps=eps[i])[0])
        g_singles.append(model.grad_flat.copy())
    np.testing.assert_allclose(loss, np.mean(singles), rtol=1e-12, atol=1e-12)
    scale = max(1.0, float(np.max(np.abs(g_k))))
    np.testing.assert_allclose(g_k, np.mean(g_singles, axis=0), rtol=1e-10, atol=1e-12 * scale)


# ------------------------------------------------------------------------ affine heads
@pytest.mark.parametrize("sigma_param", ["logvar", "softplus"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_affine_heads_have_no_activation(activation, sigma_param):
    """Shifting a head's bias by delta shifts that head's output by exactly delta (no squashing):
    mu for encoder.mu, s = ln sigma^2 for encoder.sigma with logvar, the Gaussian mean for
    decoder.out with an identity mean, ln sigma for decoder.logsigma."""
    model = VAE(4, (3, 3), 2, activation, "gaussian-learned", sigma_param, seed=2)
    x = np.random.default_rng(0).normal(size=(5, 4))
    z = np.random.default_rng(1).normal(size=(5, 2))
    delta = 0.375                                         # exact in binary
    mu0, sigma0 = model.encode(x)
    mean0 = model.decode(z)
    model.params["encoder.mu.b"][...] += delta
    mu1, sigma1 = model.encode(x)
    # mu1 - mu0 is delta up to the rounding of mu0 and mu1: a few ulps of max |mu|
    np.testing.assert_allclose(mu1 - mu0, delta, rtol=0,
                               atol=4 * np.finfo(float).eps * max(1.0, float(np.max(np.abs(mu1)))))
    np.testing.assert_array_equal(sigma1, sigma0)
    if sigma_param == "logvar":
        model.params["encoder.sigma.b"][...] += delta
        _, sigma2 = model.encode(x)
        np.testing.assert_allclose(np.log(sigma2 ** 2) - np.log(sigma0 ** 2), delta, rtol=1e-13)
    model.params["decoder.out.b"][...] += delta
    atol = 4 * np.finfo(float).eps * max(1.0, float(np.max(np.abs(mean0))))
    np.testing.assert_allclose(model.decode(z) - mean0, delta, rtol=0, atol=atol)
    # No activation derivative in the gradient either: for a fixed-sigma Gaussian with identity
    # mean, d loss / d decoder.out.b = mean_b (mean_b - x_b) / sigma^2 (k = 1), mean from decode.
    gauss = VAE(4, (3,), 2, activation, "gaussian", sigma_param, seed=2, decoder_sigma=0.5)
    eps = np.random.default_rng(2).normal(size=(5, 2))
    _, grads = gauss.loss_and_grads(x, eps=eps)
    # decoder mean at the sampled z, computed through the public decode (identity mean)
    mu, sigma = gauss.encode(x)
    mean = gauss.decode(mu + sigma * eps)
    np.testing.assert_allclose(grads["decoder.out.b"], np.mean((mean - x) / 0.25, axis=0),
                               rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------- extreme logits
def test_bernoulli_model_with_extreme_logits_is_finite():
    model = VAE(6, (4,), 2, "tanh", "bernoulli", seed=0)
    model.params["decoder.out.W"][...] *= 1e4
    model.params["decoder.out.b"][...] = 1e4 * np.sign(model.params["decoder.out.b"])
    x = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(float)
    eps = np.random.default_rng(1).normal(size=(4, 2))
    loss, grads = model.loss_and_grads(x, eps=eps)
    assert np.isfinite(loss) and loss > 100                # confidently wrong pixels cost ~|logit|
    assert np.all(np.isfinite(model.grad_flat))
    # the decoder's output is a probability in [0, 1], exactly 0 or 1 at such logits
    p = model.decode(eps)
    assert np.all((p >= 0) & (p <= 1))


# --------------------------------------------------------------------------- inputs never mutated
@given(arch=architectures())
def test_public_methods_do_not_mutate_inputs(arch):
    model, x, k, eps = build(arch)
    z = np.random.default_rng(0).normal(size=(3, model.z_dim))
    x_u8 = (np.random.default_rng(1).random((2, model.x_dim)) * 255).astype(np.uint8)
    before = snapshot(x, eps, z, x_u8)
    model.loss_and_grads(x, k=k, eps=eps)
    model.loss(x, k=k, eps=eps)
    model.elbo_terms(x, k=k, eps=eps)
    model.log_weights(x, k=k, eps=eps)
    model.encode(x)
    model.reconstruct(x)
    model.decode(z)
    if model.likelihood == "bernoulli":
        model.loss_and_grads(x_u8)
    assert_unchanged(before, x, eps, z, x_u8)


# --------------------------------------------------------------------------- float32
def _float32_and_float64(arch):
    """A float32 model and a float64 model with the same (float32) parameters, data and noise."""
    kwargs, run = arch
    m32 = VAE(**{**kwargs, "dtype": np.float32})
    m64 = VAE(**{**kwargs, "dtype": np.float64})
    m64.flat[:] = m32.flat
    x, eps = make_data(m32, run["batch"], run["k"], run["data_seed"])
    x, eps = (a.astype(np.float32).astype(np.float64) for a in (x, eps))
    return m32, m64, x, run["k"], eps


@given(arch=architectures())
def test_float32_gradient_equals_float64_gradient_to_rounding(arch):
    m32, m64, x, k, eps = _float32_and_float64(arch)
    note(repr(m32))
    loss32, _ = m32.loss_and_grads(x, k=k, eps=eps)
    loss64, _ = m64.loss_and_grads(x, k=k, eps=eps)
    g32, g64 = m32.grad_flat.astype(np.float64), m64.grad_flat
    assert m32.grad_flat.dtype == np.float32
    difference = np.linalg.norm(g32 - g64) / np.linalg.norm(g64)
    assert difference <= FLOAT32_NORM_TOL, (difference, repr(m32))


@given(arch=architectures(), method=st.sampled_from(["coordinates", "directional"]))
def test_float32_model_check_against_a_float64_reference_passes(arch, method):
    m32, _, x, k, eps = _float32_and_float64(arch)
    report = check_model(m32, x, k=k, eps=eps, method=method, reference="float64")
    note(str(report))
    assert not any(r.failed for r in report.rows), str(report)
    assert report.verdict == "PASSED", str(report)


class _Doubled:
    """A model whose analytic gradient of one tensor is ``factor`` (2) times the true one."""

    def __init__(self, model, name, factor=2.0):
        self.model, self.name, self.factor = model, name, factor
        self.params, self.z_dim = model.params, model.z_dim

    def loss_and_grads(self, x, k=1, eps=None):
        loss, grads = self.model.loss_and_grads(x, k=k, eps=eps)
        grads = {n: g.copy() for n, g in grads.items()}
        grads[self.name] *= self.factor
        return loss, grads


def test_float32_model_check_fails_a_wrong_gradient():
    """A float32 gradient twice too large in one tensor: FAILED (the plain float32 check could
    only say INCONCLUSIVE), that tensor alone, with the factor in words."""
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(3, 4))
    reference = VAE(4, (3,), 2, "tanh", "gaussian", seed=1, dtype=np.float64)
    assert check_model(model, x, method="coordinates", reference=reference).passed
    report = check_model(_Doubled(model, "encoder.0.W"), x, method="coordinates",
                         reference=reference)
    assert report.verdict == "FAILED"
    assert [r.name for r in report.rows if r.failed] == ["encoder.0.W"], str(report)
    row = report.rows[0]
    assert abs(row.ratio - 2) < 1e-3 and "your gradient is 2.000 x the true one" in str(report)
    assert check_model(_Doubled(model, "encoder.0.W"), x, method="coordinates").verdict \
        == "INCONCLUSIVE"                        # what the float32 check said on its own


@pytest.mark.parametrize("method", ["coordinates", "directional"])
def test_float32_model_check_fails_a_gradient_one_percent_off(method):
    """An error of 1e-2 relative in one tensor is 30 times the float32 tolerance sqrt(eps32) =
    3.5e-4 and must fail (an absolute floor of 0.3 max|g| instead of sqrt(eps32) max|g| still
    failed the factor 2 and passed this)."""
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(3, 4))
    reference = VAE(4, (3,), 2, "tanh", "gaussian", seed=1, dtype=np.float64)
    assert check_model(model, x, method=method, reference=reference).passed
    report = check_model(_Doubled(model, "decoder.out.W", 1.01), x, method=method,
                         reference=reference)
    assert report.verdict == "FAILED", str(report)
    assert "decoder.out.W" in [r.name for r in report.rows if r.failed], str(report)


def test_a_float64_model_with_a_reference_keeps_the_float64_tolerance():
    """reference= on a float64 model used float32's sqrt(eps32) = 3.5e-4 and passed a gradient
    1e-4 off that the plain check fails."""
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(3, 4))
    reference = VAE(4, (3,), 2, "tanh", "gaussian", seed=1, dtype=np.float64)
    assert check_model(model, x, reference=reference).passed
    for method in ("coordinates", "directional"):
        report = check_model(_Doubled(model, "decoder.out.W", 1 + 1e-4), x, method=method,
                             reference=reference)
        assert report.verdict == "FAILED" and report.tol == 1e-6, str(report)


def test_float32_reference_must_match_the_model():
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float32)
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match="reference"):
        check_model(model, x, reference=VAE(4, (2,), 2, "tanh", "gaussian"))
    with pytest.raises(ValueError, match="reference must be a float64"):
        check_model(model, x, reference=VAE(4, (3,), 2, "tanh", "gaussian", dtype=np.float32))
    with pytest.raises(ValueError, match="reference"):
        check_model(model, x, reference="float16")


# --------------------------------------------------------------------------- report
def test_report_max_error():
    """Print (with -s) the largest checker error over a fixed, derandomized set of architectures,
    drawn here so that the figure does not depend on which other tests ran before. It asserts no
    failure, the threshold, and that 90 % of all coordinates were conclusive, pooled over the
    architectures (per example that share is the headline test's business; a derandomized draw
    would pin one ill-conditioned point for good): the maximum is taken over the conclusive
    coordinates, so without that share it would say little."""
    errors, counts = [], [0, 0]

    @settings(max_examples=2 * settings().max_examples, derandomize=True, database=None)
    @given(arch=architectures(), eps_2d=st.booleans())
    def collect(arch, eps_2d):
        report, description = every_coordinate(arch, eps_2d, min_conclusive=0.0)
        errors.append((report.max_error, description))
        counts[0] += sum(r.checked - r.skipped_kink - r.inconclusive for r in report.rows)
        counts[1] += sum(r.checked for r in report.rows)
    collect()
    worst, arch = max(errors)
    print(f"\nfull-model gradient check: {len(errors)} architectures, {counts[0]} of {counts[1]} "
          f"coordinates conclusive, max relative error {worst:.3e} (threshold {TOL:g}) at {arch}")
    assert len(errors) >= settings().max_examples and worst < TOL
    assert counts[0] >= 0.9 * counts[1]
