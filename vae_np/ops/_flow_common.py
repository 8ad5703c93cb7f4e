"""What the flow steps (vae_np.ops.flows: planar; vae_np.ops.radial) share: the row and cache
checks, SingularStepError, and softplus/sigmoid that also take complex input (for the complex
step) without overflow and with full precision."""
from __future__ import annotations

import numpy as np

from .activations import sigmoid, softplus
from .errors import SingularMapError


# --------------------------------------------------------------------------- checks
def _check_rows(where, name, a):
    """ValueError unless ``a`` is an (N, D) array of rows; returns N."""
    if np.ndim(a) != 2:
        raise ValueError(f"{where}: {name} must be an (N, D) array of rows, got shape "
                         f"{np.shape(a)}")
    return np.shape(a)[0]


def _check_cache(where, cache, size, source):
    """A backward given something other than its forward's cache says so (instead of failing to
    unpack it)."""
    if not (isinstance(cache, tuple) and len(cache) == size):
        raise ValueError(f"{where}: cache must be the tuple {source} returned; got "
                         f"{type(cache).__name__}")


class SingularStepError(SingularMapError):
    """A step that is not invertible in floating point (a log-det argument <= 0, or w = 0): the
    reparameterizations exclude it mathematically, but parameters far out reach it (the chain's
    planar step: w = 0, or tanh(a)^2 and tanh'(a) softplus(w.u) both underflowing to 0; the
    dot-product form of planar_forward already where w.u_hat rounds to -1). Training reports it
    as a divergence, like every ``SingularMapError``."""
    what = "a flow step"


def _check_positive_argument(where, what, value):
    """ln(value) on real input needs value > 0; NaN passes (the divergence guard reports it)."""
    if not np.iscomplexobj(value) and np.any(value <= 0):
        raise SingularStepError(f"{where}: {what} must be > 0 for the map to be invertible, got "
                                f"min {np.nanmin(value):.3g}")


def _positive_side(x):
    """+1 where Re x >= 0, else -1 (in x's real dtype, so float32 stays float32): a constant on
    each side, so x * side is analytic in x."""
    real = np.real(x)
    return np.where(real >= 0, 1, -1).astype(real.dtype, copy=False)


def _log1p_complex(y):
    """ln(1 + y) for complex y, accurate also for tiny |y|: ln|1 + y| = 1/2 log1p(2 Re y + |y|^2),
    arg(1 + y) = atan2(Im y, 1 + Re y). (NumPy's complex log1p rounds 1 + y first: at y = 9e-14,
    softplus(-30), its real part is 1e-3 off, and a complex step through ln(softplus) with it.)"""
    re, im = np.real(y), np.imag(y)
    return 0.5 * np.log1p(re * (2 + re) + im * im) + 1j * np.arctan2(im, 1 + re)


def _softplus(x):
    """softplus(x) = ln(1 + e^x): ops.activations' stable form on real input; on complex input
    x + ln(1 + e^-x) where Re x >= 0 and ln(1 + e^x) elsewhere (the same analytic function, with no
    overflow of e^x for a complex step at a large raw value, and full relative precision of its
    real part when e^x is tiny)."""
    if not np.iscomplexobj(x):
        return softplus(x)
    side = _positive_side(x)
    return np.where(side > 0, x, 0) + _log1p_complex(np.exp(-side * x))


def _sigmoid(x):
    """sigmoid(x) = 1 / (1 + e^-x): ops.activations' on real input; on complex input
    e^x / (1 + e^x) where Re x < 0, so that e^-x never overflows."""
    if not np.iscomplexobj(x):
        return sigmoid(x)
    side = _positive_side(x)
    e = np.exp(-side * x)                       # |e| <= 1
    return np.where(side > 0, 1, e) / (1 + e)
