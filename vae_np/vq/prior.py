"""The VQ-VAE's learned prior and the bound on -ln p(x) it gives.

A VQ-VAE's encoder is deterministic: q(c|x) puts all its mass on the nearest codes c(x) (M
positions, K values each). With a prior over code vectors the model is the latent-variable model
p(x) = sum_c prior(c) p(x | z_q = e_c), and the ELBO with this one-hot q is

    ELBO = E_q[ln p(x | c)] - KL(q || prior) = ln p(x | c(x)) + ln prior(c(x)),

because KL(q || prior) = sum_c q(c) ln(q(c) / prior(c)) = ln(1 / prior(c(x))) for a one-hot q.
So the per-example

    bound(x) = -ln p(x | c(x)) - ln prior(c(x))   >=   -ln p(x)            (nats)

with equality only where the model's own posterior p(c | x) is one-hot at c(x): the gap is
-ln p(c(x) | x). Training the VQ-VAE used a uniform prior implicitly (the constant M ln K is
dropped from its loss); ``fit_prior`` then fits a MADE prior (vae_np.vq.made) to the codes of the
training set by maximum likelihood, which lowers the bound by as much as the codes are
predictable.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._validate import check_int, check_rng
from ..runs import directory as runs
from ..training.fit import fit
from ..training.kind import MODEL_KINDS, ModelKind
from .made import MADEPrior

PRIOR_WEIGHTS, PRIOR_INFO = "prior.npz", "prior.json"
ENCODE_BATCH = 500


class VQBound(NamedTuple):
    """Per-example parts of the bound, each (N,) in nats; ``codes`` (N, M) are c(x)."""
    bound: np.ndarray          # recon + prior_nll  >=  -ln p(x)
    recon: np.ndarray          # -ln p(x | z_q = e_c(x))
    prior_nll: np.ndarray      # -ln prior(c(x)) = KL(q || prior) for the one-hot q
    codes: np.ndarray


def encode_all(model, X, batch_size=ENCODE_BATCH):
    """c(x) for every row of X, (N, M) int64, in batches of ``batch_size``."""
    batch_size = check_int("batch_size", batch_size)
    _check_rows(X)
    return np.concatenate([model.encode_codes(X[i:i + batch_size])
                           for i in range(0, len(X), batch_size)])


def _check_rows(X):
    if np.ndim(X) != 2 or len(X) == 0:
        raise ValueError(f"X must be a (N, x_dim) array with N >= 1 examples, got shape "
                         f"{np.shape(X)}")


def check_pair(model, prior):
    """ValueError unless the prior is over the model's M positions and K codes."""
    if not isinstance(prior, MADEPrior):
        raise ValueError(f"prior must be a MADEPrior, got {type(prior).__name__}")
    if (prior.n_latents, prior.codebook_size) != (model.n_latents, model.codebook_size):
        raise ValueError(f"prior must be over the model's codes: the model has M = "
                         f"{model.n_latents} positions of K = {model.codebook_size} codes, the "
                         f"prior M = {prior.n_latents}, K = {prior.codebook_size}")


def vq_bound(model, prior, X, batch_size=ENCODE_BATCH) -> VQBound:
    """bound(x) = -ln p(x | c(x)) - ln prior(c(x)) >= -ln p(x) for every row of X (module
    docstring), with its two parts and the codes."""
    check_pair(model, prior)
    batch_size = check_int("batch_size", batch_size)
    _check_rows(X)
    parts = []
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size]
        codes = model.encode_codes(x)
        recon = np.asarray(model.nll_given_codes(x, codes), dtype=np.float64)
        prior_nll = -np.asarray(prior.log_prob(codes), dtype=np.float64)
        parts.append((recon, prior_nll, codes))
    recon, prior_nll, codes = (np.concatenate(p) for p in zip(*parts))
    return VQBound(recon + prior_nll, recon, prior_nll, codes)


def code_usage(codes, codebook_size):
    """(fraction of the K codes used at least once, perplexity exp(H) of the code frequencies,
    counts (K,)) over all positions of ``codes`` (N, M)."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=codebook_size)
    freq = counts / counts.sum()
    used = freq > 0
    entropy = -float(np.sum(freq[used] * np.log(freq[used])))
    return float(used.mean()), float(np.exp(entropy)), counts


class MADEKind(ModelKind):
    """How ``fit`` trains a MADE prior (protocol in :mod:`vae_np.training.kind`): X is the (N, M)
    code vectors, a batch is rows of it, and the one term is the loss, the batch's mean
    -ln prior(c) (nats; recorded as ``loss``)."""
    model_class = MADEPrior

    def check_data(self, X):
        return self.model.check_codes(X)

    def batch(self, X, index, rng):
        return X[index]

    def run(self, model, inputs):
        return (model.loss_and_grads(inputs[0])[0],), {}

    def replica(self):
        """A MADEPrior for another thread: this prior's parameters (``flat``, ``params``) and
        masks, with a gradient vector of its own (``FlatParameters.replica``): its
        ``loss_and_grads`` writes ``grads``, which is all it writes."""
        twin = copy.copy(self.model)
        twin.store = self.model.store.replica()
        twin.grad_flat, twin.grads = twin.store.grad_flat, twin.store.grads
        return twin


MODEL_KINDS.register("made", MADEKind)


def fit_prior(prior, codes, optimizer, epochs, batch_size, rng, callback=None,
              codes_test=None, codes_valid=None, threads=None):
    """Fit the prior to ``codes`` (N, M) by minimising the mean -ln prior over shuffled batches:
    ``vae_np.fit`` on the prior, with the held-out codes as monitors and early stopping as its
    ``keep_best`` (a thin wrapper that returns the history as rows).

    Parameters
    ----------
    prior : MADEPrior;  codes : (N, M) integers in [0, K);  optimizer : a vae_np.optim optimizer
    epochs, batch_size : ints;  rng : numpy Generator (the shuffles)
    callback : called with {"kind": "step", epoch, step, steps, loss, examples, seconds} after each
        step and {"kind": "epoch", **row} after each epoch
    codes_test : optional (N', M) codes whose mean -ln prior is recorded after each epoch
    codes_valid : optional held-out codes for early stopping: their mean -ln prior is recorded
        after each epoch, and the prior ends with the parameters of the epoch where it was lowest
        (a MADE of millions of weights starts to overfit 50000 code vectors within a few epochs)
    threads : fit's (None: the cores, at most 2; each batch split into one shard a thread)

    Returns
    -------
    history : list of dicts (epoch, train_nll: the epoch's mean batch loss, test_nll, valid_nll,
        best: whether the prior kept this epoch's parameters, seconds)
    """
    if not isinstance(prior, MADEPrior):
        raise ValueError(f"prior must be a MADEPrior, got {type(prior).__name__}")
    codes = prior.check_codes(codes)
    monitor = {}
    for name, held_out in (("test_nll", codes_test), ("valid_nll", codes_valid)):
        if held_out is not None:
            held_out = prior.check_codes(held_out, "codes_" + name[:-4])
            monitor[name] = lambda model, c=held_out: float(-np.mean(model.log_prob(c)))
    rng = check_rng("rng", rng)

    def as_row(event):
        return dict(epoch=event["epoch"], train_nll=event["loss"],
                    test_nll=event.get("test_nll"), valid_nll=event.get("valid_nll"),
                    best=event.get("best", True), seconds=round(event["seconds"], 3))

    def report(event):
        if callback:
            callback(event if event["kind"] == "step" else dict(kind="epoch", **as_row(event)))

    history = fit(prior, codes, optimizer, epochs, batch_size, rng=rng, callback=report,
                  monitor=monitor, keep_best="valid_nll" if codes_valid is not None else None,
                  threads=threads)
    return [as_row({key: values[i] for key, values in history.items()})
            for i in range(len(history["epoch"]))]


def save_prior(run_dir, prior, info=None):
    """Write RUN_DIR/prior.npz (the flat parameters) and RUN_DIR/prior.json (the prior's config and
    ``info``, e.g. fit settings and history). Returns the two paths."""
    run_dir = Path(run_dir)
    weights, meta = run_dir / PRIOR_WEIGHTS, run_dir / PRIOR_INFO
    with runs.atomic_open(weights, "wb") as f:       # a killed fit-prior leaves no half file
        np.savez(f, flat=prior.flat)
    with runs.atomic_open(meta, "w") as f:
        f.write(json.dumps(dict(prior=prior.config(), **(info or {})), indent=1) + "\n")
    return weights, meta


def load_prior(run_dir, dtype=None):
    """(prior, info) from RUN_DIR/prior.npz and prior.json; FileNotFoundError naming the command
    that writes them when absent, ValueError when they do not fit together. ``dtype`` (e.g.
    float64) rebuilds the prior in another dtype than it was fitted in."""
    run_dir = Path(run_dir)
    weights, meta = run_dir / PRIOR_WEIGHTS, run_dir / PRIOR_INFO
    if not weights.is_file() or not meta.is_file():
        raise FileNotFoundError(f"{run_dir} has no learned prior: run 'python -m vae_np "
                                f"fit-prior {run_dir}' first")
    try:
        info = json.loads(meta.read_text())
        prior = MADEPrior(**dict(info["prior"], **({} if dtype is None else
                                                   dict(dtype=np.dtype(dtype).name))))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{meta}: not a prior description written by fit-prior ({exc})") from None
    try:                    # a truncated or foreign file: one ValueError naming it
        flat = runs.load_checkpoint(weights).get("flat")
    except ValueError:
        raise ValueError(f"{weights}: corrupt or truncated, not a prior written by fit-prior; "
                         f"run 'python -m vae_np fit-prior {run_dir}' again") from None
    if flat is None or flat.shape != prior.flat.shape:
        raise ValueError(f"{weights}: expected {prior.flat.size} parameters for {prior}, got "
                         f"{None if flat is None else flat.shape}")
    prior.flat[:] = flat
    return prior, info
