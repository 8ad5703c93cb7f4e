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
