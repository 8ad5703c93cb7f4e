"""Helpers shared by the benchmark scripts: timing medians, MNIST-shaped data, table output.

Benchmarks print figures; none of them is a test. The machine is noisy, so every figure is the
median of several repeats, and comparisons are measured side by side in one process run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))          # run from a checkout without installing


def _positive(convert, kind):
    """An argparse type: ``convert(text)``, which must be finite and > 0 (argparse turns the
    ArgumentTypeError into a one-line usage message naming the argument, exit status 2)."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive {kind}, got {text!r}")
        return value
    return parse


positive_int = _positive(int, "integer")
positive_float = _positive(float, "number")


def median_time(fn, repeats=5, warmup=1):
    """Median wall time of fn() over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def mnist_like(n=60000, seed=0, data_dir=None):
    """Real MNIST training images if ``data_dir`` (or ../shared/data/mnist) has them, else random
    uint8 images of MNIST's shape (the step time does not depend on the pixel values)."""
    candidates = [data_dir] if data_dir else [REPO.parent / "shared" / "data" / "mnist"]
    for d in candidates:
        if d and (Path(d) / "train-images-idx3-ubyte.gz").is_file():
            from vae_np.data import load_mnist
            return load_mnist(data_dir=d, download=False).x_train[:n], "MNIST"
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 784), dtype=np.uint8), "random uint8 (MNIST-shaped)"


def blas_info():
    """Which BLAS and how many threads NumPy uses (threadpoolctl if installed)."""
    try:
        from threadpoolctl import threadpool_info
        info = [f"{d.get('internal_api')} {d.get('version')} {d.get('architecture', '')} "
                f"threads={d.get('num_threads')}" for d in threadpool_info()]
        return "; ".join(info)
    except ImportError:
        return f"threadpoolctl not installed; OMP/OPENBLAS threads env = " \
               f"{os.environ.get('OPENBLAS_NUM_THREADS') or os.environ.get('OMP_NUM_THREADS') or 'default'}"


def print_table(title, rows, columns):
    """Print rows (dicts) as an aligned table with the given columns."""
    print(title)
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def emit(results, as_json):
    if as_json:
        print(json.dumps(results, indent=2, default=float))


def torch_step_loop(X_torch, batch_size, loss, optimizer):
    """The PyTorch side's ``run(steps)``: ``steps`` Adam steps on consecutive batches of X_torch
    (wrapping around), autograd through ``loss(x)``; returns the last loss."""
    n = len(X_torch)

    def run(steps):
        for i in range(steps):
            start = (i * batch_size) % n
            x = X_torch[start:start + batch_size]
            optimizer.zero_grad()
            value = loss(x)
            value.backward()
            optimizer.step()
        return float(value.detach())
    return run


def paired_rounds(runners, steps, rounds, pause=0.3):
    """Time ``runners`` {name: run(steps)} side by side: one warm-up of steps // 4 each, then
    ``rounds`` rounds of ``steps`` steps, the order reversed every other round so that neither
    side always runs first. Returns {name_ms: median ms per step} and, with both "vae_np" and
    "pytorch", "ratio": the median over rounds of vae_np / PyTorch."""
    runners = {name: run for name, run in runners.items() if run is not None}
    ms = {name: [] for name in runners}
    for run in runners.values():
        run(steps // 4 or 1)
    for r in range(rounds):
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
            time.sleep(pause)
            start = time.perf_counter()
            runners[name](steps)
            ms[name].append(1e3 * (time.perf_counter() - start) / steps)
    row = {f"{name}_ms": statistics.median(v) for name, v in ms.items()}
    if "vae_np" in ms and "pytorch" in ms:
        row["ratio"] = statistics.median(a / b for a, b in zip(ms["vae_np"], ms["pytorch"]))
    return row


def seeded_torch(threads):
    """torch with seed 0 and ``threads`` threads, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    return torch


def print_step_rows(title, results):
    """Print ``title`` and one line per {key: paired_rounds row}: ms per step and the ratio."""
    print(title)
    if not any("pytorch_ms" in row for row in results.values()):
        print("torch is not installed (pip install -e '.[bench]'): vae_np figures alone")
    for key, row in results.items():
        line = f"{key:>5}: vae_np {row['vae_np_ms']:.2f} ms/step"
        if "pytorch_ms" in row:
            line += f", PyTorch {row['pytorch_ms']:.2f} ms/step, ratio {row['ratio']:.3f}"
        print(line)
