"""``vae-np train --model vqvae``: train a VQ-VAE into a run directory (layout in
:mod:`vae_np.vq.runs`), checkpointing after every epoch; ``--resume`` continues it bit-exact.

``vae_np.cli.train`` adds these options to its parser (:func:`add_arguments`) and hands a VQ run
over to :func:`run_train_vq` (:func:`wants_vq` decides).
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from ..data import choose_rows
from ..figures import runs as figures
from ..runs import presets, directory as runs
from ..training.fit import TrainingDivergedError
from ..training.progress import Progress
from ..vq.model import CODEBOOK_UPDATES
from ..vq.runs import (HISTORY_COLUMNS, MODEL_NAME, build_vq_model, is_vq_config, read_vq_config,
                       restore_vq_checkpoint, save_vq_checkpoint, write_vq_history_csv)
from ..vq.train import code_statistics, fit_vq
from .args import FLOAT, INT, POSITIVE, fit_lines, flatten_widths
from .common import SAMPLE_STREAM, TRAIN_STREAM, absolute_data_dir, limited_data, load_data

VQ_DEFAULTS = dict(n_latents=16, code_dim=8, codebook_size=64, beta=0.25, codebook_update="grad",
                   ema_decay=0.99)
# the VAE's settings a VQ-VAE has no use for
NOT_FOR_VQ = ("preset", "z_dim", "sigma_param", "decoder_mean", "init_std", "decoder_sigma_min",
              "k", "schedule", "objective", "estimator", "flow", "flow_length")
SHARED = ("dataset", "hidden", "activation", "likelihood", "optimizer", "lr", "lr_schedule",
          "epochs", "batch_size", "dtype", "seed")


def add_arguments(p):
    """--model and the VQ-VAE's options, on the ``train`` parser ``p``."""
    p.add_argument("--model", choices=("vae", MODEL_NAME),
                   help="vae (default) or vqvae: discrete latents, straight-through gradient")
    g = p.add_argument_group("VQ-VAE options (with --model vqvae)")
    g.add_argument("--n-latents", type=INT, help="M latent vectors per example (default 16)")
    g.add_argument("--code-dim", type=INT, help="D, dimension of a latent vector (default 8)")
    g.add_argument("--codebook-size", type=INT, help="K codes (default 64)")
    g.add_argument("--beta", type=FLOAT, help="weight of the commitment term (default 0.25)")
    g.add_argument("--codebook-update", choices=CODEBOOK_UPDATES,
                   help="grad (default: the codebook term through the optimizer) or ema")
    g.add_argument("--ema-decay", type=POSITIVE, help="gamma of --codebook-update ema (0.99)")
    g.add_argument("--no-reseed", action="store_true",
                   help="do not re-seed codes unused for a whole epoch")


def _given(args, names):
    return [n for n in names if getattr(args, n, None) not in (None, False)]


def _flags(names):
    return ", ".join("--" + n.replace("_", "-") for n in names)


def wants_vq(args) -> bool:
    """Whether this ``train`` call is a VQ-VAE's: --model vqvae, or --resume of a VQ run."""
    vq_options = _given(args, tuple(VQ_DEFAULTS) + ("no_reseed",))
    if args.resume:
        try:
            config = json.loads((Path(args.resume) / runs.CONFIG_NAME).read_text("utf-8"))
        except (OSError, ValueError):
            config = None       # the VAE path reports a missing or broken config.json
        if is_vq_config(config):
            if args.model == "vae":
                raise ValueError(f"--resume {args.resume} is a VQ-VAE run; --model vae does "
                                 f"not apply to it")
            return True
        if args.model == MODEL_NAME:
            raise ValueError(f"--resume {args.resume} is not a VQ-VAE run; --model vqvae does "
                             f"not apply to it")
    if args.model != MODEL_NAME and vq_options:
        raise ValueError(f"{_flags(vq_options)} appl{'ies' if len(vq_options) == 1 else 'y'} "
                         f"to --model vqvae")
    return args.model == MODEL_NAME


def _new_config(args):
    wrong = _given(args, NOT_FOR_VQ)
    if wrong:
        raise ValueError(f"{_flags(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply "
                         f"to --model vqvae")
    overrides = {key: getattr(args, key, None) for key in SHARED}
    overrides["hidden"] = flatten_widths(args.hidden)
    if args.optim_eps is not None:
        overrides["optimizer_options"] = {"eps": args.optim_eps}
    s = presets.resolve(None, overrides)
    if s["optimizer_options"] and s["optimizer"] not in ("adam", "adagrad"):
        raise ValueError(f"--optim-eps applies to adam and adagrad, not {s['optimizer']}")
    vq = {key: getattr(args, key) if getattr(args, key) is not None else default
          for key, default in VQ_DEFAULTS.items()}
    model = dict(x_dim=1, hidden=list(s["hidden"]), activation=s["activation"],
                 likelihood=s["likelihood"], dtype=s["dtype"], seed=s["seed"], **vq)
    training = {key: s[key] for key in ("dataset", "optimizer", "lr", "optimizer_options",
                                        "lr_schedule", "epochs", "batch_size", "seed")}
    return dict(format_version=runs.FORMAT_VERSION, model=MODEL_NAME, vqvae=model,
                reseed=not args.no_reseed, data_dir=absolute_data_dir(args.data_dir),
                limit=args.limit, subset_seed=s["seed"], no_download=args.no_download,
                created=datetime.now().isoformat(timespec="seconds"),
                **training)


def _open_run(args):
    """(run_dir, config, dataset) of a new run or of the run --resume continues."""
    if args.resume:
        given = _given(args, SHARED + NOT_FOR_VQ + ("out", "limit", "optim_eps")
                       + tuple(VQ_DEFAULTS) + ("no_reseed",))
        given = [g for g in given if g != "epochs"]
        if given:
            raise ValueError(f"--resume continues a run with its own settings; {_flags(given)} "
                             f"cannot be given with it (only --epochs, --data-dir and output "
                             f"options can)")
        run_dir = Path(args.resume)
        config = read_vq_config(run_dir)
        if args.epochs is not None:
            config["epochs"] = args.epochs
        return run_dir, config, load_data(config, args)
    config = _new_config(args)
    dataset = load_data(config, args)
    config["vqvae"]["x_dim"] = dataset.n_features
    config["image_shape"] = list(dataset.image_shape)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out or Path("runs") / f"{dataset.name}-vqvae-{stamp}")
    if (run_dir / runs.CONFIG_NAME).exists():
        raise ValueError(f"--out {run_dir} already holds a run; continue it with "
                         f"--resume {run_dir} or choose another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, config, dataset


def run_train_vq(args) -> int:
    """Open (or continue) a VQ-VAE run, train its remaining epochs, draw its figures."""
    run_dir, config, dataset = _open_run(args)
    config_path = run_dir / runs.CONFIG_NAME
    model = build_vq_model(config, config_path)
    if model.x_dim != dataset.n_features:
        raise ValueError(f"{config_path}: the model expects {model.x_dim} features but data set "
                         f"{dataset.name!r} has {dataset.n_features}")
    optimizer = runs.build_optimizers(config)[0]
    rng = np.random.default_rng([config["seed"], TRAIN_STREAM])
    history = {column: [] for column in HISTORY_COLUMNS}
    done = 0
    checkpoint = run_dir / runs.CHECKPOINT_NAME
    if args.resume:
        runs.remove_stale_temp_files(run_dir)
    if args.resume and checkpoint.exists():
        arrays = runs.load_checkpoint(checkpoint)
        done, history = restore_vq_checkpoint(arrays, config, model, checkpoint)
        runs.restore_optimizers(arrays, (optimizer,), model, checkpoint)
        rng = runs.restore_rng(arrays, checkpoint)
        if args.epochs is not None and args.epochs <= done:
            raise ValueError(f"--epochs is the new total number of epochs, and {run_dir} has "
                             f"already completed {done}: pass --epochs {done + args.epochs} to "
                             f"train {args.epochs} more")
    runs.write_config(run_dir, config)
    if done:
        write_vq_history_csv(run_dir, history)
    x_train, test, what = limited_data(config, dataset)
    x_test = test.x
    print(fit_lines(f"{'resuming' if done else 'training'} {model}\n  on {dataset.name}: {what}"
                    f"\n  into {run_dir}" + (f" after epoch {done}" if done else "")), flush=True)
    for epoch in range(done + 1, config["epochs"] + 1):
        lr = presets.learning_rate(config["lr_schedule"], config["lr"], epoch)
        optimizer.lr = lr
        progress = Progress(epoch, config["epochs"], quiet=args.quiet)
        start = time.perf_counter()
        try:
            h = fit_vq(model, x_train, optimizer, epochs=1, batch_size=config["batch_size"],
                       rng=rng, callback=progress, binarize=dataset.dynamic_binarization,
                       first_epoch=epoch, init_codebook=epoch == 1,
                       reseed=config.get("reseed", True))
        except TrainingDivergedError as exc:
            kept = (f"The checkpoint of epoch {epoch - 1} is kept in {run_dir}." if epoch > 1
                    else f"No epoch completed, so {run_dir} holds no checkpoint.")
            print(f"vae-np: training diverged: {exc} {kept}", file=sys.stderr)
            return 1
        finally:
            progress.close()
        test_recon, test_usage, test_perplexity = heldout_statistics(model, x_test)
        row = dict(epoch=epoch, train_loss=h["loss"][0], train_recon=h["recon"][0],
                   train_codebook_loss=h["codebook_loss"][0],
                   train_commitment_loss=h["commitment_loss"][0], usage=h["usage"][0],
                   perplexity=h["perplexity"][0], reseeded=h["reseeded"][0],
                   test_recon=test_recon, test_usage=test_usage, test_perplexity=test_perplexity,
                   lr=lr, seconds=time.perf_counter() - start)
        for column in HISTORY_COLUMNS:
            history[column].append(row[column])
        save_vq_checkpoint(run_dir, model, optimizer, rng, epoch, history, config)
        write_vq_history_csv(run_dir, history)
        print(f"epoch {epoch}/{config['epochs']}  train {row['train_loss']:.2f} (recon "
              f"{row['train_recon']:.2f}, codebook {row['train_codebook_loss']:.2f}, commitment "
              f"{row['train_commitment_loss']:.2f})  test recon {test_recon:.2f}  "
              f"{row['seconds']:.1f} s\n  codes used {row['usage']:.0%}, perplexity "
              f"{row['perplexity']:.1f}, re-seeded {row['reseeded']}", flush=True)
    if done >= config["epochs"]:
        print(f"{run_dir} has already completed {done} epochs (to train longer, pass --epochs "
              f"with the new total, e.g. --epochs {2 * done})")
    if not args.no_figures and history["epoch"]:
        _figures(run_dir, config, model, x_test)
    print(f"run written to {run_dir}")
    return 0


def heldout_statistics(model, X, batch_size=1000):
    """Mean -ln p(x | z_q) over X (nats), and the usage and perplexity of X's codes."""
    nll, counts = 0.0, np.zeros(model.codebook_size, dtype=np.int64)
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size]
        codes = model.encode_codes(x)
        nll += float(model.nll_given_codes(x, codes).sum())
        counts += np.bincount(codes.ravel(), minlength=model.codebook_size)
    return (nll / len(X), *code_statistics(counts))


def _figures(run_dir, config, model, x_test):
    """reconstructions.png and code_usage.png; without matplotlib say what to install."""
    out = run_dir / runs.FIGURES_DIR
    rng = np.random.default_rng([config["seed"], SAMPLE_STREAM])
    x = x_test[choose_rows(len(x_test), 32, rng)]
    try:
        shape = config.get("image_shape") or [1, model.x_dim]
        x_float = x.astype(float) / (255 if x.dtype == np.uint8 else 1)
        written = [reconstructions_figure(out / "reconstructions.png", x_float,
                                          model.reconstruct(x), shape[-2:])]
        written.append(code_usage_figure(out / "code_usage.png", model, x_test))
    except figures.PlotUnavailable:
        print(f"figures skipped: {figures.HINT}", file=sys.stderr)
        return []
    print(fit_lines(f"figures in {out}: {', '.join(p.name for p in written)}"))
    return written


def code_usage_figure(path, model, X, batch_size=1000):
    """A bar chart of how often each code is chosen on X, codes sorted by frequency."""
    counts = np.zeros(model.codebook_size, dtype=np.int64)
    for i in range(0, len(X), batch_size):
        counts += np.bincount(model.encode_codes(X[i:i + batch_size]).ravel(),
                              minlength=model.codebook_size)
    usage, perplexity = code_statistics(counts)
    fig = figures._figure(7, 3)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(np.arange(model.codebook_size), np.sort(counts)[::-1] / max(counts.sum(), 1),
           width=1.0, color="0.3")
    ax.set_xlabel("code (sorted by frequency)")
    ax.set_ylabel("fraction of latent vectors")
    ax.set_title(f"code usage on the test set: {usage:.0%} of {model.codebook_size} codes used, "
                 f"perplexity {perplexity:.1f}", fontsize=10)
    fig.tight_layout()
    return figures._save(fig, path)


def reconstructions_figure(path, x, x_rec, image_shape):
    """Inputs beside the decoder mean at their codes, z_q = e_codes(x), in pairs."""
    grid = figures.tile_pairs(x, x_rec, image_shape, ncols=8)
    scale = max(7 / max(grid.shape), 0.015)
    fig = figures._figure(grid.shape[1] * scale + 0.4, grid.shape[0] * scale + 0.9)
    figures._show(fig.add_subplot(1, 1, 1), grid,
                  "each pair: input (left), decoder mean at z_q = e_codes(x) (right)")
    fig.suptitle("VQ-VAE: inputs | reconstructions from their codes", fontsize=11)
    fig.tight_layout()
    return figures._save(fig, path)
