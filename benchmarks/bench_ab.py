"""Epoch time of this checkout against another checkout of vae_np, paired in one process.

    python benchmarks/bench_ab.py --baseline DIR [--pairs 5] [--n 60000] [--json]

DIR is a checkout of an earlier version (for example ``git worktree add /tmp/base <commit>``).
Both versions are imported side by side in this process and train the same model (the
pytorch/examples VAE: 784-400-20, ReLU, Bernoulli, Adam 1e-3, batch 128, float32) on the same data;
their epochs alternate (baseline, this, this, baseline, ...) after one untimed warm-up each, with
0.5 s idle before each epoch, and the figure to quote is the median of the paired ratios this/baseline.
A change to the ops, the model or the optimizers is measured this way before it lands.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import REPO, blas_info, emit, mnist_like, positive_int

BATCH, D, H, Z = 128, 784, 400, 20


def load_version(path):
    """Import the vae_np package found in ``path`` as a module object of its own."""
    for name in [m for m in sys.modules if m == "vae_np" or m.startswith("vae_np.")]:
        del sys.modules[name]
    sys.path.insert(0, str(path))
    try:
        return importlib.import_module("vae_np")
    finally:
        sys.path.remove(str(path))


def epoch_runner(lib, X):
    model = lib.VAE(D, (H,), Z, "relu", "bernoulli", dtype=np.float32, seed=0)
    opt, rng = lib.Adam(1e-3), np.random.default_rng(0)

    def run():
        time.sleep(0.5)          # let the other version's BLAS threads go idle
        start = time.perf_counter()
        loss = lib.fit(model, X, opt, epochs=1, batch_size=BATCH, rng=rng)["loss"][0]
        return time.perf_counter() - start, loss
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, type=Path, help="checkout to compare with")
    parser.add_argument("--pairs", type=positive_int, default=5)
    parser.add_argument("--n", type=positive_int, default=60000, help="training examples")
    parser.add_argument("--data-dir", type=Path, help="directory of the MNIST IDX files (default: "
                        "../shared/data/mnist beside the repository, else random uint8 images)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (args.baseline / "vae_np" / "__init__.py").is_file():
        parser.error(f"--baseline must be a checkout of vae_np, got {args.baseline}")
    baseline = load_version(args.baseline)
    X, source = mnist_like(args.n, data_dir=args.data_dir)   # the baseline's loader, imported last
    runners = {"baseline": epoch_runner(baseline, X), "this": epoch_runner(load_version(REPO), X)}
    for run in runners.values():
        run()                    # warm-up epoch each
    times = {name: [] for name in runners}
    for pair in range(args.pairs):
        order = list(runners) if pair % 2 == 0 else list(runners)[::-1]   # ABBA: no order bias
        for name in order:
            times[name].append(runners[name]()[0])
    ratios = [t / b for t, b in zip(times["this"], times["baseline"])]
    result = dict(data=source, n=len(X), blas=blas_info(), baseline=str(args.baseline),
                  baseline_s=times["baseline"], this_s=times["this"], ratios=ratios,
                  median_ratio=statistics.median(ratios))
    if args.json:
        emit(result, True)
        return
    print(f"{source}, {len(X)} examples, {blas_info()}")
    print(f"{'pair':>4}  {'baseline s':>10}  {'this s':>8}  {'this/baseline':>13}")
    for i, (b, t, r) in enumerate(zip(times["baseline"], times["this"], ratios), 1):
        print(f"{i:>4}  {b:>10.3f}  {t:>8.3f}  {r:>13.3f}")
    print(f"median paired ratio this/baseline: {result['median_ratio']:.3f} "
          f"(medians {statistics.median(times['this']):.3f} s vs "
          f"{statistics.median(times['baseline']):.3f} s)")


if __name__ == "__main__":
    main()
