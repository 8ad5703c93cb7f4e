"""Free bits (Kingma et al. 2016, appendix C): each KL group's term replaced by max(lambda, KL_j).

    loss = mean_b [ 1/K sum_k nll_kb ] + beta sum_j max(lambda, KLbar_j),
    KLbar_j = mean_b kl_groups_bj     (the group's KL averaged over the minibatch)

A group that carries less than lambda nats is not pushed further towards the prior: the floor
holds and its gradient is zero, so the encoder is free to use those lambda nats. This is the
paper's minibatch version: the max is taken of the batch mean, not of each example's KL.

What a group is comes from the model's KL term (``record_groups``, ``vae_np.core.prior``): a
latent unit where the KL has a closed form per unit (the diagonal Gaussian posterior and N(0, I):
G = Z groups), else the whole stochastic layer (a Monte Carlo KL: a flow, the VampPrior: G = 1);
the two-layer model with its closed-form top KL has the lower layer as one group and each unit
of z2 as one (G = 1 + Z2).

    d loss / d nll_kb = 1 / (K B)
    d loss / d kl_groups_bj = beta / B where KLbar_j > lambda, else 0   (the floor holds)
    d loss / d kl_b = 0     (kl is still recorded, for the history's -ELBO)

beta is KL warm-up's (``vae_np.objectives.warmup``: ``warmup_epochs=0``, the default, keeps it
at 1). lambda is in nats per group; the paper's values are per group too. Free bits is not a
bound on -ln p(x) while a floor holds (the loss is then above the -ELBO).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int, check_positive
from .warmup import KLWarmup


class FreeBits(KLWarmup):
    """-ELBO with each KL group's batch mean floored at ``free_bits`` nats.

    Parameters
    ----------
    free_bits : float >= 0, lambda in nats per group
    warmup_epochs : int >= 0, KL warm-up as in ``KLWarmup`` (0: beta = 1, no hook needed)
    """
    minimum_epochs = 0
    couples_examples = True     # the floor reads the batch mean: fit(threads=N) runs one thread
    name = "free-bits"
    equation = "loss = mean_b [ 1/K sum_k nll ] + beta sum_j max(lambda, mean_b kl_j)"
    grad_equations = {**KLWarmup.grad_equations,
                      "kl": "dkl = 0   (free bits: the loss reads kl_groups)",
                      "kl_groups": "dkl_j = beta / B where mean_b kl_j > lambda, else 0"}

    def __init__(self, free_bits=None, warmup_epochs=0):
        if free_bits is None:
            raise ValueError("free_bits must be a number >= 0 (lambda, nats per KL group); "
                             "objective='free-bits' by name has none: pass "
                             "vae_np.objectives.FreeBits(free_bits=LAMBDA) as the objective")
        self.free_bits = check_positive("free_bits", free_bits, allow_zero=True)
        super().__init__(warmup_epochs)

    def forward(self, trace, model):
        beta = self._beta()
        v = trace.values
        groups = model.kl_term.record_groups(trace)                  # (B, G)
        mean = groups.mean(axis=0)                                   # KLbar_j
        free = mean > self.free_bits                                 # where the floor does not hold
        loss = v["nll"].mean() + beta * np.sum(np.maximum(self.free_bits, mean))
        trace.record("loss", loss, f"{self.equation}   (lambda = {self.free_bits:g}, "
                                   f"beta = {beta:g})", cache=free)

    def backward(self, trace):
        K, B = trace.values["nll"].shape
        dtype = trace.values["nll"].dtype
        d = trace.grads
        free = trace.caches["loss"]
        d["loss"] = np.ones((), dtype=dtype)
        d["nll"] = np.full((K, B), 1 / (K * B), dtype=dtype)
        d["kl"] = np.zeros(B, dtype=dtype)
        row = np.where(free, self._beta() / B, 0.0).astype(dtype)    # zero where clamped
        d["kl_groups"] = np.broadcast_to(row, trace.values["kl_groups"].shape)

    def __repr__(self):
        return f"FreeBits(free_bits={self.free_bits:g}, warmup_epochs={self.warmup_epochs})"


def elbo_objective(warmup_epochs=0, free_bits=None):
    """The ELBO objective with the KL options a caller (the command line) was given: "elbo"
    (the registered name) with neither, ``KLWarmup(warmup_epochs)`` with warm-up alone, and
    ``FreeBits(free_bits, warmup_epochs)`` with free bits (and warm-up, if asked).

    Parameters
    ----------
    warmup_epochs : int >= 0 (0: none);  free_bits : float >= 0 or None (none)
    """
    warmup_epochs = check_int("warmup_epochs", warmup_epochs, minimum=0)
    if free_bits is not None:
        return FreeBits(free_bits, warmup_epochs)
    return KLWarmup(warmup_epochs) if warmup_epochs else "elbo"
