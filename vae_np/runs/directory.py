"""The run directory: config, atomic checkpoints and the history CSV of one training run.

One layout for every model kind (stable; every file but the figures is rewritten after each
epoch)::

    RUN_DIR/
      config.json      "kind" (the model kind, vae_np.runs.kinds: "vae", "vqvae"), "model" (the
                       model's arguments, ``model.config()``), data set, optimizer, lr, schedule,
                       seed, epochs and the kind's own training entries (format_version 2; the
                       format-1 config.json of older runs is read too, see vae_np.runs.kinds)
      checkpoint.npz   loadable with ``np.load(path, allow_pickle=False)``:
                         <name>            every parameter under its name in ``model.params``
                         <state>           the model's state beside its parameters, as its
                                           training kind's ``state()`` names it (a VQ-VAE's
                                           ema.count (K,) and ema.sum (K, D); a VAE has none)
                         optim.<key>       optimizer state (joint schedule): lr, t, m, v, ...
                         optim.encoder.<key>, optim.decoder.<key>   (alternating schedule)
                         rng_state         JSON of the training Generator's bit_generator.state
                         epoch             number of completed epochs
                         format_version    2
                         history.<column>  one value per completed epoch (the kind's columns)
                         config            config.json as a string
      history.csv      the kind's history columns, one row per epoch (a VAE's: HISTORY_COLUMNS,
                       nats per example, see below; a VQ-VAE's: vae_np.vq.runs)
      figures/*.png    drawn by the kind when matplotlib (the ``plot`` extra) is installed

A VAE's history columns: ``train_loss`` is the training objective averaged over the epoch's steps
(:func:`loss_name` names it: the -ELBO, or -L_k, the negative importance-weighted bound over the
run's k samples, for ``objective = "iwae"``); ``train_recon`` the mean -ln p(x|z) over the k
samples and ``train_kl`` the ELBO's KL term (the closed form for the Gaussian posterior, the Monte
Carlo estimate for a flow), whatever the objective, so that train_recon + train_kl is the -ELBO
and, for an IWAE run, is above train_loss. ``test_loss`` is the same objective on the test set
after the epoch (-L_k with k samples for an IWAE run), ``test_recon`` and ``test_kl`` the terms of
its one-sample -ELBO. (IWAE runs written before these definitions recorded train_kl as
train_loss - train_recon and the test -ELBO as test_loss; their rows keep those values.)

Files are written to a temporary file in the same directory, flushed, fsync'ed and renamed onto
their name (``os.replace`` is atomic), so a crash leaves either the old file or the new one. The
temporary file a crash may leave (``.<name>.*.tmp``) is never read; ``train --resume`` deletes it.
"""
from __future__ import annotations

import csv
import inspect
import io
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..training.kind import MODEL_KINDS
from .config import (  # noqa: F401  (re-exported: the run directory's one module to import)
    CONFIG_ENTRIES, CONFIG_NAME, TRAINING_ENTRIES, build_model, build_optimizers, check_config,
    read_config, read_config_json, run_kind)
from .kinds import FORMAT_VERSION, RUN_KINDS, VAE_HISTORY_COLUMNS, with_kind

CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_NAME = "history.csv"
FIGURES_DIR = "figures"
HISTORY_COLUMNS = VAE_HISTORY_COLUMNS
"""A VAE run's history columns (each kind's: ``RunKind.history_columns``)."""


def loss_name(config: dict) -> str:
    """The name of a run's training objective as its history and figures print it: "-ELBO", or
    "-L_k" (k the run's samples) for ``objective = "iwae"`` (runs made before the objective
    entry trained the ELBO)."""
    if config.get("objective", "elbo") == "iwae":
        return f"-L_{config['k']}"
    return "-ELBO"


@contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp creates 0600; give the usual permissions
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- config
def write_config(run_dir, config: dict) -> Path:
    """Write ``config.json`` (atomically) and return its path."""
    path = Path(run_dir) / CONFIG_NAME
    with atomic_open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def optimizer_prefixes(n_optimizers: int) -> tuple:
    """Checkpoint key prefixes of the optimizer states."""
    return ("optim.",) if n_optimizers == 1 else ("optim.encoder.", "optim.decoder.")


# ---------------------------------------------------------------------- checkpoint
def model_state(model) -> dict:
    """The model's state beside its parameters (its training kind's ``state()``), name -> the
    live array: a VQ-VAE's ema.count and ema.sum; empty for a VAE."""
    return MODEL_KINDS.of(model)(model).state()


def _run_kind_of(config, model):
    """The RunKind of a run: named by its config, else the one whose model class ``model`` is."""
    if config is not None:
        return run_kind(with_kind(config))
    for kind in RUN_KINDS.values():
        if isinstance(model, kind.model_class):
            return kind
    return RUN_KINDS[RUN_KINDS.default]


def save_checkpoint(run_dir, model, optimizers, rng, epoch, history, config=None) -> Path:
    """Write ``RUN_DIR/checkpoint.npz`` atomically (layout in the module docstring).

    Parameters
    ----------
    model : the run's model (VAE, VQVAE, ...);  optimizers : tuple of Optimizer (1 or 2)
    rng : numpy.random.Generator;  epoch : int, completed epochs
    history : dict column -> list (the kind's history columns; a VAE's HISTORY_COLUMNS)
    config : dict or None, stored as a JSON string so the checkpoint describes itself; it names
        the model kind (None: the kind whose model class ``model`` is)
    """
    arrays = {name: value for name, value in model.params.items()}
    arrays.update(model_state(model))
    for prefix, optimizer in zip(optimizer_prefixes(len(optimizers)), optimizers):
        for key, value in optimizer.state_dict().items():
            arrays[prefix + key] = np.asarray(value)
    arrays["rng_state"] = np.array(json.dumps(rng.bit_generator.state))
    arrays["epoch"] = np.array(int(epoch))
    arrays["format_version"] = np.array(FORMAT_VERSION)
    for column in _run_kind_of(config, model).history_columns:
        arrays["history." + column] = np.asarray(history.get(column, []), dtype=np.float64)
    if config is not None:
        arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    path = Path(run_dir) / CHECKPOINT_NAME
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path) -> dict:
    """Every array of a checkpoint, read eagerly with ``allow_pickle=False``.

    Raises
    ------
    FileNotFoundError  no such file
    ValueError         naming the file, when it is truncated, corrupt or not an .npz archive
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise ValueError(f"{path}: not a regular file (a directory?); a checkpoint is an "
                             f".npz archive written by 'vae-np train'")
        raise FileNotFoundError(f"checkpoint not found: {path}")
    key = None
    try:
        with open(path, "rb") as f:  # np.load leaks its own handle on a corrupt zip
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                arrays = {}
                for key in npz.files:
                    arrays[key] = npz[key]
                return arrays
    except ValueError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if "allow_pickle" in str(exc):
            if key is not None:     # an object array: unpickling it could run any code
                raise ValueError(f"{path}: array {key!r} is a pickled object array; checkpoints "
                                 f"are read without pickle (allow_pickle=False), so it is "
                                 f"refused") from None
            reason = "not an .npz archive; pickled data is never loaded"
        raise ValueError(f"{path}: corrupt or truncated checkpoint ({reason}); restore it from a "
                         f"backup or start a new run") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: "
                         f"{exc}); restore it from a backup or start a new run") from None


def check_checkpoint(arrays: dict, config: dict, path="checkpoint",
                     config_path=CONFIG_NAME, model=None) -> None:
    """Refuse a checkpoint written by another model than the one ``config`` describes.

    Compares the model kind and the model entry stored in the checkpoint (when present; either
    config format) with ``config``'s (every entry but the kind's initialisation-only ones, e.g. a
    VAE's ``seed`` and ``init_std``), then the dtype of every stored parameter with the config's
    dtype: the names of ``model.params`` when the model built from ``config`` is given, else
    every dotted name outside optim. and history. (a model's state may hold other dtypes).
    Shapes are compared by :func:`restore_model`.

    Raises ValueError naming both files and spelling out each difference, e.g.
    ``checkpoint.npz was written by another model than config.json describes: hidden [64] in the
    checkpoint vs [32] in config.json``.
    """
    config = with_kind(config)
    kind = run_kind(config, config_path)
    entry = config["model"]
    if "config" in arrays:
        try:
            saved = with_kind(json.loads(str(arrays["config"])))
            saved_model = saved["model"]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError(f"{path}: the stored 'config' is not a JSON object with a 'model' "
                             f"entry") from None
        if saved["kind"] != kind.name:
            raise ValueError(f"{path} was written by another model kind than {config_path} "
                             f"describes: {saved['kind']!r} in the checkpoint vs "
                             f"{kind.name!r} in {config_path}")
        if not isinstance(saved_model, dict):
            raise ValueError(f"{path}: the stored 'config' has no 'model' object")
        keys = sorted((set(saved_model) | set(entry)) - set(kind.init_only))
        missing = "(missing)"
        diffs = [f"{key} {saved_model.get(key, missing)!r} in the checkpoint vs "
                 f"{entry.get(key, missing)!r} in {config_path}"
                 for key in keys if saved_model.get(key, missing) != entry.get(key, missing)]
        if diffs:
            raise ValueError(f"{path} was written by another model than {config_path} describes: "
                             + "; ".join(diffs))
    dtype = entry.get("dtype", inspect.signature(kind.model_class).parameters["dtype"].default)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{config_path}: model dtype {dtype!r} is not a dtype") from None
    for name, value in arrays.items():
        is_parameter = (name in model.params if model is not None else
                        "." in name and not name.startswith(("optim.", "history.")))
        if is_parameter and value.dtype != dtype:
            raise ValueError(f"{path}: parameter {name} is {value.dtype} in the checkpoint but "
                             f"{config_path} gives dtype {dtype} (dtype {value.dtype} vs {dtype})")


def restore_model(arrays: dict, model, path="checkpoint") -> None:
    """Copy the parameters and the model's state (:func:`model_state`) of a loaded checkpoint
    into ``model`` (casting to its dtype).

    Raises ValueError naming ``path`` for a missing parameter or a shape that differs from the
    model built from config.json.
    """
    missing = [name for name in model.params if name not in arrays]
    if missing:
        raise ValueError(f"{path}: checkpoint is missing parameter(s) {missing} of the model "
                         f"{model!r}")
    for name, target in model.params.items():
        if arrays[name].shape != target.shape:
            raise ValueError(f"{path}: parameter {name} has shape {arrays[name].shape} in the "
                             f"checkpoint but {target.shape} in the model of {CONFIG_NAME}")
        target[...] = arrays[name]
    for key, target in model_state(model).items():
        if key not in arrays or arrays[key].shape != target.shape:
            raise ValueError(f"{path}: {key} must have shape {target.shape}")
        target[...] = arrays[key]


def restore_optimizers(arrays: dict, optimizers, model, path="checkpoint") -> None:
    """Load each optimizer's state (hyperparameters, step count, moment buffers)."""
    groups = MODEL_KINDS.of(model)(model).groups if len(optimizers) > 1 else None
    sizes = ((model.flat.size,) if groups is None
             else tuple(len(model.flat[part]) for part in groups))
    for prefix, optimizer, size in zip(optimizer_prefixes(len(optimizers)), optimizers, sizes):
        state = {key[len(prefix):]: value for key, value in arrays.items()
                 if key.startswith(prefix) and "." not in key[len(prefix):]}
        for name in optimizer.buffers:
            if name in state and state[name].shape != (size,):
                raise ValueError(f"{path}: optimizer buffer {prefix}{name} has shape "
                                 f"{state[name].shape}, expected ({size},)")
        try:
            optimizer.load_state_dict(state)
        except ValueError as exc:
            raise ValueError(f"{path}: {prefix}* {exc}") from None


def restore_rng(arrays: dict, path="checkpoint") -> np.random.Generator:
    """The training Generator in the state it had when the checkpoint was written."""
    try:
        state = json.loads(str(arrays["rng_state"]))
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: missing or invalid rng_state ({exc})") from None
    return np.random.Generator(bit_generator)


def read_history(arrays: dict, kind=None) -> dict:
    """The history stored in a checkpoint, as a dict column -> list (the kind's integer columns
    as ints). ``kind``: the run's RunKind (default: the one the stored config names)."""
    if kind is None:
        try:
            kind = run_kind(with_kind(json.loads(str(arrays["config"]))))
        except (KeyError, ValueError, TypeError, AttributeError):
            kind = RUN_KINDS[RUN_KINDS.default]
    history = {c: arrays["history." + c].tolist() for c in kind.history_columns
               if "history." + c in arrays}
    for column in kind.integer_columns:
        if column in history:
            history[column] = [int(e) for e in history[column]]
    return history


def load_run(run_dir, dtype=None):
    """Config, model (with the checkpoint's parameters and state), epoch and history of a run
    directory of any model kind.

    Parameters
    ----------
    run_dir : path of a directory written by ``vae-np train``
    dtype : None (the training dtype) or a float dtype for the model, e.g. float64

    Returns
    -------
    config : dict (format 2: "kind" names the model kind);  model : the kind's model (VAE,
    VQVAE, ...);  epoch : int;  history : dict column -> list
    """
    config = read_config(run_dir)
    config_path = Path(run_dir) / CONFIG_NAME
    path = Path(run_dir) / CHECKPOINT_NAME
    model = build_model(config, dtype, path=config_path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path} (no epoch of this run has "
                                f"completed; continue it with 'vae-np train --resume {run_dir}')")
    arrays = load_checkpoint(path)
    check_checkpoint(arrays, config, path, config_path, model)
    restore_model(arrays, model, path)
    if "epoch" not in arrays:
        raise ValueError(f"{path}: checkpoint is missing 'epoch'")
    return config, model, int(arrays["epoch"]), read_history(arrays, run_kind(config))


def remove_stale_temp_files(run_dir) -> list:
    """Delete the temporary files (``.<name>.*.tmp``) an interrupted :func:`atomic_open` left
    beside the run's files; they are never read. Returns the paths removed."""
    removed = []
    for name in (CONFIG_NAME, CHECKPOINT_NAME, HISTORY_NAME):
        for tmp in Path(run_dir).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


# ---------------------------------------------------------------------- history
def write_history_csv(run_dir, history: dict, kind=None) -> Path:
    """Write ``history.csv`` (the kind's history columns, one row per epoch; integer columns as
    integers, floats by repr so that they read back exactly) atomically. ``kind``: the run's
    RunKind (default: a VAE's, HISTORY_COLUMNS)."""
    kind = RUN_KINDS[RUN_KINDS.default] if kind is None else kind
    path = Path(run_dir) / HISTORY_NAME
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(kind.history_columns)
    for row in zip(*(history[c] for c in kind.history_columns)):
        writer.writerow([int(v) if c in kind.integer_columns else repr(float(v))
                         for c, v in zip(kind.history_columns, row)])
    with atomic_open(path, "w") as f:
        f.write(buffer.getvalue())
    return path


def read_history_csv(path) -> dict:
    """Read a ``history.csv`` back into a dict column -> list of floats (epoch as int)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else HISTORY_COLUMNS
    return {c: [int(r[c]) if c == "epoch" else float(r[c]) for r in rows] for c in columns}
