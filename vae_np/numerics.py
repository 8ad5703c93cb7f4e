"""Numerical helpers shared by the gradient checker, the derivations, ``explain`` and the tests.

One home for the few formulas that every check needs, so that they cannot drift apart:

* ``LN_2PI``: ln(2 pi), the constant of every Gaussian log-density.
* ``relative_error(a, n)``: |a - n| / max(|a| + |n|, floor) for comparing an analytic value a with
  a numerical one n (0 when equal, 1 when opposite or one of them is 0).
* ``step_size``: the step rule of every central difference, h = h_rel * max(1, |x_i|).
* ``difference_quotient``: the central difference (f(x + h e_i) - f(x - h e_i)) / (x+ - x-) of one
  coordinate (or of one coordinate in every row of a row-wise f), dividing by the displacement
  actually represented in x's dtype (in float32, x + h is rounded, and dividing by the nominal 2h
  would add an error of up to eps |x| / h). The only place the quotient is written.
* ``central_difference``: the derivatives of f (a gradient, a Jacobian, or one Jacobian per row)
  by central differences with an error bound per entry (truncation estimated from the step 2h,
  rounding from the values of f and the terms it sums). Public as ``vae_np.testing``'s
  finite-difference helper.
* ``complex_quotient`` and ``complex_step``: Im f(x + i h e_i) / h, one coordinate and every
  coordinate (no subtraction, so exact to rounding where f is complex-analytic).
"""
from __future__ import annotations

import math

import numpy as np

LN_2PI = math.log(2.0 * math.pi)
EPS64 = float(np.finfo(np.float64).eps)
ROUNDING_ULPS = 8          # central_difference's rounding term: 8 eps F / (x+ - x-)


def relative_error(a, n, floor=0.0):
    """|a - n| / max(|a| + |n|, floor, tiny): 0 for equal values, 1 for opposite or one-zero."""
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), max(floor, 1e-300))


def step_size(value, h_rel):
    """The nominal step for a coordinate of value ``value``: h = h_rel * max(1, |value|).

    A number for a number; an array of steps for an array of values."""
    h = h_rel * np.maximum(1.0, np.abs(value))
    return float(h) if np.ndim(h) == 0 else h


def _value(f, x):
    """f(x) as a float (scalar f) or a float64 copy (array-valued f: the copy outlives x's move)."""
    value = f(x)
    if np.ndim(value) == 0:
        return float(value)
    return np.array(value, dtype=np.float64)


def difference_quotient(f, x, index, h):
    """Central difference of f along coordinate ``index`` of the array x, moved in place.

    Parameters
    ----------
    f : callable(x) -> float or array
    x : array, moved in place and restored exactly before returning (also on error)
    index : int, a flat index of x; or a 1-D integer array of N flat indices moved together, one
        per row of a row-wise f (row k of f's value depends on the k-th moved coordinate alone)
    h : the nominal step, a number (or an array like ``index``)

    Returns
    -------
    (quotient, f(x+), f(x-), span) with quotient = (f(x+) - f(x-)) / span and span = x+ - x-, the
    displacement represented in x's dtype (2h up to rounding). With an index array, span has one
    entry per row and row k of the quotient is divided by span[k].
    """
    batched = np.ndim(index) > 0
    original = x.flat[index].copy() if batched else x.flat[index]
    try:
        x.flat[index] = original + h
        plus = np.array(x.flat[index], dtype=np.float64)
        f_plus = _value(f, x)
        x.flat[index] = original - h
        minus = np.array(x.flat[index], dtype=np.float64)
        f_minus = _value(f, x)
    finally:
        x.flat[index] = original
    span = plus - minus
    if batched:
        if np.shape(f_plus)[:1] != span.shape:
            raise ValueError(f"difference_quotient: a row-wise f must return one row per moved "
                             f"coordinate ({span.size}), got shape {np.shape(f_plus)}")
        divisor = span.reshape(span.shape + (1,) * (np.ndim(f_plus) - 1))
    else:
        span = float(span)
        divisor = span
    return (f_plus - f_minus) / divisor, f_plus, f_minus, span


def central_difference(f, x, h_rel=1e-5, *, terms=0.0, rows=False):
    """Derivatives of f at x by central differences, with an error bound on each.

    Step rule: coordinate i moves by h = h_rel * max(1, |x_i|) either way, and the quotient
    divides by the displacement represented in x's dtype (``difference_quotient``):

        n_i = (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-)

    The default h_rel = 1e-5 is near eps^(1/3) = 6e-6, where the truncation h^2 |f'''| / 6 and
    the rounding eps |f| / h of a float64 quotient balance.

    Error bound, per entry: |n(2h) - n(h)| + 8 eps (F + terms) / (x_i+ - x_i-).

    * Truncation: n(h) = f' + c h^2 + O(h^4), so n(2h) - n(h) = 3 c h^2 and the error of n(h) is
      about a third of |n(2h) - n(h)|; the bound takes all of it.
    * Rounding: each value of f carries a few ulps of its size; F is the largest |f| among the
      four values f(x +- h e_i), f(x +- 2h e_i) (over all entries of an array-valued f, or of one
      row with ``rows``). ``terms`` adds the size of what f sums when the sum cancels (a loss of
      1e-3 made of terms of order 1 rounds like its terms, not like 1e-3): a number, or with
      ``rows`` one number per row.

    Parameters
    ----------
    f : callable(x) -> float or array. With ``rows``, f must be row-wise: x of shape (N, ...) to
        a value of shape (N, ...) whose row k depends on row k of x alone.
    x : real array (copied to float64; the caller's array is never moved)
    h_rel : relative step
    terms : non-negative finite number (or (N,) array with ``rows``), see the rounding term
    rows : move coordinate j of every row at once (N times fewer evaluations of f) and return one
        Jacobian per row

    Returns
    -------
    grad, bound : float64 arrays of shape f.shape + x.shape; with ``rows``,
        (N,) + f.shape[1:] + x.shape[1:] (entry [k, a, b] = d f[k, a] / d x[k, b]). For a scalar
        f this is the gradient, of x's shape.

    Examples
    --------
    >>> import numpy as np
    >>> grad, bound = central_difference(lambda v: float(np.sum(np.sin(v))), np.array([0.0, 1.0]))
    >>> bool(np.all(np.abs(grad - np.cos([0.0, 1.0])) <= bound))
    True
    """
    x = np.array(x, dtype=np.float64)
    terms = np.asarray(terms, dtype=np.float64)
    if not np.all(np.isfinite(terms)) or np.any(terms < 0):
        raise ValueError(f"terms must be finite and >= 0, got {terms!r}")
    if rows:
        return _central_rows(f, x, h_rel, terms)
    if terms.ndim:
        raise ValueError(f"terms must be a number (an (N,) array needs rows=True), got shape "
                         f"{terms.shape}")
    if x.size == 0:
        shape = np.shape(f(x)) + x.shape
        return np.empty(shape), np.empty(shape)
    grad = bound = None
    for i in range(x.size):
        h = step_size(x.flat[i], h_rel)
        d1, f1p, f1m, span = difference_quotient(f, x, i, h)
        d2, f2p, f2m, _ = difference_quotient(f, x, i, 2 * h)
        if grad is None:
            grad, bound = np.empty((np.size(d1), x.size)), np.empty((np.size(d1), x.size))
            out_shape = np.shape(d1)
        scale = max(float(np.max(np.abs(v))) for v in (f1p, f1m, f2p, f2m))
        grad[:, i] = np.ravel(d1)
        bound[:, i] = np.ravel(np.abs(d2 - d1)) + ROUNDING_ULPS * EPS64 * (scale + terms) / span
    return grad.reshape(out_shape + x.shape), bound.reshape(out_shape + x.shape)


def _central_rows(f, x, h_rel, terms):
    """central_difference with rows=True: coordinate j of all N rows moved at once."""
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"rows=True needs x with at least one row, got shape {x.shape}")
    n, per_row = x.shape[0], x[0].size
    if terms.ndim and terms.shape != (n,):
        raise ValueError(f"terms must be a number or an (N,) = ({n},) array, got shape "
                         f"{terms.shape}")
    grad = bound = None
    for j in range(per_row):
        index = np.arange(n) * per_row + j
        h = step_size(x.flat[index], h_rel)
        d1, f1p, f1m, span = difference_quotient(f, x, index, h)
        d2, f2p, f2m, _ = difference_quotient(f, x, index, 2 * h)
        if grad is None:
            out_row = np.shape(d1)[1:]
            grad, bound = np.empty((n, d1[0].size, per_row)), np.empty((n, d1[0].size, per_row))
        scale = np.max(np.abs(np.stack([f1p, f1m, f2p, f2m])).reshape(4, n, -1), axis=(0, 2))
        grad[:, :, j] = d1.reshape(n, -1)
        bound[:, :, j] = (np.abs(d2 - d1).reshape(n, -1)
                          + (ROUNDING_ULPS * EPS64 * (scale + terms) / span)[:, None])
    shape = (n,) + out_row + x.shape[1:]
    return grad.reshape(shape), bound.reshape(shape)


def complex_quotient(f, x, index, h=1e-20):
    """Im f(x + i h e_index) / h: the derivative of f along one coordinate by the complex step.

    No difference is taken, so nothing cancels and any tiny h works: for f complex-analytic (on a
    real x, real on the real axis) the result equals f' to rounding (the truncation is
    h^2 |f'''| / 6, ~1e-40 for h = 1e-20).

    Parameters
    ----------
    f : callable(complex array) -> complex number or array
    x : complex array, moved in place at ``index`` (a flat index) and restored
    h : the imaginary step

    Returns
    -------
    float (scalar f) or float64 array of f's shape

    Raises
    ------
    ValueError when f's value is not complex (f does not carry the imaginary part: it is not
    analytic, or casts to real) or not finite.
    """
    original = x.flat[index]
    try:
        x.flat[index] = original + 1j * h
        value = np.array(f(x))                # a copy: f may return x itself
    finally:
        x.flat[index] = original
    if not np.iscomplexobj(value):
        raise ValueError(f"complex_step: f must map a complex x to a complex value, got dtype "
                         f"{value.dtype}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"complex_step: f is not finite at coordinate {index} moved by {h}i")
    derivative = value.imag / h
    return float(derivative) if derivative.ndim == 0 else derivative


def complex_step(f, x, h=1e-20):
    """Derivatives Im f(x + i h e_i) / h of f along every coordinate of x (``complex_quotient``).

    Parameters
    ----------
    f : callable(complex array) -> complex number or array, complex-analytic
    x : real array (copied to complex128)

    Returns
    -------
    float64 array of shape f.shape + x.shape (x's shape for a scalar f)
    """
    xc = np.array(x, dtype=np.complex128)
    out = None
    for i in range(xc.size):
        d = complex_quotient(f, xc, i, h)
        if out is None:
            out = np.empty((np.size(d), xc.size))
            out_shape = np.shape(d)
        out[:, i] = np.ravel(d)
    if out is None:
        return np.empty(np.shape(f(xc)) + xc.shape)
    return out.reshape(out_shape + xc.shape)
