"""Gradient-verification timings (float64):

* the full pytorch/examples model (784-400-20) with directional checks, three random directions
  per tensor plus one across all tensors: every parameter is covered;
* a small model (20-16-2) with per-coordinate central differences over all of its parameters.

    python benchmarks/bench_gradcheck.py [--repeats 5] [--json]
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import emit, median_time, positive_int, print_table

import vae_np
from vae_np.gradcheck import check_model


def case(name, model, batch, method, repeats, **kw):
    rng = np.random.default_rng(0)
    x = (rng.random((batch, model.x_dim)) < 0.3).astype(np.float64)
    reports = []
    t, _ = median_time(lambda: reports.append(check_model(model, x, method=method, **kw)),
                       repeats=repeats, warmup=1)
    r = reports[-1]
    return dict(case=name, parameters=model.flat.size, method=method, batch=batch,
                evaluations=sum(row.checked for row in r.rows) * 2 + 1, seconds=t,
                max_error=r.max_error, passed=r.passed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    big = vae_np.VAE(784, (400,), 20, "relu", "bernoulli", dtype=np.float64)
    small = vae_np.VAE(20, (16,), 2, "tanh", "bernoulli", dtype=np.float64)
    rows = [case("784-400-20 full model", big, 32, "directional", args.repeats, directions=3),
            case("20-16-2 every coordinate", small, 32, "coordinates", args.repeats)]
    if args.json:
        emit(rows, True)
        return
    print_table(f"gradient checks, float64, median of {args.repeats} (targets: < 1 s each)", rows,
                ["case", "parameters", "method", "batch", "evaluations", "seconds", "max_error",
                 "passed"])


if __name__ == "__main__":
    main()
