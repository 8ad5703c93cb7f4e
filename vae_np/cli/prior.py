"""``vae-np fit-prior RUN_DIR``, and the VQ-VAE branches of ``evaluate``, ``sample`` and
``reconstruct`` (called from cli_evaluate and cli_images when config.json says "model": "vqvae").

fit-prior encodes the run's training set into codes c(x) (N, M), fits a MADE prior to them
(vae_np.vq.made, vae_np.vq.prior) and writes RUN_DIR/prior.npz and prior.json. evaluate then reports
on the test set: -ln p(x | c(x)), -ln prior(c(x)), their sum (the bound on -ln p(x), in nats),
codebook usage and perplexity.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.batch import to_float
from ..evaluate import describe, evaluation_set, evaluation_subset, standard_error, subset_record
from ..figures import runs as figures
from ..runs import directory as runs
from ..optim import Adam
from ..training.progress import Progress
from ..vq.made import MADEPrior
from ..vq.prior import (
    check_pair, code_usage, encode_all, fit_prior, load_prior, save_prior, vq_bound)
from .args import INT, POSITIVE, WIDTHS, fit_lines, flatten_widths
from .common import (
    SAMPLE_STREAM, SE_NOTE, draw, load_data, mean_se, run_dir_args, run_subset_seed,
    save_per_example)

PRIOR_STREAM = 5     # default_rng([seed, 5]): the prior's shuffles, apart from cli_common's streams


def register(subparsers):
    p = subparsers.add_parser(
        "fit-prior", help="fit a MADE prior to a VQ-VAE run's codes (for its bound and samples)",
        description="Encode the training set of a VQ-VAE run (train --model vqvae) into its code "
                    "indices and fit an autoregressive MADE prior over the M code positions by "
                    "maximum likelihood (Adam). Writes RUN_DIR/prior.npz and prior.json; then "
                    "'evaluate RUN_DIR' reports the bound -ln p(x|c(x)) - ln prior(c(x)) >= "
                    "-ln p(x) and 'sample RUN_DIR' decodes prior samples.")
    run_dir_args(p)
    p.add_argument("--epochs", type=INT, default=20, help="passes over the codes (default 20)")
    p.add_argument("--hidden", type=WIDTHS, nargs="*", help="masked hidden widths (default 512)")
    p.add_argument("--batch-size", type=INT, default=128, help="default 128")
    p.add_argument("--lr", type=POSITIVE, default=1e-3, help="Adam's learning rate (1e-3)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--limit", type=INT,
                   help="use N training, validation and test images, random subsets chosen by "
                        "the run's seed (default: the run's --limit, the images it trained on)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="keep the last epoch (default: the epoch of lowest -ln prior on the "
                        "validation split, when the data set has one)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures/*.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_fit_prior)


def is_vq_run(run_dir) -> bool:
    """Whether RUN_DIR/config.json says "model": "vqvae" (False when it is absent or unreadable:
    the VAE path then reports the problem in its own words)."""
    try:
        config = json.loads((Path(run_dir) / runs.CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model") == "vqvae"


def _load(args, dtype=None):
    from ..vq.runs import load_vq_run  # the VQ run layout (vae_np.vq_runs)
    model, config, history = load_vq_run(args.run_dir, dtype=dtype)
    return model, config, len(history.get("epoch", []))


def run_fit_prior(args) -> int:
    model, config, epoch = _load(args)
    dataset = load_data(config, args)
    limit = args.limit or config.get("limit")               # default: the images the VQ saw
    seed = run_subset_seed(config)      # the run's subsets: a smaller --limit takes a part of them
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
            print(f"epoch {event['epoch']}/{args.epochs}  -ln prior: train {event['train_nll']:.3f}"
                  f"{valid}  test {event['test_nll']:.3f} nats  {event['seconds']:.1f} s",
                  flush=True)
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
                         seed=args.seed, limit=limit, n_codes=len(codes), n_split=train.n_split,
                         subset=subset_record(train)["subset"], subset_seed=train.seed,
                         vq_epoch=epoch,
                         early_stopping=codes_valid is not None, kept_epoch=kept),
                history=history)
    paths = save_prior(args.run_dir, prior, info)
    print(f"kept the parameters of epoch {kept}"
          + (" (lowest -ln prior on the validation codes)" if codes_valid is not None else ""))
    print(f"wrote {paths[0]} and {paths[1]}  ({time.perf_counter() - start:.1f} s)")
    if not args.no_figures:
        _prior_figures(args, model, prior, codes, dataset.image_shape)
    return 0


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


# --------------------------------------------------------------------------- evaluate (VQ branch)
def run_evaluate_vq(args) -> int:
    """``evaluate RUN_DIR`` for a VQ-VAE run: the bound on the test set (needs fit-prior first,
    unless --no-bound), reconstruction -ln p(x|c(x)), codebook usage and perplexity."""
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
                  **subset_record(subset), dtype=dtype.name, model="vqvae",
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
        print(f"note: the prior was fitted to the codes of epoch {prior_epoch} and the model is "
              f"at epoch {epoch}; the bound holds but is looser than it need be: run "
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
    print(fit_lines(f"{args.run_dir}: after epoch {epoch}\n  {dataset.name}, {describe(subset)}\n"
                    f"  {model}" + (f"\n  prior: {prior}" if prior is not None else "")
                    + f"\n  nats per image{SE_NOTE if len(x) > 1 else ''}:"))
    print("\n".join(f"  {name:<34}{value}" for name, value in rows))
    print(f"  {result['seconds']:.1f} s")
    return 0


# --------------------------------------------------------------------------- sample, reconstruct
def run_sample_vq(args) -> int:
    """``sample RUN_DIR``: codes drawn from the learned prior, decoded to the decoder's mean."""
    model, config, epoch = _load(args)
    prior, _ = load_prior(args.run_dir)
    check_pair(model, prior)                    # a prior over other codes decodes nonsense
    shape = config.get("image_shape")
    if shape is None or int(np.prod(shape)) != model.x_dim:
        raise ValueError(f"{Path(args.run_dir) / runs.CONFIG_NAME}: image_shape {shape} does not "
                         f"hold the model's {model.x_dim} features")
    codes = prior.sample(args.n, np.random.default_rng([args.seed, SAMPLE_STREAM]))
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "samples.png")
    return draw(lambda: figures.image_grid(
        out, model.decode_codes(codes), shape, ncols=min(args.n, 8),
        title=f"samples of the learned prior ({config.get('dataset', '?')}, epoch {epoch})"))


def run_reconstruct_vq(args) -> int:
    """``reconstruct RUN_DIR``: test images (a random subset chosen by ``--seed``) beside the
    decoder's mean at their codes."""
    model, config, epoch = _load(args)
    dataset = load_data(config, args)
    x = evaluation_set(dataset, "test", args.n, args.seed)
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "reconstructions.png")
    inputs = to_float(x, np.dtype(np.float64))
    return draw(lambda: figures.reconstructions(out, inputs, model.reconstruct(x),
                dataset.image_shape, title=f"{dataset.name}, VQ-VAE epoch {epoch}",
                subtitle=figures.VQ_SUBTITLE))

