"""vae_np: a pure-NumPy Variational Autoencoder whose every gradient is written out and checked.

Public API
----------
VAE                      the model (vae_np.model)
VQVAE                    the VQ-VAE: discrete latents, straight-through gradient (vae_np.vqvae)
MADEPrior                an autoregressive prior over a VQ-VAE's codes (vae_np.made); its bound
                         on -ln p(x) and fitting in vae_np.vq_prior
fit                      the training loop (vae_np.train)
SGD, Momentum, Adagrad, Adam   optimizers on the flat parameter vector (vae_np.optim)
gradcheck                finite-difference, directional and complex-step checks (module)
ops                      the forward/backward pairs of the derivation (module)

The model's parts: vae_np.trace (every intermediate of a step by name), vae_np.layers (dense
layers and stacks on one flat parameter vector), vae_np.posterior (q(z|x)), vae_np.likelihood
(p(x|z)), vae_np.objective (the negative ELBO and the importance-weighted bound).

Further modules: vae_np.derivations (the derivation's identities as executable claims),
vae_np.estimators (score-function vs reparameterization gradients), vae_np.evaluate (test ELBO,
IWAE bound, active units), vae_np.data (sprites, MNIST, binarized MNIST, Frey Face), vae_np.runs
(run directories and checkpoints), vae_np.explain (the backprop lesson), vae_np.testing
(gradient assertions and hypothesis strategies for your own ops), vae_np.exercises (backprop
exercises that grade themselves), vae_np.figures and vae_np.claim_figures (pictures of runs and
of the claims), vae_np.numerics (central differences, relative error, ln 2 pi).
"""
from . import gradcheck, ops
from .model import VAE
from .vqvae import VQVAE
from .made import MADEPrior
from .optim import SGD, Adagrad, Adam, Momentum
from .train import TrainingDivergedError, fit

__version__ = "0.1.0"
__all__ = ["VAE", "VQVAE", "MADEPrior", "fit", "SGD", "Momentum", "Adagrad", "Adam",
           "TrainingDivergedError", "gradcheck", "ops", "__version__"]
