"""The diagonal Gaussian q(z|x): its sigma head, the reparameterization and the KL to N(0, I)."""
from __future__ import annotations

import numpy as np

from .._validate import check_op_scalar as _check_scalar
from .._validate import check_op_shape as _check_shape

from .activations import sigmoid, softplus


def _check_cache(where, cache, expected):
    """A backward called like a forward (``kl_backward(mu, sigma)``) gets its cache wrong: say so
    instead of failing to unpack it."""
    if not (isinstance(cache, tuple) and len(cache) == 2):
        raise ValueError(f"{where}(dout, cache): cache must be the tuple {expected}, got "
                         f"{type(cache).__name__}; call the forward first and pass its cache")


# --------------------------------------------------------------------------- sigma of q(z|x)
def sigma_logvar_forward(s):
    """The encoder's head s is the log-variance: sigma = exp(s / 2), so ln sigma^2 = s."""
    sigma = np.exp(0.5 * s)
    return sigma, sigma


def sigma_logvar_backward(dsigma, sigma):
    """ds = dsigma * dsigma/ds = dsigma * sigma / 2."""
    _check_shape("sigma_logvar_backward", "dsigma", dsigma, sigma.shape)
    return dsigma * (0.5 * sigma)


def sigma_softplus_forward(s, sigma_min=1e-4):
    """sigma = softplus(s) + sigma_min, bounded below by sigma_min > 0."""
    _check_scalar("sigma_softplus_forward", "sigma_min", sigma_min)
    return softplus(s) + sigma_min, s


def sigma_softplus_backward(dsigma, s):
    """ds = dsigma * dsigma/ds = dsigma * sigmoid(s)."""
    _check_shape("sigma_softplus_backward", "dsigma", dsigma, s.shape)
    return dsigma * sigmoid(s)


SIGMA_PARAMETERIZATIONS = {
    "logvar": (sigma_logvar_forward, sigma_logvar_backward),
    "softplus": (sigma_softplus_forward, sigma_softplus_backward),
}


# --------------------------------------------------------------------------- reparameterization
def reparameterize_forward(mu, sigma, eps):
    """z = mu + sigma * eps with eps ~ N(0, I) drawn by the caller (so it can be frozen).

    Parameters
    ----------
    mu, sigma : (B, Z)
    eps : (B, Z) or (K, B, Z); K samples per example share mu and sigma

    Returns
    -------
    z : eps's shape
    cache : (sigma, eps)
    """
    if mu.shape != sigma.shape or eps.shape[-2:] != mu.shape or eps.ndim not in (2, 3):
        raise ValueError(f"reparameterize: expected mu, sigma (B, Z) and eps (B, Z) or (K, B, Z); "
                         f"got mu {mu.shape}, sigma {sigma.shape}, eps {eps.shape}")
    z = sigma * eps
    z = z + mu if np.iscomplexobj(mu) else np.add(z, mu, out=z)  # complex mu: complex step
    return z, (sigma, eps)


def reparameterize_backward(dz, cache):
    """The two chain-rule terms of z = mu + sigma * eps, kept separate.

    dz/dmu = 1     ->  dmu    = dz
    dz/dsigma = eps -> dsigma = dz * eps
    With K samples, mu and sigma fan out to K copies of z, so both are summed over K.

    Returns
    -------
    dmu, dsigma : (B, Z)
    """
    _check_cache("reparameterize_backward", cache, "(sigma, eps) from reparameterize_forward")
    sigma, eps = cache
    _check_shape("reparameterize_backward", "dz", dz, eps.shape)
    dmu = dz * 1
    dsigma = dz * eps
    if eps.ndim == 3:
        dmu = dmu.sum(axis=0)
        dsigma = dsigma.sum(axis=0)
    return dmu, dsigma


# --------------------------------------------------------------------------- KL to the prior
def kl_forward(mu, sigma):
    """Closed-form KL(N(mu, diag sigma^2) || N(0, I)) per example.

    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)

    Parameters
    ----------
    mu, sigma : (B, Z), sigma > 0

    Returns
    -------
    kl : (B,)
    cache : (mu, sigma)
    """
    if np.shape(mu) != np.shape(sigma):
        raise ValueError(f"kl_forward: mu and sigma must have one shape, got {np.shape(mu)} and "
                         f"{np.shape(sigma)}")
    # A negative sigma is a caller's mistake (ln of it is NaN); sigma = 0 or NaN can come out of a
    # diverging training step and is left to the divergence guard, which reports the step.
    if not np.iscomplexobj(sigma) and np.any(sigma < 0):
        raise ValueError(f"kl_forward: sigma must be > 0 (it is a standard deviation), got "
                         f"min {np.min(sigma):g}")
    kl = 0.5 * np.sum(mu * mu + sigma * sigma - 1 - 2 * np.log(sigma), axis=-1)
    return kl, (mu, sigma)


def kl_backward(dkl, cache):
    """Gradient of the closed-form KL, with its factor 1/2 kept (docs/design.md, "The KL gradient").

    dKL/dmu    = 1/2 * 2 mu                = mu
    dKL/dsigma = 1/2 * 2 (sigma - 1/sigma) = sigma - 1/sigma

    (The often-quoted 2(1/sigma - sigma), -2 mu is the gradient of the bracket without the 1/2,
    i.e. twice the truth; tests/ops/test_kl_gradient.py shows it numerically.)

    Parameters
    ----------
    dkl : (B,)
    cache : from kl_forward

    Returns
    -------
    dmu, dsigma : (B, Z)
    """
    _check_cache("kl_backward", cache, "(mu, sigma) from kl_forward")
    mu, sigma = cache
    _check_shape("kl_backward", "dkl", dkl, mu.shape[:-1])
    dkl = dkl[..., None]
    dmu = dkl * mu
    dsigma = dkl * (sigma - 1 / sigma)
    return dmu, dsigma
