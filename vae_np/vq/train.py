"""Training the VQ-VAE: shuffled mini-batches, the codebook's health per epoch, dead codes
re-seeded.

Per epoch the history records the surrogate loss and its three terms, and two measures of the
codebook's use over all the epoch's code assignments (counts n_k, frequencies p_k = n_k / sum n):

    usage       = #{k : n_k > 0} / K              (the fraction of codes in use)
    perplexity  = exp(-sum_k p_k ln p_k)          (K when all codes are equally used, 1 for one)

A code unused for a whole epoch is dead: it is moved onto an encoder output drawn at random (by the
training rng) from the epoch's last batch, and the count is recorded as ``reseeded``.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_int, check_rng
from ..core.batch import check_unit_interval
from ..training.fit import TrainingDivergedError, _check_data, _finite_step, to_batch
from ..optim import Optimizer
from .model import VQVAE

HISTORY_KEYS = ("epoch", "loss", "recon", "codebook_loss", "commitment_loss", "usage",
                "perplexity", "reseeded", "seconds")


def code_statistics(counts):
    """(usage, perplexity) of code counts (K,): the fraction of codes used and exp(entropy)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts[counts > 0] / total
    return float(np.count_nonzero(counts) / counts.size), float(np.exp(-np.sum(p * np.log(p))))


def fit_vq(model, X, optimizer, epochs=1, batch_size=128, rng=None, callback=None,
           binarize=False, first_epoch=1, init_codebook=None, reseed=True):
    """Train a VQVAE on the rows of X by Adam (or any optimizer) steps on the surrogate loss.

    Parameters
    ----------
    model : VQVAE
    X : (N, x_dim) uint8 grey levels (scaled by 1/255 per batch) or floats
    optimizer : a vae_np.optim Optimizer on ``model.flat`` (under ``codebook_update="ema"`` the
        codebook's gradient is 0, so Adam leaves it where the EMA puts it)
    epochs, batch_size : ints >= 1
    rng : numpy.random.Generator for the codebook's initialisation, shuffling, binarization and
        re-seeding (default ``np.random.default_rng(model.seed)``)
    callback : ``callback(event)`` with event["kind"] "step" (epoch, step, steps, loss, examples,
        seconds) or "epoch" (the history row); returning False stops after that step
    binarize : a fresh Bernoulli draw x ~ Bern(grey level) for every batch (float X must lie in
        [0, 1])
    first_epoch : the number of the first epoch (a caller training one epoch at a time passes it)
    init_codebook : set the codebook to encoder outputs of a first random batch before training
        (default: when first_epoch is 1)
    reseed : move codes unused for a whole epoch onto encoder outputs of its last batch

    Returns
    -------
    history : dict of lists, one entry per epoch, keys HISTORY_KEYS (loss and its terms in nats
        per example, averaged over the epoch's examples)

    Raises
    ------
    TrainingDivergedError when the loss or gradient is not finite; the parameters are those from
    before that step.
    """
    if not isinstance(model, VQVAE):
        raise ValueError(f"model must be a vae_np.VQVAE, got {type(model).__name__}")
    X = _check_data(X, model)
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a vae_np.optim Optimizer, got {optimizer!r}")
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    first_epoch = check_int("first_epoch", first_epoch)
    rng = np.random.default_rng(model.seed) if rng is None else check_rng("rng", rng)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {callback!r}")
    for name, flag in (("binarize", binarize), ("reseed", reseed)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    if binarize and X.dtype != np.uint8:     # x ~ Bernoulli(x) needs probabilities
        check_unit_interval("X", X, "binarize=True (x ~ Bernoulli(x))")
    if init_codebook is None:
        init_codebook = first_epoch == 1
    n = X.shape[0]
    if init_codebook:
        first = rng.choice(n, size=min(batch_size, n), replace=False)
        model.init_codebook(to_batch(X, first, model.dtype, rng if binarize else None), rng)

    steps = -(-n // batch_size)
    history = {key: [] for key in HISTORY_KEYS}
    for epoch in range(first_epoch, first_epoch + epochs):
        start = time.perf_counter()
        totals = np.zeros(4)                   # loss, nll, codebook term, commitment term
        counts = np.zeros(model.codebook_size, dtype=np.int64)
        order = rng.permutation(n)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            x = to_batch(X, index, model.dtype, rng if binarize else None)
            t = _step(model, x, optimizer, epoch, step + 1, steps)
            v = t.values
            totals += len(index) * np.array([t.loss, v["nll"].mean(), v["codebook_loss"].mean(),
                                             v["commitment_loss"].mean()])
            counts += np.bincount(v["codes"].ravel(), minlength=model.codebook_size)
            if callback is not None and callback(dict(
                    kind="step", epoch=epoch, step=step + 1, steps=steps, loss=t.loss,
                    examples=min((step + 1) * batch_size, n),
                    seconds=time.perf_counter() - start)) is False:
                return history
        usage, perplexity = code_statistics(counts)
        dead = np.flatnonzero(counts == 0)
        if reseed and dead.size:
            model.reseed(dead, t.values["z_e"], rng)
        row = dict(zip(HISTORY_KEYS, (epoch, *(totals / n).tolist(), usage, perplexity,
                                      int(dead.size) if reseed else 0,
                                      time.perf_counter() - start)))
        for key in HISTORY_KEYS:
            history[key].append(row[key])
        if callback is not None:
            callback(dict(kind="epoch", **row))
    return history


def _step(model, x, optimizer, epoch, step, steps):
    """Forward, backward, the divergence guard, the optimizer step and (EMA) the codebook's."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t = model.backward(model.forward(x))
        finite = _finite_step(t.loss, model.grad_flat)
    if not finite:
        raise TrainingDivergedError(
            f"non-finite loss or gradient at epoch {epoch}, step {step}/{steps} "
            f"(loss = {t.loss:.6g}); the parameters are those from before this step. "
            f"Try a lower learning rate.", epoch=epoch, step=step, loss=t.loss)
    optimizer.step(model.flat, model.grad_flat)
    if model.codebook_update == "ema":
        model.ema_update(t.values["z_e"], t.values["codes"])
    return t
