"""``vae-np train``: train a VAE into a run directory, checkpointing after every epoch.

The run directory's layout is described in :mod:`vae_np.runs.directory`; presets in :mod:`vae_np.runs.presets`.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..core.model import DECODER_MEANS, LIKELIHOODS
from ..core.objective import OBJECTIVES
from ..flows.chain import FLOW_KINDS
from ..data.registry import DATASET_NAMES
from ..evaluate import elbo, iwae_nll
from ..figures import runs as figures
from ..ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS
from ..runs import presets, directory as runs
from ..training.fit import SCHEDULES, TrainingDivergedError, fit
from ..optim import OPTIMIZERS
from ..training.progress import Progress
from . import train_vq as cli_train_vq
from .args import FLOAT, INT, INT0, OUT_DIR, POSITIVE, WIDTHS, fit_lines, flatten_widths
from .common import SAMPLE_STREAM, TRAIN_STREAM, absolute_data_dir, limited_data, load_data

SETTINGS = tuple(presets.DEFAULTS)


def register(subparsers):
    d = presets.DEFAULTS
    p = subparsers.add_parser(
        "train", help="train a VAE into a run directory", epilog=presets.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Train a VAE, checkpointing after every epoch into a run directory (config.json, "
            "checkpoint.npz, history.csv, figures/*.png). Defaults: sprites, 784-256-8 ReLU, "
            "Adam 1e-3, 100 epochs (about 2 minutes on 2 quiet cores).", 100))
    p.add_argument("--preset", choices=sorted(presets.PRESETS), help="a published setup (below)")
    p.add_argument("--dataset", choices=DATASET_NAMES, help=f"default {d['dataset']}")
    p.add_argument("--data-dir", help="directory of the data files (searched before the cache)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
    p.add_argument("--limit", type=INT,
                   help="use N training and N test examples: uniform random subsets chosen by "
                        "--seed (never the first N: some splits are sorted by class)")
    p.add_argument("--hidden", type=WIDTHS, nargs="*",
                   help="hidden widths, e.g. 400 400 or 400,400 (default 256)")
    p.add_argument("--z-dim", type=INT, help=f"latent dimension (default {d['z_dim']})")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help="default relu")
    p.add_argument("--likelihood", choices=LIKELIHOODS, help="default bernoulli")
    p.add_argument("--sigma-param", choices=sorted(SIGMA_PARAMETERIZATIONS), help="default logvar")
    p.add_argument("--decoder-mean", choices=DECODER_MEANS, help="Gaussian mean (default identity)")
    p.add_argument("--init-std", type=POSITIVE,
                   help="N(0, s^2) weights (default U(+-1/sqrt(fan_in)))")
    p.add_argument("--decoder-sigma-min", type=FLOAT, help="lower bound of a learned decoder sigma")
    p.add_argument("--flow", choices=sorted(FLOW_KINDS),
                   help="a normalizing-flow posterior: the Gaussian, then --flow-length steps")
    p.add_argument("--flow-length", type=INT0, help="number of flow steps L (with --flow)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default adam")
    p.add_argument("--lr", type=POSITIVE, help="(base) learning rate (default 1e-3)")
    p.add_argument("--optim-eps", type=POSITIVE, help="eps of adam / adagrad")
    p.add_argument("--lr-schedule", choices=presets.LR_SCHEDULES,
                   help="constant, or burda2016: 3^i passes at lr*10^(-i/7) (default constant)")
    p.add_argument("--epochs", "--passes", type=INT, help=f"passes over the data (default "
                   f"{d['epochs']}); with --resume, the new total")
    p.add_argument("--batch-size", type=INT, help=f"default {d['batch_size']}")
    p.add_argument("--k", type=INT, help="Monte Carlo samples per example (default 1)")
    p.add_argument("--schedule", choices=SCHEDULES, help="joint or alternating phi/theta steps")
    p.add_argument("--objective", choices=sorted(OBJECTIVES),
                   help="elbo (default) or iwae: the importance-weighted bound over the --k "
                        "samples")
    p.add_argument("--estimator", choices=("standard", "dreg"),
                   help="the gradient: standard (default), or dreg (with --objective iwae: the "
                        "doubly-reparameterized encoder gradient)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    p.add_argument("--seed", type=INT0, help="seed of initialisation and training (default 0)")
    p.add_argument("--out", type=OUT_DIR, help="run directory (default runs/<dataset>-<timestamp>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures/*.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    cli_train_vq.add_arguments(p)       # --model vqvae and its options
    p.set_defaults(func=run_train)


@dataclass
class _Run:
    """What the epochs of one training run share (the model, optimizers, rng and history change
    in place as it trains)."""
    run_dir: Path
    config: dict
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
    if cli_train_vq.wants_vq(args):     # --model vqvae, or --resume of a VQ-VAE run
        return cli_train_vq.run_train_vq(args)
    run_dir, config, dataset = _continued_run(args) if args.resume else _new_run(args)
    model = runs.build_model(config, path=run_dir / runs.CONFIG_NAME if args.resume else None)
    if model.x_dim != dataset.n_features:
        raise ValueError(f"{run_dir / runs.CONFIG_NAME}: the model expects {model.x_dim} "
                         f"features but data set {dataset.name!r} has {dataset.n_features}")
    optimizers = runs.build_optimizers(config)
    rng, history, done = _restore_checkpoint(args, run_dir, config, model, optimizers)
    if args.resume and args.epochs is not None and args.epochs <= done:
        raise ValueError(f"--epochs is the new total number of epochs, and {run_dir} has "
                         f"already completed {done}: pass --epochs {done + args.epochs} to "
                         f"train {args.epochs} more")
    runs.write_config(run_dir, config)
    if done:    # history.csv lags the checkpoint if a run was killed between the two writes
        runs.write_history_csv(run_dir, history)
    x_train, test, what = limited_data(config, dataset)
    run = _Run(run_dir, config, dataset, model, optimizers, rng, history, x_train, test.x,
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


def _continued_run(args):
    """``--resume DIR``: the run's directory, its checked config (with the new ``--epochs``
    total) and its data set."""
    _check_resume_args(args)
    run_dir = Path(args.resume)
    config = runs.read_config(run_dir)
    runs.check_config(config, run_dir / runs.CONFIG_NAME, runs.TRAINING_ENTRIES)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    return run_dir, config, load_data(config, args)


def _new_run(args):
    """A new run: its config from the preset and options, its data set, and a fresh directory
    (``--out``, or runs/<dataset>-<timestamp>), refused if it already holds a run."""
    config = _new_config(args)
    dataset = load_data(config, args)
    config["model"]["x_dim"] = dataset.n_features
    config["image_shape"] = list(dataset.image_shape)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out or Path("runs") / f"{dataset.name}-{stamp}")
    if (run_dir / runs.CONFIG_NAME).exists():
        raise ValueError(f"--out {run_dir} already holds a run; continue it with "
                         f"--resume {run_dir} or choose another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, config, dataset


def _new_config(args):
    overrides = {key: getattr(args, key, None) for key in SETTINGS}
    overrides["hidden"] = flatten_widths(args.hidden)       # --hidden 400,400 or 400 400
    if args.optim_eps is not None:
        overrides["optimizer_options"] = {"eps": args.optim_eps}
    s = presets.resolve(args.preset, overrides)
    if s["optimizer_options"] and s["optimizer"] not in ("adam", "adagrad"):
        raise ValueError(f"--optim-eps applies to adam and adagrad, not {s['optimizer']}")
    if s["estimator"] == "dreg" and s["objective"] != "iwae":
        raise ValueError("--estimator dreg applies to --objective iwae")
    if (args.flow is None) != (args.flow_length is None):
        raise ValueError("--flow and --flow-length go together, e.g. --flow planar --flow-length "
                         "10")
    if args.flow is not None and s["estimator"] == "dreg":
        raise ValueError("--estimator dreg is not supported with --flow (it needs the inverse "
                         "of the flow); use --estimator standard")
    model = dict(x_dim=1, hidden=list(s["hidden"]), z_dim=s["z_dim"], activation=s["activation"],
                 likelihood=s["likelihood"], sigma_param=s["sigma_param"], dtype=s["dtype"],
                 seed=s["seed"], decoder_mean=s["decoder_mean"], init_std=s["init_std"],
                 decoder_sigma_min=s["decoder_sigma_min"], flow=args.flow,
                 flow_length=args.flow_length)
    training = {key: s[key] for key in ("dataset", "optimizer", "lr", "optimizer_options",
                                        "lr_schedule", "epochs", "batch_size", "k", "schedule",
                                        "seed", "objective", "estimator")}
    return dict(format_version=runs.FORMAT_VERSION, preset=args.preset, model=model,
                data_dir=absolute_data_dir(args.data_dir), limit=args.limit,
                subset_seed=s["seed"], no_download=args.no_download,
                created=datetime.now().isoformat(timespec="seconds"), **training)


def _check_resume_args(args):
    given = [key for key in SETTINGS + ("preset", "out", "limit", "optim_eps", "flow",
                                        "flow_length")
             if key != "epochs" and getattr(args, key, None) is not None]
    if given:
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ValueError(f"--resume continues a run with its own settings; {names} cannot be "
                         f"given with it (only --epochs, --data-dir and output options can)")


def _restore_checkpoint(args, run_dir, config, model, optimizers):
    """The training rng, history and number of completed epochs: fresh for a new run, else
    restored (with the model and optimizers, in place) from the run's checkpoint if it has one."""
    rng = np.random.default_rng([config["seed"], TRAIN_STREAM])
    history = {column: [] for column in runs.HISTORY_COLUMNS}
    if not args.resume:
        return rng, history, 0
    runs.remove_stale_temp_files(run_dir)   # what a killed write left behind is never read
    checkpoint = run_dir / runs.CHECKPOINT_NAME
    if not checkpoint.exists():
        return rng, history, 0
    arrays = runs.load_checkpoint(checkpoint)
    runs.check_checkpoint(arrays, config, checkpoint, run_dir / runs.CONFIG_NAME)
    runs.restore_model(arrays, model, checkpoint)
    runs.restore_optimizers(arrays, optimizers, model, checkpoint)
    history.update(runs.read_history(arrays))
    return runs.restore_rng(arrays, checkpoint), history, int(arrays["epoch"])


def _train_epoch(run: _Run, epoch: int, quiet: bool) -> bool:
    """One pass over the training set at the epoch's learning rate, then the test loss, the
    history row and the checkpoint. False (after saying which checkpoint is kept) if training
    diverged."""
    config, optimizers, run_dir = run.config, run.optimizers, run.run_dir
    epochs = config["epochs"]
    lr = presets.learning_rate(config["lr_schedule"], config["lr"], epoch)
    for optimizer in optimizers:
        optimizer.lr = lr
    progress = Progress(epoch, epochs, quiet=quiet)
    start = time.perf_counter()
    try:
        h = fit(run.model, run.x_train, optimizers if len(optimizers) > 1 else optimizers[0],
                epochs=1, batch_size=config["batch_size"], k=config["k"], rng=run.rng,
                callback=progress, schedule=config["schedule"],
                objective=config.get("objective", "elbo"),     # runs made before it: the ELBO
                estimator=config.get("estimator", "standard"),
                binarize=run.dataset.dynamic_binarization, first_epoch=epoch)
    except TrainingDivergedError as exc:
        kept = (f"The checkpoint of epoch {epoch - 1} is kept in {run_dir} (lower 'lr' in "
                f"its {runs.CONFIG_NAME} to --resume it)." if epoch > 1 else
                f"No epoch completed, so {run_dir} holds no checkpoint; start again with a "
                f"lower --lr.")
        print(f"vae-np: training diverged: {exc} {kept}", file=sys.stderr)
        return False
    finally:
        progress.close()
    test = elbo(run.model, run.x_test, k=1, seed=config["seed"], rows=run.test_rows)
    name, test_loss = runs.loss_name(config), test.loss      # the objective: -ELBO or -L_k
    if name != "-ELBO":     # an IWAE run: the bound it trains on, on the test set too
        test_loss = iwae_nll(run.model, run.x_test, k=config["k"], seed=config["seed"],
                             rows=run.test_rows)[0]
    row = dict(epoch=epoch, train_loss=h["loss"][0], train_recon=h["recon"][0],
               train_kl=h["kl"][0], test_loss=test_loss, test_recon=test.recon,
               test_kl=test.kl, lr=lr, seconds=time.perf_counter() - start)
    for column in runs.HISTORY_COLUMNS:
        run.history[column].append(row[column])
    runs.save_checkpoint(run_dir, run.model, optimizers, run.rng, epoch, run.history, config)
    runs.write_history_csv(run_dir, run.history)
    if name == "-ELBO":
        train = (f"train {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, "
                 f"kl {row['train_kl']:.2f})")
    else:       # the bound, then the two terms of the -ELBO, whose sum is above it
        train = (f"train {name} {row['train_loss']:.2f} (-ELBO: recon "
                 f"{row['train_recon']:.2f} + kl {row['train_kl']:.2f})")
    print(f"epoch {epoch}/{epochs}  {train}  test {name} {test_loss:.2f}  "
          f"{row['seconds']:.1f} s", flush=True)
    return True


def _figures(run: _Run):
    """Draw the run's figures; without matplotlib say which extra to install and go on."""
    rng = np.random.default_rng([run.config["seed"], SAMPLE_STREAM])
    try:
        written = figures.run_figures(run.run_dir / runs.FIGURES_DIR, run.model, run.dataset,
                                      run.x_test, run.history, rng, rows=run.test_rows,
                                      loss_name=runs.loss_name(run.config))
    except figures.PlotUnavailable:
        print(f"figures skipped: {figures.HINT}", file=sys.stderr)
        return []
    names = textwrap.fill(", ".join(p.name for p in written), 100, initial_indent="  ",
                          subsequent_indent="  ")
    print(f"figures in {run.run_dir / runs.FIGURES_DIR}:\n{names}")
    return written
