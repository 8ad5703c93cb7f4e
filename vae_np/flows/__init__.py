"""Normalizing flows: a chain of planar or radial steps from raw parameters (``chain``), the flow
posterior of the VAE (``posterior``), and flows fitted to 2-D densities (``fit2d``, with the
targets of Rezende & Mohamed's Figure 3 in ``targets2d``). The steps' ops are in vae_np.ops.

The line below registers the flow posterior as a posterior family of the VAE, chosen by the
keywords ``flow`` and ``flow_length`` (``VAE(..., flow="planar", flow_length=10)``)."""
from ..core.posterior import register_posterior
from .posterior import FlowPosterior

register_posterior("flow", FlowPosterior)
