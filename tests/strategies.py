"""Hypothesis strategies and numerical-derivative helpers shared by the core tests.

Everything here is float64. The derivative helpers are written independently of
``vae_np.gradcheck`` so that the op tests do not rely on the checker they are also used to test.

Tolerances (see DESIGN.md, "Numerics")
--------------------------------------
Central differences use a step relative to the value, h = 1e-6 * max(1, |x|), and divide by the
step actually represented, (x + h) - (x - h). Their error has two parts:

* truncation, h^2 |f'''| / 6 ~ 1e-12 relative for the O(1) scales drawn here;
* rounding of the numerator, ~ 2 eps_mach * F / (2h) ~ 1e-10 * F, where F = sum |terms of f|
  (not |f|: the objective sum(out * G) can cancel to near zero while its terms are large).

So ``assert_fd_close`` accepts |a - n| <= 1e-6 (|a| + |n|) + 1e-8 F: the relative part leaves a
margin of ten over the ~1e-7 a correct float64 central difference reaches, the absolute part a
margin of 100 over the rounding noise, and a wrong gradient (a factor 2, a sign, a missing term)
misses both by many orders of magnitude.

Complex step, Im f(x + i h) / h with h = 1e-20, has no subtractive cancellation, so it agrees with
an analytic derivative to rounding. ``assert_complex_close`` uses |a - n| <= 1e-10 (|a| + |n|) +
1e-13 max(1, max|a|): the backward formulas themselves lose up to eps_mach / |f'| relatively (e.g.
1 - tanh(x)^2 at |x| = 4 loses ~1e-13), and the absolute part covers sums that cancel to ~0.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae_np.model import DECODER_MEANS, LIKELIHOODS
from vae_np.ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS

FD_RTOL, FD_ATOL_PER_F = 1e-6, 1e-8
CS_RTOL, CS_ATOL = 1e-10, 1e-13

ACTIVATION_NAMES = sorted(ACTIVATIONS)
SIGMA_PARAM_NAMES = sorted(SIGMA_PARAMETERIZATIONS)
LIKELIHOOD_NAMES = list(LIKELIHOODS)
DECODER_MEAN_NAMES = list(DECODER_MEANS)


# --------------------------------------------------------------------------- scalars and arrays
def floats(lo, hi):
    """Finite float64 in [lo, hi], no subnormals (they only add noise to derivative checks)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def away_from_zero(lo=1e-3, hi=3.0):
    """|v| in [lo, hi], either sign: keeps a ReLU kink out of reach of a 1e-6 step (pitfall 5)."""
    return st.one_of(floats(-hi, -lo), floats(lo, hi))


def arrays(shape, lo=-3.0, hi=3.0, elements=None):
    """float64 array of ``shape`` (a tuple or a strategy) with bounded values."""
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi) if elements is None else elements)


batch_sizes = st.integers(1, 4)
dims = st.integers(1, 5)
sample_counts = st.integers(1, 3)
seeds = st.integers(0, 2 ** 32 - 1)


@st.composite
def matrix_shapes(draw):
    """(B, n) with B in 1..4 and n in 1..5."""
    return draw(batch_sizes), draw(dims)


# --------------------------------------------------------------------------- VAE architectures
@st.composite
def architectures(draw, activations=None, likelihoods=None):
    """Keyword arguments of a tiny float64 VAE plus a batch size, k and a data seed.

    depth 0-3 hidden layers of width <= 5, x_dim <= 6, z_dim <= 3, every activation, every
    likelihood ("gaussian-learned" with and without decoder_sigma_min), both sigma
    parameterizations, both decoder means, k in 1..4, batch <= 4.
    """
    activation = draw(st.sampled_from(activations or ACTIVATION_NAMES))
    likelihood = draw(st.sampled_from(likelihoods or LIKELIHOOD_NAMES))
    kwargs = dict(
        x_dim=draw(st.integers(1, 6)),
        hidden=tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=3))),
        z_dim=draw(st.integers(1, 3)),
        activation=activation,
        likelihood=likelihood,
        sigma_param=draw(st.sampled_from(SIGMA_PARAM_NAMES)),
        dtype=np.float64,
        seed=draw(st.integers(0, 10_000)),
        decoder_mean=draw(st.sampled_from(DECODER_MEAN_NAMES)),
        # The default init or N(0, 0.5^2). At init_std = 1 an identity MLP of depth 2-3 reaches
        # points like mu = -14, sigma = 0.002, loss = 2e5 nats, where the rounding noise of a
        # float64 central difference with h = 1e-6 exceeds 1e-6 of the gradient (there h = 1e-4
        # agrees to 3e-8): an ill-conditioned test point, not a wrong gradient.
        init_std=draw(st.sampled_from([None, 0.5])),
    )
    if kwargs["sigma_param"] == "softplus":
        kwargs["sigma_min"] = draw(st.sampled_from([1e-4, 0.05]))
    if likelihood == "gaussian":
        kwargs["decoder_sigma"] = draw(st.sampled_from([1.0, 0.5, 2.0]))
    if likelihood == "gaussian-learned":
        kwargs["decoder_sigma_min"] = draw(st.sampled_from([0.0, 0.01, 0.3]))
    run = dict(batch=draw(batch_sizes), k=draw(st.integers(1, 4)), data_seed=draw(seeds))
    return kwargs, run


def make_data(model, batch, k, data_seed, eps_2d=False):
    """Data in the model's range (grey levels in [0, 1] for Bernoulli) and frozen eps (K, B, Z);
    with ``eps_2d`` and k = 1 the eps is given as (B, Z)."""
    rng = np.random.default_rng(data_seed)
    if model.likelihood == "bernoulli":
        x = rng.random((batch, model.x_dim))
    else:
        x = rng.normal(0.5, 0.5, (batch, model.x_dim))
    eps = rng.standard_normal((k, batch, model.z_dim))
    if eps_2d and k == 1:
        eps = eps[0]
    return x, eps


# --------------------------------------------------------------------------- derivatives
def central_difference(f, x, h_rel=1e-6):
    """Per-coordinate central differences of the scalar f at the float64 array x (x is not changed).

    n_i = (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-) with h = h_rel * max(1, |x_i|).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    n = np.empty_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        h = h_rel * max(1.0, abs(old))
        x[i] = old + h
        up, f_up = x[i], float(f(x))
        x[i] = old - h
        down, f_down = x[i], float(f(x))
        x[i] = old
        n[i] = (f_up - f_down) / (up - down)
    return n


def complex_step(f, x, h=1e-20):
    """Per-coordinate complex-step derivatives Im f(x + i h e_i) / h of an analytic scalar f."""
    xc = np.array(x, dtype=np.complex128, copy=True)
    n = np.empty(xc.shape)
    for i in np.ndindex(xc.shape):
        old = xc[i]
        xc[i] = old + 1j * h
        n[i] = np.imag(f(xc)) / h
        xc[i] = old
    return n


def assert_fd_close(analytic, numeric, f_terms, what=""):
    """Analytic gradient vs central differences; ``f_terms`` = sum of |terms| of the objective."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    assert analytic.shape == numeric.shape, (what, analytic.shape, numeric.shape)
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
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-300), initial=0.0))


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
