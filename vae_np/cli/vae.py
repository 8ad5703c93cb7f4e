"""The VAE's commands (the model kind "vae", the default of ``train``; protocol in
:mod:`vae_np.cli.kinds`): its ``train`` options and config, its history row and epoch line, its
figures, and ``evaluate`` (the test -ELBO, the IWAE estimate of -ln p(x), active units of every
stochastic layer), ``sample`` and ``reconstruct`` of its runs.

The model options beyond one Gaussian layer: ``--prior vamp --pseudo-inputs K`` (the VampPrior),
``--z2-dim N [--hidden2 W ...]`` (a second stochastic layer; ``--preset iwae-2layer``), stored in
config.json's "model" as the VAE's own keywords. The ELBO's KL options ``--warmup-epochs N`` and
``--free-bits LAMBDA`` are config entries ("warmup_epochs", "free_bits") from which every epoch
builds the same objective (``vae_np.objectives.elbo_objective``). Each is written only when it
asks for something, so a plain run's config.json is as before (a missing entry reads as its
default). KL warm-up's beta depends on the epoch number alone, so a resumed run continues bit for
bit. The history of such a run records the -ELBO (recon + kl) as its loss, a bound comparable
between epochs and runs; the epoch line also prints the loss that was minimised (``beta 0.25:
95.12``, ``free bits: 95.12``).
"""
from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.batch import to_float
from ..core.model import DECODER_MEANS, VAE
from ..core.objective import OBJECTIVES
from ..core.posterior import LOG_Q_PATH
from ..core.prior import PRIORS
from ..evaluate import (
    active_units_per_layer, describe, elbo, evaluation_set, evaluation_subset, iwae_nll,
    standard_error, subset_record)
from ..figures import runs as figures
from ..flows.chain import FLOW_KINDS
from ..objectives import elbo_objective
from ..ops import SIGMA_PARAMETERIZATIONS
from ..runs import directory as runs
from ..runs import presets
from ..training.fit import SCHEDULES
from .args import FLOAT, INT, INT0, POSITIVE, WIDTHS, fit_lines, flatten_widths
from .common import SAMPLE_STREAM, SE_NOTE, draw, load_data, mean_se, save_per_example
from .kinds import COMMAND_KINDS, CommandKind, run_config, shared_settings


PRIOR_CHOICES = tuple(name for name, cls in PRIORS.items() if not cls.wraps)
"""--prior's choices: the priors a one-layer model (or the top of two layers) can have."""


class VAECommands(CommandKind):
    name, title = "vae", "VAE"
    help = "vae (default)"
    options = ("preset", "z_dim", "sigma_param", "decoder_mean", "init_std", "decoder_sigma_min",
               "flow", "flow_length", "prior", "pseudo_inputs", "z2_dim", "hidden2", "k",
               "schedule", "objective", "estimator", "warmup_epochs", "free_bits")

    # ------------------------------------------------------------------ train
    def add_arguments(self, p):
        d = presets.DEFAULTS
        g = p.add_argument_group("VAE options (--model vae, the default)")
        g.add_argument("--preset", choices=sorted(presets.PRESETS), metavar="NAME",
                       help=f"a published setup: {', '.join(sorted(presets.PRESETS))} (below)")
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
        g.add_argument("--prior", choices=PRIOR_CHOICES,
                       help="p(z): normal (default, N(0, I)), or vamp: the VampPrior, a mixture "
                            "of q(z|u_k) at --pseudo-inputs K learned inputs (with --z2-dim: the "
                            "prior of the top layer)")
        g.add_argument("--pseudo-inputs", type=INT, help="K, the VampPrior's pseudo-inputs "
                                                        "(with --prior vamp; Tomczak & Welling: "
                                                        "500)")
        g.add_argument("--z2-dim", type=INT,
                       help="a second stochastic layer z2 of this size above z (Burda's "
                            "two-layer model; the preset iwae-2layer: 50)")
        g.add_argument("--hidden2", type=WIDTHS, nargs="*",
                       help="hidden widths of q(z2|z1) and p(z1|z2) (with --z2-dim; default 100 "
                            "100)")
        g.add_argument("--k", type=INT, help="Monte Carlo samples per example (default 1)")
        g.add_argument("--schedule", choices=SCHEDULES,
                       help="joint or alternating phi/theta steps")
        g.add_argument("--objective", choices=sorted(OBJECTIVES),
                       help="elbo (default) or iwae: the importance-weighted bound over the --k "
                            "samples")
        g.add_argument("--estimator", choices=("standard", "dreg"),
                       help="the gradient: standard (default), or dreg (with --objective iwae: "
                            "the doubly-reparameterized encoder gradient)")
        g.add_argument("--warmup-epochs", type=INT0,
                       help="KL warm-up (ELBO only): the KL weighted by beta = min(1, (epoch - "
                            "1) / N), 0 in epoch 1, 1 from epoch N + 1 (default 0: none)")
        g.add_argument("--free-bits", type=FLOAT, metavar="LAMBDA",
                       help="free bits (ELBO only): each KL group's batch mean floored at LAMBDA "
                            "nats (a unit, or a layer without a per-unit KL)")

    def build_config(self, args):
        args.hidden2 = flatten_widths(args.hidden2)     # --hidden2 100,100 or 100 100
        s = shared_settings(args, args.preset, tuple(presets.DEFAULTS))
        if s["estimator"] == "dreg" and s["objective"] != "iwae":
            raise ValueError("--estimator dreg applies to --objective iwae")
        if (args.flow is None) != (args.flow_length is None):
            raise ValueError("--flow and --flow-length go together, e.g. --flow planar "
                             "--flow-length 10")
        if args.flow is not None and s["estimator"] == "dreg":
            raise ValueError("--estimator dreg is not supported with --flow (it needs the inverse "
                             "of the flow); use --estimator standard")
        _check_prior_options(s, args.flow)
        _check_kl_options(s)
        model = dict(x_dim=1, hidden=list(s["hidden"]), z_dim=s["z_dim"],
                     activation=s["activation"], likelihood=s["likelihood"],
                     sigma_param=s["sigma_param"], dtype=s["dtype"], seed=s["seed"],
                     decoder_mean=s["decoder_mean"], init_std=s["init_std"],
                     decoder_sigma_min=s["decoder_sigma_min"], flow=args.flow,
                     flow_length=args.flow_length)
        # the new options are written only when they ask for something (a plain run's
        # config.json is as before; a missing entry reads as its default)
        if s["prior"] != "normal":
            model.update(prior=s["prior"], pseudo_inputs=s["pseudo_inputs"])
        if s["z2_dim"] is not None:
            model.update(z2_dim=s["z2_dim"],
                         hidden2=None if s["hidden2"] is None else list(s["hidden2"]))
        kl_options = {key: s[key] for key, none in (("warmup_epochs", 0), ("free_bits", None))
                      if s[key] != none}
        config = run_config(self, args, s, model, preset=args.preset, **kl_options,
                            **{key: s[key] for key in ("k", "schedule", "objective", "estimator")})
        _check_model(config)
        return config

    def fit_options(self, config):
        objective = config.get("objective", "elbo")     # runs made before it: the ELBO
        warmup, free_bits = config.get("warmup_epochs", 0), config.get("free_bits")
        if objective == "elbo":
            objective = _elbo_objective(warmup, free_bits)
        elif warmup or free_bits is not None:
            raise ValueError(f"config entries 'warmup_epochs' ({warmup}) and 'free_bits' "
                             f"({free_bits}) apply to objective 'elbo', not {objective!r}")
        return dict(k=config["k"], schedule=config["schedule"], objective=objective,
                    estimator=config.get("estimator", "standard"))

    def epoch_columns(self, run, h):
        config = run.config
        test = elbo(run.model, run.x_test, k=1, seed=config["seed"], rows=run.test_rows)
        test_loss = test.loss                        # the objective: -ELBO or -L_k
        if runs.loss_name(config) != "-ELBO":   # an IWAE run: the bound it trains on, on test
            test_loss = iwae_nll(run.model, run.x_test, k=config["k"], seed=config["seed"],
                                 rows=run.test_rows)[0]
        row = dict(train_loss=h["loss"][0], train_recon=h["recon"][0], train_kl=h["kl"][0],
                   test_loss=test_loss, test_recon=test.recon, test_kl=test.kl)
        objective = self.fit_options(config)["objective"]
        if not isinstance(objective, str):      # warm-up or free bits: the history keeps the
            what = ["free bits"] if config.get("free_bits") is not None else []     # -ELBO
            if config.get("warmup_epochs"):
                what.append(f"beta {objective.beta:.2g}")
            row.update(minimised=row["train_loss"], minimised_name=", ".join(what),
                       train_loss=row["train_recon"] + row["train_kl"])
        return row

    def epoch_line(self, run, row):
        name = runs.loss_name(run.config)
        if "minimised" in row:          # warm-up or free bits: the -ELBO, then what was minimised
            train = (f"train {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, kl "
                     f"{row['train_kl']:.2f}; {row['minimised_name']}: {row['minimised']:.2f})")
        elif name == "-ELBO":
            train = (f"train {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, "
                     f"kl {row['train_kl']:.2f})")
        else:       # the bound, then the two terms of the -ELBO, whose sum is above it
            train = (f"train {name} {row['train_loss']:.2f} (-ELBO: recon "
                     f"{row['train_recon']:.2f} + kl {row['train_kl']:.2f})")
        return fit_lines(f"epoch {row['epoch']}/{run.config['epochs']}  {train}  test {name} "
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
        layers = active_units_per_layer(model, x, threshold=args.threshold)
        (count, variances), dims = layers[0], [len(v) for _, v in layers]
        result.update(iwae_k=args.iwae_k, active_units=count, z_dim=model.z_dim,
                      threshold=args.threshold, unit_variances=variances.round(6).tolist(),
                      active_units_per_layer=[c for c, _ in layers], layer_dims=dims,
                      layer_unit_variances=[v.round(6).tolist() for _, v in layers],
                      seconds=round(time.perf_counter() - start, 3))
        if args.json:
            print(json.dumps(result))
            return 0
        rows_out = [("-ELBO (k = 1)", mean_se(result, "test_loss")),
                    ("  reconstruction -ln p(x|z)", mean_se(result, "test_recon")),
                    ("  KL(q(z|x) || p(z))", mean_se(result, "test_kl")),
                    (f"-ELBO (mean of {args.elbo_k} samples)", mean_se(result, "test_loss_avg")),
                    (f"-ln p(x), IWAE k = {args.iwae_k}", mean_se(result, "iwae_nll"))]
        rule = f"(Cov_x(E_q[z_j]) > {args.threshold:g})"
        if len(layers) == 1:
            rows_out.append(("active units", f"{count} / {model.z_dim}  {rule}"))
        else:               # z1 first; a layer above is read at the mean of the one below
            rows_out += [(f"active units, z{i}", f"{c} / {dim}  " + (
                rule if i == 1 else f"(q(z{i}|z{i - 1})'s mean at z{i - 1}'s mean)"))
                for i, ((c, _), dim) in enumerate(zip(layers, dims), 1)]
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


def _check_prior_options(s, flow):
    """The prior's options fit together and the model, in the command line's words."""
    if s["pseudo_inputs"] is not None and s["prior"] != "vamp":
        raise ValueError(f"--pseudo-inputs applies to --prior vamp (the number of its "
                         f"pseudo-inputs), got --prior {s['prior']}")
    if s["prior"] == "vamp" and s["pseudo_inputs"] is None:
        raise ValueError("--prior vamp needs --pseudo-inputs K, the number of its learned "
                         "pseudo-inputs (Tomczak & Welling use 500)")
    if s["hidden2"] is not None and s["z2_dim"] is None:
        raise ValueError("--hidden2 applies to a second stochastic layer: give --z2-dim with it")
    if s["prior"] == "vamp" and flow is not None and s["z2_dim"] is None:
        raise ValueError(f"--prior vamp does not fit --flow {flow}: its components are the "
                         f"Gaussians q(z|u_k), and a flow posterior is not Gaussian; use --prior "
                         f"normal, or no --flow")
    if s["estimator"] == "dreg" and (s["z2_dim"] is not None or s["prior"] == "vamp"):
        what, family = (("--z2-dim (two stochastic layers)", PRIORS["two-layer"])
                        if s["z2_dim"] is not None else ("--prior vamp", PRIORS["vamp"]))
        raise ValueError(f"--estimator dreg does not fit {what}: "
                         f"{family.unavailable[LOG_Q_PATH]}; use --estimator standard")


def _check_kl_options(s):
    """--warmup-epochs and --free-bits weight the ELBO's KL: refused with another objective; a
    warm-up that does not end before the last epoch is a warning on stderr, naming both."""
    for key, flag, none in (("warmup_epochs", "--warmup-epochs", 0),
                            ("free_bits", "--free-bits", None)):
        if s[key] != none and s["objective"] != "elbo":
            raise ValueError(f"{flag} applies to --objective elbo (it changes the ELBO's KL "
                             f"term), not --objective {s['objective']}")
    n, epochs = s["warmup_epochs"], s["epochs"]
    if n and n >= epochs:
        print(f"vae-np: warning: --warmup-epochs {n} >= --epochs {epochs}: beta never reaches 1 "
              f"(at most {epochs - 1}/{n})", file=sys.stderr)    # beta = min(1, (epoch - 1) / N)


def _check_model(config):
    """Build the config's model (on one input feature: x_dim is set once the data is loaded) and
    its objective, so that what does not fit together is refused before any data is read or
    directory made (the messages are the library's)."""
    model = VAE(**config["model"])
    model._objective(VAECommands().fit_options(config)["objective"], config["estimator"])


@functools.lru_cache(maxsize=None)
def _elbo_objective(warmup_epochs, free_bits):
    """The ELBO objective of a run's KL options: "elbo", or one ``KLWarmup`` / ``FreeBits``
    instance per setting (its beta is set by the loop's begin_epoch before every epoch)."""
    return elbo_objective(warmup_epochs=warmup_epochs, free_bits=free_bits)


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
