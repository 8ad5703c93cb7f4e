"""``vae-np train | evaluate | sample | reconstruct``: train into a run directory, then use it.

The run directory's layout is described in :mod:`vae_np.runs`; presets in :mod:`vae_np.presets`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from . import figures, presets, runs
from .cli_args import FLOAT, INT, INT0, WIDTHS, flatten_widths
from .evaluate import active_units, elbo, evaluation_set, iwae_nll
from .model import DECODER_MEANS, LIKELIHOODS
from .ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS
from .optim import OPTIMIZERS
from .train import SCHEDULES, TrainingDivergedError, fit

DATASETS = ("sprites", "mnist", "binarized-mnist", "dynamic-mnist", "frey")
SETTINGS = tuple(presets.DEFAULTS)
TRAIN_STREAM, SAMPLE_STREAM = 1, 3      # default_rng([seed, stream]) for training and figures




def register(subparsers):
    d = presets.DEFAULTS
    p = subparsers.add_parser(
        "train", help="train a VAE into a run directory", epilog=presets.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a VAE, checkpointing after every epoch into a run directory "
                    "(config.json, checkpoint.npz, history.csv, figures/*.png). Defaults: "
                    "sprites, 784-256-8 ReLU, Adam 1e-3, 100 epochs (about a minute on 2 cores).")
    p.add_argument("--preset", choices=sorted(presets.PRESETS), help="a published setup (below)")
    p.add_argument("--dataset", choices=DATASETS, help=f"default {d['dataset']}")
    p.add_argument("--data-dir", help="directory of the data files (searched before the cache)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading data")
    p.add_argument("--limit", type=INT, help="use only the first N training and N test examples")
    p.add_argument("--hidden", type=WIDTHS, nargs="*",
                   help="hidden widths, e.g. 400 400 or 400,400 (default 256)")
    p.add_argument("--z-dim", type=INT, help=f"latent dimension (default {d['z_dim']})")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help="default relu")
    p.add_argument("--likelihood", choices=LIKELIHOODS, help="default bernoulli")
    p.add_argument("--sigma-param", choices=sorted(SIGMA_PARAMETERIZATIONS), help="default logvar")
    p.add_argument("--decoder-mean", choices=DECODER_MEANS, help="Gaussian mean (default identity)")
    p.add_argument("--init-std", type=FLOAT, help="N(0, s^2) weights (default U(+-1/sqrt(fan_in)))")
    p.add_argument("--decoder-sigma-min", type=FLOAT, help="lower bound of a learned decoder sigma")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default adam")
    p.add_argument("--lr", type=FLOAT, help="(base) learning rate (default 1e-3)")
    p.add_argument("--optim-eps", type=FLOAT, help="eps of adam / adagrad")
    p.add_argument("--lr-schedule", choices=presets.LR_SCHEDULES,
                   help="constant, or burda2016: 3^i passes at lr*10^(-i/7) (default constant)")
    p.add_argument("--epochs", "--passes", type=INT, help=f"passes over the data (default "
                   f"{d['epochs']}); with --resume, the new total")
    p.add_argument("--batch-size", type=INT, help=f"default {d['batch_size']}")
    p.add_argument("--k", type=INT, help="Monte Carlo samples per example (default 1)")
    p.add_argument("--schedule", choices=SCHEDULES, help="joint or alternating phi/theta steps")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    p.add_argument("--seed", type=INT0, help="seed of initialisation and training (default 0)")
    p.add_argument("--out", help="run directory (default runs/<dataset>-<timestamp>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures/*.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "evaluate", help="test -ELBO, IWAE estimate of -ln p(x), active units of a run",
        description="Evaluate a run's checkpoint on its test set (in float64 by default): the "
                    "negative ELBO with k = 1 and averaged over --elbo-k samples, the importance-"
                    "weighted estimate of -ln p(x) with --iwae-k samples (chunked to bounded "
                    "memory), and the active units, Cov_x(E_q[z_j]) > --threshold.")
    _run_dir_args(p)
    p.add_argument("--iwae-k", type=INT, default=5000, help="importance samples (default 5000)")
    p.add_argument("--elbo-k", type=INT, default=100, help="samples of the averaged -ELBO")
    p.add_argument("--threshold", type=FLOAT, default=0.01, help="active-unit threshold")
    p.add_argument("--limit", type=INT, help="evaluate the first N test examples only")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--max-mb", type=FLOAT, default=64, help="work memory bound (default 64 MB)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("sample", help="decode samples from the prior into an image grid")
    _run_dir_args(p, data=False)
    p.add_argument("--n", type=INT, default=64, help="number of samples (default 64)")
    p.add_argument("--out", help="PNG path (default RUN_DIR/figures/samples.png)")
    p.set_defaults(func=run_sample)

    p = subparsers.add_parser("reconstruct", help="test images beside their reconstructions")
    _run_dir_args(p)
    p.add_argument("--n", type=INT, default=32, help="number of test images (default 32)")
    p.add_argument("--out", help="PNG path (default RUN_DIR/figures/reconstructions.png)")
    p.set_defaults(func=run_reconstruct)


def _run_dir_args(p, data=True):
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by 'vae-np train'")
    p.add_argument("--seed", type=INT0, default=0, help="seed of the noise (default 0)")
    if data:
        p.add_argument("--data-dir", help="override the run's data directory")


# ---------------------------------------------------------------------- train
class Progress:
    """Training progress on stderr: a '\\r' line at most twice a second on a terminal, else a
    plain line every tenth of the epoch (at most one a second, so short epochs print none)."""

    def __init__(self, epoch, epochs, stream=None, quiet=False, interval=0.5):
        self.epoch, self.epochs, self.quiet, self.interval = epoch, epochs, quiet, interval
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last, self.width = time.perf_counter(), 0

    def __call__(self, event):
        if self.quiet or event["kind"] != "step":
            return
        step, steps, seconds = event["step"], event["steps"], event["seconds"]
        now = time.perf_counter()
        if self.tty and now - self.last < self.interval and step < steps:
            return
        if not self.tty and (10 * step // steps == 10 * (step - 1) // steps or step == steps
                             or now - self.last < 2 * self.interval):
            return   # a line per tenth of the epoch, but never more than one a second
        line = (f"epoch {self.epoch}/{self.epochs}  step {step}/{steps}  loss {event['loss']:.2f}"
                f"  {event['examples'] / max(seconds, 1e-9):.0f} examples/s"
                f"  ETA {seconds / step * (steps - step):.0f} s")
        self.last = now
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _load_data(config, args):
    from .data import DownloadError, load_dataset

    data_dir = getattr(args, "data_dir", None) or config.get("data_dir")
    try:
        return load_dataset(config["dataset"], data_dir, download=not config.get("no_download"),
                            progress=not getattr(args, "quiet", False))
    except DownloadError as exc:
        raise ValueError(f"could not download {config['dataset']!r}: {exc}") from None
    except FileNotFoundError as exc:
        raise FileNotFoundError(" ".join(str(exc).split())) from None


def _new_config(args):
    overrides = {key: getattr(args, key, None) for key in SETTINGS}
    overrides["hidden"] = flatten_widths(args.hidden)       # --hidden 400,400 or 400 400
    if args.optim_eps is not None:
        overrides["optimizer_options"] = {"eps": args.optim_eps}
    s = presets.resolve(args.preset, overrides)
    if s["optimizer_options"] and s["optimizer"] not in ("adam", "adagrad"):
        raise ValueError(f"--optim-eps applies to adam and adagrad, not {s['optimizer']}")
    model = dict(x_dim=1, hidden=list(s["hidden"]), z_dim=s["z_dim"], activation=s["activation"],
                 likelihood=s["likelihood"], sigma_param=s["sigma_param"], dtype=s["dtype"],
                 seed=s["seed"], decoder_mean=s["decoder_mean"], init_std=s["init_std"],
                 decoder_sigma_min=s["decoder_sigma_min"])
    training = {key: s[key] for key in ("dataset", "optimizer", "lr", "optimizer_options",
                                        "lr_schedule", "epochs", "batch_size", "k", "schedule",
                                        "seed")}
    return dict(format_version=runs.FORMAT_VERSION, preset=args.preset, model=model,
                data_dir=args.data_dir, limit=args.limit, no_download=args.no_download,
                created=datetime.now().isoformat(timespec="seconds"), **training)


def _check_resume_args(args):
    given = [key for key in SETTINGS + ("preset", "out", "limit", "optim_eps")
             if key != "epochs" and getattr(args, key, None) is not None]
    if given:
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ValueError(f"--resume continues a run with its own settings; {names} cannot be "
                         f"given with it (only --epochs, --data-dir and output options can)")


def run_train(args) -> int:
    if args.resume:
        _check_resume_args(args)
        run_dir = Path(args.resume)
        config = runs.read_config(run_dir)
        runs.check_config(config, run_dir / runs.CONFIG_NAME, runs.TRAINING_ENTRIES)
        if args.epochs is not None:
            config["epochs"] = args.epochs
        dataset = _load_data(config, args)
    else:
        config = _new_config(args)
        dataset = _load_data(config, args)
        config["model"]["x_dim"] = dataset.n_features
        config["image_shape"] = list(dataset.image_shape)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out or Path("runs") / f"{dataset.name}-{stamp}")
        if (run_dir / runs.CONFIG_NAME).exists():
            raise ValueError(f"--out {run_dir} already holds a run; continue it with "
                             f"--resume {run_dir} or choose another directory")
        run_dir.mkdir(parents=True, exist_ok=True)
    model = runs.build_model(config, path=run_dir / runs.CONFIG_NAME if args.resume else None)
    if model.x_dim != dataset.n_features:
        raise ValueError(f"{run_dir / runs.CONFIG_NAME}: the model expects {model.x_dim} "
                         f"features but data set {dataset.name!r} has {dataset.n_features}")
    optimizers = runs.build_optimizers(config)
    rng = np.random.default_rng([config["seed"], TRAIN_STREAM])
    history = {column: [] for column in runs.HISTORY_COLUMNS}
    done = 0
    checkpoint = run_dir / runs.CHECKPOINT_NAME
    if args.resume:     # what a killed write left behind is never read: clear it away
        runs.remove_stale_temp_files(run_dir)
    if args.resume and checkpoint.exists():
        arrays = runs.load_checkpoint(checkpoint)
        runs.check_checkpoint(arrays, config, checkpoint, run_dir / runs.CONFIG_NAME)
        runs.restore_model(arrays, model, checkpoint)
        runs.restore_optimizers(arrays, optimizers, model, checkpoint)
        rng = runs.restore_rng(arrays, checkpoint)
        history.update(runs.read_history(arrays))
        done = int(arrays["epoch"])
    runs.write_config(run_dir, config)
    if done:    # history.csv lags the checkpoint if a run was killed between the two writes
        runs.write_history_csv(run_dir, history)
    limit = config.get("limit")
    x_train = dataset.x_train[:limit]
    x_test = evaluation_set(dataset, "test", limit)
    print(f"{'resuming' if done else 'training'} {model} on {dataset.name} "
          f"({len(x_train)} train / {len(x_test)} test) into {run_dir}"
          + (f" after epoch {done}" if done else ""), flush=True)

    epochs = config["epochs"]
    for epoch in range(done + 1, epochs + 1):
        lr = presets.learning_rate(config["lr_schedule"], config["lr"], epoch)
        for optimizer in optimizers:
            optimizer.lr = lr
        progress = Progress(epoch, epochs, quiet=args.quiet)
        start = time.perf_counter()
        try:
            h = fit(model, x_train, optimizers if len(optimizers) > 1 else optimizers[0],
                    epochs=1, batch_size=config["batch_size"], k=config["k"], rng=rng,
                    callback=progress, schedule=config["schedule"],
                    binarize=dataset.dynamic_binarization, first_epoch=epoch)
        except TrainingDivergedError as exc:
            message = str(exc)
            kept = (f"The checkpoint of epoch {epoch - 1} is kept in {run_dir} (lower 'lr' in "
                    f"its {runs.CONFIG_NAME} to --resume it)." if epoch > 1 else
                    f"No epoch completed, so {run_dir} holds no checkpoint; start again with a "
                    f"lower --lr.")
            print(f"vae-np: training diverged: {message} {kept}", file=sys.stderr)
            return 1
        finally:
            progress.close()
        test = elbo(model, x_test, k=1, seed=config["seed"])
        row = dict(epoch=epoch, train_loss=h["loss"][0], train_recon=h["recon"][0],
                   train_kl=h["kl"][0], test_loss=test.loss, test_recon=test.recon,
                   test_kl=test.kl, lr=lr, seconds=time.perf_counter() - start)
        for column in runs.HISTORY_COLUMNS:
            history[column].append(row[column])
        runs.save_checkpoint(run_dir, model, optimizers, rng, epoch, history, config)
        runs.write_history_csv(run_dir, history)
        print(f"epoch {epoch}/{epochs}  train {row['train_loss']:.2f} (recon "
              f"{row['train_recon']:.2f}, kl {row['train_kl']:.2f})  test {test.loss:.2f}  "
              f"{row['seconds']:.1f} s", flush=True)
    if done >= epochs:
        print(f"{run_dir} has already completed {done} epochs (pass --epochs to train longer)")
    if not args.no_figures and history["epoch"]:
        _figures(run_dir, config, model, dataset, x_test, history)
    print(f"run written to {run_dir}")
    return 0


def _figures(run_dir, config, model, dataset, x_test, history):
    """Draw the run's figures; without matplotlib say which extra to install and go on."""
    rng = np.random.default_rng([config["seed"], SAMPLE_STREAM])
    try:
        written = figures.run_figures(Path(run_dir) / runs.FIGURES_DIR, model, dataset, x_test,
                                      history, rng)
    except figures.PlotUnavailable:
        print(f"figures skipped: {figures.HINT}", file=sys.stderr)
        return []
    print(f"figures: {', '.join(str(p) for p in written)}")
    return written


# ---------------------------------------------------------------------- use a run
def run_evaluate(args) -> int:
    config, model, epoch, _ = runs.load_run(args.run_dir, dtype=args.dtype)
    runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
    dataset = _load_data(config, args)
    x = evaluation_set(dataset, "test", args.limit)
    max_bytes = args.max_mb * 2 ** 20
    start = time.perf_counter()
    result = dict(run=str(args.run_dir), epoch=epoch, dataset=dataset.name, n_examples=len(x),
                  dtype=args.dtype)
    first = elbo(model, x, k=1, seed=args.seed, max_bytes=max_bytes)
    avg = elbo(model, x, k=args.elbo_k, seed=args.seed, max_bytes=max_bytes)
    result.update(test_loss=first.loss, test_recon=first.recon, test_kl=first.kl,
                  elbo_k=args.elbo_k, test_loss_avg=avg.loss, test_recon_avg=avg.recon)
    iwae_start = time.perf_counter()

    def progress(done, total):
        elapsed = time.perf_counter() - iwae_start
        if not args.quiet and sys.stderr.isatty():
            sys.stderr.write(f"\rIWAE k={args.iwae_k}: {done}/{total} examples, "
                             f"ETA {elapsed / done * (total - done):.0f} s   ")
            sys.stderr.flush()

    result["iwae_nll"], _ = iwae_nll(model, x, k=args.iwae_k, seed=args.seed,
                                     max_bytes=max_bytes, progress=progress)
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 60 + "\r")
    count, variances = active_units(model, x, threshold=args.threshold)
    result.update(iwae_k=args.iwae_k, active_units=count, z_dim=model.z_dim,
                  threshold=args.threshold, unit_variances=variances.round(6).tolist(),
                  seconds=round(time.perf_counter() - start, 3))
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [("-ELBO (k = 1)", f"{first.loss:.3f}  (recon {first.recon:.3f}, kl {first.kl:.3f})"),
            (f"-ELBO (mean of {args.elbo_k} samples)", f"{avg.loss:.3f}"),
            (f"-ln p(x), IWAE k = {args.iwae_k}", f"{result['iwae_nll']:.3f}"),
            ("active units", f"{count} / {model.z_dim}  (Cov_x(E_q[z_j]) > {args.threshold:g})")]
    print(f"{args.run_dir}: {model} after epoch {epoch}, {len(x)} {dataset.name} test examples")
    print("\n".join(f"  {name:<32}{value}" for name, value in rows))
    print(f"  {result['seconds']:.1f} s")
    return 0


def run_sample(args) -> int:
    config, model, epoch, _ = runs.load_run(args.run_dir)
    path = Path(args.run_dir) / runs.CONFIG_NAME
    runs.check_config(config, path, ("image_shape",))
    shape = config["image_shape"]
    if int(np.prod(shape)) != model.x_dim:
        raise ValueError(f"{path}: image_shape {shape} does not hold the model's {model.x_dim} "
                         f"features")
    images = model.sample(args.n, rng=np.random.default_rng([args.seed, SAMPLE_STREAM]))
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "samples.png")
    return _draw(lambda: figures.image_grid(out, images, shape, ncols=min(args.n, 8),
                 title=f"samples from the prior ({config.get('dataset', '?')}, epoch {epoch})"))


def run_reconstruct(args) -> int:
    config, model, epoch, _ = runs.load_run(args.run_dir)
    runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
    dataset = _load_data(config, args)
    x = evaluation_set(dataset, "test", args.n)
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "reconstructions.png")
    return _draw(lambda: figures.reconstructions(out, x / 255.0, model.reconstruct(x),
                 dataset.image_shape, title=f"{dataset.name}, epoch {epoch}"))


def _draw(draw) -> int:
    try:
        print(f"wrote {draw()}")
    except figures.PlotUnavailable as exc:
        print(f"vae-np: {exc}", file=sys.stderr)
        return 1
    return 0

