"""Numerical robustness: extreme inputs give finite losses and gradients wherever the mathematics
is finite; where the model itself overflows, fit stops with a clear error; the gradient checker
says "inconclusive" where it cannot tell.

Extreme inputs (hypothesis, float32 and float64)
------------------------------------------------
ops:   Bernoulli NLL with logits in [-1e4, 1e4] and x exactly 0, exactly 1, binary or grey;
       sigma heads s in [-50, 50] (logvar: sigma = e^(s/2) in [1.4e-11, 7.2e10]; softplus:
       sigma in [sigma_min, 50]) with the KL and the reparameterization at those sigmas;
       the learned-sigma Gaussian NLL with r in [-1e4, 1e4] and sigma_min > 0; sigmoid, softplus,
       tanh (and every activation) at +-1e4. Values are compared with independent references
       (scipy.special, stable forms written out here) in float64.
model: the encoder's sigma head forced to exactly s in [-50, 50] (its weights 0, its bias s),
       decoder logits / means pushed by a bias in [-1e4, 1e4], x exactly 0 and 1, batches of
       1 to 2048, k up to 64, every likelihood, both sigma parameterizations, every activation,
       both decoder means, float32 and float64: the loss, every gradient, the ELBO terms, the
       importance log-weights and the reconstruction are finite and keep the model's dtype.

Why these inputs have a finite answer in float32: with widths <= 4, depth <= 2, z_dim <= 3 and
s <= 50, |z| <= 7.2e10 * |eps| (|eps| < 6 for 131072 draws) and every activation, loss term and
gradient stays below ~1e28 (measured maximum 1.7e27 with decoder_sigma_min = 1e-3), ten orders
of magnitude under float32's 3.4e38. The learned-sigma decoder always gets decoder_sigma_min > 0:
without a lower bound sigma = e^r underflows to 0 for r < -104 (float32) / -745 (float64) and
-ln p(x|z) = (x - mean)^2 / 2 sigma^2 + ln sigma is genuinely unbounded -- the model overflowing,
not a numerical fault of the code.

Tolerances of the value checks: an op computed in dtype with machine epsilon eps errs by a few
eps relative to the magnitudes it combines (the Bernoulli form softplus(l) - x l cancels terms of
size |l|), plus (D - 1) eps of the sum over D pixels; the bounds below allow 8 (D + 1) eps times
those magnitudes. A wrong formula (a sign, a missing term, log(0)) misses them by orders of
magnitude.

Every example counts into ``EXAMPLES`` and every array checked into ``CHECKED``;
``test_summary_of_extreme_examples`` (last in this file) prints the totals, e.g. for the closing
note: "N hypothesis examples on extreme inputs, zero non-finite results".
"""
import re
from collections import Counter

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import architectures, make_data
from vae_np import SGD, VAE, Adam, TrainingDivergedError, fit, ops
from vae_np.gradcheck import check_gradients, check_model
from vae_np.core.model import DECODER_MEANS, LIKELIHOODS

EXAMPLES = Counter()        # test name -> hypothesis examples run
CHECKED = Counter()         # "arrays" / "values": what was checked for finiteness
NON_FINITE = []             # (test, what) for every non-finite result seen (each also fails)

DTYPES = st.sampled_from([np.float32, np.float64])
MANY = settings(max_examples=4 * settings().max_examples)     # the cheap op-level properties
LN_2PI = np.log(2 * np.pi)


def count(test):
    EXAMPLES[test] += 1


def assert_finite(test, **arrays):
    """Every named array is finite (counted; a non-finite one is recorded and fails the test)."""
    for name, a in arrays.items():
        a = np.asarray(a)
        CHECKED["arrays"] += 1
        CHECKED["values"] += a.size
        if not np.isfinite(a).all():
            NON_FINITE.append((test, name))
            raise AssertionError(f"{test}: {name} has {np.sum(~np.isfinite(a))} non-finite "
                                 f"value(s) of {a.size}: {a.ravel()[~np.isfinite(a.ravel())][:5]}")


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


# --------------------------------------------------------------------------- strategies
def extreme_values(lo, hi):
    """Floats in [lo, hi], with the ends, the middle, 0 and +-1 drawn often."""
    edges = st.sampled_from(sorted({lo, hi, 0.0, lo / 2, hi / 2, max(lo, -1.0), min(hi, 1.0)}))
    return st.one_of(edges, st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                                      allow_subnormal=False))


@st.composite
def extreme_arrays(draw, shape, lo, hi, dtype):
    """An array of ``shape`` whose entries are drawn from a few extreme values (so that large
    batches cost one draw, not one per entry), cast to ``dtype``."""
    values = np.array(draw(st.lists(extreme_values(lo, hi), min_size=1, max_size=6)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    return rng.choice(values, size=shape).astype(dtype)


@st.composite
def data_x(draw, shape, dtype, kind=None):
    """x exactly 0, exactly 1, binary, or grey levels in [0, 1]."""
    kind = kind or draw(st.sampled_from(["zeros", "ones", "binary", "grey"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = {"zeros": np.zeros(shape), "ones": np.ones(shape),
         "binary": (rng.random(shape) < 0.5).astype(float), "grey": rng.random(shape)}[kind]
    return x.astype(dtype)


batches = st.sampled_from([1, 3, 2048])
widths = st.integers(1, 6)


# --------------------------------------------------------------------------- ops: Bernoulli
@MANY
@given(dtype=DTYPES, B=batches, D=widths, K=st.sampled_from([None, 1, 3]), data=st.data())
def test_bernoulli_nll_logits_up_to_1e4(dtype, B, D, K, data):
    count("bernoulli_nll")
    shape = (B, D) if K is None else (K, B, D)
    logits = data.draw(extreme_arrays(shape, -1e4, 1e4, dtype))
    x = data.draw(data_x((B, D), dtype))
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    dlogits = ops.bernoulli_nll_backward(np.ones(shape[:-1], dtype), cache)
    assert_finite("bernoulli_nll", nll=nll, dlogits=dlogits)
    assert nll.dtype == dtype and dlogits.dtype == dtype
    assert np.all(nll >= 0)                              # -ln p of a probability <= 1
    # independent reference: -[x ln sigmoid(l) + (1 - x) ln sigmoid(-l)] with scipy's log_expit
    l64, x64 = logits.astype(np.float64), x.astype(np.float64)
    ref = -np.sum(x64 * sp.log_expit(l64) + (1 - x64) * sp.log_expit(-l64), axis=-1)
    bound = 8 * (D + 1) * eps_of(dtype) * np.sum(np.abs(l64) + 1, axis=-1)
    assert np.all(np.abs(nll - ref) <= bound), np.max(np.abs(nll - ref) - bound)
    # d/dl = sigmoid(l) - x in [-1, 1], to a few eps absolutely
    dref = sp.expit(l64) - x64
    assert np.all(np.abs(dlogits - dref) <= 8 * eps_of(dtype))
    assert np.all(np.abs(dlogits) <= 1)


def test_bernoulli_nll_exact_limits_in_float32():
    """x exactly 0 and 1 at logits +-1e4, float32: 0 where the model is certain and right,
    1e4 where it is certain and wrong, no log(0)."""
    logits = np.array([[1e4, -1e4, 1e4, -1e4]], np.float32)
    x = np.array([[1, 0, 0, 1]], np.float32)
    per_pixel = [ops.bernoulli_nll_forward(logits[:, i:i + 1], x[:, i:i + 1])[0][0]
                 for i in range(4)]
    assert per_pixel == [0.0, 0.0, 1e4, 1e4]
    d = ops.bernoulli_nll_backward(np.ones(1, np.float32), ops.bernoulli_nll_forward(logits, x)[1])
    np.testing.assert_array_equal(d, [[0.0, 0.0, 1.0, -1.0]])


# --------------------------------------------------------------------------- ops: sigma and KL
@MANY
@given(dtype=DTYPES, B=batches, Z=st.integers(1, 4), param=st.sampled_from(["logvar", "softplus"]),
       sigma_min=st.sampled_from([1e-4, 0.05, 1.0]), K=st.sampled_from([1, 64]), data=st.data())
def test_sigma_heads_in_minus_50_50_and_the_kl(dtype, B, Z, param, sigma_min, K, data):
    count("sigma_and_kl")
    s = data.draw(extreme_arrays((B, Z), -50, 50, dtype))
    mu = data.draw(extreme_arrays((B, Z), -1e4, 1e4, dtype))
    eps = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1))).standard_normal(
        (K, B, Z), dtype=dtype)
    forward, backward = ops.SIGMA_PARAMETERIZATIONS[param]
    sigma, s_cache = forward(s) if param == "logvar" else forward(s, sigma_min)
    s64 = s.astype(np.float64)
    if param == "logvar":        # ln sigma^2 = s, i.e. sigma = e^(s/2)
        assert np.all(np.abs(2 * np.log(sigma.astype(np.float64)) - s64)
                      <= 4 * eps_of(dtype) * (1 + np.abs(s64)))
    else:                        # sigma - sigma_min = ln(1 + e^s) (numpy's logaddexp, float64)
        assert np.all(sigma >= dtype(sigma_min))
        ref = np.logaddexp(0, s64) + sigma_min
        assert np.all(np.abs(sigma - ref) <= 4 * eps_of(dtype) * ref)
    z, z_cache = ops.reparameterize_forward(mu, sigma, eps)
    kl, kl_cache = ops.kl_forward(mu, sigma)
    dz = np.ones_like(z) / K
    dmu, dsigma = ops.reparameterize_backward(dz, z_cache)
    dmu_kl, dsigma_kl = ops.kl_backward(np.ones(B, dtype), kl_cache)
    ds = backward(dsigma + dsigma_kl, s_cache)
    assert_finite("sigma_and_kl", sigma=sigma, z=z, kl=kl, dmu=dmu + dmu_kl, ds=ds)
    assert sigma.dtype == kl.dtype == ds.dtype == dtype
    assert np.all(sigma > 0)
    # the closed form, with ln sigma^2 = s exactly for logvar (no log taken of the computed sigma)
    s2 = sigma.astype(np.float64) ** 2
    ln_s2 = s64 if param == "logvar" else np.log(s2)
    terms = mu.astype(np.float64) ** 2 + s2 - 1 - ln_s2
    ref = 0.5 * np.sum(terms, axis=-1)
    magnitude = np.sum(mu.astype(np.float64) ** 2 + s2 + 1 + np.abs(ln_s2), axis=-1)
    assert np.all(np.abs(kl - ref) <= 8 * (Z + 1) * eps_of(dtype) * magnitude)
    assert np.all(kl >= -8 * (Z + 1) * eps_of(dtype) * magnitude)       # KL >= 0


# --------------------------------------------------------------------------- ops: Gaussian
def log_sigma_reference(r, sigma_min):
    """ln(sigma_min + e^r) without overflow, branch by branch (float64):
    r >= ln sigma_min: r + ln(1 + sigma_min e^-r);  else ln sigma_min + ln(1 + e^r / sigma_min)."""
    ln_min = np.log(sigma_min)
    with np.errstate(over="ignore"):
        return np.where(r >= ln_min, r + np.log1p(sigma_min * np.exp(-np.maximum(r, ln_min))),
                        ln_min + np.log1p(np.exp(np.minimum(r, ln_min) - ln_min)))


@MANY
@given(dtype=DTYPES, B=batches, D=widths, K=st.sampled_from([None, 2]),
       sigma_min=st.sampled_from([1e-3, 0.01, 0.1, 1.0]), x_kind=st.sampled_from(["01", "wide"]),
       data=st.data())
def test_gaussian_learned_nll_r_up_to_1e4(dtype, B, D, K, sigma_min, x_kind, data):
    count("gaussian_learned_nll")
    shape = (B, D) if K is None else (K, B, D)
    r = data.draw(extreme_arrays(shape, -1e4, 1e4, dtype))
    mean = data.draw(extreme_arrays(shape, -1e4, 1e4, dtype))
    x = (data.draw(data_x((B, D), dtype, "binary")) if x_kind == "01"
         else data.draw(extreme_arrays((B, D), -1e4, 1e4, dtype)))
    nll, cache = ops.gaussian_learned_nll_forward(mean, r, x, sigma_min)
    dmean, dr = ops.gaussian_learned_nll_backward(np.ones(shape[:-1], dtype), cache)
    assert_finite("gaussian_learned_nll", nll=nll, dmean=dmean, dr=dr)
    assert nll.dtype == dmean.dtype == dr.dtype == dtype
    ln_sigma = log_sigma_reference(r.astype(np.float64), sigma_min)
    resid = x.astype(np.float64) - mean.astype(np.float64)
    per_pixel = 0.5 * resid ** 2 * np.exp(-2 * ln_sigma) + ln_sigma + 0.5 * LN_2PI
    ref = per_pixel.sum(-1)
    magnitude = np.sum(np.abs(per_pixel) + np.abs(ln_sigma) + 1, axis=-1)
    assert np.all(np.abs(nll - ref) <= 8 * (D + 1) * eps_of(dtype) * magnitude)
    assert np.all(nll >= D * (np.log(sigma_min) + 0.5 * LN_2PI) - 8 * (D + 1) * eps_of(dtype)
                  * magnitude)      # ln sigma >= ln sigma_min: the bound sigma_min promises


@MANY
@given(dtype=DTYPES, B=batches, D=widths, sigma=st.sampled_from([0.01, 1.0, 10.0]), data=st.data())
def test_gaussian_nll_means_up_to_1e4(dtype, B, D, sigma, data):
    count("gaussian_nll")
    mean = data.draw(extreme_arrays((3, B, D), -1e4, 1e4, dtype))
    x = data.draw(data_x((B, D), dtype))
    nll, cache = ops.gaussian_nll_forward(mean, x, sigma)
    dmean = ops.gaussian_nll_backward(np.ones((3, B), dtype), cache)
    assert_finite("gaussian_nll", nll=nll, dmean=dmean)
    assert nll.dtype == dmean.dtype == dtype
    resid = x.astype(np.float64) - mean.astype(np.float64)
    ref = np.sum(0.5 * resid ** 2 / sigma ** 2 + np.log(sigma) + 0.5 * LN_2PI, axis=-1)
    magnitude = np.sum(0.5 * resid ** 2 / sigma ** 2 + abs(np.log(sigma)) + 1, axis=-1)
    assert np.all(np.abs(nll - ref) <= 8 * (D + 1) * eps_of(dtype) * magnitude)


# --------------------------------------------------------------------------- ops: activations
@MANY
@given(dtype=DTYPES, B=batches, D=widths, data=st.data())
def test_activations_at_plus_minus_1e4(dtype, B, D, data):
    count("activations")
    x = data.draw(extreme_arrays((B, D), -1e4, 1e4, dtype))
    dy = data.draw(extreme_arrays((B, D), -1, 1, dtype))
    for name, (forward, backward) in ops.ACTIVATIONS.items():
        y, cache = forward(x)
        dx = backward(dy, cache)
        assert_finite(f"activations.{name}", y=y, dx=dx)
        assert y.dtype == dx.dtype == dtype, name
    x64 = x.astype(np.float64)
    e = eps_of(dtype)
    s, sp_, t = ops.sigmoid(x), ops.softplus(x), ops.tanh_forward(x)[0]
    assert np.all(np.abs(s - sp.expit(x64)) <= 4 * e) and np.all((s >= 0) & (s <= 1))
    tiny = float(np.finfo(dtype).tiny)      # below it (softplus(-90) in float32) no relative digits
    assert np.all(np.abs(sp_ - np.logaddexp(0, x64)) <= 4 * e * np.logaddexp(0, x64) + tiny)
    assert np.all(sp_ >= 0) and np.all(sp_ >= x)
    assert np.all(np.abs(t - np.tanh(x64)) <= 4 * e) and np.all(np.abs(t) <= 1)
    # derivatives: sigmoid' = s (1 - s) in [0, 1/4], tanh' = 1 - t^2 in [0, 1], softplus' in [0, 1]
    one = np.ones_like(x)
    for name, bound in (("sigmoid", 0.25), ("tanh", 1.0), ("softplus", 1.0)):
        forward, backward = ops.ACTIVATIONS[name]
        d = backward(one, forward(x)[1])
        assert np.all((d >= 0) & (d <= bound)), name


def test_scalar_helpers_at_plus_minus_1e4_both_dtypes():
    for dtype in (np.float32, np.float64):
        x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype)
        # sigmoid(-100) = 3.7e-44 is subnormal in float32; 1 / (1 + e^100) gives 0 there, off by
        # less than the smallest normal number
        np.testing.assert_allclose(ops.sigmoid(x), [0, sp.expit(-100.0), 0.5, 1, 1],
                                   rtol=4 * eps_of(dtype), atol=np.finfo(dtype).tiny)
        np.testing.assert_array_equal(ops.softplus(x)[[0, 2, 4]], np.array([0, np.log(2), 1e4],
                                                                          dtype))
        np.testing.assert_array_equal(np.tanh(x)[[0, 4]], [-1, 1])
        assert ops.sigmoid(x).dtype == ops.softplus(x).dtype == dtype


# --------------------------------------------------------------------------- the model
@st.composite
def extreme_models(draw):
    """(VAE kwargs, sigma-head s, decoder biases, batch, k, x kind)."""
    likelihood = draw(st.sampled_from(LIKELIHOODS))
    kw = dict(x_dim=draw(st.integers(1, 4)),
              hidden=tuple(draw(st.lists(st.integers(1, 4), max_size=2))),
              z_dim=draw(st.integers(1, 3)),
              activation=draw(st.sampled_from(sorted(ops.ACTIVATIONS))),
              likelihood=likelihood,
              sigma_param=draw(st.sampled_from(sorted(ops.SIGMA_PARAMETERIZATIONS))),
              dtype=draw(DTYPES), seed=draw(st.integers(0, 1000)),
              decoder_mean=draw(st.sampled_from(DECODER_MEANS)))
    if kw["sigma_param"] == "softplus":
        kw["sigma_min"] = draw(st.sampled_from([1e-4, 0.05]))
    if likelihood == "gaussian":
        kw["decoder_sigma"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    if likelihood == "gaussian-learned":
        # > 0 always: sigma = e^r alone underflows to 0 (the model overflowing, see the docstring)
        kw["decoder_sigma_min"] = draw(st.sampled_from([1e-3, 0.01, 0.3]))
    extremes = dict(
        s=draw(extreme_values(-50, 50)),
        out_bias=draw(st.one_of(st.none(), extreme_values(-1e4, 1e4))),
        logsigma_bias=(draw(st.one_of(st.none(), extreme_values(-1e4, 1e4)))
                       if likelihood == "gaussian-learned" else None))
    run = dict(batch=draw(st.sampled_from([1, 2, 5, 2048])), k=draw(st.sampled_from([1, 3, 64])),
               x_kind=draw(st.sampled_from(["zeros", "ones", "binary", "grey"])),
               data_seed=draw(st.integers(0, 2 ** 32 - 1)))
    if run["batch"] == 2048 and run["k"] == 64:
        run["k"] = draw(st.sampled_from([1, 64]))     # keep K * B <= 131072 rows, sometimes fewer
    return kw, extremes, run


def set_extremes(model, s, out_bias, logsigma_bias):
    """Encoder sigma head = s exactly (weights 0, bias s); decoder output biases moved."""
    model.params["encoder.sigma.W"][...] = 0
    model.params["encoder.sigma.b"][...] = s
    if out_bias is not None:
        model.params["decoder.out.b"][...] = out_bias
    if logsigma_bias is not None:
        model.params["decoder.logsigma.b"][...] = logsigma_bias


@MANY
@given(extreme_models())
def test_model_loss_and_every_gradient_finite(case):
    count("model")
    kw, extremes, run = case
    model = VAE(**kw)
    set_extremes(model, **extremes)
    rng = np.random.default_rng(run["data_seed"])
    x = data_x_array(run["x_kind"], (run["batch"], model.x_dim), rng, model.dtype)
    loss, grads = model.loss_and_grads(x, k=run["k"], rng=rng)
    assert_finite("model", loss=loss, **{f"d{name}": g for name, g in grads.items()})
    assert all(g.dtype == model.dtype for g in grads.values())
    recon, kl = model.elbo_terms(x, k=run["k"], rng=rng)
    log_w = model.log_weights(x, k=run["k"], rng=rng)
    mu, sigma = model.encode(x)
    assert_finite("model", recon=recon, kl=kl, log_w=log_w, mu=mu, sigma=sigma,
                  reconstruction=model.reconstruct(x), samples=model.sample(3, rng=rng))
    assert recon.dtype == kl.dtype == log_w.dtype == model.dtype
    assert np.all(sigma > 0)
    if model.sigma_param == "logvar":   # the head is exactly s (as stored): sigma = e^(s/2)
        s = model.params["encoder.sigma.b"].astype(np.float64)
        np.testing.assert_allclose(sigma, np.broadcast_to(np.exp(s / 2), sigma.shape),
                                   rtol=4 * eps_of(model.dtype))


def data_x_array(kind, shape, rng, dtype):
    return {"zeros": np.zeros(shape), "ones": np.ones(shape),
            "binary": (rng.random(shape) < 0.5).astype(float),
            "grey": rng.random(shape)}[kind].astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_of_one_and_of_2048_with_k_64(dtype):
    """The two ends of the batch-size range at once, with k = 64 (131072 decoder rows)."""
    count("model_batch_ends")
    for batch, k in ((1, 1), (1, 64), (2048, 64)):
        model = VAE(4, (4,), 3, "relu", "bernoulli", dtype=dtype, seed=batch)
        set_extremes(model, 50.0, -1e4, None)
        x = np.ones((batch, 4), dtype)
        loss, grads = model.loss_and_grads(x, k=k, rng=np.random.default_rng(k))
        assert_finite("model_batch_ends", loss=loss, grad=model.grad_flat)


# --------------------------------------------------------------------------- where the model overflows
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("schedule", ["joint", "alternating"])
@pytest.mark.parametrize("optimizer", [SGD, Adam])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-learned"])
def test_absurd_learning_rate_stops_fit_with_a_clear_error(dtype, schedule, optimizer, likelihood):
    """lr = 1e30 sends the weights towards inf; fit stops at the first non-finite loss or gradient
    with TrainingDivergedError naming the epoch, the step and the loss, suggesting a lower
    learning rate, and the parameters are those from before the failing step."""
    model = VAE(6, (5,), 2, "relu", likelihood, dtype=dtype, seed=0)
    X = np.random.default_rng(0).random((64, 6))
    after_each_step = [model.flat.copy()]

    def record(event):
        if event["kind"] == "step":
            after_each_step.append(model.flat.copy())
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, X, optimizer(1e30), epochs=50, batch_size=16, rng=np.random.default_rng(1),
            schedule=schedule, callback=record)
    message = str(info.value)
    failing = len(after_each_step)                      # 1-based index of the failing step
    epoch, step = (failing - 1) // 4 + 1, (failing - 1) % 4 + 1
    assert f"epoch {epoch}, step {step}/4" in message, message
    assert re.search(r"loss = (nan|-?inf|[-+0-9.e]+)", message), message
    assert "lower learning rate" in message, message
    np.testing.assert_array_equal(model.flat, after_each_step[-1])
    assert isinstance(info.value, FloatingPointError)


# --------------------------------------------------------------------------- gradient checker honesty
def test_relu_kink_within_h_in_a_model_is_skipped_not_failed_or_passed():
    """A hidden ReLU pre-activation at 3e-7 (within h = 1e-6 of the kink): the coordinates whose
    nudge crosses the kink are counted as kinks, and a tensor with only such coordinates is
    'inconclusive', not 'pass'; nothing fails."""
    model = VAE(2, (1,), 1, "relu", "gaussian", seed=0)
    x = np.array([[0.5, 0.25]])
    model.params["encoder.0.W"][...] = [[1.0], [1.0]]
    model.params["encoder.0.b"][...] = -0.75 + 3e-7         # a = x W + b = 3e-7
    report = check_model(model, x, method="coordinates", eps=np.array([[0.3]]))
    rows = {r.name: r for r in report.rows}
    assert rows["encoder.0.b"].skipped_kink == 1 and rows["encoder.0.b"].status == "inconclusive"
    assert sum(r.skipped_kink for r in report.rows) >= 2
    assert not any(r.failed for r in report.rows), str(report)
    # the same point in float32: the quotient's noise hides both the kink and the slope; it says so
    model32 = VAE(2, (1,), 1, "relu", "gaussian", seed=0, dtype=np.float32)
    model32.flat[...] = model.flat
    report32 = check_model(model32, x, method="coordinates", eps=np.array([[0.3]]))
    assert report32.verdict == "INCONCLUSIVE" and not report32.passed, str(report32)


def test_float32_model_check_says_inconclusive_not_passed():
    """At float32 with h = 1e-6 the quotient's rounding noise is ~|f| / |x|, so agreement to 1e-6
    cannot be shown: every coordinate is inconclusive and the report says INCONCLUSIVE (before
    this was made honest, it said PASSED with 'max error 1e-8')."""
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(3, 4))
    for method in ("coordinates", "directional"):
        report = check_model(model, x, method=method)
        assert report.verdict == "INCONCLUSIVE" and not report.passed, str(report)
        assert str(report).splitlines()[-1] == "INCONCLUSIVE"
        assert report.to_dict()["verdict"] == "INCONCLUSIVE"
        assert all(r.inconclusive == r.checked for r in report.rows)


def _twice_kl(dkl, cache):
    mu, sigma = cache
    return 2 * dkl[:, None] * mu, 2 * dkl[:, None] * (sigma - 1 / sigma)


def test_float32_check_of_a_wrong_gradient_is_not_passed(monkeypatch):
    """The doubled KL gradient in a float32 model: the discrepancy is below the float32 noise, so
    the honest answer is 'cannot tell' -- never PASSED. (float64 fails it: test_gradcheck.)"""
    monkeypatch.setattr(ops, "kl_backward", _twice_kl)
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(3, 4))
    report = check_model(model, x, method="coordinates")
    assert not report.passed and report.verdict in ("INCONCLUSIVE", "FAILED"), str(report)


def test_float32_gross_error_beyond_the_noise_fails():
    p = {"w": np.array([0.7, -0.3, 1.5], np.float32)}
    f = lambda q: float(np.sum(q["w"] * q["w"]))           # noqa: E731
    wrong = {"w": 2 * p["w"].astype(np.float64) + 1000.0}
    report = check_gradients(f, p, wrong)
    assert report.verdict == "FAILED" and report.rows[0].failed == 3, str(report)


def test_float32_with_a_step_that_resolves_the_tolerance_passes_or_fails_honestly():
    """h_rel = 1e-2 brings the float32 noise to 8 eps / h_rel = 1e-4 of the gradient scale, so a
    tolerance of 1e-2 is resolvable (truncation h^2 f''' / 6 ~ 2e-5): the right gradient passes,
    a factor-2 error fails."""
    rng = np.random.default_rng(0)
    c = rng.normal(size=5).astype(np.float32)
    p = {"w": rng.normal(size=5).astype(np.float32)}
    f = lambda q: float(np.sum(np.tanh(q["w"]) * c))      # noqa: E731
    w64 = p["w"].astype(np.float64)
    right = {"w": c * (1 - np.tanh(w64) ** 2)}
    report = check_gradients(f, p, right, h_rel=1e-2, tol=1e-2)
    assert report.verdict == "PASSED", str(report)
    report = check_gradients(f, p, {"w": 2 * right["w"]}, h_rel=1e-2, tol=1e-2)
    assert report.verdict == "FAILED" and report.rows[0].failed == 5, str(report)


def test_float32_rounding_of_the_step_is_no_false_failure():
    """In float32, 0.7 +- 1e-6 rounds to a step more than 1 % off 2e-6; a quotient divided by the
    nominal 2h would then 'fail' a large exact gradient. The checker divides by the step actually
    represented, so the exact linear case passes."""
    x0 = np.float32(0.7)
    span = float(x0 + np.float32(1e-6)) - float(x0 - np.float32(1e-6))
    assert abs(span / 2e-6 - 1) > 1e-2                    # the premise: the step is off
    p = {"w": np.array([0.7, 0.7], np.float32)}
    c = 1e3
    f = lambda q: float(c * (np.float64(q["w"][0]) - np.float64(q["w"][1])))   # noqa: E731
    report = check_gradients(f, p, {"w": np.array([c, -c])})
    assert report.verdict == "PASSED" and report.rows[0].failed == 0, str(report)


@given(architectures(), st.sampled_from(["coordinates", "directional"]))
def test_float32_model_checks_never_fail_a_correct_gradient(arch, method):
    """Over the architectures of the core tests, in float32: no false failure (every coordinate
    is inconclusive, a kink or a pass, never FAIL)."""
    count("gradcheck_float32")
    kwargs, run = arch
    model = VAE(**{**kwargs, "dtype": np.float32})
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    report = check_model(model, x, k=run["k"], eps=eps, method=method)
    assert not any(r.failed for r in report.rows), str(report)
    assert report.verdict in ("PASSED", "INCONCLUSIVE")


# --------------------------------------------------------------------------- summary
EXTREME_TESTS = ("bernoulli_nll", "sigma_and_kl", "gaussian_learned_nll", "gaussian_nll",
                 "activations", "model")


def test_summary_of_extreme_examples(capsys):
    """Print how many hypothesis examples ran on extreme inputs and how many non-finite results
    they found (run after the tests above, i.e. with the whole file)."""
    if not all(EXAMPLES[name] for name in EXTREME_TESTS):
        pytest.skip("run the whole of tests/ops/test_extremes.py for the summary")
    total = sum(EXAMPLES[name] for name in EXTREME_TESTS)
    line = (f"test_extremes: {total} hypothesis examples on extreme inputs "
            f"({', '.join(f'{n} {EXAMPLES[n]}' for n in EXTREME_TESTS)}), "
            f"{CHECKED['arrays']} arrays / {CHECKED['values']} values checked, "
            f"{len(NON_FINITE)} non-finite; {EXAMPLES['gradcheck_float32']} float32 gradient "
            f"checks, none falsely failed")
    with capsys.disabled():
        print("\n" + line)
    assert not NON_FINITE
