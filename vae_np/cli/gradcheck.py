"""``vae-np gradcheck``: check a model's full gradient (float64, or float32 against a float64 copy)
and print the per-tensor report."""
from __future__ import annotations

import json
import time

import numpy as np

from ..core.model import LIKELIHOODS, VAE
from ..flows.chain import FLOW_KINDS
from ..gradcheck.model import check_model
from ..ops import ACTIVATIONS, SIGMA_PARAMETERIZATIONS
from ..priors.two_layer import DEFAULT_HIDDEN2
from .args import INT0, WIDTHS, fit_lines, flatten_widths, flow_length_default
from .explain import prior_arguments, prior_options


FLOW_LENGTH = 2
"""--flow-length when --flow is given without it (as in ``explain``)."""


def register(subparsers):
    p = subparsers.add_parser(
        "gradcheck", help="check the full model gradient against finite differences",
        description="Build a float64 VAE on random data, freeze eps, and compare the hand-written "
                    "gradient with directional derivatives (every parameter) and central "
                    "differences on sampled coordinates. Exits 1 if any check fails.")
    p.add_argument("--x-dim", type=int, default=784)
    p.add_argument("--hidden", type=WIDTHS, nargs="*", default=[[400]],
                   help="hidden widths, e.g. 400 or 400,400 (default 400)")
    p.add_argument("--z-dim", type=int, default=20)
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    p.add_argument("--sigma-param", choices=sorted(SIGMA_PARAMETERIZATIONS), default="logvar")
    p.add_argument("--flow", choices=sorted(FLOW_KINDS),
                   help="a normalizing-flow posterior: the Gaussian, then --flow-length steps")
    p.add_argument("--flow-length", type=INT0,
                   help=f"number of flow steps L (with --flow; default {FLOW_LENGTH})")
    prior_arguments(p, DEFAULT_HIDDEN2)
    p.add_argument("--batch", type=int, default=16, help="random examples (default 16)")
    p.add_argument("--k", type=int, default=1, help="Monte Carlo samples (default 1)")
    p.add_argument("--coords", type=int, default=20,
                   help="coordinates sampled per tensor for central differences (default 20)")
    p.add_argument("--directions", type=int, default=3, help="random directions per tensor")
    p.add_argument("--tol", type=float, default=None,
                   help="error threshold (default 1e-6; 3.5e-4 = sqrt(eps32) for --dtype float32)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="float32: check the float32 gradient against central differences of a "
                        "float64 copy of the model (same parameters, data and noise)")
    p.add_argument("--h-rel", type=float, default=1e-6, help="relative step (default 1e-6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    flow_length_default(args, FLOW_LENGTH)
    model = VAE(args.x_dim, flatten_widths(args.hidden), args.z_dim, args.activation,
                args.likelihood, args.sigma_param, dtype=np.dtype(args.dtype), seed=args.seed,
                flow=args.flow, flow_length=args.flow_length,
                **prior_options(args, DEFAULT_HIDDEN2))
    reference = "float64" if args.dtype == "float32" else None
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, args.x_dim))
    if args.likelihood == "bernoulli":
        x = (x < 0.3).astype(np.float64)
    reports, seconds = [], []
    for method, extra in (("directional", {"directions": args.directions}),
                          ("coordinates", {"coords": args.coords})):
        start = time.perf_counter()
        reports.append(check_model(model, x, k=args.k, method=method, tol=args.tol,
                                   h_rel=args.h_rel, rng=np.random.default_rng(args.seed),
                                   reference=reference, **extra))
        seconds.append(time.perf_counter() - start)
    passed = all(r.passed for r in reports)
    if args.json:
        print(json.dumps(dict(model=repr(model), passed=passed,
                              checks=[dict(r.to_dict(), seconds=s) for r, s in zip(reports, seconds)])))
    else:
        against = " against a float64 copy's differences" if reference else ""
        print(fit_lines(f"{model}\n  batch {args.batch}, k {args.k}, eps frozen{against}"))
        for r, s in zip(reports, seconds):
            print(f"\n{r}\n({s:.2f} s)")
    return 0 if passed else 1
