"""One IWAE training step of Burda et al.'s two-stochastic-layer model, vae_np beside the same
model in PyTorch when torch is installed: q(z1|x) 784-200-200 tanh -> 100, q(z2|z1) 100-100-100
tanh -> 50, p(z1|z2) 50-100-100 tanh -> 100, p(x|z1) 100-200-200 tanh -> 784 Bernoulli logits,
K = 5 samples, batch 20, float32, Adam.

    python benchmarks/bench_two_layer_step.py [--steps 200] [--rounds 5] [--threads N] [--json]

The two libraries alternate in rounds of ``--steps`` steps after a warm-up each (the paired
harness of benchmarks/_common.py); the figure to quote is the median over rounds of the ratio
vae_np / PyTorch. Give NumPy's BLAS the same threads: OPENBLAS_NUM_THREADS=1 with --threads 1,
OPENBLAS_NUM_THREADS=2 with --threads 2.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from _common import (blas_info, emit, paired_rounds, positive_int, print_step_rows, seeded_torch,
                     torch_step_loop)

import vae_np

D, H1, Z1, H2, Z2, B, K = 784, 200, 100, 100, 50, 20, 5


def numpy_steps(X):
    model = vae_np.VAE(D, (H1, H1), Z1, "tanh", "bernoulli", dtype=np.float32, seed=0,
                       z2_dim=Z2, hidden2=(H2, H2))
    opt, rng = vae_np.Adam(1e-3, eps=1e-4), np.random.default_rng(0)

    def run(steps):
        for i in range(steps):
            x = X[(i * B) % len(X):(i * B) % len(X) + B]
            eps = rng.standard_normal((K, B, model.noise_dim), dtype=np.float32)
            trace = model.backward(model.forward(x, eps, objective="iwae"))
            opt.step(model.flat, model.grad_flat)
        return trace.loss
    return run


def torch_steps(X, threads, loop=torch_step_loop):
    """The same model and IWAE loss in PyTorch (autograd) as ``loop(X_torch, B, loss, opt)``
    (default: the step loop), or None without torch."""
    torch = seeded_torch(threads)
    if torch is None:
        return None
    nn = torch.nn

    def mlp(*widths):
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        return nn.Sequential(*layers)
    enc, q2, p1 = mlp(D, H1, H1), mlp(Z1, H2, H2), mlp(Z2, H2, H2)
    heads = [nn.Linear(H1, Z1), nn.Linear(H1, Z1), nn.Linear(H2, Z2), nn.Linear(H2, Z2),
             nn.Linear(H2, Z1), nn.Linear(H2, Z1)]
    dec = nn.Sequential(mlp(Z1, H1, H1), nn.Linear(H1, D))
    modules = [enc, q2, p1, dec] + heads
    opt = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=1e-3, eps=1e-4)
    mu1_head, lv1_head, mu2_head, lv2_head, mup_head, lvp_head = heads
    half_ln_2pi = 0.5 * math.log(2 * math.pi)

    def log_normal(z, mu, logvar):
        return (-0.5 * (z - mu) ** 2 * torch.exp(-logvar) - 0.5 * logvar - half_ln_2pi).sum(-1)

    def loss(x):
        h = enc(x)
        mu1, lv1 = mu1_head(h), lv1_head(h)
        eps1 = torch.randn(K, *mu1.shape)
        z1 = mu1 + torch.exp(0.5 * lv1) * eps1
        g = q2(z1)
        mu2, lv2 = mu2_head(g), lv2_head(g)
        eps2 = torch.randn(mu2.shape)
        z2 = mu2 + torch.exp(0.5 * lv2) * eps2
        f = p1(z2)
        log_pz1 = log_normal(z1, mup_head(f), lvp_head(f))
        log_pz2 = (-0.5 * z2 * z2 - half_ln_2pi).sum(-1)
        log_q1 = (-0.5 * eps1 * eps1 - 0.5 * lv1 - half_ln_2pi).sum(-1)
        log_q2 = (-0.5 * eps2 * eps2 - 0.5 * lv2 - half_ln_2pi).sum(-1)
        logits = dec(z1)
        log_px = -nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand(K, -1, -1), reduction="none").sum(-1)
        log_w = log_px + log_pz1 + log_pz2 - log_q1 - log_q2
        return -(torch.logsumexp(log_w, 0) - math.log(K)).mean()

    return loop(torch.from_numpy(X), B, loss, opt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=200, help="steps per round")
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="PyTorch threads (set OPENBLAS_NUM_THREADS to match for NumPy)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = (rng.random((2000, D)) < 0.2).astype(np.float32)      # binary, MNIST-shaped
    runners = {"vae_np": numpy_steps(X), "pytorch": torch_steps(X, args.threads)}
    results = {f"K={K}": paired_rounds(runners, args.steps, args.rounds)}
    if args.json:
        emit(dict(blas=blas_info(), pytorch_threads=args.threads, **results), True)
        return
    title = (f"two-layer IWAE step (Burda: 784-200-200-100, 100-100-100-50), batch {B}, float32; "
             f"{blas_info()}; PyTorch threads {args.threads}")
    print_step_rows(title, results)


if __name__ == "__main__":
    main()
