"""Discrete latents: the VQ-VAE (``model``), its training loop and run directories (``train``,
``runs``), the MADE prior over its codes (``made``) and the bound on -ln p(x) that prior gives
(``prior``). The codebook's ops are in vae_np.ops.vq and vae_np.ops.masked."""
