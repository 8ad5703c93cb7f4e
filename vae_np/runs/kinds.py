"""What a run directory holds for each kind of model, and the registry of run kinds.

A run's config.json names its model kind (``"kind": "vae"``) and holds the model's constructor
arguments under ``"model"``; the kind says how to build that model, which of its entries only
change the initialisation (a checkpoint written with another seed still fits), which columns
its history has and which config entries ``train --resume`` needs. The parameters, optimizer
state, rng state, epoch, history and the model's state (a VQ codebook's EMA statistics, the
training kind's ``state()``) go into checkpoint.npz the same way for every kind
(:mod:`vae_np.runs.directory`).

A kind is a :class:`RunKind` registered with ``RUN_KINDS.register(name, kind)``: the VAE's is
below, the VQ-VAE's in ``vae_np.vq.runs``. The command line's part of a kind (its options and
what evaluate, sample, ... print) is in ``vae_np.cli.kinds``.

Config formats: format 2 (this one) names the kind. Format 1 did not: a VAE's config.json had
``"model": {...}``, another kind's ``"model": NAME, NAME: {...}`` (a VQ-VAE's ``"model": "vqvae",
"vqvae": {...}``). :func:`with_kind` reads both, so older run directories load, evaluate and
resume; a resumed run's config.json is rewritten in format 2.
"""
from __future__ import annotations

from ..core.model import VAE
from ..core.registry import Registry

FORMAT_VERSION = 2
"""The run directory's format: 2 names the model kind in config.json ("kind")."""
VAE_HISTORY_COLUMNS = ("epoch", "train_loss", "train_recon", "train_kl", "test_loss",
                       "test_recon", "test_kl", "lr", "seconds")
VAE_TRAINING_ENTRIES = ("dataset", "optimizer", "lr", "lr_schedule", "epochs", "batch_size", "k",
                        "seed", "schedule")


class RunKind:
    """The run directory's side of a model kind (the protocol).

    Parameters
    ----------
    name : config.json's "kind"
    title : the kind in messages ("VAE", "VQ-VAE")
    model_class : built as ``model_class(**config["model"])``
    history_columns : the columns of history.csv and of the checkpoint's history, in order
    required : the config entries ``train --resume`` needs (beside "model")
    init_only : entries of "model" that only change the initialisation: a checkpoint whose
        stored model differs from config.json in these alone is still the model's
    integer_columns : history columns that hold integers (written as such in history.csv)
    entries : more config entries this kind's config.json may hold, name -> check(name, value)
    """

    def __init__(self, name, title, model_class, history_columns, required, init_only=("seed",),
                 integer_columns=("epoch",), entries=None):
        self.name, self.title, self.model_class = name, title, model_class
        self.history_columns, self.required = tuple(history_columns), tuple(required)
        self.init_only, self.integer_columns = tuple(init_only), tuple(integer_columns)
        self.entries = dict(entries or {})

    def __repr__(self):
        return f"RunKind({self.name!r})"

    def build(self, entry: dict, dtype=None, path=None):
        """``model_class(**entry)``, optionally in another dtype (e.g. float64 for evaluation);
        ValueError naming ``path`` (the config file) when the entry does not describe one."""
        kwargs = dict(entry)
        if dtype is not None:
            kwargs["dtype"] = dtype
        try:
            return self.model_class(**kwargs)
        except TypeError as exc:
            where = f"{path}: " if path is not None else "config "
            raise ValueError(f"{where}'model' entry does not describe a {self.title}: "
                             f"{exc}") from None
        except ValueError as exc:
            if path is None:
                raise
            raise ValueError(f"{path}: 'model' entry: {exc}") from None


class RunKindRegistry(Registry):
    """name -> RunKind; ``default`` is the kind of a format-1 config.json with a "model" object."""

    def __init__(self, kind, default):
        super().__init__(kind)
        self.default = default

    def _check(self, name, entry):
        if not isinstance(entry, RunKind) or entry.name != name:
            raise ValueError(f"a run kind must be a RunKind named {name!r}, got {entry!r}")


RUN_KINDS = RunKindRegistry("model kind", default="vae")
RUN_KINDS.register("vae", RunKind("vae", "VAE", VAE, VAE_HISTORY_COLUMNS, VAE_TRAINING_ENTRIES,
                                  init_only=("seed", "init_std")))


def kind_name(config) -> str:
    """The model kind a config.json's contents name: its "kind"; for format 1, the kind named
    by a string "model" that has an entry of its own, else the default (a VAE). Unchecked: a
    config that is not a JSON object, or names no registered kind, gets the default or its
    name, and reading it (``runs.read_config``) reports the problem."""
    if not isinstance(config, dict):
        return RUN_KINDS.default
    if "kind" in config:
        return config["kind"]
    model = config.get("model")
    if isinstance(model, str) and isinstance(config.get(model), dict):
        return model
    return RUN_KINDS.default


def with_kind(config: dict) -> dict:
    """A copy of a config.json's contents in format 2: "kind" names the model kind and "model"
    holds the model's arguments (a format-1 ``"model": NAME, NAME: {...}`` is moved there), and
    "format_version" says 2."""
    out = dict(config)
    if "kind" in out:
        return out
    name = kind_name(out)
    if isinstance(out.get("model"), str) and out["model"] == name:
        out["model"] = out.pop(name)
    out["kind"] = name
    if "format_version" in out:
        out["format_version"] = FORMAT_VERSION
    return out
