"""Training: the loop over shuffled mini-batches with its divergence guard (``fit``), the
protocol through which it trains each kind of model and their registry (``kind``), the VAE's
kind (``vae``; the VQ-VAE's and the MADE prior's are in vae_np.vq) and the progress line of a
long run (``progress``). The optimizers are vae_np.optim."""
from . import vae     # registers the VAE's kind with kind.MODEL_KINDS
