"""The complex-input branches of vae_np.ops.flows' private softplus and sigmoid. The complex step
runs the forward passes only, so sigmoid's complex branch (used by the backward passes) was never
reached: a wrong value on either side of Re x = 0 passed every flow test. Each branch must equal
the textbook formula (evaluated here in complex128 where it cannot overflow, |Re x| <= 30) and,
at x + i h, carry the derivative in its imaginary part."""
import numpy as np
import pytest

from vae_np.ops import flows

X = np.array([-30.0, -3.0, -0.5, 0.0, 0.5, 3.0, 30.0])


@pytest.mark.parametrize("imag", [0.0, 0.7, -2.0])
def test_complex_softplus_and_sigmoid_are_the_formulas(imag):
    x = X + 1j * imag
    np.testing.assert_allclose(flows._softplus(x), np.log(1 + np.exp(x)), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(flows._sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-13, atol=1e-16)


def test_the_complex_step_of_softplus_and_sigmoid_gives_their_derivatives():
    h = 1e-20
    s = 1 / (1 + np.exp(-X))
    e = np.exp(-np.abs(X))
    ds = e / (1 + e) ** 2                       # s (1 - s), without the cancellation in 1 - s
    np.testing.assert_allclose(np.imag(flows._softplus(X + 1j * h)) / h, s, rtol=1e-13)
    np.testing.assert_allclose(np.imag(flows._sigmoid(X + 1j * h)) / h, ds, rtol=1e-13)
    # and on real input they are the library's real forms
    np.testing.assert_allclose(flows._sigmoid(X), s, rtol=1e-15)


@pytest.mark.parametrize("re", [-800.0, 800.0])
def test_complex_softplus_and_sigmoid_do_not_overflow_far_out(re):
    """Beyond |Re x| = 709 e^|x| overflows: each branch must use e^-|Re x| (as the docstrings
    say). sigmoid(x) = e^x / (1 + e^x) -> e^x (about 1e-348, 0 in float64) for Re x = -800 and
    1 for +800; softplus(x) -> e^x (0) and x; the complex step's derivatives -> 0 and 1, 0."""
    x = np.array([re + 0.7j])
    far_right = re > 0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, sp = flows._sigmoid(x), flows._softplus(x)
        ds = np.imag(flows._sigmoid(np.array([re + 1e-20j])))[0] / 1e-20
        dsp = np.imag(flows._softplus(np.array([re + 1e-20j])))[0] / 1e-20
    np.testing.assert_allclose(s, [1.0 if far_right else 0.0], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(sp, x if far_right else [0.0], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose([ds, dsp], [0.0, 1.0 if far_right else 0.0], rtol=1e-15,
                               atol=1e-300)
