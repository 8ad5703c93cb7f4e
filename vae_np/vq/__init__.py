"""Discrete latents: the VQ-VAE (``model``), its training kind for ``vae_np.fit`` (``train``) and
its run kind (``runs``), the MADE prior over its codes (``made``) with its training kind and the
bound on -ln p(x) that prior gives (``prior``). The codebook's ops are in vae_np.ops.vq and
vae_np.ops.masked.

Importing this package registers the VQ-VAE and the MADE prior with vae_np.training.kind's
MODEL_KINDS and the VQ-VAE's run kind with vae_np.runs.kinds' RUN_KINDS.
"""
from . import prior, runs, train    # noqa: F401  (they register their kinds)
