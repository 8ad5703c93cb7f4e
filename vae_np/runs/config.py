"""The run's config.json: reading it, checking every entry, and building the model and optimizers
it describes. Part of the run directory (see :mod:`vae_np.runs.directory`, which re-exports these
names); the model kinds a config.json can name are in :mod:`vae_np.runs.kinds`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._validate import check_int
from ..core.objective import OBJECTIVES
from ..data.registry import DATASET_NAMES
from ..training.fit import SCHEDULES
from ..optim import OPTIMIZERS
from .kinds import RUN_KINDS, VAE_TRAINING_ENTRIES, kind_name, with_kind
from .presets import LR_SCHEDULES

CONFIG_NAME = "config.json"


def read_config_json(run_dir):
    """(the parsed JSON of RUN_DIR/config.json, its path), unchecked: what every kind of run
    (VAE, VQ-VAE) reads first. FileNotFoundError for a missing directory or file, ValueError
    naming the file for text that is not JSON."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_NAME
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {CONFIG_NAME} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def read_config(run_dir) -> dict:
    """Read and check ``RUN_DIR/config.json``, in format 2 whatever format it was written in
    (:func:`vae_np.runs.kinds.with_kind`): "kind" names the model kind, "model" holds the
    model's arguments.

    Raises
    ------
    FileNotFoundError  RUN_DIR or its config.json does not exist
    ValueError         config.json is not a JSON object with a ``model`` entry, names no
                       registered kind, or an entry has the wrong type or range
    """
    config, path = read_config_json(run_dir)
    if not isinstance(config, dict) or "model" not in config:
        raise ValueError(f"{path}: expected a JSON object with a 'model' entry")
    config = with_kind(config)
    if not isinstance(config["model"], dict):
        raise ValueError(f"{path}: expected a JSON object with a 'model' entry (a JSON object "
                         f"of the model's arguments)")
    check_config(config, path)
    return config


def run_kind(config: dict, path=CONFIG_NAME):
    """The RunKind a (format-2) config names; ValueError naming ``path`` for an unknown one."""
    name = config.get("kind", kind_name(config))
    if not isinstance(name, str) or name not in RUN_KINDS:
        raise ValueError(f"{path}: entry 'kind' must be one of {sorted(RUN_KINDS)}, got {name!r}")
    return RUN_KINDS[name]


def _int(minimum):
    return lambda name, value: check_int(name, value, minimum)


def _entry(test, what):
    """A check of one entry: ValueError ``NAME must be WHAT, got VALUE`` unless ``test(value)``."""
    def check(name, value):
        if not test(value):
            raise ValueError(f"{name} must be {what}, got {value!r}")
    return check


def _one_of(names):
    return _entry(lambda v: isinstance(v, str) and v in names, f"one of {list(names)}")


def _optional(check, what):
    """``check``, or null; the message names both."""
    def check_optional(name, value):
        if value is not None:
            try:
                check(name, value)
            except ValueError:
                raise ValueError(f"{name} must be {what}, got {value!r}") from None
    return check_optional


def _image_shape(name, value):
    _entry(lambda v: isinstance(v, list) and 1 <= len(v) <= 3,
           "a list of 1 to 3 integers >= 1")(name, value)
    for size in value:
        try:
            check_int(name, size, 1)
        except ValueError:
            raise ValueError(f"{name} must be a list of 1 to 3 integers >= 1, "
                             f"got {value!r}") from None


# entry -> its check(name, value); "image_shape" is checked against the model by the commands
CONFIG_ENTRIES = {
    "dataset": _one_of(DATASET_NAMES),
    "optimizer": _one_of(sorted(OPTIMIZERS)),
    "lr": _entry(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                 and bool(np.isfinite(v)) and v > 0, "a finite number > 0"),
    "optimizer_options": _entry(lambda v: v is None or isinstance(v, dict),
                                "null or a JSON object"),
    "lr_schedule": _one_of(LR_SCHEDULES),
    "epochs": _int(1), "batch_size": _int(1), "k": _int(1), "seed": _int(0),
    "schedule": _one_of(SCHEDULES),
    "objective": _one_of(sorted(OBJECTIVES)),
    "estimator": _one_of(["dreg", "standard"]),
    "warmup_epochs": _int(0),                                         # a VAE's KL warm-up
    "free_bits": _optional(_entry(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and bool(np.isfinite(v)) and v >= 0, "a finite number >= 0"),
                           "null or a finite number >= 0"),          # a VAE's free bits
    "limit": _optional(_int(1), "null or an integer >= 1"),
    "subset_seed": _optional(_int(0), "null or an integer >= 0"),     # see vae_np.data.subset
    "data_dir": _entry(lambda v: v is None or isinstance(v, str), "null or a path"),
    "no_download": _entry(lambda v: isinstance(v, bool), "true or false"),
    "image_shape": _image_shape,
}
TRAINING_ENTRIES = VAE_TRAINING_ENTRIES
"""The entries ``vae-np train --resume`` needs for a VAE run (each kind's: ``RunKind.required``)."""


def check_config(config: dict, path=CONFIG_NAME, required=()) -> None:
    """Check the entries of a run's config: its model kind must be registered, each entry of
    CONFIG_ENTRIES (and of the kind's own ``entries``) that is present must have the right type
    and range, and each name in ``required`` must be present.

    Raises ValueError naming ``path`` and the entry, e.g.
    ``RUN/config.json: entry 'epochs' must be an integer >= 1, got 'six'``.
    """
    kind = run_kind(config, path)
    for key in required:
        if key not in config:
            raise ValueError(f"{path}: entry {key!r} is missing")
    for key, check in {**CONFIG_ENTRIES, **kind.entries}.items():
        if key in config:
            check(f"{path}: entry {key!r}", config[key])


def build_model(config: dict, dtype=None, path=None):
    """The model ``config`` describes: its kind's ``model_class(**config["model"])``,
    optionally in another dtype (e.g. float64 for evaluation).

    ``path`` (the config file) is named in the error when the entry does not describe one.
    """
    config = with_kind(config)
    return run_kind(config, path or CONFIG_NAME).build(config["model"], dtype, path)


def build_optimizers(config: dict) -> tuple:
    """One optimizer (joint schedule) or an (encoder, decoder) pair (alternating schedule)."""
    name = config["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    options = dict(config.get("optimizer_options") or {})
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    try:
        optimizer = OPTIMIZERS[name](config["lr"], **options)
    except TypeError as exc:
        raise ValueError(f"optimizer {name!r} does not accept options {options}: {exc}") from None
    if config.get("schedule", "joint") == "alternating":
        return optimizer, optimizer.spawn()
    return (optimizer,)
