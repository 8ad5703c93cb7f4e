"""``vae-np explain``: the backprop lesson, one training step of any VAE read from its trace.

The model options beyond the posterior (``--prior vamp [--pseudo-inputs K]``, ``--z2-dim N
[--hidden2 W ...]``: the VampPrior, a second stochastic layer) are shared with ``gradcheck``
(:func:`prior_arguments`, :func:`prior_options`). ``explain --z2-dim 1`` is the two-layer lesson:
the gradient reaching z1 from its three consumers, dz = dz1_x + dz1_p + dz1_q, each line checked.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap

from ..core.model import LIKELIHOODS
from ..core.prior import PRIORS
from ..flows.chain import FLOW_KINDS
from ..ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS
from ..teaching.explain import LESSON, LR, MISTAKES, explain, format_lesson
from .args import INT, INT0, POSITIVE, WIDTHS, flatten_widths, flow_length_default


FLOW_LENGTH = 2
"""--flow-length when --flow is given without it: z_0, two steps z_1, z_2 and their logdet_l."""
PSEUDO_INPUTS = 2
"""--pseudo-inputs when --prior vamp is given without it (explain and gradcheck)."""
HIDDEN2 = (2,)
"""The lesson's --hidden2 when --z2-dim is given without it: q(z2|z1) Z1-2-Z2, p(z1|z2) Z2-2-Z1."""


def prior_arguments(parser, hidden2_default):
    """Add --prior, --pseudo-inputs, --z2-dim, --hidden2 (explain, gradcheck)."""
    parser.add_argument("--prior", choices=[n for n, c in PRIORS.items() if not c.wraps],
                        help="p(z): normal (N(0, I), the default) or vamp (the VampPrior; with "
                             "--z2-dim, the prior of z2)")
    parser.add_argument("--pseudo-inputs", type=INT,
                        help=f"K pseudo-inputs of --prior vamp (default {PSEUDO_INPUTS})")
    parser.add_argument("--z2-dim", type=INT,
                        help="a second stochastic layer z2 of this size above z (z1)")
    parser.add_argument("--hidden2", type=WIDTHS, nargs="*",
                        help=f"widths of q(z2|z1) and p(z1|z2) (with --z2-dim; default "
                             f"{' '.join(map(str, hidden2_default))})")


def prior_options(args, hidden2_default):
    """The VAE keywords of --prior, --pseudo-inputs, --z2-dim, --hidden2 (none given: {}); an
    option that needs another one alone is a ValueError naming both."""
    hidden2 = flatten_widths(args.hidden2)
    if args.pseudo_inputs is not None and args.prior != "vamp":
        raise ValueError(f"--pseudo-inputs applies to --prior vamp, got --pseudo-inputs "
                         f"{args.pseudo_inputs} with --prior {args.prior or 'normal'}")
    if hidden2 is not None and args.z2_dim is None:
        raise ValueError("--hidden2 applies to a second stochastic layer: give --z2-dim with it")
    options = {}
    if args.prior is not None:
        options["prior"] = args.prior
    if args.prior == "vamp":
        options["pseudo_inputs"] = args.pseudo_inputs or PSEUDO_INPUTS
    if args.z2_dim is not None:
        options.update(z2_dim=args.z2_dim, hidden2=hidden2_default if hidden2 is None else hidden2)
    return options


def register(subparsers):
    e = subparsers.add_parser(
        "explain", help="the backprop lesson: one training step, every quantity by name",
        description=textwrap.fill(
            "Build a float64 VAE (default: the 3-2-1 lesson, tanh, Gaussian decoder), "
            "freeze x and eps, and run one training step through the model's own trace: "
            "every forward quantity with its equation, shape and value; every d<v> with "
            "its backward equation and a central difference of the loss with v nudged; "
            "every parameter's gradient against central differences; one SGD step. "
            "Exits 1 and names the first wrong gradient if a check fails (or says that "
            "the SGD step raised the loss).", 100),
        epilog="mistakes for --plant:\n" + "\n".join(
            textwrap.fill(text, 100, initial_indent=f"  {name:<22}", subsequent_indent=" " * 24)
            for name, (text, _) in MISTAKES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--x-dim", type=INT, default=LESSON["x_dim"], help="data dimension (3)")
    e.add_argument("--hidden", type=WIDTHS, nargs="*", help="hidden widths, e.g. 5 4 (default 2)")
    e.add_argument("--z-dim", type=INT, default=LESSON["z_dim"], help="latent dimension (1)")
    e.add_argument("--activation", choices=sorted(ACTIVATIONS), default=LESSON["activation"],
                   help="default tanh")
    e.add_argument("--likelihood", choices=LIKELIHOODS, default=LESSON["likelihood"],
                   help="default gaussian")
    e.add_argument("--sigma-param", choices=sorted(SIGMA_PARAMETERIZATIONS),
                   default=LESSON["sigma_param"], help="default logvar")
    e.add_argument("--k", type=INT, default=1, help="Monte Carlo samples per example (1)")
    e.add_argument("--flow", choices=sorted(FLOW_KINDS),
                   help="a normalizing-flow posterior: the Gaussian, then --flow-length steps")
    e.add_argument("--flow-length", type=INT0,
                   help=f"number of flow steps L (with --flow; default {FLOW_LENGTH})")
    prior_arguments(e, HIDDEN2)
    e.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="elbo (default) or iwae: the importance-weighted bound over the k samples")
    e.add_argument("--batch", type=INT, default=1, help="examples in the batch (1)")
    e.add_argument("--seed", type=INT0, default=0, help="seed of the weights, x and eps (0)")
    e.add_argument("--lr", type=POSITIVE, default=LR,
                   help=f"the SGD step's learning rate ({LR:g}; a large model may need less)")
    e.add_argument("--plant", choices=sorted(MISTAKES), metavar="MISTAKE",
                   help="plant a known mistake in one backward op (see below) and watch the "
                        "checks turn red")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    e.set_defaults(func=run_explain)


def run_explain(args) -> int:
    hidden = flatten_widths(args.hidden)
    flow_length_default(args, FLOW_LENGTH)
    result = explain(seed=args.seed, lr=args.lr, batch=args.batch, k=args.k, mistake=args.plant,
                     objective=args.objective,
                     x_dim=args.x_dim, hidden=LESSON["hidden"] if hidden is None else hidden,
                     z_dim=args.z_dim, activation=args.activation, likelihood=args.likelihood,
                     sigma_param=args.sigma_param, flow=args.flow, flow_length=args.flow_length,
                     **prior_options(args, HIDDEN2))
    print(json.dumps(result) if args.json else format_lesson(result))
    sys.stdout.flush()
    return 0 if result["passed"] else 1
