"""The command line's side of a model kind, and the registry the commands dispatch through.

``train`` asks the kind for a new run's config.json (:meth:`CommandKind.new_config`, which
refuses the options of other kinds), trains the model with ``vae_np.fit`` and the kind's fit
keywords, and after each epoch asks the kind for the history row's columns and the printed
line, and at the end for the figures. ``evaluate``, ``sample``, ``reconstruct`` and
``fit-prior`` read RUN_DIR/config.json's kind (:func:`for_run`) and hand themselves to it. No
command names a kind; a kind that has no use for a command refuses it in one line.

A kind is a :class:`CommandKind` registered with ``COMMAND_KINDS.register(name, kind)`` under the
name of its run kind (:mod:`vae_np.runs.kinds`): the VAE's is ``vae_np.cli.vae``, the VQ-VAE's
``vae_np.cli.vq``; ``vae_np.cli`` imports both.
"""
from __future__ import annotations

from datetime import datetime

from ..core.registry import Registry
from ..runs import presets
from ..runs import directory as runs
from ..runs.kinds import RUN_KINDS, kind_name
from .args import flatten_widths
from .common import absolute_data_dir

SHARED = ("dataset", "hidden", "activation", "likelihood", "optimizer", "lr", "lr_schedule",
          "epochs", "batch_size", "dtype", "seed")
"""The settings of ``train`` every kind reads (the keys of ``presets.DEFAULTS`` they share)."""
RUN_OPTIONS = ("out", "limit", "optim_eps")
"""``train`` options of a new run beside the settings; ``--resume`` refuses them too."""


def given(args, names) -> list:
    """The options among ``names`` that the command line gave (not None, not False)."""
    return [n for n in names if getattr(args, n, None) not in (None, False)]


def flags(names) -> str:
    """``--z-dim, --k`` for ["z_dim", "k"]."""
    return ", ".join("--" + n.replace("_", "-") for n in names)


class CommandKind:
    """What the commands do with the runs of one model kind (the protocol; each method that a
    kind does not override refuses its command in one line).

    Attributes
    ----------
    name : the run kind's name (config.json's "kind", ``train --model NAME``)
    title : the kind in messages ("VAE")
    options : the ``train`` options (argparse dests) that only this kind reads
    dir_tag : a new run's default directory is runs/<dataset><dir_tag>-<timestamp>
    help : what ``train --model NAME`` trains, for --model's help
    """
    name = title = help = ""
    options: tuple = ()
    dir_tag = ""

    @property
    def run(self):
        """The run kind (:class:`vae_np.runs.kinds.RunKind`) of the same name."""
        return RUN_KINDS[self.name]

    # ------------------------------------------------------------------ train
    def add_arguments(self, parser):
        """Add this kind's options (``options``) to the ``train`` parser."""

    def new_config(self, args, explicit) -> dict:
        """A new run's config.json from the ``train`` options: refuses, in one line, the options
        that only other kinds read (``explicit``: the kind was chosen by --model), then
        :meth:`build_config`."""
        self.refuse_others(args, explicit)
        return self.build_config(args)

    def refuse_others(self, args, explicit):
        others = {}
        for kind in COMMAND_KINDS.values():
            for option in kind.options:
                if kind is not self and option not in self.options:
                    others.setdefault(option, kind)
        wrong = given(args, others)
        if not wrong:
            return
        if explicit:
            raise ValueError(f"{flags(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply "
                             f"to --model {self.name}")
        owners = {}
        for option in wrong:
            owners.setdefault(others[option].name, []).append(option)
        raise ValueError("; ".join(f"{flags(names)} appl{'ies' if len(names) == 1 else 'y'} to "
                                   f"--model {owner}" for owner, names in owners.items()))

    def build_config(self, args) -> dict:
        """The config of a new run (after the refusal of other kinds' options): use
        :func:`shared_settings` and :func:`run_config`."""
        raise NotImplementedError

    def fit_options(self, config) -> dict:
        """The keywords ``vae_np.fit`` gets for this run, beside the loop's own."""
        return {}

    def epoch_columns(self, run, history) -> dict:
        """The history row of an epoch but for epoch, lr and seconds: from ``history`` (fit's,
        one epoch) and the test set (``run.x_test``, ``run.test_rows``)."""
        raise NotImplementedError

    def epoch_line(self, run, row) -> str:
        """What ``train`` prints after an epoch (the row is complete)."""
        raise NotImplementedError

    def figures(self, run) -> list:
        """Draw the run's figures into RUN_DIR/figures; the paths written. May raise
        ``vae_np.figures.runs.PlotUnavailable``."""
        return []

    # ------------------------------------------------------------------ the other commands
    def evaluate(self, args) -> int:
        return self._refuse("evaluate", "evaluate", args)

    def sample(self, args) -> int:
        return self._refuse("sample", "sample", args)

    def reconstruct(self, args) -> int:
        return self._refuse("reconstruct", "reconstruct", args)

    def fit_prior(self, args) -> int:
        return self._refuse("fit-prior", "fit_prior", args)

    def _refuse(self, command, method, args):
        takers = [kind.title for kind in COMMAND_KINDS.values()
                  if getattr(type(kind), method) is not getattr(CommandKind, method)]
        config, path = runs.read_config_json(args.run_dir)
        if kind_name(config) not in COMMAND_KINDS:      # not this kind's run after all
            runs.run_kind(config, path)                 # the one-line error naming the entry
        raise ValueError(f"{path}: not a {' or '.join(takers) or '(no kind)'} run: {command} "
                         f"applies to those, and this is a {self.title} run")


class CommandKindRegistry(Registry):
    """name -> CommandKind instance, one per run kind."""

    def _check(self, name, kind):
        if not isinstance(kind, CommandKind) or kind.name != name or name not in RUN_KINDS:
            raise ValueError(f"a command kind must be a CommandKind named after a run kind "
                             f"({sorted(RUN_KINDS)}), got {name!r}: {kind!r}")

    @property
    def default(self):
        return self[RUN_KINDS.default]


COMMAND_KINDS = CommandKindRegistry("model kind")


def for_config(config) -> CommandKind:
    """The kind a config.json's contents name (the default kind when it names none registered:
    reading the config then reports what is wrong with it)."""
    return COMMAND_KINDS.get(kind_name(config)) or COMMAND_KINDS.default


def for_run(run_dir) -> CommandKind:
    """The kind of the run in ``run_dir``, from its config.json (FileNotFoundError for a missing
    directory or file, ValueError for a file that is not JSON)."""
    config, _ = runs.read_config_json(run_dir)
    return for_config(config)


# ---------------------------------------------------------------------- helpers of build_config
def shared_settings(args, preset=None, keys=SHARED) -> dict:
    """The settings of a new run: ``keys`` from the command line over the preset's over
    ``presets.DEFAULTS`` (``--hidden 400,400 300`` joined, ``--optim-eps`` as the optimizer's
    eps, refused for optimizers without one)."""
    overrides = {key: getattr(args, key, None) for key in keys}
    overrides["hidden"] = flatten_widths(args.hidden)       # --hidden 400,400 or 400 400
    if args.optim_eps is not None:
        overrides["optimizer_options"] = {"eps": args.optim_eps}
    s = presets.resolve(preset, overrides)
    if s["optimizer_options"] and s["optimizer"] not in ("adam", "adagrad"):
        raise ValueError(f"--optim-eps applies to adam and adagrad, not {s['optimizer']}")
    return s


TRAINING_KEYS = ("dataset", "optimizer", "lr", "optimizer_options", "lr_schedule", "epochs",
                 "batch_size", "seed")
"""The training entries of every kind's config.json."""


def run_config(kind, args, s, model, **entries) -> dict:
    """A new run's config.json (format 2): the kind, the model's arguments ``model`` (x_dim is
    set once the data set is loaded), the settings ``s``' training entries (TRAINING_KEYS) and
    the kind's own ``entries``, and where the data and its subset come from."""
    return dict(format_version=runs.FORMAT_VERSION, kind=kind.name, model=model,
                data_dir=absolute_data_dir(args.data_dir), limit=args.limit,
                subset_seed=s["seed"], no_download=args.no_download,
                created=datetime.now().isoformat(timespec="seconds"),
                **{key: s[key] for key in TRAINING_KEYS}, **entries)
