"""vae_np: a pure-NumPy Variational Autoencoder whose every gradient is written out and checked.

Public API
----------
VAE                      the model (vae_np.core.model)
VQVAE                    the VQ-VAE: discrete latents, straight-through gradient (vae_np.vq)
MADEPrior                an autoregressive prior over a VQ-VAE's codes (vae_np.vq.made)
fit                      the training loop (vae_np.training.fit)
SGD, Momentum, Adagrad, Adam   optimizers on the flat parameter vector (vae_np.optim)
gradcheck                finite-difference, directional and complex-step checks (package)
ops                      the forward/backward pairs of the derivation (package)

Where things live (docs/design.md draws the map and what each part may import):

ops/           pure forward/backward pairs, each formula first
core/          the design-card model: layers, trace, posterior, prior, likelihood, objective,
               model, and the registries of its extension points (core/registry.py)
objectives/, flows/, vq/   the derivation's next steps: better bounds, richer posteriors,
               discrete latents (objectives/ and flows/ register their components with core)
training/      the training loop;  optim/  the optimizers
runs/          run directories, configs, presets;  evaluate.py  test bounds and active units
gradcheck/     gradient checking;  testing/  the public assertions for your own ops
teaching/      the one-page lecture, explain, the exercises;  derivations/  the claims
figures/       pictures;  data/  the data sets;  cli/  the command line
"""
from . import flows, objectives, priors   # first: they register their components with core
from . import gradcheck, ops
from .core.model import VAE
from .training.fit import TrainingDivergedError, fit
from .optim import SGD, Adagrad, Adam, Momentum
from .vq.made import MADEPrior
from .vq.model import VQVAE

__version__ = "0.1.0"
__all__ = ["VAE", "VQVAE", "MADEPrior", "fit", "SGD", "Momentum", "Adagrad", "Adam",
           "TrainingDivergedError", "gradcheck", "ops", "__version__"]
