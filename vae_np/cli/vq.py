"""The VQ-VAE's commands (the model kind "vqvae", ``train --model vqvae``; protocol in
:mod:`vae_np.cli.kinds`; run layout in :mod:`vae_np.vq.runs`): its ``train`` options and config,
its history row (codebook health, the test set's -ln p(x|z_q)) and figures, and for its runs

    fit-prior    encode the run's training set into codes c(x) (N, M), fit a MADE prior to them
                 (vae_np.vq.made, vae_np.vq.prior) and write RUN_DIR/prior.npz and prior.json;
    evaluate     on the test set: -ln p(x | c(x)), -ln prior(c(x)), their sum (the bound on
                 -ln p(x), in nats), codebook usage and perplexity;
    sample       codes drawn from the learned prior, decoded;
    reconstruct  test images beside the decoder's mean at their codes.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.batch import to_float
from ..data import choose_rows
from ..evaluate import describe, evaluation_set, evaluation_subset, standard_error, subset_record
from ..figures import runs as figures
from ..optim import Adam
from ..runs import directory as runs
from ..training.progress import Progress
from ..vq.made import MADEPrior
from ..vq.model import CODEBOOK_UPDATES
from ..vq.prior import (
    check_pair, code_usage, encode_all, fit_prior, load_prior, save_prior, vq_bound)
from ..vq.runs import load_vq_run
from ..vq.train import code_statistics
from .args import FLOAT, INT, POSITIVE, fit_lines, flatten_widths
from .common import (
    PRIOR_STREAM, SAMPLE_STREAM, SE_NOTE, draw, load_data, mean_se, run_subset_seed,
    save_per_example)
from .kinds import COMMAND_KINDS, CommandKind, run_config, shared_settings

VQ_DEFAULTS = dict(n_latents=16, code_dim=8, codebook_size=64, beta=0.25, codebook_update="grad",
                   ema_decay=0.99)


class VQCommands(CommandKind):
    name, title = "vqvae", "VQ-VAE"
    help = "vqvae: discrete latents, straight-through gradient"
    options = tuple(VQ_DEFAULTS) + ("no_reseed",)
    dir_tag = "-vqvae"

    # ------------------------------------------------------------------ train
    def add_arguments(self, p):
        g = p.add_argument_group("VQ-VAE options (with --model vqvae)")
        g.add_argument("--n-latents", type=INT, help="M latent vectors per example (default 16)")
        g.add_argument("--code-dim", type=INT, help="D, dimension of a latent vector (default 8)")
        g.add_argument("--codebook-size", type=INT, help="K codes (default 64)")
        g.add_argument("--beta", type=FLOAT, help="weight of the commitment term (default 0.25)")
        g.add_argument("--codebook-update", choices=CODEBOOK_UPDATES,
                       help="grad (default: the codebook term through the optimizer) or ema")
        g.add_argument("--ema-decay", type=POSITIVE,
                       help="gamma of --codebook-update ema (0.99)")
        g.add_argument("--no-reseed", action="store_true",
                       help="do not re-seed codes unused for a whole epoch")

    def build_config(self, args):
        s = shared_settings(args)
        vq = {key: getattr(args, key) if getattr(args, key) is not None else default
              for key, default in VQ_DEFAULTS.items()}
        model = dict(x_dim=1, hidden=list(s["hidden"]), activation=s["activation"],
                     likelihood=s["likelihood"], dtype=s["dtype"], seed=s["seed"], **vq)
        return run_config(self, args, s, model, reseed=not args.no_reseed)

    def fit_options(self, config):
        return dict(reseed=config.get("reseed", True))

    def epoch_columns(self, run, h):
        test_recon, test_usage, test_perplexity = heldout_statistics(run.model, run.x_test)
        return dict(train_loss=h["loss"][0], train_recon=h["recon"][0],
                    train_codebook_loss=h["codebook_loss"][0],
                    train_commitment_loss=h["commitment_loss"][0], usage=h["usage"][0],
                    perplexity=h["perplexity"][0], reseeded=h["reseeded"][0],
                    test_recon=test_recon, test_usage=test_usage,
                    test_perplexity=test_perplexity)

    def epoch_line(self, run, row):
        return (f"epoch {row['epoch']}/{run.config['epochs']}  train {row['train_loss']:.2f} "
                f"(recon {row['train_recon']:.2f}, codebook {row['train_codebook_loss']:.2f}, "
                f"commitment {row['train_commitment_loss']:.2f})  test recon "
                f"{row['test_recon']:.2f}  {row['seconds']:.1f} s\n  codes used "
                f"{row['usage']:.0%}, perplexity {row['perplexity']:.1f}, re-seeded "
                f"{row['reseeded']}")

    def figures(self, run):
        """reconstructions.png and code_usage.png."""
        out = run.run_dir / runs.FIGURES_DIR
        rng = np.random.default_rng([run.config["seed"], SAMPLE_STREAM])
        x = run.x_test[choose_rows(len(run.x_test), 32, rng)]
        shape = run.config.get("image_shape") or [1, run.model.x_dim]
        x_float = x.astype(float) / (255 if x.dtype == np.uint8 else 1)
        return [reconstructions_figure(out / "reconstructions.png", x_float,
                                       run.model.reconstruct(x), shape[-2:]),
                code_usage_figure(out / "code_usage.png", run.model, run.x_test)]

    # ------------------------------------------------------------------ fit-prior
    def fit_prior(self, args):
        model, config, epoch = _load(args)
        dataset = load_data(config, args)
        limit = args.limit or config.get("limit")               # default: the images the VQ saw
        seed = run_subset_seed(config)   # the run's subsets: a smaller --limit takes a part of them
        train = evaluation_subset(dataset, "train", limit, seed)
        x_train, x_test = train.x, evaluation_set(dataset, "test", limit, seed)
        hidden = flatten_widths(args.hidden) or (512,)
        prior = MADEPrior(model.n_latents, model.codebook_size, hidden=hidden, seed=args.seed,
                          dtype=np.dtype(args.dtype))
        start = time.perf_counter()
        codes, codes_test = encode_all(model, x_train), encode_all(model, x_test)
        codes_valid = None
        if getattr(dataset, "x_valid", None) is not None and not args.no_early_stopping:
            codes_valid = encode_all(model, evaluation_set(dataset, "valid", limit, seed))
        uniform = model.n_latents * np.log(model.codebook_size)
        print(fit_lines(f"fitting {prior}\n  to the codes of {dataset.name}: {describe(train)}\n"
                        f"  (run {args.run_dir}, epoch {epoch}); a uniform prior is M ln K = "
                        f"{uniform:.2f} nats"))

        def report(event):
            if event["kind"] == "epoch" and not args.quiet:
                progress.close()
                valid = ("" if event["valid_nll"] is None else
                         f"  valid {event['valid_nll']:.3f}{' (best)' if event['best'] else ''}")
                print(f"epoch {event['epoch']}/{args.epochs}  -ln prior: train "
                      f"{event['train_nll']:.3f}{valid}  test {event['test_nll']:.3f} nats  "
                      f"{event['seconds']:.1f} s", flush=True)
            elif event["kind"] == "step":
                if event["step"] == 1:
                    progress.epoch = event["epoch"]
                progress(event)

        progress = Progress(1, args.epochs, quiet=args.quiet)
        history = fit_prior(prior, codes, Adam(lr=args.lr), args.epochs, args.batch_size,
                            np.random.default_rng([args.seed, PRIOR_STREAM]), report, codes_test,
                            codes_valid)
        kept = [row["epoch"] for row in history if row["best"]][-1]
        info = dict(fit=dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, limit=limit, n_codes=len(codes),
                             n_split=train.n_split, subset=subset_record(train)["subset"],
                             subset_seed=train.seed, vq_epoch=epoch,
                             early_stopping=codes_valid is not None, kept_epoch=kept),
                    history=history)
        paths = save_prior(args.run_dir, prior, info)
        print(f"kept the parameters of epoch {kept}"
              + (" (lowest -ln prior on the validation codes)" if codes_valid is not None else ""))
        print(f"wrote {paths[0]} and {paths[1]}  ({time.perf_counter() - start:.1f} s)")
        if not args.no_figures:
            _prior_figures(args, model, prior, codes, dataset.image_shape)
        return 0

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, args):
        """The bound on the test set (needs fit-prior first, unless --no-bound), reconstruction
        -ln p(x|c(x)), codebook usage and perplexity."""
        dtype = np.dtype(getattr(args, "dtype", "float64"))
        model, config, epoch = _load(args, dtype=dtype)
        prior, prior_epoch = None, None
        if not getattr(args, "no_bound", False):
            prior, info = load_prior(args.run_dir, dtype)
            prior_epoch = info.get("fit", {}).get("vq_epoch")
        dataset = load_data(config, args)
        subset = evaluation_subset(dataset, "test", args.limit, args.seed)
        x = subset.x
        start = time.perf_counter()
        codes = encode_all(model, x)
        used, perplexity, _ = code_usage(codes, model.codebook_size)
        result = dict(run=str(args.run_dir), epoch=epoch, dataset=dataset.name,
                      **subset_record(subset), dtype=dtype.name, model=self.name,
                      codebook_size=model.codebook_size, usage=used, perplexity=perplexity)
        if prior is None:
            recon = model.nll_given_codes(x, codes)
            result.update(recon=float(np.mean(recon)), recon_se=standard_error(recon))
        else:
            bound = vq_bound(model, prior, x)
            result.update(recon=float(bound.recon.mean()), recon_se=standard_error(bound.recon),
                          prior_nll=float(bound.prior_nll.mean()),
                          prior_nll_se=standard_error(bound.prior_nll),
                          bound=float(bound.bound.mean()), bound_se=standard_error(bound.bound),
                          prior_fitted_at_epoch=prior_epoch)
        if getattr(args, "per_example", None):
            arrays = (dict(recon=recon) if prior is None else
                      dict(recon=bound.recon, prior_nll=bound.prior_nll, bound=bound.bound))
            save_per_example(args.per_example, rows=subset.rows, **arrays)
        result["seconds"] = round(time.perf_counter() - start, 3)
        stale = prior is not None and prior_epoch != epoch
        if stale:       # still a bound on -ln p(x), but over codes the model no longer produces
            print(f"note: the prior was fitted to the codes of epoch {prior_epoch} and the model "
                  f"is at epoch {epoch}; the bound holds but is looser than it need be: run "
                  f"'python -m vae_np fit-prior {args.run_dir}' again", file=sys.stderr)
        if args.json:
            print(json.dumps(result))
            return 0
        rows = [("-ln p(x | c(x))", mean_se(result, "recon"))]
        if prior is not None:
            rows += [("-ln prior(c(x)) = KL(q || prior)", mean_se(result, "prior_nll")),
                     ("bound >= -ln p(x)", mean_se(result, "bound"))]
        rows += [("codebook usage", f"{used:.1%} of {model.codebook_size} codes"),
                 ("perplexity of the codes", f"{perplexity:.1f}")]
        print(fit_lines(f"{args.run_dir}: after epoch {epoch}\n  {dataset.name}, "
                        f"{describe(subset)}\n  {model}"
                        + (f"\n  prior: {prior}" if prior is not None else "")
                        + f"\n  nats per image{SE_NOTE if len(x) > 1 else ''}:"))
        print("\n".join(f"  {name:<34}{value}" for name, value in rows))
        print(f"  {result['seconds']:.1f} s")
        return 0

    # ------------------------------------------------------------------ sample, reconstruct
    def sample(self, args):
        """Codes drawn from the learned prior, decoded to the decoder's mean."""
        model, config, epoch = _load(args)
        prior, _ = load_prior(args.run_dir)
        check_pair(model, prior)                    # a prior over other codes decodes nonsense
        shape = config.get("image_shape")
        if shape is None or int(np.prod(shape)) != model.x_dim:
            raise ValueError(f"{Path(args.run_dir) / runs.CONFIG_NAME}: image_shape {shape} does "
                             f"not hold the model's {model.x_dim} features")
        codes = prior.sample(args.n, np.random.default_rng([args.seed, SAMPLE_STREAM]))
        out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "samples.png")
        return draw(lambda: figures.image_grid(
            out, model.decode_codes(codes), shape, ncols=min(args.n, 8),
            title=f"samples of the learned prior ({config.get('dataset', '?')}, epoch {epoch})"))

    def reconstruct(self, args):
        """Test images (a random subset chosen by ``--seed``) beside the decoder's mean at their
        codes."""
        model, config, epoch = _load(args)
        dataset = load_data(config, args)
        x = evaluation_set(dataset, "test", args.n, args.seed)
        out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "reconstructions.png")
        inputs = to_float(x, np.dtype(np.float64))
        return draw(lambda: figures.reconstructions(out, inputs, model.reconstruct(x),
                    dataset.image_shape, title=f"{dataset.name}, VQ-VAE epoch {epoch}",
                    subtitle=figures.VQ_SUBTITLE))


def _load(args, dtype=None):
    """(model, config, completed epochs) of the VQ-VAE run ``args.run_dir``."""
    model, config, history = load_vq_run(args.run_dir, dtype=dtype)
    return model, config, len(history.get("epoch", []))


def heldout_statistics(model, X, batch_size=1000):
    """Mean -ln p(x | z_q) over X (nats), and the usage and perplexity of X's codes."""
    nll, counts = 0.0, np.zeros(model.codebook_size, dtype=np.int64)
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size]
        codes = model.encode_codes(x)
        nll += float(model.nll_given_codes(x, codes).sum())
        counts += np.bincount(codes.ravel(), minlength=model.codebook_size)
    return (nll / len(X), *code_statistics(counts))


# --------------------------------------------------------------------------- figures
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


def _prior_figures(args, model, prior, codes, image_shape):
    rng = np.random.default_rng([args.seed, SAMPLE_STREAM])
    sampled = prior.sample(64, rng)
    out = Path(args.run_dir) / runs.FIGURES_DIR
    try:
        paths = [figures.image_grid(out / "prior_samples.png", model.decode_codes(sampled),
                                    image_shape, ncols=8, title="decoded samples of the prior"),
                 code_usage_histogram(out / "prior_code_usage.png", codes,
                                      prior.sample(2000, rng), model.codebook_size)]
    except figures.PlotUnavailable as exc:
        print(f"vae-np: no figures: {exc}", file=sys.stderr)
        return
    print(fit_lines("figures: " + ", ".join(str(p) for p in paths)))


def code_usage_histogram(path, codes, sampled, codebook_size):
    """Bar chart of the frequency of each code in the training codes beside the prior's samples."""
    fig = figures._figure(8, 3)
    ax = fig.add_subplot(1, 1, 1)
    k = np.arange(codebook_size)
    for offset, data, label in ((-0.2, codes, "training codes"), (0.2, sampled, "prior samples")):
        counts = np.bincount(np.asarray(data).ravel(), minlength=codebook_size)
        ax.bar(k + offset, counts / counts.sum(), width=0.4, label=label)
    ax.set_xlabel("code index")
    ax.set_ylabel("frequency over all positions")
    ax.set_title("code usage: training set's codes and the learned prior's samples")
    ax.legend()
    fig.subplots_adjust(bottom=0.17)                     # room for the x label
    return figures._save(fig, path)


COMMAND_KINDS.register("vqvae", VQCommands())
