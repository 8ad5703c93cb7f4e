"""Numerical helpers shared by the gradient checker, the derivations, ``explain`` and the tests.

One home for the few formulas that every check needs, so that they cannot drift apart:

* ``LN_2PI``: ln(2 pi), the constant of every Gaussian log-density.
* ``relative_error(a, n)``: |a - n| / max(|a| + |n|, floor) for comparing an analytic value a with
  a numerical one n (0 when equal, 1 when opposite or one of them is 0).
* ``difference_quotient``: the central difference (f(x + h e_i) - f(x - h e_i)) / (x+ - x-) of one
  coordinate, dividing by the displacement actually represented in x's dtype (in float32,
  x + h is rounded, and dividing by the nominal 2h would add an error of up to eps |x| / h).
* ``central_difference``: the gradient of a scalar function by central differences with an error
  bound per coordinate (truncation estimated from the step 2h, rounding from the values of f).
"""
from __future__ import annotations

import math

import numpy as np

LN_2PI = math.log(2.0 * math.pi)
EPS64 = float(np.finfo(np.float64).eps)


def relative_error(a, n, floor=0.0):
    """|a - n| / max(|a| + |n|, floor, tiny): 0 for equal values, 1 for opposite or one-zero."""
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), max(floor, 1e-300))


def step_size(value, h_rel):
    """The nominal step for a coordinate of value ``value``: h = h_rel * max(1, |value|)."""
    return h_rel * max(1.0, abs(complex(value)))


def difference_quotient(f, x, index, h):
    """Central difference of f along coordinate ``index`` of the array x, moved in place.

    Returns (quotient, f(x+), f(x-), span) where span = x+ - x- is the displacement represented in
    x's dtype (2h up to rounding). x is restored exactly before returning, also on error.
    """
    original = x.flat[index]
    try:
        x.flat[index] = original + h
        plus = x.flat[index]
        f_plus = float(f(x))
        x.flat[index] = original - h
        minus = x.flat[index]
        f_minus = float(f(x))
    finally:
        x.flat[index] = original
    span = float(plus) - float(minus)
    return (f_plus - f_minus) / span, f_plus, f_minus, span


def central_difference(f, x, h_rel=1e-5):
    """Gradient of a scalar function f(x) by central differences, with an error bound each.

    n_i = (f(x + h e_i) - f(x - h e_i)) / (x+ - x-),  h = h_rel * max(1, |x_i|).

    The bound adds truncation, estimated from the same quotient at step 2h (the O(h^2) term of
    D(h) is (D(2h) - D(h)) / 3, bounded here by |D(2h) - D(h)|), and rounding, a few ulps of f
    over the step: 8 eps max|f| / 2h.

    Parameters
    ----------
    f : callable(array) -> float
    x : float array (copied; the caller's array is not modified)

    Returns
    -------
    grad, bound : float64 arrays of x's shape
    """
    x = np.array(x, dtype=np.result_type(x, np.float64))
    grad = np.empty(x.shape)
    bound = np.empty(x.shape)
    for i in range(x.size):
        h = step_size(x.flat[i], h_rel)
        d1, f1p, f1m, span = difference_quotient(f, x, i, h)
        d2, f2p, f2m, _ = difference_quotient(f, x, i, 2 * h)
        scale = max(abs(f1p), abs(f1m), abs(f2p), abs(f2m))
        grad.flat[i] = d1
        bound.flat[i] = abs(d2 - d1) + 8 * EPS64 * scale / span
    return grad, bound
