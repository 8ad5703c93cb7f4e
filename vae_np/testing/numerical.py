"""Numerical derivatives and closeness assertions in float64, for tests of hand-written gradients.

The derivatives are the package's one implementation, in ``vae_np.numerics``, re-exported here
and from ``vae_np.testing``:

* ``central_difference(f, x, h_rel=1e-5, terms=0, rows=False) -> (grad, bound)``: central
  differences n_i = (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-), h = h_rel * max(1, |x_i|),
  dividing by the step actually represented; f may be scalar (a gradient), array-valued (a
  Jacobian) or row-wise (``rows=True``: one Jacobian per row). ``bound`` is the error bound
  |n(2h) - n(h)| (truncation) + 8 eps (max |f| + terms) / (x_i+ - x_i-) (rounding; ``terms`` is
  the size of what f sums when the sum cancels).
* ``complex_step(f, x, h=1e-20)``: Im f(x + i h e_i) / h, exact to rounding for an analytic f.

The closeness assertions compare an analytic gradient with such derivatives at fixed tolerances.

``assert_fd_close`` is for central differences at h_rel = 1e-6, whose error has two parts:

* truncation, h^2 |f'''| / 6 ~ 1e-12 relative for O(1) scales;
* rounding of the numerator, ~ 2 eps_mach * F / (2h) ~ 1e-10 * F, where F = sum |terms of f|
  (not |f|: an objective sum(out * G) can cancel to near zero while its terms are large).

So it accepts |a - n| <= 1e-6 (|a| + |n|) + 1e-8 F: the relative part leaves a margin of ten over
the ~1e-7 a correct float64 central difference reaches, the absolute part a margin of 100 over
the rounding noise, and a wrong gradient (a factor 2, a sign, a missing term) misses both by many
orders of magnitude.

The complex step has no subtractive cancellation, so it agrees with an analytic derivative to
rounding. ``assert_complex_close`` uses |a - n| <= 1e-10 (|a| + |n|) + 1e-13 max(1, max|a|): the
backward formulas themselves lose up to eps_mach / |f'| relatively (e.g. 1 - tanh(x)^2 at |x| = 4
loses ~1e-13), and the absolute part covers sums that cancel to ~0.
"""
from __future__ import annotations

import numpy as np

from ..numerics import central_difference, complex_step
from ..numerics import relative_error as _relative_error

FD_RTOL, FD_ATOL_PER_F = 1e-6, 1e-8
CS_RTOL, CS_ATOL = 1e-10, 1e-13
__all__ = ["central_difference", "complex_step", "assert_fd_close", "assert_complex_close",
           "relative_error", "snapshot", "assert_unchanged", "FD_RTOL", "FD_ATOL_PER_F",
           "CS_RTOL", "CS_ATOL"]


def assert_fd_close(analytic, numeric, f_terms, what=""):
    """Analytic gradient vs central differences; ``f_terms`` = sum of |terms| of the objective."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    assert analytic.shape == numeric.shape, (what, analytic.shape, numeric.shape)
    if not np.isfinite(f_terms):            # an infinite scale would let any gradient pass
        raise ValueError(f"f_terms must be finite, got {f_terms!r}")
    bound = FD_RTOL * (np.abs(analytic) + np.abs(numeric)) + FD_ATOL_PER_F * f_terms
    bad = np.abs(analytic - numeric) > bound
    assert not bad.any(), (f"{what}: analytic and central-difference gradients differ at "
                           f"{np.argwhere(bad).tolist()}\nanalytic {analytic[bad]}\n"
                           f"numeric  {numeric[bad]}")


def assert_complex_close(analytic, numeric, what=""):
    """Analytic gradient vs complex step (agreement to rounding)."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    assert analytic.shape == numeric.shape, (what, analytic.shape, numeric.shape)
    scale = max(1.0, float(np.max(np.abs(analytic), initial=0.0)))
    bound = CS_RTOL * (np.abs(analytic) + np.abs(numeric)) + CS_ATOL * scale
    bad = np.abs(analytic - numeric) > bound
    assert not bad.any(), (f"{what}: analytic and complex-step gradients differ at "
                           f"{np.argwhere(bad).tolist()}\nanalytic {analytic[bad]}\n"
                           f"complex  {numeric[bad]}")


def relative_error(a, n):
    """max |a - n| / max(|a| + |n|, 1e-300) over all entries."""
    a, n = np.asarray(a, float), np.asarray(n, float)
    return float(np.max(_relative_error(a, n), initial=0.0))


def snapshot(*arrays_):
    """Copies of the given arrays, to compare with ``assert_unchanged`` after a call."""
    return [np.array(a, copy=True) for a in arrays_]


def assert_unchanged(before, *after):
    """Each array equals (bitwise, NaN-aware) its copy taken before the call: no input mutated."""
    assert len(before) == len(after)
    for i, (b, a) in enumerate(zip(before, after)):
        a = np.asarray(a)
        assert a.dtype == b.dtype and a.shape == b.shape, f"input {i} changed dtype or shape"
        equal_nan = np.issubdtype(b.dtype, np.inexact)     # NaN == NaN only for float/complex
        assert np.array_equal(a, b, equal_nan=equal_nan), f"input {i} was mutated"
