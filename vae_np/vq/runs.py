"""The run directory of a VQ-VAE (``python -m vae_np train --model vqvae``).

The layout is that of :mod:`vae_np.runs.directory` with the VQ model's own entries::

    RUN_DIR/
      config.json      "model": "vqvae", "vqvae": VQVAE.config(), and the training entries
                       (dataset, optimizer, lr, optimizer_options, lr_schedule, epochs,
                       batch_size, seed, reseed, limit, subset_seed, data_dir, no_download,
                       image_shape; see vae_np.cli.common.limited_data for limit and subset_seed)
      checkpoint.npz   every parameter under its name; ema.count (K,), ema.sum (K, D) (the EMA
                       state, also under codebook_update="grad", where it is unused); optim.<key>;
                       rng_state; epoch; history.<column>; config (config.json as a string)
      history.csv      HISTORY_COLUMNS, one row per epoch
      figures/*.png    reconstructions.png, code_usage.png (when matplotlib is installed)

Every file is written atomically (``runs.atomic_open``), so a killed run resumes bit-exact from
the last completed epoch.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..runs import directory as runs
from ..runs.config import CONFIG_NAME, check_config, read_config_json
from .model import VQVAE

MODEL_NAME = "vqvae"
HISTORY_COLUMNS = ("epoch", "train_loss", "train_recon", "train_codebook_loss",
                   "train_commitment_loss", "usage", "perplexity", "reseeded", "test_recon",
                   "test_usage", "test_perplexity", "lr", "seconds")
TRAINING_ENTRIES = ("dataset", "optimizer", "lr", "epochs", "batch_size", "seed", "vqvae")


def is_vq_config(config) -> bool:
    """Whether a config.json's contents describe a VQ-VAE run."""
    return isinstance(config, dict) and config.get("model") == MODEL_NAME


def read_vq_config(run_dir) -> dict:
    """Read and check ``RUN_DIR/config.json`` of a VQ-VAE run (ValueError naming the file)."""
    config, path = read_config_json(run_dir)
    if not is_vq_config(config):
        raise ValueError(f"{path}: not a VQ-VAE run (expected \"model\": \"vqvae\")")
    check_config(config, path, TRAINING_ENTRIES)
    if not isinstance(config["vqvae"], dict):
        raise ValueError(f"{path}: entry 'vqvae' must be a JSON object of VQVAE arguments")
    return config


def build_vq_model(config, path=CONFIG_NAME, dtype=None) -> VQVAE:
    """``VQVAE(**config["vqvae"])`` (optionally in another dtype), errors naming ``path``."""
    kwargs = dict(config["vqvae"])
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        return VQVAE(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{path}: 'vqvae' entry does not describe a VQVAE: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: 'vqvae' entry: {exc}") from None


def save_vq_checkpoint(run_dir, model, optimizer, rng, epoch, history, config) -> Path:
    """Write ``RUN_DIR/checkpoint.npz`` atomically (layout in the module docstring)."""
    arrays = {name: value for name, value in model.params.items()}
    arrays["ema.count"], arrays["ema.sum"] = model.ema_count, model.ema_sum
    for key, value in optimizer.state_dict().items():
        arrays["optim." + key] = np.asarray(value)
    arrays["rng_state"] = np.array(json.dumps(rng.bit_generator.state))
    arrays["epoch"] = np.array(int(epoch))
    arrays["format_version"] = np.array(runs.FORMAT_VERSION)
    for column in HISTORY_COLUMNS:
        arrays["history." + column] = np.asarray(history.get(column, []), dtype=np.float64)
    arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    path = Path(run_dir) / runs.CHECKPOINT_NAME
    with runs.atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def restore_vq_checkpoint(arrays, config, model, path="checkpoint"):
    """Parameters and EMA state of a loaded checkpoint into ``model``; returns (epoch, history).

    Refuses a checkpoint written by another model than ``config`` describes (every entry of
    "vqvae" but the seed), or whose EMA state has the wrong shape.
    """
    try:
        saved = json.loads(str(arrays["config"])).get("vqvae", {})
    except (KeyError, ValueError, AttributeError):
        raise ValueError(f"{path}: missing or invalid stored 'config'") from None
    keys = sorted((set(saved) | set(config["vqvae"])) - {"seed"})
    diffs = [f"{k} {saved.get(k)!r} in the checkpoint vs {config['vqvae'].get(k)!r} in "
             f"{CONFIG_NAME}" for k in keys if saved.get(k) != config["vqvae"].get(k)]
    if diffs:
        raise ValueError(f"{path} was written by another model than {CONFIG_NAME} describes: "
                         + "; ".join(diffs))
    runs.restore_model(arrays, model, path)
    for key, target in (("ema.count", model.ema_count), ("ema.sum", model.ema_sum)):
        if key not in arrays or arrays[key].shape != target.shape:
            raise ValueError(f"{path}: {key} must have shape {target.shape}")
        target[...] = arrays[key]
    if "epoch" not in arrays:
        raise ValueError(f"{path}: checkpoint is missing 'epoch'")
    history = {c: arrays["history." + c].tolist() for c in HISTORY_COLUMNS
               if "history." + c in arrays}
    for column in ("epoch", "reseeded"):
        history[column] = [int(e) for e in history.get(column, [])]
    return int(arrays["epoch"]), history


def write_vq_history_csv(run_dir, history) -> Path:
    """Write ``history.csv`` (HISTORY_COLUMNS, one row per epoch) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row in zip(*(history[c] for c in HISTORY_COLUMNS)):
        writer.writerow([int(v) if c in ("epoch", "reseeded") else repr(float(v))
                         for c, v in zip(HISTORY_COLUMNS, row)])
    path = Path(run_dir) / runs.HISTORY_NAME
    with runs.atomic_open(path, "w") as f:
        f.write(buffer.getvalue())
    return path


def load_vq_run(run_dir, dtype=None):
    """A VQ-VAE run directory's model (with its checkpoint), config and history.

    Parameters
    ----------
    run_dir : a directory written by ``python -m vae_np train --model vqvae``
    dtype : None (the training dtype) or a float dtype for the model, e.g. float64

    Returns
    -------
    model : VQVAE;  config : dict (config.json);  history : dict column -> list (per epoch)
    """
    config = read_vq_config(run_dir)
    config_path = Path(run_dir) / CONFIG_NAME
    path = Path(run_dir) / runs.CHECKPOINT_NAME
    model = build_vq_model(config, config_path, dtype)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path} (no epoch of this run has "
                                f"completed; continue it with 'vae-np train --resume {run_dir}')")
    arrays = runs.load_checkpoint(path)
    _, history = restore_vq_checkpoint(arrays, config, model, path)
    return model, config, history
