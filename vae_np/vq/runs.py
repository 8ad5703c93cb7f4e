"""The run directory of a VQ-VAE (``python -m vae_np train --model vqvae``): the run kind
"vqvae" (:mod:`vae_np.runs.kinds`), in the one layout of :mod:`vae_np.runs.directory`::

    RUN_DIR/
      config.json      "kind": "vqvae", "model": VQVAE.config(), "reseed" (re-seed dead codes),
                       and the training entries (dataset, optimizer, lr, optimizer_options,
                       lr_schedule, epochs, batch_size, seed, limit, subset_seed, data_dir,
                       no_download, image_shape; see vae_np.cli.common.limited_data for limit
                       and subset_seed). Runs written before the kind entry have
                       "model": "vqvae", "vqvae": VQVAE.config() instead; both are read.
      checkpoint.npz   every parameter under its name; ema.count (K,), ema.sum (K, D) (the EMA
                       state, also under codebook_update="grad", where it is unused); optim.<key>;
                       rng_state; epoch; format_version; history.<column>; config
      history.csv      HISTORY_COLUMNS, one row per epoch
      figures/*.png    reconstructions.png, code_usage.png (when matplotlib is installed)
      prior.npz, prior.json   the learned prior over the codes, once ``fit-prior`` has run
                       (vae_np.vq.prior)

The history's columns: train_loss and its three terms (train_recon = -ln p(x|z_q),
train_codebook_loss, train_commitment_loss), averaged over the epoch's steps; usage,
perplexity and reseeded of the epoch's code assignments (vae_np.vq.train); test_recon,
test_usage and test_perplexity on the test set after the epoch; the epoch's lr and seconds.

Every file is written atomically (``runs.atomic_open``), so a killed run resumes bit-exact from
the last completed epoch.
"""
from __future__ import annotations

from pathlib import Path

from ..runs import directory as runs
from ..runs.kinds import RUN_KINDS, RunKind
from .model import VQVAE

MODEL_NAME = "vqvae"
HISTORY_COLUMNS = ("epoch", "train_loss", "train_recon", "train_codebook_loss",
                   "train_commitment_loss", "usage", "perplexity", "reseeded", "test_recon",
                   "test_usage", "test_perplexity", "lr", "seconds")
TRAINING_ENTRIES = ("dataset", "optimizer", "lr", "lr_schedule", "epochs", "batch_size", "seed")


def _check_reseed(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


VQ_RUN = RUN_KINDS.register(MODEL_NAME, RunKind(
    MODEL_NAME, "VQ-VAE", VQVAE, HISTORY_COLUMNS, TRAINING_ENTRIES, init_only=("seed",),
    integer_columns=("epoch", "reseeded"), entries={"reseed": _check_reseed}))


def load_vq_run(run_dir, dtype=None):
    """A VQ-VAE run directory's model (with its checkpoint), config and history: ``runs.load_run``
    for a run of kind "vqvae" (ValueError naming config.json for a run of another kind).

    Parameters
    ----------
    run_dir : a directory written by ``python -m vae_np train --model vqvae``
    dtype : None (the training dtype) or a float dtype for the model, e.g. float64

    Returns
    -------
    model : VQVAE;  config : dict (config.json, format 2);  history : dict column -> list
    """
    config = runs.read_config(run_dir)
    if config["kind"] != MODEL_NAME:
        raise ValueError(f"{Path(run_dir) / runs.CONFIG_NAME}: not a VQ-VAE run (its kind "
                         f"is {config['kind']!r})")
    config, model, _, history = runs.load_run(run_dir, dtype)
    return model, config, history
