"""Fitting a normalizing flow to a 2-D target density by minimising KL(q || p): the paper's
Figure 3 (Rezende & Mohamed 2015, section 6.1). The targets are in :mod:`vae_np.flows.targets2d`.

The approximation is q_L, the density of z_L = f_L o ... o f_1(z_0) with

    z_0 = mu0 + sigma0 * eps,  eps ~ N(0, I_2),  sigma0 = exp(log_sigma0)      (q_0, learned)
    ln q_L(z_L) = ln q_0(z_0) - sum_l logdet_l,
    ln q_0(z_0) = -1/2 |eps|^2 - sum_d log_sigma0_d - ln 2 pi

and one set of GLOBAL raw flow parameters per step (no encoder): each step's raw vector is
repeated over the N rows of the batch for :func:`vae_np.flows.chain.chain_forward`, and the rows'
gradients from ``chain_backward`` are summed. The reparameterized estimate of the objective is

    KL(q_L || p) = E_eps[ ln q_0(z_0) - sum_l logdet_l + U(z_L) ] + ln Z
                ~= 1/N sum_n f_n + ln Z,  f_n = ln q_0(z_0n) - S_n + U(z_Ln),  S_n = sum_l logdet_ln

Its gradient with the noise eps held fixed (``objective``), one chain-rule factor per line:

    df_n = 1/N
    dz_L = df_n dU/dz_L                 (U's hand-written gradient)
    dS   = -df_n                        (f = ... - S)
    dz_0, draw_l = chain_backward(dz_L, dS)
    dmu0        = sum_n dz_0n           (dz_0/dmu0 = 1)
    dlog_sigma0 = sum_n dz_0n eps_n sigma0  - 1
                  (dz_0/dsigma0 = eps, dsigma0/dlog_sigma0 = sigma0; ln q_0 at the reparameterized
                   sample depends on the parameters only through -sum log_sigma0: the mean of the
                   -1 over the N rows is -1)
    draw_l      = sum_n draw_ln         (the global raw vector fans out to every row)

q_0 is learned rather than fixed at N(0, I): with it a length-L flow can only do better than the
best diagonal Gaussian, and the flow steps spend no capacity on moving and scaling the mass. U is
annealed as in the paper by default (beta_t U with beta_t rising linearly from 0.01 to 1 over the
first ``anneal`` fraction of the iterations, :data:`ANNEAL`): early on, q spreads over all modes
before U's full weight makes them separate; the recorded history is always the beta = 1 value.

Parameters live in one float64 vector theta = [mu0 (2) | log_sigma0 (2) | raw_1 (P) | ... | raw_L
(P)], P = raw_size(kind, 2), which Adam (vae_np.optim) updates in place.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._validate import check_array, check_choice, check_int, check_positive, check_rng
from ..numerics import LN_2PI
from ..optim import Adam
from . import targets2d as targets
from .chain import FLOW_KINDS, chain_backward, chain_forward, raw_size

D = 2
Q0_SIZE = 2 * D
"""mu0 (2) and log_sigma0 (2) lead the parameter vector."""

INIT_SCALE = 0.5
"""Standard deviation of the initial raw flow parameters. Smaller is a trap: with raw ~ N(0, 0.1^2)
the planar steps start so close to the identity (u_hat and w both small, so each one's gradient is
proportional to the other) that 8 planar steps on U2 sat at the best Gaussian's KL, 1.32 nats,
for 1000 Adam steps; from 0.5 the same fit reached 0.22."""


@dataclass
class FlowFit:
    """A fitted 2-D flow: target, kind, length, the parameter vector theta and the history of the
    batch KL estimate (nats, one per iteration, with beta = 1 and ln Z added)."""
    target: str
    kind: str
    length: int
    theta: np.ndarray
    history: np.ndarray
    log_z: float
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)


ANNEAL = 0.5
"""Default fraction of the iterations over which U is annealed. Without annealing, planar flows
on the bimodal U1 settled on one mode: KL 0.70 nats ~ ln 2, the cost of missing one of two equal
modes, at L = 8 and L = 32 alike (1000 steps); annealed over the first half, L = 8 reached 0.16."""


def check_kind(kind) -> str:
    return check_choice("kind", kind, FLOW_KINDS)


def check_length(length) -> int:
    return check_int("length", length, minimum=1)


def param_size(kind, length) -> int:
    """Size of theta: 4 (mu0, log_sigma0) + length * raw_size(kind, 2)."""
    return Q0_SIZE + check_length(length) * raw_size(check_kind(kind), D)


def unpack(theta, kind, length):
    """Views of theta: mu0 (2,), log_sigma0 (2,), raws: list of ``length`` arrays (P,)."""
    P = raw_size(kind, D)
    raws = [theta[Q0_SIZE + l * P:Q0_SIZE + (l + 1) * P] for l in range(length)]
    return theta[:D], theta[D:Q0_SIZE], raws


def init_params(kind, length, rng, scale=INIT_SCALE):
    """theta with q_0 = N(0, I) (mu0 = 0, log_sigma0 = 0) and every raw flow parameter drawn from
    N(0, scale^2): each step starts close to the identity (planar: u_hat and w small; radial:
    beta = -alpha + softplus(beta_raw) near 0), so the first iterations see nearly q_0 and a finite
    U (every U is finite near the origin)."""
    kind, length = check_kind(kind), check_length(length)
    check_rng("rng", rng)
    theta = np.zeros(param_size(kind, length))
    theta[Q0_SIZE:] = scale * rng.standard_normal(theta.size - Q0_SIZE)
    return theta


def push(theta, kind, length, eps):
    """Forward pass with noise eps (N, 2): z_0, the chain's caches, z_L (N, 2), S = sum logdet
    (N,) and ln q_0(z_0) (N,). theta must have shape (param_size(kind, length),) (a longer one
    left its tail out of the gradient silently) and eps (N, 2) (an (N, 1) eps broadcast into both
    coordinates, a wrong q_0 with no error); a non-finite theta passes, for the fit's divergence
    message."""
    theta = check_array("theta", theta, ndim=1, shape=(param_size(kind, length),), finite=False)
    eps = check_array("eps", eps, ndim=2, shape=(None, D))
    mu0, log_sigma0, raws = unpack(theta, kind, length)
    sigma0 = np.exp(log_sigma0)
    z0 = mu0 + sigma0 * eps                                      # reparameterization
    n = eps.shape[0]
    rows = [np.repeat(raw[None, :], n, axis=0) for raw in raws]  # global -> per row
    zs, logdets, caches = chain_forward(kind, z0, rows)
    log_q0 = -0.5 * np.sum(eps ** 2, 1) - np.sum(log_sigma0) - 0.5 * D * LN_2PI
    return zs[-1], np.sum(logdets, axis=0), log_q0, caches


def objective(theta, kind, length, target, eps, beta=1.0):
    """The fitting objective with frozen noise and its gradient.

    Returns (loss, grad, f): loss = 1/N sum_n [ln q_0(z_0n) - S_n + beta U(z_Ln)] (KL(q || p) - ln Z
    at beta = 1), grad = dloss/dtheta (theta's shape), f = the per-row terms at beta = 1 (N,).
    """
    zL, S, log_q0, caches = push(theta, kind, length, eps)
    u, du = targets.energy(target, zL)
    n = eps.shape[0]
    loss = float(np.mean(log_q0 - S + beta * u))
    # backward, one factor per line
    df = 1.0 / n                                   # d loss / d f_n
    dzL = df * beta * du                           # d(beta U)/dz_L
    dS = np.full(n, -df)                           # d f_n / d S_n = -1
    dz0, draws = chain_backward(dzL, dS, caches)
    grad = np.empty_like(theta)
    dmu0, dlog_sigma0, draw_global = unpack(grad, kind, length)
    sigma0 = np.exp(theta[D:Q0_SIZE])
    dmu0[:] = dz0.sum(0)                           # dz_0/dmu0 = 1
    # dz_0/dsigma0 = eps, dsigma0/dlog_sigma0 = sigma0
    dlog_sigma0[:] = (dz0 * eps).sum(0) * sigma0
    dlog_sigma0 -= 1.0                             # mean over rows of d ln q_0/d log_sigma0 = -1
    for g, dr in zip(draw_global, draws):
        g[:] = dr.sum(0)                           # the global raw vector feeds every row
    return loss, grad, log_q0 - S + u


def fit_flow_2d(target, kind, length, iterations, rng, batch=256, lr=0.01, anneal=ANNEAL,
                init_scale=INIT_SCALE, progress=None):
    """Fit q_L to target ``"1"``..``"4"`` with Adam on the reparameterized KL(q || p).

    Parameters
    ----------
    target : "1".."4" (or 1..4)
    kind : "planar" or "radial"
    length : L >= 1 flow steps
    iterations : Adam steps
    rng : numpy Generator (initialisation and every batch's eps)
    batch : samples per step
    lr : Adam's step size
    anneal : fraction of the iterations over which beta rises linearly from 0.01 to 1 (0: no
             annealing, beta = 1 throughout; default :data:`ANNEAL`)
    progress : optional callable(step, steps, kl_estimate)

    Returns
    -------
    FlowFit with theta and ``history`` (iterations,): each step's batch estimate of KL(q || p)
    """
    target = targets.check_target(target)
    kind, length = check_kind(kind), check_length(length)
    iterations = check_int("iterations", iterations)
    check_rng("rng", rng)
    batch = check_int("batch", batch)
    lr = check_positive("lr", lr)
    anneal = check_positive("anneal", anneal, allow_zero=True)
    if anneal > 1:
        raise ValueError(f"anneal must be a fraction in [0, 1], got {anneal}")
    log_z = targets.log_normalizer(target)
    theta = init_params(kind, length, rng, init_scale)
    opt = Adam(lr=lr)
    history = np.empty(iterations)
    ramp = anneal * iterations
    start = time.perf_counter()
    for t in range(iterations):
        beta = 1.0 if t >= ramp else 0.01 + 0.99 * t / ramp
        eps = rng.standard_normal((batch, D))
        _, grad, f = objective(theta, kind, length, target, eps, beta)
        history[t] = float(np.mean(f)) + log_z
        if not (np.isfinite(history[t]) and np.isfinite(grad).all()):
            raise ValueError(f"the fit of U{target} with {length} {kind} steps diverged at "
                             f"iteration {t + 1} (non-finite loss or gradient); lower lr "
                             f"(it is {lr})")
        opt.step(theta, grad)
        if progress is not None:
            progress(t + 1, iterations, history[t])
    return FlowFit(target, kind, length, theta, history, log_z, time.perf_counter() - start,
                   {"iterations": iterations, "batch": batch, "lr": lr, "anneal": anneal,
                    "init_scale": init_scale})


def sample(fit, n, rng, chunk=20000):
    """n samples of q_L: (zL (n, 2), f (n,)) with f = ln q_L(z_L) + U(z_L) per sample."""
    n, chunk = check_int("n", n), check_int("chunk", chunk)
    check_rng("rng", rng)
    zs, fs = [], []
    for start in range(0, n, chunk):
        eps = rng.standard_normal((min(chunk, n - start), D))
        zL, S, log_q0, _ = push(fit.theta, fit.kind, fit.length, eps)
        u, _ = targets.energy(fit.target, zL)
        zs.append(zL)
        fs.append(log_q0 - S + u)
    return np.concatenate(zs), np.concatenate(fs)


def mc_kl(fit, rng, n=100_000):
    """KL(q_L || p) = E_q[ln q_L(z) + U(z)] + ln Z by Monte Carlo with n samples.

    Returns (kl, se): the estimate and its standard error std(f) / sqrt(n) (n >= 2: the sample
    standard deviation of one sample is 0/0)."""
    n = check_int("n", n, minimum=2)
    _, f = sample(fit, n, rng)
    return float(np.mean(f) + fit.log_z), float(np.std(f, ddof=1) / math.sqrt(f.size))


def histogram_density(z, half_width, bins):
    """A density image from samples z (N, 2): counts / (N * bin area) on a bins x bins grid over
    [-half_width, half_width]^2, row = z2 (as ``flows2d_targets.density_grid``). Samples outside
    the square are counted in N but not drawn."""
    z = check_array("z", z, ndim=2, shape=(None, 2))
    half_width = check_positive("half_width", half_width)
    bins = check_int("bins", bins)
    edges = np.linspace(-half_width, half_width, bins + 1)
    counts, _, _ = np.histogram2d(z[:, 1], z[:, 0], bins=[edges, edges])
    area = (edges[1] - edges[0]) ** 2
    return counts / (z.shape[0] * area)
