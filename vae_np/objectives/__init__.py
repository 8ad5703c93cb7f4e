"""Objectives beyond the design card's negative ELBO (which is ``vae_np.core.objective``'s):
the importance-weighted bound (``iwae``) and its doubly-reparameterized encoder gradient
(``dreg``); the ELBO with KL warm-up (``warmup``) and with free bits (``free_bits``), which take
options and are passed as instances (``fit(..., objective=KLWarmup(warmup_epochs=10))``;
``elbo_objective(warmup_epochs=, free_bits=)`` builds the right one). Each is its own module;
the lines below register them with the model, which finds them by name (``VAE.loss_and_grads(...,
objective=, estimator=)``, ``fit``, ``train --objective``). A new objective is a module here and one line below."""
from ..core.objective import register_objective
from .dreg import NegativeIWAEDReG
from .free_bits import FreeBits, elbo_objective
from .iwae import NegativeIWAE
from .warmup import KLWarmup

register_objective("iwae", NegativeIWAE)
register_objective("iwae", NegativeIWAEDReG, estimator="dreg")
register_objective("warmup", KLWarmup)
register_objective("free-bits", FreeBits)

__all__ = ["NegativeIWAE", "NegativeIWAEDReG", "KLWarmup", "FreeBits", "elbo_objective"]
