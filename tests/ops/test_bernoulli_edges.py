"""Edges of the cache-blocked Bernoulli ops (vae_np.ops.likelihoods.bernoulli_nll_forward/backward)
that the block tests in tests/ops/test_ops.py do not reach, against the formulas written out here:

    nll = sum_d softplus(l_d) - x_d l_d,     dlogits = dnll (sigmoid(l) - x)

- Integer logits take the formula (the blocked passes write into an array of the logits' dtype):
  with integer logits the forward raised a ufunc casting error unless it checked the dtype kind,
  and the backward still did with integer dnll; no test held either.
- The backward's result has NumPy's promoted dtype of (logits, x, dnll): float32 logits with a
  float64 dnll give float64 (dropping that fallback wrote float64 work into float32 and passed
  every test).
- Complex x with real logits takes the formula (the blocked multiply raised a casting error).
- logits that are not an (..., B, D) array are a ValueError naming logits (a (D,) vector gave an
  IndexError from inside the blocking).
- A transposed (non-contiguous) view and 4-D logits, with blocks of a few numbers.
"""
import numpy as np
import pytest

from vae_np import ops
from vae_np.ops import likelihoods


def nll_formula(logits, x):
    """sum_d ln(1 + e^l) - x l in float64 through logaddexp (independent of vae_np)."""
    l = np.asarray(logits, dtype=np.float64)
    return np.sum(np.logaddexp(0.0, l) - x * l, axis=-1)


def dlogits_formula(dnll, logits, x):
    with np.errstate(over="ignore"):
        return dnll[..., None] * (1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64))) - x)


@pytest.mark.parametrize("dnll_dtype", [np.int64, np.float64])
def test_integer_logits_take_the_formula(dnll_dtype):
    logits = np.array([[[-3, 0, 2], [40, -40, 1]]] * 2)             # (2, 2, 3) int64
    x = np.array([[0, 1, 1], [1, 0, 0]])                              # int64
    dnll = np.array([[1, -2], [3, 1]], dtype=dnll_dtype)
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    np.testing.assert_allclose(nll, nll_formula(logits, x), rtol=1e-15)
    d = ops.bernoulli_nll_backward(dnll, cache)
    assert d.dtype == np.float64
    np.testing.assert_allclose(d, dlogits_formula(dnll, logits, x), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("block", [3, 1 << 16])
@pytest.mark.parametrize("logits_dtype, x_dtype, dnll_dtype", [
    (np.float32, np.float32, np.float32), (np.float32, np.float64, np.float32),
    (np.float32, np.float32, np.float64), (np.float32, np.uint8, np.float32),
    (np.float32, np.bool_, np.float32), (np.float64, np.float32, np.float32)])
def test_backward_dtype_is_the_promoted_one_and_its_values_the_formula(
        monkeypatch, block, logits_dtype, x_dtype, dnll_dtype):
    monkeypatch.setattr(likelihoods, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(11)
    logits = (rng.standard_normal((3, 2, 4)) * 8).astype(logits_dtype)
    x = (rng.random((2, 4)) < 0.5).astype(x_dtype)
    dnll = rng.standard_normal((3, 2)).astype(dnll_dtype)
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    assert nll.dtype == logits_dtype                                  # as before the blocking
    d = ops.bernoulli_nll_backward(dnll, cache)
    promoted = np.result_type(logits, x, dnll)
    assert d.dtype == promoted
    # sigmoid(l) in the logits' dtype (a few of its ulps of sigmoid <= 1, kept by l - x when
    # they cancel), the difference and the product in the promoted dtype (a few of its ulps)
    eps_l, eps = np.finfo(logits_dtype).eps, np.finfo(promoted).eps
    expected = dlogits_formula(dnll.astype(np.float64), logits, x.astype(np.float64))
    np.testing.assert_allclose(d, expected, rtol=8 * eps,
                               atol=4 * eps_l * np.max(np.abs(dnll.astype(np.float64))))


def test_complex_x_with_real_logits_takes_the_formula():
    logits = np.array([[0.5, -2.0], [3.0, 0.0]])
    x = np.array([[1.0, 0.0], [0.5, 1.0]]) + 1e-20j
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    assert np.iscomplexobj(nll)
    np.testing.assert_allclose(nll.real, nll_formula(logits, x.real), rtol=1e-15)
    np.testing.assert_allclose(nll.imag, -1e-20 * logits.sum(-1), rtol=1e-15)   # d nll / dx = -l
    d = ops.bernoulli_nll_backward(np.ones(2), cache)
    np.testing.assert_allclose(d.real, dlogits_formula(np.ones(2), logits, x.real), rtol=1e-15)


@pytest.mark.parametrize("logits", [np.zeros(4), np.zeros(()), [[0.0, 1.0]]],
                         ids=["(D,)", "scalar", "list"])
@pytest.mark.parametrize("op", ["bernoulli_nll_forward", "continuous_bernoulli_nll_forward"])
def test_logits_that_are_not_a_b_by_d_array_are_refused(logits, op):
    with pytest.raises(ValueError, match=rf"^{op}: logits must be an array of shape "
                                         r"\(\.\.\., B, D\)"):
        getattr(ops, op)(logits, np.zeros(np.shape(logits)[-2:]))


@pytest.mark.parametrize("block", [1, 5, 1 << 16])
def test_transposed_and_four_d_logits_in_small_blocks(monkeypatch, block):
    monkeypatch.setattr(likelihoods, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(12)
    x = rng.random((3, 2))
    for logits in (rng.standard_normal((2, 3, 4)).transpose(2, 1, 0) * 20,     # (4, 3, 2) view
                   rng.standard_normal((2, 3, 3, 2)) * 20):
        dnll = rng.standard_normal(logits.shape[:-1])
        nll, cache = ops.bernoulli_nll_forward(logits, x)
        np.testing.assert_allclose(nll, nll_formula(logits, x), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(ops.bernoulli_nll_backward(dnll, cache),
                                   dlogits_formula(dnll, logits, x), rtol=1e-14, atol=1e-15)
