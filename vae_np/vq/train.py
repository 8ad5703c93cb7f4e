"""How ``fit`` trains a VQ-VAE (the model kind of :class:`vae_np.VQVAE`; protocol in
:mod:`vae_np.training.kind`): the surrogate loss's terms, and the codebook's upkeep in the hooks.

    begin        the codebook set to encoder outputs of a first random batch (when training
                 starts at epoch 1, or with init_codebook=True)
    gradient     forward and backward; the terms loss, recon (-ln p(x|z_q)), codebook_loss,
                 commitment_loss, means over the batch
    after_step   under codebook_update="ema", one EMA step of the codebook from the batch; the
                 batch's code assignments counted
    end_epoch    two measures of the codebook's use over all the epoch's code assignments
                 (counts n_k, frequencies p_k = n_k / sum n):

                     usage       = #{k : n_k > 0} / K          (the fraction of codes in use)
                     perplexity  = exp(-sum_k p_k ln p_k)      (K when all codes are equally
                                                                used, 1 for one)

                 and a code unused for the whole epoch is dead: it is moved onto an encoder
                 output drawn at random (by the training rng) from the epoch's last batch; the
                 count is recorded as ``reseeded`` (0 with reseed=False).

With threads (``fit(threads=N)``) each shard's forward and backward runs on its own replica
(``VQKind.replica``) and the hooks read the whole batch: z_e and the codes concatenated over the
shards in order, so the EMA step and the counts are those of the batch.

Under ``codebook_update="ema"`` the codebook's gradient is 0, so the optimizer leaves it where
the EMA puts it. The EMA statistics (N_i, m_i) are the kind's ``state`` (checkpoints keep them).
"""
from __future__ import annotations

import copy

import numpy as np

from ..core.layers import MLP, Dense
from ..core.likelihood import DecoderSettings
from ..core.model import _activation
from ..training.fit import fit
from ..training.kind import MODEL_KINDS, ModelKind, check_flag, check_images, to_batch
from .model import VQVAE

HISTORY_KEYS = ("epoch", "loss", "recon", "codebook_loss", "commitment_loss", "usage",
                "perplexity", "reseeded", "seconds")
"""The columns of a VQ-VAE's ``fit`` history, in order."""


def code_statistics(counts):
    """(usage, perplexity) of code counts (K,): the fraction of codes used and exp(entropy)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts[counts > 0] / total
    return float(np.count_nonzero(counts) / counts.size), float(np.exp(-np.sum(p * np.log(p))))


class VQKind(ModelKind):
    """The VQ-VAE's training: ``fit(vq, X, ..., binarize=False, init_codebook=None,
    reseed=True)`` (the hooks in the module docstring)."""
    model_class = VQVAE
    options = dict(binarize=False, init_codebook=None, reseed=True)
    history_keys = ("loss", "recon", "codebook_loss", "commitment_loss")
    epoch_keys = ("usage", "perplexity", "reseeded")

    def __init__(self, model, binarize=False, init_codebook=None, reseed=True):
        super().__init__(model)
        self.binarize = check_flag("binarize", binarize)
        self.reseed = check_flag("reseed", reseed)
        self.init_codebook = None if init_codebook is None else check_flag("init_codebook",
                                                                           init_codebook)
        self.counts = np.zeros(model.codebook_size, dtype=np.int64)

    def state(self):
        return {"ema.count": self.model.ema_count, "ema.sum": self.model.ema_sum}

    def check_data(self, X):
        return check_images(X, self.model, self.binarize)

    def batch(self, X, index, rng):
        return to_batch(X, index, self.model.dtype, rng if self.binarize else None)

    def begin(self, X, rng, batch_size, first_epoch):
        init = first_epoch == 1 if self.init_codebook is None else self.init_codebook
        if init:
            n = X.shape[0]
            first = rng.choice(n, size=min(batch_size, n), replace=False)
            self.model.init_codebook(self.batch(X, first, rng), rng)

    def run(self, model, inputs):
        t = model.backward(model.forward(inputs[0]))
        v = t.values
        return ((t.loss, v["nll"].mean(), v["codebook_loss"].mean(),
                 v["commitment_loss"].mean()), {"z_e": v["z_e"], "codes": v["codes"]})

    def replica(self):
        """A VQVAE for another thread: this model's parameters (``flat``, ``params``, the
        codebook) and its other attributes (the EMA state: read by no forward or backward),
        with its layers rebuilt on a gradient vector of its own (``FlatParameters.replica``)."""
        model = self.model
        twin = copy.copy(model)
        store = twin._store = model._store.replica()
        twin.grad_flat, twin.grads = store.grad_flat, store.grads
        act = _activation(model.activation)
        depth = len(model.hidden)
        twin.encoder = MLP([Dense(store, f"encoder.{i}") for i in range(depth)], act,
                           "a", "h", "x")
        twin.enc_out = Dense(store, "encoder.out")
        twin.decoder = MLP([Dense(store, f"decoder.{i}") for i in range(depth)], act,
                           "c", "g", "z_q")
        twin.decoder_likelihood = type(model.decoder_likelihood)(
            store, twin.decoder.output_name, DecoderSettings())
        return twin

    def after_step(self):
        z_e, codes = self.outputs["z_e"], self.outputs["codes"]     # the whole batch's
        if self.model.codebook_update == "ema":
            self.model.ema_update(z_e, codes)
        self.counts += np.bincount(codes.ravel(), minlength=self.model.codebook_size)

    def end_epoch(self, rng):
        usage, perplexity = code_statistics(self.counts)
        dead = np.flatnonzero(self.counts == 0)
        if self.reseed and dead.size:
            self.model.reseed(dead, self.outputs["z_e"], rng)
        self.counts = np.zeros_like(self.counts)
        return dict(usage=usage, perplexity=perplexity,
                    reseeded=int(dead.size) if self.reseed else 0)


MODEL_KINDS.register("vqvae", VQKind)


def fit_vq(model, X, optimizer, epochs=1, batch_size=128, rng=None, callback=None,
           binarize=False, first_epoch=1, init_codebook=None, reseed=True):
    """Train a VQVAE on the rows of X: ``vae_np.fit`` with the VQ-VAE's keywords (a thin
    wrapper; the loop is fit's, the codebook's upkeep :class:`VQKind`'s).

    Parameters
    ----------
    model : VQVAE
    X : (N, x_dim) uint8 grey levels (scaled by 1/255 per batch) or floats
    optimizer : a vae_np.optim Optimizer on ``model.flat``
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
    return fit(model, X, optimizer, epochs, batch_size, rng=rng, callback=callback,
               binarize=binarize, first_epoch=first_epoch, init_codebook=init_codebook,
               reseed=reseed)
