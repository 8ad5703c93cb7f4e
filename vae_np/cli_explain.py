"""``vae-np explain``: the backprop lesson, one training step with every quantity by name."""
from __future__ import annotations

import json
import sys


def register(subparsers):
    e = subparsers.add_parser(
        "explain", help="the backprop lesson: one training step of a tiny VAE, step by step",
        description="Build a float64 VAE 3-2-1 (tanh, Gaussian decoder), fix x and eps, and print "
                    "every forward and backward quantity of one training step by name, with the "
                    "equation that produced it, its value and its finite-difference check; then "
                    "compare with VAE.loss_and_grads and take one SGD step. Exits 1 if a check "
                    "fails.")
    e.add_argument("--seed", type=int, default=0, help="seed of the model's weights (default 0)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    e.set_defaults(func=run_explain)


def run_explain(args) -> int:
    from .explain import explain, format_lesson
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    result = explain(seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_lesson(result))
    sys.stdout.flush()
    return 0 if result["passed"] else 1
