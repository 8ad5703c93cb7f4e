"""``vae-np train``: train a model of any kind into a run directory, checkpointing after every
epoch; ``--resume`` continues a run of any kind bit-exact.

The run directory's layout is described in :mod:`vae_np.runs.directory`; presets in
:mod:`vae_np.runs.presets`; what differs between model kinds (their options, config, history
row, figures) in :mod:`vae_np.cli.kinds`. This module names no kind.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..core.model import LIKELIHOODS
from ..data.registry import DATASET_NAMES
from ..figures import runs as figures
from ..ops import ACTIVATIONS
from ..optim import OPTIMIZERS
from ..runs import presets, directory as runs
from ..runs.kinds import kind_name
from ..training.fit import TrainingDivergedError, fit
from ..training.progress import Progress
from ..training.threads import MAX_DEFAULT_THREADS, MIN_SHARDED_ROWS, default_threads
from .args import INT, INT0, OUT_DIR, POSITIVE, WIDTHS, fit_lines
from .common import TRAIN_STREAM, limited_data, load_data
from .kinds import COMMAND_KINDS, RUN_OPTIONS, SHARED, flags, given


def register(subparsers):
    d = presets.DEFAULTS
    p = subparsers.add_parser(
        "train", help="train a VAE (or a VQ-VAE) into a run directory",
        epilog=presets.help_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Train a VAE, checkpointing after every epoch into a run directory (config.json, "
            "checkpoint.npz, history.csv, figures/*.png). Defaults: sprites, 784-256-8 ReLU, "
            "Adam 1e-3, 100 epochs (about 2 minutes on 2 quiet cores). --model chooses another "
            "kind of model; options of another kind are refused.", 100))
    p.add_argument("--model", choices=sorted(COMMAND_KINDS),
                   help="; ".join(kind.help for kind in COMMAND_KINDS.values()))
    p.add_argument("--dataset", choices=DATASET_NAMES, help=f"default {d['dataset']}")
    p.add_argument("--data-dir", help="directory of the data files (searched before the cache)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
    p.add_argument("--limit", type=INT,
                   help="use N training and N test examples: uniform random subsets chosen by "
                        "--seed (never the first N: some splits are sorted by class)")
    p.add_argument("--hidden", type=WIDTHS, nargs="*",
                   help="hidden widths, e.g. 400 400 or 400,400 (default 256)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help="default relu")
    p.add_argument("--likelihood", choices=LIKELIHOODS, help="default bernoulli")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default adam")
    p.add_argument("--lr", type=POSITIVE, help="(base) learning rate (default 1e-3)")
    p.add_argument("--optim-eps", type=POSITIVE, help="eps of adam / adagrad")
    p.add_argument("--lr-schedule", choices=presets.LR_SCHEDULES,
                   help="constant, or burda2016: 3^i passes at lr*10^(-i/7) (default constant)")
    p.add_argument("--epochs", "--passes", type=INT, help=f"passes over the data (default "
                   f"{d['epochs']}); with --resume, the new total")
    p.add_argument("--batch-size", type=INT, help=f"default {d['batch_size']}")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    p.add_argument("--seed", type=INT0, help="seed of initialisation and training (default 0)")
    p.add_argument("--threads", type=INT,
                   help=f"threads of each training step: the batch is split into one shard a "
                        f"thread, BLAS on one thread each (default: the cores, at most "
                        f"{MAX_DEFAULT_THREADS}, for steps of batch x k >= {MIN_SHARDED_ROWS} "
                        f"rows, else 1; a run resumes with its own); 1: one thread, BLAS as the "
                        f"environment sets it")
    p.add_argument("--out", type=OUT_DIR, help="run directory (default runs/<dataset>-<timestamp>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures/*.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    for kind in COMMAND_KINDS.values():
        kind.add_arguments(p)
    p.set_defaults(func=run_train)


@dataclass
class _Run:
    """What the epochs of one training run share (the model, optimizers, rng and history change
    in place as it trains)."""
    run_dir: Path
    config: dict
    kind: object                       # the CommandKind (vae_np.cli.kinds)
    dataset: object
    model: object
    optimizers: tuple
    rng: np.random.Generator
    history: dict
    x_train: np.ndarray
    x_test: np.ndarray
    test_rows: np.ndarray = None       # x_test's rows in the test split (key the test noise)


def run_train(args) -> int:
    """Open (or continue) the run, train its remaining epochs, draw its figures."""
    kind, explicit = _choose_kind(args)
    run_dir, config, dataset = (_continued_run(args) if args.resume
                                else _new_run(args, kind, explicit))
    model = runs.build_model(config, path=run_dir / runs.CONFIG_NAME if args.resume else None)
    if model.x_dim != dataset.n_features:
        raise ValueError(f"{run_dir / runs.CONFIG_NAME}: the model expects {model.x_dim} "
                         f"features but data set {dataset.name!r} has {dataset.n_features}")
    optimizers = runs.build_optimizers(config)
    _choose_threads(args, config, run_dir)
    rng, history, done = _restore_checkpoint(args, run_dir, config, model, optimizers)
    if args.resume and args.epochs is not None and args.epochs <= done:
        raise ValueError(f"--epochs is the new total number of epochs, and {run_dir} has "
                         f"already completed {done}: pass --epochs {done + args.epochs} to "
                         f"train {args.epochs} more")
    runs.write_config(run_dir, config)
    if done:    # history.csv lags the checkpoint if a run was killed between the two writes
        runs.write_history_csv(run_dir, history, kind.run)
    x_train, test, what = limited_data(config, dataset)
    run = _Run(run_dir, config, kind, dataset, model, optimizers, rng, history, x_train, test.x,
               test.rows)
    print(fit_lines(f"{'resuming' if done else 'training'} {model}\n  on {dataset.name}: {what}"
                    f"\n  into {run_dir}" + (f" after epoch {done}" if done else "")), flush=True)
    for epoch in range(done + 1, config["epochs"] + 1):
        if not _train_epoch(run, epoch, quiet=args.quiet):
            return 1
    if done >= config["epochs"]:
        print(f"{run_dir} has already completed {done} epochs (to train longer, pass --epochs "
              f"with the new total, e.g. --epochs {2 * done})")
    if not args.no_figures and history["epoch"]:
        _figures(run)
    print(f"run written to {run_dir}")
    return 0


def _choose_kind(args):
    """(the CommandKind of this run, whether --model named it): a new run's --model (default:
    the default kind), or the kind of the run --resume continues (--model, if given, must be
    that one)."""
    if not args.resume:
        kind = COMMAND_KINDS[args.model] if args.model else COMMAND_KINDS.default
        return kind, args.model is not None
    try:
        config = json.loads((Path(args.resume) / runs.CONFIG_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        config = None       # reading the config in _continued_run reports what is wrong
    kind = COMMAND_KINDS.get(kind_name(config), COMMAND_KINDS.default)
    if args.model is not None and args.model != kind.name:
        raise ValueError(f"--resume {args.resume} is a {kind.title} run; --model {args.model} "
                         f"does not apply to it")
    return kind, args.model is not None


def _continued_run(args):
    """``--resume DIR``: the run's directory, its checked config (with the new ``--epochs``
    total) and its data set."""
    _check_resume_args(args)
    run_dir = Path(args.resume)
    config = runs.read_config(run_dir)
    runs.check_config(config, run_dir / runs.CONFIG_NAME, runs.run_kind(config).required)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    return run_dir, config, load_data(config, args)


def _new_run(args, kind, explicit):
    """A new run: its config from the kind (the preset and options), its data set, and a fresh
    directory (``--out``, or runs/<dataset>-<timestamp>), refused if it already holds a run."""
    config = kind.new_config(args, explicit)
    dataset = load_data(config, args)
    config["model"]["x_dim"] = dataset.n_features
    config["image_shape"] = list(dataset.image_shape)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out or Path("runs") / f"{dataset.name}{kind.dir_tag}-{stamp}")
    if (run_dir / runs.CONFIG_NAME).exists():
        raise ValueError(f"--out {run_dir} already holds a run; continue it with "
                         f"--resume {run_dir} or choose another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, config, dataset


def _choose_threads(args, config, run_dir):
    """config["threads"], which config.json records: --threads if given, else a new run's
    default (fit's: the cores, at most MAX_DEFAULT_THREADS, for steps of at least
    MIN_SHARDED_ROWS rows; else 1) or the count a resumed run recorded; a run written before
    threads existed trained on one thread, and resumes so (bit-exact)."""
    if args.threads is not None:
        config["threads"] = args.threads
    elif not args.resume:      # fit's default for this run's steps: batch x k rows
        config["threads"] = default_threads(rows=config["batch_size"] * (config.get("k") or 1))
    else:
        threads = config.setdefault("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"{run_dir / runs.CONFIG_NAME}: entry 'threads' must be an integer "
                             f">= 1, got {threads!r}")


def _check_resume_args(args):
    every_kind = [option for kind in COMMAND_KINDS.values() for option in kind.options]
    names = [name for name in dict.fromkeys(SHARED + tuple(every_kind) + RUN_OPTIONS)
             if name != "epochs"]
    wrong = given(args, names)
    if wrong:
        raise ValueError(f"--resume continues a run with its own settings; {flags(wrong)} cannot "
                         f"be given with it (only --epochs, --data-dir and output options can)")


def _restore_checkpoint(args, run_dir, config, model, optimizers):
    """The training rng, history and number of completed epochs: fresh for a new run, else
    restored (with the model, its state and the optimizers, in place) from the run's checkpoint
    if it has one."""
    rng = np.random.default_rng([config["seed"], TRAIN_STREAM])
    kind = runs.run_kind(config)
    history = {column: [] for column in kind.history_columns}
    if not args.resume:
        return rng, history, 0
    runs.remove_stale_temp_files(run_dir)   # what a killed write left behind is never read
    checkpoint = run_dir / runs.CHECKPOINT_NAME
    if not checkpoint.exists():
        return rng, history, 0
    arrays = runs.load_checkpoint(checkpoint)
    runs.check_checkpoint(arrays, config, checkpoint, run_dir / runs.CONFIG_NAME, model)
    runs.restore_model(arrays, model, checkpoint)
    runs.restore_optimizers(arrays, optimizers, model, checkpoint)
    if "epoch" not in arrays:
        raise ValueError(f"{checkpoint}: checkpoint is missing 'epoch'")
    history.update(runs.read_history(arrays, kind))
    return runs.restore_rng(arrays, checkpoint), history, int(arrays["epoch"])


def _train_epoch(run: _Run, epoch: int, quiet: bool) -> bool:
    """One pass over the training set at the epoch's learning rate, then the kind's history row
    (with the test set's numbers), the checkpoint and the epoch's line. False (after saying
    which checkpoint is kept) if training diverged."""
    config, optimizers, run_dir = run.config, run.optimizers, run.run_dir
    epochs = config["epochs"]
    lr = presets.learning_rate(config["lr_schedule"], config["lr"], epoch)
    for optimizer in optimizers:
        optimizer.lr = lr
    progress = Progress(epoch, epochs, quiet=quiet)
    start = time.perf_counter()
    try:
        h = fit(run.model, run.x_train, optimizers if len(optimizers) > 1 else optimizers[0],
                epochs=1, batch_size=config["batch_size"], rng=run.rng, callback=progress,
                binarize=run.dataset.dynamic_binarization, first_epoch=epoch,
                threads=config["threads"], **run.kind.fit_options(config))
    except TrainingDivergedError as exc:
        kept = (f"The checkpoint of epoch {epoch - 1} is kept in {run_dir} (lower 'lr' in "
                f"its {runs.CONFIG_NAME} to --resume it)." if epoch > 1 else
                f"No epoch completed, so {run_dir} holds no checkpoint; start again with a "
                f"lower --lr.")
        print(f"vae-np: training diverged: {exc} {kept}", file=sys.stderr)
        return False
    finally:
        progress.close()
    row = dict(epoch=epoch, **run.kind.epoch_columns(run, h), lr=lr)
    row["seconds"] = time.perf_counter() - start
    for column in run.kind.run.history_columns:
        run.history[column].append(row[column])
    runs.save_checkpoint(run_dir, run.model, optimizers, run.rng, epoch, run.history, config)
    runs.write_history_csv(run_dir, run.history, run.kind.run)
    print(run.kind.epoch_line(run, row), flush=True)
    return True


def _figures(run: _Run):
    """Draw the run's figures (the kind's); without matplotlib say which extra to install and go
    on."""
    try:
        written = run.kind.figures(run)
    except figures.PlotUnavailable:
        print(f"figures skipped: {figures.HINT}", file=sys.stderr)
        return []
    names = textwrap.fill(", ".join(p.name for p in written), 100, initial_indent="  ",
                          subsequent_indent="  ")
    print(f"figures in {run.run_dir / runs.FIGURES_DIR}:\n{names}")
    return written
