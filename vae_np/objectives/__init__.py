"""Objectives beyond the design card's negative ELBO (which is ``vae_np.core.objective``'s):
the importance-weighted bound (``iwae``) and its doubly-reparameterized encoder gradient
(``dreg``). Each is its own module; the lines below register them with the model, which finds
them by name (``VAE.loss_and_grads(..., objective=, estimator=)``, ``fit``, ``train
--objective``). A new objective is a module here and one line below."""
from ..core.objective import register_objective
from .dreg import NegativeIWAEDReG
from .iwae import NegativeIWAE

register_objective("iwae", NegativeIWAE)
register_objective("iwae", NegativeIWAEDReG, estimator="dreg")
