"""The objective as a component: how the terms of the trace become one loss.

The objective protocol
----------------------
An objective is a class (``Objective`` gives the defaults) registered in ``OBJECTIVES`` under its
name, or in ``ESTIMATORS`` under (name, estimator) for a gradient estimator other than the
loss's own gradient (``register_objective``). The model builds one instance per model and
(name, estimator) on first use. An instance offers:

    equation, grad_equations   the loss's equation; d<name> -> equation for each term it reads
    requires                   capability -> what this objective needs it for: the posterior must
                               offer each capability (``posterior.capabilities``), else the model
                               refuses the objective with the posterior's reason
    prior_requires             capability -> what this objective needs it for, asked of a prior
                               that has parameters of its own: such a prior must list it in its
                               ``capabilities`` (``vae_np.core.prior``), else the model refuses
                               the objective; a prior without parameters (N(0, I)) is not asked.
                               DReG asks for ``PRIOR_PARAMETER_GRADIENT``. Default {}
    forward(trace, model)      record ``loss`` (and its own intermediates) from the terms: nll and
                               kl are in the trace; ln p(z) and ln q(z|x) at the samples come from
                               ``model.prior.log_density(trace)`` and
                               ``model.posterior.log_density(trace)`` when it needs them
    backward(trace)            record d loss / d term for each term it read (a term it leaves out
                               sends no gradient), and for the posterior's optional outputs it
                               uses (``log_q_path``)
    backward_z(trace)          the hook after the decoder's backward has put d z (the decoder's
                               path only) in the trace and before the KL term, the prior and the
                               posterior add theirs: an estimator may reweight that path here
                               (DReG); the default leaves it
    history_loss(trace, recon, kl)   the batch's loss as a training history reports it
    begin_epoch(epoch)         called by the training loop before each epoch (numbered from 1,
                               the run's own count on a resume): an objective whose loss depends
                               on the epoch (KL warm-up) sets its state here; the default does
                               nothing

``NegativeELBO`` is the design-card objective: with the KL term the model records (closed form for
a diagonal Gaussian posterior and the standard normal prior, Monte Carlo otherwise),

    loss = mean_b [ 1/K sum_k nll_kb + kl_b ]          (nats per example)
    d loss / d nll_kb = 1 / (K B),   d loss / d kl_b = 1 / B.

The importance-weighted bound and its DReG estimator live in ``vae_np.objectives`` and register
themselves there. A new objective is its own module and one ``register_objective`` line.
"""
from __future__ import annotations

import numpy as np

from .registry import Registry


class Objective:
    """The defaults of the objective protocol: needs no capability, leaves d z alone, and reports
    the loss it recorded."""
    requires: dict = {}
    prior_requires: dict = {}

    def backward_z(self, trace):
        """Called once the decoder's gradient has reached z; the default changes nothing."""

    def history_loss(self, trace, recon, kl):
        """The batch's loss for a training history: the loss this objective recorded."""
        return float(trace.loss)

    def begin_epoch(self, epoch):
        """Called before each epoch (1, 2, ...); an objective without per-epoch state ignores it."""


class NegativeELBO(Objective):
    """-ELBO = E_q[-ln p(x|z)] + KL(q(z|x) || p(z)), Monte Carlo over K samples."""
    equation = "loss = mean_b [ 1/K sum_k nll + kl ]"

    def forward(self, trace, model):
        nll, kl = trace.values["nll"], trace.values["kl"]
        loss = np.mean(nll.mean(axis=0) + kl)
        trace.record("loss", loss, self.equation)

    grad_equations = {"loss": "dloss = 1", "nll": "dnll = d loss / d nll = 1 / (K B)",
                      "kl": "dkl = d loss / d kl = 1 / B"}

    def backward(self, trace):
        K, B = trace.values["nll"].shape
        dtype = trace.values["nll"].dtype
        d = trace.grads
        d["loss"] = np.ones((), dtype=dtype)
        d["nll"] = np.full((K, B), 1 / (K * B), dtype=dtype)    # d loss / d nll_kb
        d["kl"] = np.full(B, 1 / B, dtype=dtype)                # d loss / d kl_b

    def history_loss(self, trace, recon, kl):
        """recon + kl, summed in float64 (the number the history has always reported)."""
        return recon + kl


def log_weights(trace, model):
    """Record and return ln w = -nll + ln p(z) - ln q(z|x) per sample, (K, B): the importance
    log-weights ln p(x, z_k) - ln q(z_k | x), from the prior's and the posterior's densities."""
    v = trace.values
    log_pz = model.prior.log_density(trace)
    log_q = model.posterior.log_density(trace)
    return trace.record("log_w", -v["nll"] + log_pz - log_q, "ln w = -nll + ln p(z) - ln q(z|x)")


OBJECTIVES = Registry("objective")
"""objective name -> class (its own gradient, estimator "standard")."""
ESTIMATORS = Registry("estimator")
"""(objective, estimator) -> class, for estimators other than the objective's own gradient."""


def register_objective(name, cls, estimator="standard"):
    """Add an objective (or, with ``estimator``, another gradient estimator of a registered
    objective): the one line a new objective needs, in its package's __init__."""
    if estimator == "standard":
        return OBJECTIVES.register(name, cls)
    if not isinstance(estimator, str) or not estimator:
        raise ValueError(f"estimator must be a non-empty string, got {estimator!r}")
    if ESTIMATORS.get((name, estimator)) not in (None, cls):
        raise ValueError(f"estimator {estimator!r} of objective {name!r} is already registered")
    ESTIMATORS[name, estimator] = cls
    return cls


register_objective("elbo", NegativeELBO)
