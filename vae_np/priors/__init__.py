"""Priors beyond the design card's N(0, I) (which is ``vae_np.core.prior``'s): the VampPrior
(``vamp``: a mixture of the posterior at learned pseudo-inputs, Tomczak & Welling 2018) and a
second stochastic layer (``two_layer``: p(z1) = int p(z1|z2) p(z2) dz2 with q(z2|z1), Burda et
al. 2016), whose top prior is either of the others. Each is its own module; the lines below
register them with the model, which chooses them by keyword (``VAE(..., prior="vamp",
pseudo_inputs=500)``, ``VAE(..., z2_dim=50)``; see ``vae_np.core.registry``)."""
from ..core.prior import register_prior
from .two_layer import TwoLayerPrior
from .vamp import VampPrior

register_prior("vamp", VampPrior)
register_prior("two-layer", TwoLayerPrior)
