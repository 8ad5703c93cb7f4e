"""One VQ-VAE training step (784-400 ReLU encoder to M = 16 vectors of D = 8, K = 128 codes,
400-784 decoder, Bernoulli, Adam, batch 128, float32, codebook by its gradient), vae_np beside
the same model in PyTorch when torch is installed.

    python benchmarks/bench_vq_step.py [--steps 100] [--rounds 5] [--threads N] [--json]

On a loaded machine, OPENBLAS_NUM_THREADS=1 with --threads 1 keeps both libraries' BLAS threads
from spinning against the other processes (the 2-thread figures then swing by a factor of 10).

The nearest-code search is one (B M, D) x (D, K) matrix product and an argmin in both libraries;
the codebook's gradient is one bincount in vae_np and autograd's index_add in PyTorch. The two
libraries alternate in rounds of ``--steps`` steps (after a warm-up round each); the figure to
quote is the median over rounds of the ratio vae_np / PyTorch.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from _common import blas_info, emit, paired_rounds, positive_int, seeded_torch, torch_step_loop

import vae_np

X_DIM, H, M, D, K, B, BETA = 784, 400, 16, 8, 128, 128, 0.25


def numpy_steps(X):
    model = vae_np.VQVAE(X_DIM, (H,), n_latents=M, code_dim=D, codebook_size=K, beta=BETA,
                         dtype=np.float32, seed=0)
    model.init_codebook(X[:B], np.random.default_rng(0))
    opt = vae_np.Adam(1e-3)

    def run(steps):
        for i in range(steps):
            x = X[(i * B) % len(X):(i * B) % len(X) + B]
            trace = model.backward(model.forward(x))
            opt.step(model.flat, model.grad_flat)
        return trace.loss
    return run


def torch_steps(X, threads, loop=torch_step_loop):
    """The same model and surrogate loss in PyTorch (autograd, detach() as sg) as
    ``loop(X_torch, B, loss, opt)`` (default: the step loop; the codebook starts from the codes
    of X's first B rows), or None."""
    torch = seeded_torch(threads)
    if torch is None:
        return None
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(X_DIM, H), nn.ReLU(), nn.Linear(H, M * D))
    dec = nn.Sequential(nn.Linear(M * D, H), nn.ReLU(), nn.Linear(H, X_DIM))
    Xt = torch.from_numpy(X)
    with torch.no_grad():
        start = enc(Xt[:B]).reshape(-1, D)
        codebook = nn.Parameter(start[torch.randperm(len(start))[:K]].clone())
    params = list(enc.parameters()) + [codebook] + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)

    def loss(x):
        z_e = enc(x).reshape(-1, M, D)
        flat = z_e.reshape(-1, D)
        with torch.no_grad():
            dist = ((flat * flat).sum(1, keepdim=True) - 2 * flat @ codebook.T
                    + (codebook * codebook).sum(1))
            codes = dist.argmin(1)
        e_c = codebook[codes].reshape(z_e.shape)
        z_q = z_e + (e_c - z_e).detach()                           # straight-through
        logits = dec(z_q.reshape(len(x), -1))
        nll = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        cb = ((z_e.detach() - e_c) ** 2).sum((1, 2))
        cm = BETA * ((z_e - e_c.detach()) ** 2).sum((1, 2))
        return (nll + cb + cm).mean()

    return loop(Xt, B, loss, opt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=100, help="steps per round")
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="PyTorch threads (set OPENBLAS_NUM_THREADS to match for NumPy)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = (rng.random((2048, X_DIM)) < 0.2).astype(np.float32)      # binary, MNIST-shaped
    runners = {"vae_np": numpy_steps(X), "pytorch": torch_steps(X, args.threads)}
    row = paired_rounds(runners, args.steps, args.rounds)
    if args.json:
        emit(dict(blas=blas_info(), **row), True)
        return
    print(f"VQ-VAE step, 784-400-(16 x 8, K = 128)-400-784 ReLU, batch {B}, float32; "
          f"{blas_info()}; PyTorch threads {args.threads}")
    line = f"vae_np {row['vae_np_ms']:.2f} ms/step"
    if "pytorch_ms" in row:
        line += f", PyTorch {row['pytorch_ms']:.2f} ms/step, ratio {row['ratio']:.3f}"
    else:
        line += " (torch is not installed (pip install -e '.[bench]'): vae_np alone)"
    print(line)


if __name__ == "__main__":
    main()
