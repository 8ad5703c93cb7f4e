"""The VAE's commands (the model kind "vae", the default of ``train``; protocol in
:mod:`vae_np.cli.kinds`): its ``train`` options and config, its history row and epoch line, its
figures, and ``evaluate`` (the test -ELBO, the IWAE estimate of -ln p(x), active units),
``sample`` and ``reconstruct`` of its runs.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.batch import to_float
from ..core.model import DECODER_MEANS
from ..core.objective import OBJECTIVES
from ..evaluate import (
    active_units, describe, elbo, evaluation_set, evaluation_subset, iwae_nll, standard_error,
    subset_record)
from ..figures import runs as figures
from ..flows.chain import FLOW_KINDS
from ..ops import SIGMA_PARAMETERIZATIONS
from ..runs import directory as runs
from ..runs import presets
from ..training.fit import SCHEDULES
from .args import FLOAT, INT, INT0, POSITIVE, fit_lines
from .common import SAMPLE_STREAM, SE_NOTE, draw, load_data, mean_se, save_per_example
from .kinds import COMMAND_KINDS, CommandKind, run_config, shared_settings


class VAECommands(CommandKind):
    name, title = "vae", "VAE"
    help = "vae (default)"
    options = ("preset", "z_dim", "sigma_param", "decoder_mean", "init_std", "decoder_sigma_min",
               "flow", "flow_length", "k", "schedule", "objective", "estimator")

    # ------------------------------------------------------------------ train
    def add_arguments(self, p):
        d = presets.DEFAULTS
        g = p.add_argument_group("VAE options (--model vae, the default)")
        g.add_argument("--preset", choices=sorted(presets.PRESETS),
                       help="a published setup (below)")
        g.add_argument("--z-dim", type=INT, help=f"latent dimension (default {d['z_dim']})")
        g.add_argument("--sigma-param", choices=sorted(SIGMA_PARAMETERIZATIONS),
                       help="default logvar")
        g.add_argument("--decoder-mean", choices=DECODER_MEANS,
                       help="Gaussian mean (default identity)")
        g.add_argument("--init-std", type=POSITIVE,
                       help="N(0, s^2) weights (default U(+-1/sqrt(fan_in)))")
        g.add_argument("--decoder-sigma-min", type=FLOAT,
                       help="lower bound of a learned decoder sigma")
        g.add_argument("--flow", choices=sorted(FLOW_KINDS),
                       help="a normalizing-flow posterior: the Gaussian, then --flow-length steps")
        g.add_argument("--flow-length", type=INT0, help="number of flow steps L (with --flow)")
        g.add_argument("--k", type=INT, help="Monte Carlo samples per example (default 1)")
        g.add_argument("--schedule", choices=SCHEDULES,
                       help="joint or alternating phi/theta steps")
        g.add_argument("--objective", choices=sorted(OBJECTIVES),
                       help="elbo (default) or iwae: the importance-weighted bound over the --k "
                            "samples")
        g.add_argument("--estimator", choices=("standard", "dreg"),
                       help="the gradient: standard (default), or dreg (with --objective iwae: "
                            "the doubly-reparameterized encoder gradient)")

    def build_config(self, args):
        s = shared_settings(args, args.preset, tuple(presets.DEFAULTS))
        if s["estimator"] == "dreg" and s["objective"] != "iwae":
            raise ValueError("--estimator dreg applies to --objective iwae")
        if (args.flow is None) != (args.flow_length is None):
            raise ValueError("--flow and --flow-length go together, e.g. --flow planar "
                             "--flow-length 10")
        if args.flow is not None and s["estimator"] == "dreg":
            raise ValueError("--estimator dreg is not supported with --flow (it needs the inverse "
                             "of the flow); use --estimator standard")
        model = dict(x_dim=1, hidden=list(s["hidden"]), z_dim=s["z_dim"],
                     activation=s["activation"], likelihood=s["likelihood"],
                     sigma_param=s["sigma_param"], dtype=s["dtype"], seed=s["seed"],
                     decoder_mean=s["decoder_mean"], init_std=s["init_std"],
                     decoder_sigma_min=s["decoder_sigma_min"], flow=args.flow,
                     flow_length=args.flow_length)
        return run_config(self, args, s, model, preset=args.preset,
                          **{key: s[key] for key in ("k", "schedule", "objective", "estimator")})

    def fit_options(self, config):
        return dict(k=config["k"], schedule=config["schedule"],
                    objective=config.get("objective", "elbo"),  # runs made before it: the ELBO
                    estimator=config.get("estimator", "standard"))

    def epoch_columns(self, run, h):
        config = run.config
        test = elbo(run.model, run.x_test, k=1, seed=config["seed"], rows=run.test_rows)
        test_loss = test.loss                        # the objective: -ELBO or -L_k
        if runs.loss_name(config) != "-ELBO":   # an IWAE run: the bound it trains on, on test
            test_loss = iwae_nll(run.model, run.x_test, k=config["k"], seed=config["seed"],
                                 rows=run.test_rows)[0]
        return dict(train_loss=h["loss"][0], train_recon=h["recon"][0], train_kl=h["kl"][0],
                    test_loss=test_loss, test_recon=test.recon, test_kl=test.kl)

    def epoch_line(self, run, row):
        name = runs.loss_name(run.config)
        if name == "-ELBO":
            train = (f"train {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, "
                     f"kl {row['train_kl']:.2f})")
        else:       # the bound, then the two terms of the -ELBO, whose sum is above it
            train = (f"train {name} {row['train_loss']:.2f} (-ELBO: recon "
                     f"{row['train_recon']:.2f} + kl {row['train_kl']:.2f})")
        return (f"epoch {row['epoch']}/{run.config['epochs']}  {train}  test {name} "
                f"{row['test_loss']:.2f}  {row['seconds']:.1f} s")

    def figures(self, run):
        rng = np.random.default_rng([run.config["seed"], SAMPLE_STREAM])
        return figures.run_figures(run.run_dir / runs.FIGURES_DIR, run.model, run.dataset,
                                   run.x_test, run.history, rng, rows=run.test_rows,
                                   loss_name=runs.loss_name(run.config))

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, args):
        config, model, epoch, _ = runs.load_run(args.run_dir, dtype=args.dtype)
        runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
        dataset = load_data(config, args)
        subset = evaluation_subset(dataset, "test", args.limit, args.seed)
        x, rows = subset.x, subset.rows
        max_bytes = args.max_mb * 2 ** 20
        start = time.perf_counter()
        result = dict(run=str(args.run_dir), epoch=epoch, dataset=dataset.name,
                      **subset_record(subset), dtype=args.dtype)
        first = elbo(model, x, k=1, seed=args.seed, max_bytes=max_bytes, rows=rows)
        avg = elbo(model, x, k=args.elbo_k, seed=args.seed, max_bytes=max_bytes, rows=rows)
        result.update(test_loss=first.loss, test_loss_se=standard_error(first.per_example),
                      test_recon=first.recon,
                      test_recon_se=standard_error(first.per_example_recon),
                      test_kl=first.kl, test_kl_se=standard_error(first.per_example_kl),
                      elbo_k=args.elbo_k, test_loss_avg=avg.loss,
                      test_loss_avg_se=standard_error(avg.per_example), test_recon_avg=avg.recon,
                      test_recon_avg_se=standard_error(avg.per_example_recon))
        nll, per_example = _iwae_with_progress(model, x, rows, args, max_bytes)
        result.update(iwae_nll=nll, iwae_nll_se=standard_error(per_example))
        if args.per_example:
            save_per_example(args.per_example, rows=rows, test_loss=first.per_example,
                             test_recon=first.per_example_recon, test_kl=first.per_example_kl,
                             test_loss_avg=avg.per_example, iwae_nll=per_example)
        count, variances = active_units(model, x, threshold=args.threshold)
        result.update(iwae_k=args.iwae_k, active_units=count, z_dim=model.z_dim,
                      threshold=args.threshold, unit_variances=variances.round(6).tolist(),
                      seconds=round(time.perf_counter() - start, 3))
        if args.json:
            print(json.dumps(result))
            return 0
        rows_out = [("-ELBO (k = 1)", mean_se(result, "test_loss")),
                    ("  reconstruction -ln p(x|z)", mean_se(result, "test_recon")),
                    ("  KL(q(z|x) || p(z))", mean_se(result, "test_kl")),
                    (f"-ELBO (mean of {args.elbo_k} samples)", mean_se(result, "test_loss_avg")),
                    (f"-ln p(x), IWAE k = {args.iwae_k}", mean_se(result, "iwae_nll")),
                    ("active units", f"{count} / {model.z_dim}  (Cov_x(E_q[z_j]) > "
                                     f"{args.threshold:g})")]
        print(fit_lines(f"{args.run_dir}: after epoch {epoch}\n  {dataset.name}, "
                        f"{describe(subset)}\n  {model}\n  nats per image"
                        f"{SE_NOTE if len(x) > 1 else ''}:"))
        print("\n".join(f"  {name:<32}{value}" for name, value in rows_out))
        print(f"  {result['seconds']:.1f} s")
        return 0

    # ------------------------------------------------------------------ sample, reconstruct
    def sample(self, args):
        config, model, epoch, _ = runs.load_run(args.run_dir)
        path = Path(args.run_dir) / runs.CONFIG_NAME
        runs.check_config(config, path, ("image_shape",))
        shape = config["image_shape"]
        if int(np.prod(shape)) != model.x_dim:
            raise ValueError(f"{path}: image_shape {shape} does not hold the model's "
                             f"{model.x_dim} features")
        images = model.sample(args.n, rng=np.random.default_rng([args.seed, SAMPLE_STREAM]))
        out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "samples.png")
        return draw(lambda: figures.image_grid(
            out, images, shape, ncols=min(args.n, 8),
            title=f"samples from the prior ({config.get('dataset', '?')}, epoch {epoch})"))

    def reconstruct(self, args):
        config, model, epoch, _ = runs.load_run(args.run_dir)
        runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
        dataset = load_data(config, args)
        x = evaluation_set(dataset, "test", args.n, args.seed)
        out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "reconstructions.png")
        inputs = to_float(x, np.dtype(np.float64))   # grey levels in [0, 1], as the decoder's mean
        return draw(lambda: figures.reconstructions(out, inputs, model.reconstruct(x),
                    dataset.image_shape, title=f"{dataset.name}, epoch {epoch}"))


def _iwae_with_progress(model, x, rows, args, max_bytes):
    """The IWAE estimate and its per-example values, with a '\\r' progress line on a terminal
    (it is the slow part)."""
    show = not args.quiet and sys.stderr.isatty()
    start = time.perf_counter()

    def progress(done, total):
        elapsed = time.perf_counter() - start
        if show:
            sys.stderr.write(f"\rIWAE k={args.iwae_k}: {done}/{total} examples, "
                             f"ETA {elapsed / done * (total - done):.0f} s   ")
            sys.stderr.flush()

    value, per_example = iwae_nll(model, x, k=args.iwae_k, seed=args.seed, max_bytes=max_bytes,
                                  progress=progress, rows=rows)
    if show:
        sys.stderr.write("\r" + " " * 60 + "\r")
    return value, per_example


COMMAND_KINDS.register("vae", VAECommands())
