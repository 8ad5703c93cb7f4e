"""From user data to a float batch: one place for the uint8 scaling and the range checks.

Data sets stay uint8 grey levels in memory and are converted batch by batch: x = level / 255.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_array


def to_float(x, dtype):
    """x as ``dtype``: uint8 grey levels scaled by 1/255 in one pass, other arrays cast."""
    if x.dtype == np.uint8:     # convert and scale in one ufunc pass (the values of astype, then *)
        return np.multiply(x, dtype.type(1 / 255), dtype=dtype)
    return x.astype(dtype, copy=False)


def check_representable(name, a, dtype):
    """Before a cast of the (finite) array ``a`` to ``dtype``: values beyond its range
    (|a| > 3.4e38 for float32) would become inf, which must not pass for a divergence."""
    if np.issubdtype(a.dtype, np.floating) and a.dtype.itemsize > dtype.itemsize and a.size:
        big = np.finfo(dtype).max
        if a.max() > big or a.min() < -big:
            raise ValueError(f"{name} must be finite in the model's dtype {dtype.name}: values "
                             f"reach [{a.min():g}, {a.max():g}], beyond +-{big:.3g}")


def check_unit_interval(name, x, what="a Bernoulli likelihood"):
    """ValueError unless every value of x lies in [0, 1]."""
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for {what} (or be uint8 0..255), "
                         f"got values in [{x.min():g}, {x.max():g}]")


def as_batch(name, x, x_dim, dtype, unit_interval=False):
    """Check a batch of data (B, x_dim) and convert it to ``dtype`` (uint8 scaled by 1/255).

    ``unit_interval``: the likelihood needs x in [0, 1] (Bernoulli).
    """
    x = check_array(name, x, ndim=2)
    if x.shape[1] != x_dim:
        raise ValueError(f"{name} must have shape (batch, {x_dim}), got {x.shape}")
    check_representable(name, x, dtype)
    x = to_float(x, dtype)
    if unit_interval:
        check_unit_interval(name, x)
    return x
