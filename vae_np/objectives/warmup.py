"""KL warm-up (Sønderby et al. 2016; Bowman et al. 2016): the ELBO's KL weighted by beta, raised
linearly from 0 to 1 over the first ``warmup_epochs`` epochs.

    loss = mean_b [ 1/K sum_k nll_kb + beta kl_b ],   beta = min(1, (epoch - 1) / N)

so epoch 1 trains the reconstruction alone (beta = 0), epoch N + 1 and later the ELBO
(beta = 1). Early in training the KL's pull of q(z|x) towards the prior is what makes units
collapse (the top layer of a deep model first); warm-up lets the units start to carry
information before that pull reaches full strength. Until beta = 1 the loss is not a bound on
-ln p(x) (``verify --claim beta_bound``); the history's recon + kl is still the -ELBO.

    d loss / d nll_kb = 1 / (K B),   d loss / d kl_b = beta / B

The epoch hook
--------------
beta is state of the objective, set by ``begin_epoch(epoch)`` (the objective protocol's hook,
``vae_np.core.objective``), which the training loop calls before each epoch with the epoch's
number, counted from 1 over the whole run (a resumed run passes its own count, so beta depends
on nothing else and a resume is exact). A step before any ``begin_epoch`` is a ValueError rather
than a silent beta. ``beta`` may also be set by hand (a float in [0, 1]).

Use an instance as the objective: ``fit(model, X, opt, objective=KLWarmup(warmup_epochs=10))``,
``model.loss_and_grads(x, objective=w)``. It is registered as "warmup" so that a run can name
it; built by name it has no schedule and says so.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int
from ..core.objective import NegativeELBO


class KLWarmup(NegativeELBO):
    """-ELBO with the KL weighted by beta = min(1, (epoch - 1) / warmup_epochs).

    Parameters
    ----------
    warmup_epochs : int >= 1, N: beta is 0 in epoch 1 and reaches 1 at epoch N + 1

    Attributes
    ----------
    beta : float in [0, 1], or None before the first ``begin_epoch``
    """
    minimum_epochs = 1
    equation = "loss = mean_b [ 1/K sum_k nll + beta kl ]"
    grad_equations = {**NegativeELBO.grad_equations,
                      "kl": "dkl = d loss / d kl = beta / B   (KL warm-up)"}

    def __init__(self, warmup_epochs=None):
        if warmup_epochs is None and self.minimum_epochs:
            raise ValueError(f"warmup_epochs must be an integer >= 1 (the epochs over which beta "
                             f"rises from 0 to 1); objective={self.name!r} by name has none: pass "
                             f"vae_np.objectives.{type(self).__name__}(warmup_epochs=N) as the "
                             f"objective")
        self.warmup_epochs = check_int("warmup_epochs", 0 if warmup_epochs is None
                                       else warmup_epochs, minimum=self.minimum_epochs)
        self.beta = 1.0 if self.warmup_epochs == 0 else None

    name = "warmup"

    def begin_epoch(self, epoch):
        """beta = min(1, (epoch - 1) / warmup_epochs) for the epoch about to run (1, 2, ...)."""
        epoch = check_int("epoch", epoch)
        self.beta = min(1.0, (epoch - 1) / self.warmup_epochs) if self.warmup_epochs else 1.0

    def _beta(self):
        if self.beta is None:
            raise ValueError(f"{type(self).__name__}: beta is not set; the training loop calls "
                             f"begin_epoch(epoch) before each epoch (or set .beta by hand)")
        beta = float(self.beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta!r}")
        return beta

    def forward(self, trace, model):
        beta = self._beta()
        v = trace.values
        trace.record("loss", np.mean(v["nll"].mean(axis=0) + beta * v["kl"]),
                     f"{self.equation}   (beta = {beta:g})")

    def backward(self, trace):
        super().backward(trace)
        trace.grads["kl"] = trace.grads["kl"] * self._beta()       # d loss / d kl_b = beta / B

    def history_loss(self, trace, recon, kl):
        """The loss being minimised, recon + beta kl (the history's recon + kl is the -ELBO)."""
        return float(trace.loss)

    def __repr__(self):
        return f"{type(self).__name__}(warmup_epochs={self.warmup_epochs})"
