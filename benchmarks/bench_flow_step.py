"""One training step of the VAE with a planar-flow posterior (784-400-40 ReLU, Bernoulli, an
amortized flow of L = 10 and L = 40 steps, batch 100, the ELBO with its Monte Carlo KL, Adam),
vae_np beside the same model in PyTorch when torch is installed.

    python benchmarks/bench_flow_step.py [--steps 20] [--rounds 5] [--lengths 10 40] [--threads N]
                                         [--json]

Both sides compute, per example, z_0 = mu + sigma eps, L planar steps with the invertibility
reparameterization u_hat, the log-determinants, and loss = mean_b [nll + ln q_0(z_0) -
sum_l logdet_l - ln p(z_L)]; the flow's raw parameters come from one dense head of width
L (2 Z + 1). The two libraries alternate in rounds of ``--steps`` steps (after a warm-up round
each); the figure to quote is the median over rounds of the ratio vae_np / PyTorch. On a loaded
machine run it with OPENBLAS_NUM_THREADS=1 and --threads 1: PyTorch's two threads stalled on an
oversubscribed machine (3.5 s a step at L = 40 in one such run) and measured the load, not the step.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from _common import (blas_info, emit, paired_rounds, positive_int, print_step_rows, seeded_torch,
                     torch_step_loop)

import vae_np

D, H, Z, B = 784, 400, 40, 100


def numpy_steps(X, length):
    model = vae_np.VAE(D, (H,), Z, "relu", "bernoulli", dtype=np.float32, seed=0, flow="planar",
                       flow_length=length)
    opt, rng = vae_np.Adam(1e-3), np.random.default_rng(0)

    def run(steps):
        for i in range(steps):
            x = X[(i * B) % len(X):(i * B) % len(X) + B]
            eps = rng.standard_normal((1, B, Z), dtype=np.float32)
            trace = model.backward(model.forward(x, eps))
            opt.step(model.flat, model.grad_flat)
        return trace.loss
    return run


def torch_steps(X, length, threads, loop=torch_step_loop):
    """The same model and loss in PyTorch (autograd) as ``loop(X_torch, B, loss, opt)``
    (default: the step loop), or None without torch."""
    torch = seeded_torch(threads)
    if torch is None:
        return None
    nn, F = torch.nn, torch.nn.functional
    enc = nn.Sequential(nn.Linear(D, H), nn.ReLU())
    mu_head, logvar_head = nn.Linear(H, Z), nn.Linear(H, Z)
    flow_head = nn.Linear(H, length * (2 * Z + 1))
    dec = nn.Sequential(nn.Linear(Z, H), nn.ReLU(), nn.Linear(H, D))
    params = [p for m in (enc, mu_head, logvar_head, flow_head, dec) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    Xt = torch.from_numpy(X)
    half_ln_2pi = 0.5 * math.log(2 * math.pi)

    def loss(x):
        h = enc(x)
        mu, logvar = mu_head(h), logvar_head(h)
        sigma = torch.exp(0.5 * logvar)
        eps = torch.randn(mu.shape)
        z = mu + sigma * eps
        log_q = (-0.5 * eps * eps - torch.log(sigma) - half_ln_2pi).sum(-1)
        raw = flow_head(h).view(B, length, 2 * Z + 1)
        for step in range(length):
            u, w, b = raw[:, step, :Z], raw[:, step, Z:2 * Z], raw[:, step, 2 * Z]
            wu = (w * u).sum(-1, keepdim=True)
            u_hat = u + (F.softplus(wu) - 1 - wu) * w / (w * w).sum(-1, keepdim=True)
            t = torch.tanh((w * z).sum(-1) + b)
            z = z + u_hat * t[:, None]
            log_q = log_q - torch.log1p((1 - t * t) * (w * u_hat).sum(-1))
        log_pz = (-0.5 * z * z - half_ln_2pi).sum(-1)
        nll = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(-1)
        return (nll + log_q - log_pz).mean()

    return loop(Xt, B, loss, opt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--lengths", type=positive_int, nargs="+", default=[10, 40])
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="PyTorch threads (set OPENBLAS_NUM_THREADS to match for NumPy)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = (rng.random((2000, D)) < 0.2).astype(np.float32)      # binary, MNIST-shaped
    results = {}
    for length in args.lengths:
        runners = {"vae_np": numpy_steps(X, length),
                   "pytorch": torch_steps(X, length, args.threads)}
        row = paired_rounds(runners, args.steps, args.rounds)
        results[f"L={length}"] = row
    if args.json:
        emit(dict(blas=blas_info(), pytorch_threads=args.threads, **results), True)
        return
    title = (f"planar-flow VAE step, 784-400-40 relu, batch {B}, float32, ELBO; {blas_info()}; "
             f"PyTorch threads {args.threads}")
    print_step_rows(title, results)


if __name__ == "__main__":
    main()
