"""Training-epoch throughput of the pytorch/examples VAE (784-400-20, ReLU, Bernoulli, Adam 1e-3,
batch 128, k = 1, float32) in vae_np, beside the identical PyTorch model when torch is installed,
and the epoch's GEMM floor: the time the epoch's matrix products alone take at the machine's
measured float32 rate for exactly these shapes.

    python benchmarks/bench_epoch.py [--repeats 5] [--n 60000] [--json]

The two frameworks' epochs alternate (vae_np, PyTorch, vae_np, ...) so that the machine's changing
load falls on both, after one untimed warm-up epoch each; the ratio reported is the median of the
paired ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from _common import blas_info, emit, median_time, mnist_like, positive_int, print_table

import vae_np

BATCH, D, H, Z = 128, 784, 400, 20


def gemm_shapes(b=BATCH):
    """(m, k, n, transpose_a) of every matrix product in one forward + backward step."""
    T, N = True, False                  # transpose_a: dW = x^T @ dy reads x transposed
    fwd = [(b, D, H, N), (b, H, Z, N), (b, H, Z, N), (b, Z, H, N), (b, H, D, N)]
    bwd = [(H, b, D, T), (b, D, H, N), (Z, b, H, T), (b, H, Z, N),     # decoder out, decoder 0
           (H, b, Z, T), (b, Z, H, N), (H, b, Z, T), (b, Z, H, N),     # mu head, sigma head
           (D, b, H, T)]                                               # encoder 0 (no dx)
    return fwd + bwd


def gemm_floor(steps_full, last_batch, repeats=20):
    """Seconds the epoch's GEMMs take back to back (float32, medians per shape), and their FLOPs."""
    rng = np.random.default_rng(0)
    total, flops = 0.0, 0.0
    for b, count in ((BATCH, steps_full), (last_batch, 1 if last_batch else 0)):
        for m, k, n, trans in gemm_shapes(b):
            A = rng.random((k, m) if trans else (m, k), dtype=np.float32)
            A = A.T if trans else A
            B = rng.random((k, n), dtype=np.float32)
            C = np.empty((m, n), np.float32)
            t, _ = median_time(lambda: np.matmul(A, B, out=C), repeats=repeats, warmup=3)
            total += count * t
            flops += count * 2.0 * m * k * n
    return total, flops


def numpy_epoch(X):
    """One vae_np training epoch as a function returning its mean loss."""
    model = vae_np.VAE(D, (H,), Z, "relu", "bernoulli", dtype=np.float32, seed=0)
    opt = vae_np.Adam(1e-3)
    rng = np.random.default_rng(0)
    return lambda: vae_np.fit(model, X, opt, epochs=1, batch_size=BATCH, rng=rng)["loss"][0]


def torch_vae():
    """The pytorch/examples VAE (with a ``loss(x)`` method) and its Adam optimizer, on as many
    threads as NumPy's BLAS uses by default (one per core)."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(D, H), nn.Linear(H, Z), nn.Linear(H, Z)
            self.fc3, self.fc4 = nn.Linear(Z, H), nn.Linear(H, D)

        def forward(self, x):
            h = torch.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return self.fc4(torch.relu(self.fc3(z))), mu, logvar

        def loss(self, x):
            """Summed negative ELBO of the batch (the example's loss_function)."""
            logits, mu, logvar = self(x)
            bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    model = TorchVAE()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def torch_model():
    """The pytorch/examples VAE, its Adam optimizer and one training epoch as a function."""
    import torch
    model, opt = torch_vae()

    def epoch(X, rng):
        total = 0.0
        Xt = torch.from_numpy(X)
        order = torch.from_numpy(rng.permutation(len(X)))
        for i in range(0, len(X), BATCH):
            x = Xt[order[i:i + BATCH]].float().div_(255)
            loss = model.loss(x) / len(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        return total / len(X)

    def test_loss(X):
        with torch.no_grad():
            Xt = torch.from_numpy(X)
            return sum(model.loss(Xt[i:i + 1000].float().div_(255)).item()
                       for i in range(0, len(X), 1000)) / len(X)
    return epoch, test_loss, torch.__version__


def interleaved(epochs, repeats, warmup=1, settle=0.5):
    """Time the epoch functions in turn, ``repeats`` rounds (a, b, a, b, ...), so that a change in
    the machine's load falls on both, after ``warmup`` untimed rounds (first-call costs); returns
    per function its times and last result.

    Each epoch starts after ``settle`` seconds idle: OpenBLAS's worker threads spin for about 0.1 s
    after a matrix product, and one framework's spinning threads would otherwise take a core from
    the other's first steps (seen here: PyTorch's 47-step epochs 30% slower right after vae_np's).
    """
    times = {name: [] for name in epochs}
    last = {}
    for round_ in range(warmup + repeats):
        for name, fn in epochs.items():
            time.sleep(settle)
            start = time.perf_counter()
            last[name] = fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times, last


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="epochs timed per framework, alternating between them")
    parser.add_argument("--n", type=positive_int, default=60000, help="training examples (default 60000)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    X, source = mnist_like(args.n)
    steps, last_batch = divmod(len(X), BATCH)
    floor, flops = gemm_floor(steps, last_batch)
    epochs = {"vae_np": numpy_epoch(X)}
    try:
        torch_epoch, _, version = torch_model()
        torch_rng = np.random.default_rng(0)
        epochs["torch"] = lambda: torch_epoch(X, torch_rng)
    except ImportError:
        version = None
    times, last = interleaved(epochs, args.repeats)
    t_np = statistics.median(times["vae_np"])
    rows = [dict(impl="vae_np (float32)", epoch_s=t_np, examples_per_s=len(X) / t_np,
                 vs_gemm_floor=t_np / floor, last_epoch_loss=last["vae_np"])]
    result = dict(data=source, n=len(X), blas=blas_info(), gemm_floor_s=floor,
                  gemm_gflops=flops / floor / 1e9, numpy_epoch_s=t_np, numpy_times=times["vae_np"])
    if version is None:
        result["torch"] = "not installed (pip install 'vae_np[bench]'): NumPy figures only"
    else:
        t_pt = statistics.median(times["torch"])
        ratios = [a / b for a, b in zip(times["vae_np"], times["torch"])]
        rows.append(dict(impl=f"PyTorch {version} (CPU)", epoch_s=t_pt, examples_per_s=len(X) / t_pt,
                         vs_gemm_floor=t_pt / floor, last_epoch_loss=last["torch"]))
        result.update(torch_epoch_s=t_pt, torch_times=times["torch"], paired_ratios=ratios,
                      ratio_numpy_over_torch=statistics.median(ratios))
    if args.json:
        emit(result, True)
        return
    print(f"data: {source}, {len(X)} examples, batch {BATCH}; BLAS: {result['blas']}")
    print(f"GEMM floor of one epoch: {floor:.3f} s ({result['gemm_gflops']:.0f} GFLOP/s at these shapes)")
    print_table(f"epoch time, median of {args.repeats} (the frameworks' epochs alternate)", rows,
                ["impl", "epoch_s", "examples_per_s", "vs_gemm_floor", "last_epoch_loss"])
    if "ratio_numpy_over_torch" in result:
        print(f"vae_np / PyTorch epoch time, median of the paired ratios: "
              f"{result['ratio_numpy_over_torch']:.3f} (target <= 0.7); pairs: "
              + ", ".join(f"{r:.2f}" for r in result["paired_ratios"]))
    else:
        print(result["torch"])


if __name__ == "__main__":
    main()
