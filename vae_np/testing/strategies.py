"""Hypothesis strategies for gradient tests: bounded arrays, dense-layer shapes, VAE architectures.

Importing this module needs hypothesis (``pip install "vae_np[test]"``); ``vae_np`` itself does
not. Every strategy draws float64 values by default (gradient checks are meaningful in float64
only) and avoids subnormals, which add nothing but noise to a difference quotient. Each docstring
holds one runnable example (they are run as doctests by the test suite).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..core.model import DECODER_MEANS, LIKELIHOODS
from ..ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS

ACTIVATION_NAMES = sorted(ACTIVATIONS)
SIGMA_PARAM_NAMES = sorted(SIGMA_PARAMETERIZATIONS)
LIKELIHOOD_NAMES = list(LIKELIHOODS)
DECODER_MEAN_NAMES = list(DECODER_MEANS)

__all__ = ["floats", "away_from_zero", "arrays", "matrix_shapes", "dense_shapes", "architectures",
           "make_data", "batch_sizes", "dims", "sample_counts", "seeds"]


# --------------------------------------------------------------------------- scalars and arrays
def floats(lo, hi, width=64):
    """Finite floats in [lo, hi], no subnormals.

    >>> from hypothesis import given
    >>> @given(floats(-1, 1))
    ... def test(v):
    ...     assert -1 <= v <= 1
    >>> test()
    """
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=width)


def away_from_zero(lo=1e-3, hi=3.0):
    """|v| in [lo, hi], either sign: keeps a ReLU kink out of reach of a 1e-6 step.

    >>> from hypothesis import given
    >>> @given(away_from_zero())
    ... def test(v):
    ...     assert 1e-3 <= abs(v) <= 3
    >>> test()
    """
    return st.one_of(floats(-hi, -lo), floats(lo, hi))


def arrays(shape, lo=-3.0, hi=3.0, elements=None, dtype=np.float64):
    """Array of ``shape`` (a tuple or a strategy of tuples) with values in [lo, hi].

    ``elements`` overrides the value strategy; ``dtype`` is float64 (or float32, whose values are
    drawn representable in float32).

    >>> import numpy as np
    >>> from hypothesis import given
    >>> @given(arrays((2, 3), lo=0, hi=1, dtype=np.float32))
    ... def test(x):
    ...     assert x.shape == (2, 3) and x.dtype == np.float32 and np.all((0 <= x) & (x <= 1))
    >>> test()
    """
    dtype = np.dtype(dtype)
    if elements is None:
        elements = floats(lo, hi, width=8 * dtype.itemsize)
    return hnp.arrays(dtype, shape, elements=elements)


batch_sizes = st.integers(1, 4)
dims = st.integers(1, 5)
sample_counts = st.integers(1, 3)
seeds = st.integers(0, 2 ** 32 - 1)


@st.composite
def matrix_shapes(draw, max_batch=4, max_dim=5):
    """(B, n) with B in 1..max_batch and n in 1..max_dim.

    >>> from hypothesis import given
    >>> @given(arrays(matrix_shapes()))
    ... def test(x):
    ...     assert x.ndim == 2 and 1 <= x.shape[0] <= 4 and 1 <= x.shape[1] <= 5
    >>> test()
    """
    return draw(st.integers(1, max_batch)), draw(st.integers(1, max_dim))


@st.composite
def dense_shapes(draw, max_batch=4, max_dim=5):
    """(B, n_in, n_out) for a dense layer y = x W + b with x (B, n_in) and W (n_in, n_out).

    >>> import numpy as np
    >>> from hypothesis import given
    >>> from vae_np import ops
    >>> @given(dense_shapes())
    ... def test(shape):
    ...     B, n_in, n_out = shape
    ...     y, _ = ops.dense_forward(np.ones((B, n_in)), np.ones((n_in, n_out)), np.ones(n_out))
    ...     assert y.shape == (B, n_out)
    >>> test()
    """
    return (draw(st.integers(1, max_batch)), draw(st.integers(1, max_dim)),
            draw(st.integers(1, max_dim)))


# --------------------------------------------------------------------------- VAE architectures
@st.composite
def architectures(draw, activations=None, likelihoods=None):
    """Keyword arguments of a tiny float64 VAE plus a batch size, k and a data seed.

    depth 0-3 hidden layers of width <= 5, x_dim <= 6, z_dim <= 3, every activation, every
    likelihood ("gaussian-learned" with and without decoder_sigma_min), both sigma
    parameterizations, both decoder means, k in 1..4, batch <= 4.

    >>> from hypothesis import given, settings
    >>> from vae_np import VAE
    >>> @settings(max_examples=5)
    ... @given(architectures(likelihoods=["bernoulli"]))
    ... def test(arch):
    ...     kwargs, run = arch
    ...     model = VAE(**kwargs)
    ...     x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    ...     loss, grads = model.loss_and_grads(x, k=run["k"], eps=eps)
    ...     assert loss > 0 and grads.keys() == model.params.keys()
    >>> test()
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
    """Data in the model's range (grey levels in [0, 1] for the Bernoulli likelihoods, the plain
    and the continuous one) and frozen eps (K, B, noise_dim);
    with ``eps_2d`` and k = 1 the eps is given as (B, Z).

    >>> from vae_np import VAE
    >>> x, eps = make_data(VAE(3, (2,), 1), batch=4, k=2, data_seed=0)
    >>> x.shape, eps.shape, bool(x.min() >= 0 and x.max() <= 1)
    ((4, 3), (2, 4, 1), True)
    """
    rng = np.random.default_rng(data_seed)
    if "bernoulli" in model.likelihood:
        x = rng.random((batch, model.x_dim))
    else:
        x = rng.normal(0.5, 0.5, (batch, model.x_dim))
    eps = rng.standard_normal((k, batch, model.noise_dim))
    if eps_2d and k == 1:
        eps = eps[0]
    return x, eps
