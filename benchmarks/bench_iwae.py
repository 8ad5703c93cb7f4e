"""IWAE evaluation throughput: -ln p(x) estimated with k = 5000 importance samples per test image,
for the pytorch/examples model (784-400-20), chunked so the work arrays stay within a memory bound.

    python benchmarks/bench_iwae.py [--n 10000] [--k 5000] [--dtype float32 float64] [--json]

Throughput does not depend on the weights, so an untrained model is timed; the peak resident
memory is measured in this process (MNIST test images are kept as uint8).
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from _common import emit, mnist_like, positive_float, positive_int, print_table

import vae_np
from vae_np.evaluate import MAX_BYTES, iwae_nll


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, default=10000, help="test images (default 10000)")
    parser.add_argument("--k", type=positive_int, default=5000, help="importance samples (default 5000)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"])
    parser.add_argument("--max-mb", type=positive_float, default=MAX_BYTES / 2 ** 20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    X, source = mnist_like(args.n)
    rows = []
    for dtype in args.dtype:
        model = vae_np.VAE(784, (400,), 20, "relu", "bernoulli", dtype=dtype, seed=0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        nll, _ = iwae_nll(model, X, k=args.k, max_bytes=args.max_mb * 2 ** 20)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows.append(dict(dtype=dtype, images=len(X), k=args.k, seconds=seconds,
                         images_per_s=len(X) / seconds, samples_per_s=len(X) * args.k / seconds,
                         est_10k_images_s=10000 * seconds / len(X), work_bound_mb=args.max_mb,
                         peak_rss_mb=peak / 1024, rss_growth_mb=(peak - before) / 1024,
                         iwae_nll_untrained=nll))
    if args.json:
        emit(dict(data=source, rows=rows), True)
        return
    print(f"data: {source}")
    print_table("IWAE evaluation, 784-400-20 (untrained weights)", rows,
                ["dtype", "images", "k", "seconds", "images_per_s", "samples_per_s",
                 "est_10k_images_s", "work_bound_mb", "peak_rss_mb"])


if __name__ == "__main__":
    main()
