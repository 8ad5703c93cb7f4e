"""The continuous Bernoulli likelihood: its ops, against independent references, and in the model.

References are never the code under test: ln C(l) is checked against ln(l / tanh(l/2)) written
directly (accurate in float64 for every l != 0: tanh is relatively accurate near 0) and against
quadrature of the Bernoulli kernel; the backward against central differences (tolerances of
``vae_np.testing.numerical``) and the complex step; the model's gradient against central
differences of its loss with frozen eps.
"""
import decimal
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from strategies import arrays, assert_complex_close, assert_fd_close, matrix_shapes
from vae_np import VAE, ops
from vae_np.testing import central_difference, complex_step
from vae_np.ops import likelihoods as lk

EPS = np.finfo(float).eps
NEAR_ZERO = st.one_of(st.floats(-1e-3, 1e-3), st.floats(-1.2, 1.2), st.floats(-40, 40))


def direct_log_c(logits):
    """ln(l / tanh(l/2)), |l| > 1e-300, as written."""
    return np.log(logits / np.tanh(logits / 2))


def nll_terms(logits, x):
    """Sum of |terms| of the NLL (the F of the central difference's rounding noise). ln C is
    ln 2 where |l| < 1e-300: l/2 underflows there, and the direct formula's 0/0 made F infinite
    (so any gradient passed) whenever hypothesis drew a subnormal logit."""
    tiny = np.abs(logits) < 1e-300
    log_c = np.where(tiny, math.log(2), direct_log_c(np.where(tiny, 1.0, logits)))
    terms = float(np.sum(np.abs(ops.softplus(logits)) + np.abs(x * logits) + log_c))
    assert math.isfinite(terms)
    return terms


@given(data=st.data())
def test_backward_matches_central_differences_across_the_logits(data):
    shape = data.draw(matrix_shapes())
    logits = data.draw(arrays(shape, elements=NEAR_ZERO))
    x = data.draw(arrays(shape, 0.0, 1.0))
    nll, cache = ops.continuous_bernoulli_nll_forward(logits, x)
    weights = data.draw(arrays((shape[0],), 0.5, 2.0))
    analytic = ops.continuous_bernoulli_nll_backward(weights, cache)
    numeric, _ = central_difference(
        lambda v: float(weights @ ops.continuous_bernoulli_nll_forward(v, x)[0]), logits, 1e-6)
    assert_fd_close(analytic, numeric, nll_terms(logits, x), "dnll/dlogits")


def test_central_difference_check_fails_a_wrong_backward_at_a_subnormal_logit():
    logits, x = np.array([[5e-324, 0.3, -2.0]]), np.array([[0.2, 0.5, 0.9]])
    _, cache = ops.continuous_bernoulli_nll_forward(logits, x)
    wrong = 2 * ops.continuous_bernoulli_nll_backward(np.ones(1), cache)
    numeric, _ = central_difference(
        lambda v: float(np.sum(ops.continuous_bernoulli_nll_forward(v, x)[0])), logits, 1e-6)
    with pytest.raises(AssertionError):
        assert_fd_close(wrong, numeric, nll_terms(logits, x), "dnll/dlogits")


@given(data=st.data())
def test_backward_matches_the_complex_step(data):
    shape = data.draw(matrix_shapes())
    logits = data.draw(arrays(shape, elements=NEAR_ZERO))
    x = data.draw(arrays(shape, 0.0, 1.0))
    _, cache = ops.continuous_bernoulli_nll_forward(logits, x)
    analytic = ops.continuous_bernoulli_nll_backward(np.ones(shape[0]), cache)
    numeric = complex_step(lambda v: np.sum(ops.continuous_bernoulli_nll_forward(v, x)[0]), logits)
    assert_complex_close(analytic, numeric, "dnll/dlogits (complex step)")


@given(arrays((7,), elements=NEAR_ZERO.filter(lambda v: abs(v) > 1e-300)))
def test_log_normaliser_matches_the_direct_formula(logits):
    # (below 1e-300, l/2 loses bits as a subnormal and the direct formula, not the op, goes wrong)
    value = ops.continuous_bernoulli_log_normaliser(logits)
    # both sides are accurate to a few ulps of ln C (>= ln 2)
    np.testing.assert_allclose(value, direct_log_c(logits), rtol=8 * EPS, atol=0)
    np.testing.assert_array_equal(value, ops.continuous_bernoulli_log_normaliser(-logits))


def test_log_normaliser_is_ln_2_at_zero_and_smooth_through_it():
    assert ops.continuous_bernoulli_log_normaliser(np.array([0.0]))[0] == math.log(2)
    assert ops.continuous_bernoulli_log_normaliser_grad(np.array([0.0]))[0] == 0.0
    tiny = np.array([1e-300, 1e-8, -1e-8])
    np.testing.assert_allclose(ops.continuous_bernoulli_log_normaliser(tiny),
                               math.log(2) + tiny ** 2 / 12, rtol=2 * EPS)
    np.testing.assert_allclose(ops.continuous_bernoulli_log_normaliser_grad(tiny), tiny / 6,
                               rtol=2 * EPS)


@pytest.mark.parametrize("lam", [1e-6, 0.1, 0.5 - 1e-9, 0.5, 0.7, 1 - 1e-6])
def test_normaliser_is_the_inverse_mass_of_the_bernoulli_kernel(lam):
    mass, err = integrate.quad(lambda x: lam ** x * (1 - lam) ** (1 - x), 0, 1, epsabs=0,
                               epsrel=1e-13)
    logit = math.log(lam) - math.log1p(-lam)
    value = ops.continuous_bernoulli_log_normaliser(np.array([logit]))[0]
    assert abs(value + math.log(mass)) <= err / mass + 8 * EPS * abs(value)


@pytest.mark.parametrize("logit", [-9.0, -0.4, 0.0, 1e-4, 2.5])
def test_density_integrates_to_one_and_has_the_stated_mean(logit):
    def p(x):
        return math.exp(-ops.continuous_bernoulli_nll_forward(np.array([[logit]]),
                                                              np.array([[x]]))[0][0])

    total, err = integrate.quad(p, 0, 1, epsabs=0, epsrel=1e-13)
    assert abs(total - 1) <= err + 8 * EPS
    mean, err_mean = integrate.quad(lambda x: x * p(x), 0, 1, epsabs=0, epsrel=1e-13)
    stated = ops.sigmoid(logit) - ops.continuous_bernoulli_log_normaliser_grad(np.array([logit]))[0]
    assert abs(mean - stated) <= err_mean + err + 8 * EPS


def exact_log_c_grad(l):
    """1/l - 1/sinh(l) in 50-digit decimal arithmetic, sinh by its Taylor series summed until the
    terms fall below 1e-60 of the sum (an independent route, not the op's series)."""
    d = decimal.Decimal(l)
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        term, total, k = d, decimal.Decimal(0), 1
        while term != 0 and abs(term) >= abs(total) * decimal.Decimal("1e-60"):
            total += term
            term = term * d * d / ((2 * k) * (2 * k + 1))
            k += 1
        return float(1 / d - 1 / total)


def test_log_normaliser_grad_is_correctly_rounded_to_a_few_ulps():
    """d ln C/dl = 1/l - 1/sinh l against a 50-digit reference, on both sides of |l| = 1.

    |l| < 1 (the series): Horner with 9 positive coefficients at y = l^2 >= 0 errs by at most
    gamma_18 = 9 eps relative (Higham, 5.1), and l T / (1 + l^2 T) adds three roundings: 11 eps.
    |l| >= 1: 1/s - 2 e^-s / (1 - e^-2s) subtracts two terms each correct to a few ulps: 4 eps
    (1/s + 1/sinh s) absolute. Measured: 1.9 and 4 ulps. A series cut to 7 terms errs by 62 ulps
    at |l| -> 1 and passed every other test."""
    logits = np.concatenate([np.linspace(0.01, 1.0, 200, endpoint=False),
                             np.linspace(1.0, 3.0, 41)])
    logits = np.concatenate([logits, -logits])
    exact = np.array([exact_log_c_grad(v) for v in logits])
    value = ops.continuous_bernoulli_log_normaliser_grad(logits)
    s = np.abs(logits)
    allowed = np.where(s < 1, 11 * EPS * np.abs(exact), 4 * EPS * (1 / s + 1 / np.sinh(s)))
    assert np.all(np.abs(value - exact) <= allowed), logits[np.abs(value - exact) > allowed]


def test_a_wrong_series_coefficient_is_caught(monkeypatch):
    original = lk._series_t
    monkeypatch.setattr(lk, "_series_t", lambda y, terms=9: original(y, terms) * (1 + 1e-6))
    logits = np.array([[0.3, -0.7, 0.05]])
    x = np.array([[0.2, 0.9, 0.5]])
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(ops.continuous_bernoulli_log_normaliser(logits[0]),
                                   direct_log_c(logits[0]), rtol=8 * EPS, atol=0)
    monkeypatch.setattr(lk, "continuous_bernoulli_log_normaliser_grad",
                        lambda l: 1.001 / np.where(l == 0, 1, l) - 1 / np.sinh(l))
    _, cache = ops.continuous_bernoulli_nll_forward(logits, x)
    analytic = ops.continuous_bernoulli_nll_backward(np.ones(1), cache)
    numeric, _ = central_difference(
        lambda v: float(np.sum(ops.continuous_bernoulli_nll_forward(v, x)[0])), logits, 1e-6)
    with pytest.raises(AssertionError):
        assert_fd_close(analytic, numeric, nll_terms(logits, x), "dnll/dlogits")


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="x"):
        ops.continuous_bernoulli_nll_forward(np.zeros((2, 3)), np.zeros((2, 4)))
    _, cache = ops.continuous_bernoulli_nll_forward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dnll"):
        ops.continuous_bernoulli_nll_backward(np.ones(3), cache)


def test_nll_is_the_bernoulli_nll_minus_the_log_normaliser():
    rng = np.random.default_rng(0)
    logits, x = rng.normal(0, 3, (2, 4, 5)), rng.random((4, 5))
    cb, _ = ops.continuous_bernoulli_nll_forward(logits, x)
    bern, _ = ops.bernoulli_nll_forward(logits, x)
    np.testing.assert_allclose(cb, bern - direct_log_c(logits).sum(-1), rtol=1e-14, atol=1e-13)
    assert np.all(bern - cb >= 5 * math.log(2) - 1e-12)       # sum_d ln C >= D ln 2


@pytest.mark.parametrize("hidden, activation", [((), "identity"), ((5,), "tanh"),
                                                ((4, 3), "softplus")])
def test_model_gradient_with_the_continuous_bernoulli(hidden, activation):
    model = VAE(6, hidden, 2, activation, "continuous-bernoulli", dtype=np.float64, seed=3)
    rng = np.random.default_rng(4)
    x, eps = rng.random((5, 6)), rng.standard_normal((2, 5, 2))
    model.loss_and_grads(x, k=2, eps=eps)
    analytic = model.grad_flat.copy()
    start = model.flat.copy()

    def loss(v):
        model.flat[...] = v
        return model.loss(x, k=2, eps=eps)

    numeric, bound = central_difference(loss, start)
    model.flat[...] = start
    assert np.all(np.abs(analytic - numeric) <= bound + 4 * EPS * np.abs(analytic))
    # decode gives the continuous Bernoulli's mean, which lies in (0, 1)
    mean = model.decode(rng.standard_normal((3, 2)))
    assert np.all((mean > 0) & (mean < 1))


def test_model_refuses_grey_levels_outside_the_unit_interval():
    model = VAE(3, (2,), 1, "tanh", "continuous-bernoulli", dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="x"):
        model.loss_and_grads(np.full((2, 3), 1.5), k=1, eps=np.zeros((1, 2, 1)))


def test_float32_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(5)
    logits, x = rng.normal(0, 2, (3, 6)), rng.random((3, 6))
    logits[0, :3] = [0.0, 1e-3, -0.999]
    nll64, cache64 = ops.continuous_bernoulli_nll_forward(logits, x)
    nll32, cache32 = ops.continuous_bernoulli_nll_forward(logits.astype(np.float32),
                                                          x.astype(np.float32))
    d32 = ops.continuous_bernoulli_nll_backward(np.ones(3, np.float32), cache32)
    assert nll32.dtype == np.float32 and d32.dtype == np.float32
    # float32 rounding of the inputs and of about D terms of size |softplus| + |x l| + ln C
    scale = np.sum(np.abs(ops.softplus(logits)) + np.abs(x * logits) + 2, axis=1)
    assert np.all(np.abs(nll32 - nll64) <= 16 * np.finfo(np.float32).eps * scale)
    d64 = ops.continuous_bernoulli_nll_backward(np.ones(3), cache64)
    assert np.all(np.abs(d32 - d64) <= 16 * np.finfo(np.float32).eps)


def test_train_command_accepts_the_continuous_bernoulli(tmp_path):
    from vae_np import cli
    out = tmp_path / "cb"
    assert cli.main(["train", "--likelihood", "continuous-bernoulli", "--epochs", "1", "--limit",
                     "128", "--hidden", "8", "--z-dim", "2", "-q", "--no-figures", "--out",
                     str(out)]) == 0
    assert '"continuous-bernoulli"' in (out / "config.json").read_text()
