"""The derivation of the VAE as executable claims, each verified numerically.

Every claim function takes ``seed`` (all randomness comes from ``np.random.default_rng(seed)``) and
returns a list of :class:`Claim` records; each computes both sides of one identity by independent
routes and states the tolerance and why. ``python -m vae_np verify`` runs them all.

====================  ============================================================================
claim                 identity
====================  ============================================================================
kl_integrals          E_q[-ln s^2] = -ln s^2,  E_q[z^2] = mu^2 + s^2,  E_q[-(z-mu)^2/s^2] = -1
kl_closed_form        1/2 sum(mu^2 + s^2 - 1 - ln s^2) = quadrature = Monte Carlo (direct, reparam.)
kl_gradient           ops.kl_backward = FD;  2(1/s - s) grad s - 2 mu grad mu = 2 x FD grad(-KL)
elbo_mixture          ln p(x) = ELBO(q) + KL(q || p(z|x)) >= ELBO(q), discrete z (exact sums)
elbo_continuous       the same for continuous z (quadrature), and the VAE code path's ELBO
ml_kl                 argmax mean log-likelihood = argmin KL(p_data || p_theta), gap = -H(p_data)
estimators            score-function and reparameterization gradients unbiased; variance ratio
decoder_sigma         sigma = 1: NLL = MSE/2 + D/2 ln 2 pi; learned sigma unbounded w/o sigma_min
linear_vae            a linear VAE with learned sigma reaches Tipping & Bishop's ln p_ML and C_ML
posterior_collapse    linear VAE, sigma^2 fixed: KL_j = 1/2 ln max(l_j / sigma^2, 1), active units
beta_bound            beta < 1: max_q E_q[ln p(x|z)] - beta KL > ln p(x); beta >= 1: <= ln p(x)
loss_scaling          batch sum = B x mean; Adam scale-free, SGD needs lr / B; pixel mean = beta D
continuous_bernoulli  int_0^1 lambda^x (1 - lambda)^(1-x) dx = 1 / C(lambda); CB ops checked
iwae_bound            ELBO = L_1 <= L_K <= L_{K+1} <= ln p(x), ln p(x) - L_K ~ Var(w/p) / 2K
iwae_gradient         IWAE gradient = FD of L_K = sum_k w~_k grad(-ln w_k); w~ differentiated: bias
flows                 int q_K dz_K = 1 (planar, radial); logdet = ln det J (FD); u_hat => invertible
two_layer_kl          closed-form top KL given z1 = E[ln q(z2|z1) - ln p(z2)]; both give one ELBO
vamp_reduces          pseudo-inputs mapped to one q(z|u): the VampPrior is that Gaussian
free_bits             a clamped group gets no gradient and its unit no pull of the KL; a free one
====================  ============================================================================
"""
from __future__ import annotations

from ._record import Claim, make_claim
from .beta import beta_bound
from .cb import continuous_bernoulli
from .collapse import posterior_collapse
from .decoder import decoder_sigma
from .elbo import elbo_continuous, elbo_mixture
from .flows import flow_claims
from .gradient_estimators import estimators
from .iwae import iwae_bound, iwae_gradient
from .kl import compare_gradients, kl_closed_form, kl_gradient, kl_integrals
from .linear import linear_vae
from .mle import ml_kl
from .priors import free_bits, two_layer_kl, vamp_reduces
from .scaling import loss_scaling

CLAIMS = {
    "kl_integrals": kl_integrals,
    "kl_closed_form": kl_closed_form,
    "kl_gradient": kl_gradient,
    "elbo_mixture": elbo_mixture,
    "elbo_continuous": elbo_continuous,
    "ml_kl": ml_kl,
    "estimators": estimators,
    "decoder_sigma": decoder_sigma,
    "linear_vae": linear_vae,
    "posterior_collapse": posterior_collapse,
    "beta_bound": beta_bound,
    "loss_scaling": loss_scaling,
    "continuous_bernoulli": continuous_bernoulli,
    "iwae_bound": iwae_bound,
    "iwae_gradient": iwae_gradient,
    "flows": flow_claims,
    "two_layer_kl": two_layer_kl,
    "vamp_reduces": vamp_reduces,
    "free_bits": free_bits,
}
"""Claim name -> function(seed) -> list of Claim, in the order of the derivation."""


def run_claims(names=None, seed=0) -> list:
    """Run the named claims (all of them, in order, if ``names`` is None) with one seed.

    A name is a key of ``CLAIMS`` ("kl_gradient") or a dotted prefix of record names
    ("kl_gradient.library", "estimators.square"), which runs that claim and keeps the matching
    records. Raises ValueError for an unknown name, listing the valid ones.
    """
    if names is None:
        names = list(CLAIMS)
    elif isinstance(names, str):
        names = [names]
    else:
        names = _name_list(names)
    check_claim_names(names)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    records, computed = [], {}
    for name in names:
        group = name.split(".")[0]
        if group not in computed:
            computed[group] = CLAIMS[group](seed=seed)
        chosen = [r for r in computed[group] if r.name == name or r.name.startswith(name + ".")
                  or name == group]
        if not chosen:
            raise ValueError(f"unknown claim {name!r}; {group} has "
                             f"{', '.join(r.name for r in computed[group])}")
        records.extend(chosen)
    return records


def check_claim_names(names) -> None:
    """Raise ValueError (one line, listing the valid names) unless every name starts with a key
    of ``CLAIMS``."""
    names = [names] if isinstance(names, str) else _name_list(names)
    if not names:
        raise ValueError("names must list at least one claim (None runs all of them): "
                         f"{', '.join(CLAIMS)}")
    for name in names:
        if not isinstance(name, str) or name.split(".")[0] not in CLAIMS:
            raise ValueError(f"unknown claim {name!r}; valid claims: {', '.join(CLAIMS)} "
                             "(or a record name such as kl_gradient.library)")


def _name_list(names) -> list:
    try:
        return list(names)
    except TypeError:
        raise ValueError(f"names must be None, a claim name or a list of claim names, got "
                         f"{names!r}") from None


__all__ = ["Claim", "CLAIMS", "run_claims", "check_claim_names", "make_claim", "compare_gradients",
           "kl_integrals", "kl_closed_form", "kl_gradient", "elbo_mixture", "elbo_continuous",
           "ml_kl", "estimators", "decoder_sigma", "linear_vae", "posterior_collapse",
           "beta_bound", "loss_scaling", "continuous_bernoulli", "iwae_bound", "iwae_gradient",
           "flow_claims", "two_layer_kl", "vamp_reduces", "free_bits"]
