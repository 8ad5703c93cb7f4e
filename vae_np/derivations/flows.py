"""Claims of the normalizing flows (Rezende & Mohamed 2015): z_K = f_K o ... o f_1(z_0), z_0 ~ q_0,

    ln q_K(z_K) = ln q_0(z_0) - sum_k ln det(df_k / dz_{k-1}).

* ``flows.planar_mass``, ``flows.radial_mass``: q_K is a density on z_K-space. On a grid over
  z_K, each point is pulled back to z_0 by inverting every step (planar: a monotone 1-D equation
  along w, solved by bisection; radial: a quadratic in r), q_K(z_K) = q_0(z_0) exp(-sum logdet)
  with the library's logdets, and the 2-D trapezoid sum over z_K must be 1. A logdet off by any
  amount changes the mass.
* ``flows.planar_logdet``, ``flows.radial_logdet``: each step's logdet = ln |det J|, J the
  central-difference Jacobian of the step's f.
* ``flows.invertible``, ``flows.not_invertible_without_u_hat``: for extreme raw parameters,
  w.f(z) along the line through the hyperplane w.z + b = 0 in the direction of w (d/dt of it is
  |w| det J) never decreases with u_hat from the reparameterization; with the raw u it does.
* ``flows.zero_length_kl``: with no step, the Monte Carlo KL E[ln q_0(z_0) - ln p(z_0)] equals the
  closed form within standard errors.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..flows.chain import chain_forward, raw_size, split_raw
from ..numerics import LN_2PI, central_difference
from ._record import EPS, MC_SIGMAS, make_claim, monte_carlo

R_TAIL = 8.5          # the grid holds the image of |eps| <= 8.5; P(|eps| > 8.5) = e^-36 in 2-D
GRID = 401            # points per axis of the fine grid (the coarse one takes every other point)
STEPS = 3
KL_DRAWS = 20_000


# --------------------------------------------------------------------------- inverse steps
def _planar_inverse(y, u_hat, w, b):
    """z with z + u_hat tanh(w.z + b) = y. With s = w.z: phi(s) = s + w.u_hat tanh(s + b) - w.y = 0,
    phi' = 1 + w.u_hat tanh'(s + b) > 0 when w.u_hat > -1, and the root lies in
    [w.y - |w.u_hat|, w.y + |w.u_hat|]: Newton steps kept inside a shrinking bracket (bisection when
    a step leaves it). Then z = y - u_hat tanh(s + b)."""
    wy, wuh = y @ w, float(w @ u_hat)
    lo, hi = wy - abs(wuh) - 1.0, wy + abs(wuh) + 1.0
    s = wy.copy()
    for _ in range(100):
        t = np.tanh(s + b)
        phi = s + wuh * t - wy
        lo, hi = np.where(phi < 0, s, lo), np.where(phi > 0, s, hi)
        newton = s - phi / (1 + wuh * (1 - t * t))
        inside = (newton >= lo) & (newton <= hi)
        s_new = np.where(inside, newton, 0.5 * (lo + hi))
        done = np.all(np.abs(s_new - s) <= 4 * EPS * (1 + np.abs(s)))
        s = s_new
        if done:
            break
    return y - np.tanh(s + b)[:, None] * u_hat


def _radial_inverse(y, z_ref, alpha, beta):
    """z with z + beta (z - z_ref) / (alpha + r) = y: |y - z_ref| = r (alpha + beta + r) / (alpha
    + r), so r is the positive root of r^2 + (alpha + beta - r') r - alpha r' = 0."""
    d_out = y - z_ref
    r_out = np.sqrt(np.sum(d_out * d_out, axis=1))
    B = alpha + beta - r_out
    root = np.sqrt(B * B + 4 * alpha * r_out)
    r = np.where(B > 0, 2 * alpha * r_out / (B + root), (root - B) / 2)   # no cancellation
    return z_ref + d_out * ((alpha + r) / (alpha + r + beta))[:, None]


def _invert(kind, raws, y):
    """Pull y (M, 2) back through every step, last step first (parameters shared by all rows)."""
    for raw in reversed(raws):
        p = split_raw(kind, raw, 2)
        if kind == "planar":
            u_hat = ops.planar_u_hat_forward(p["u"], p["w"])[0][0]
            y = _planar_inverse(y, u_hat, p["w"][0], p["b"][0])
        else:
            alpha, beta, _ = ops.radial_params_forward(p["alpha_raw"], p["beta_raw"])
            y = _radial_inverse(y, p["z_ref"][0], alpha[0], beta[0])
    return y


def _draw_flow(kind, rng):
    raws = []
    for _ in range(STEPS):
        raw = rng.standard_normal((1, raw_size(kind, 2)))
        if kind == "radial":
            raw[0, 2:] = rng.uniform(-1.5, 1.5, 2)    # alpha, beta of order 1
        raws.append(raw)
    return raws


def _rows(raws, n):
    return [np.broadcast_to(raw, (n, raw.shape[1])) for raw in raws]


# --------------------------------------------------------------------------- (a) mass
def _mass_record(kind, rng):
    mu, sigma = rng.uniform(-1, 1, 2), np.exp(rng.uniform(-0.5, 0.3, 2))
    raws = _draw_flow(kind, rng)
    angle = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    ring = mu + sigma * R_TAIL * np.stack([np.cos(angle), np.sin(angle)], 1)
    edge = chain_forward(kind, ring, _rows(raws, ring.shape[0]))[0][-1]
    lo, hi = edge.min(0), edge.max(0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)        # the box holds the image of the disk
    axes = [np.linspace(lo[j], hi[j], GRID) for j in range(2)]
    y = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    z0 = _invert(kind, raws, y)
    zs, logdets, _ = chain_forward(kind, z0, _rows(raws, y.shape[0]))
    residual = float(np.max(np.abs(zs[-1] - y)))
    eps = (z0 - mu) / sigma
    log_q0 = -0.5 * np.sum(eps * eps, 1) - np.sum(np.log(sigma)) - LN_2PI
    q_k = np.exp(log_q0 - np.sum(logdets, axis=0)).reshape(GRID, GRID)
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    fine = float(np.sum(q_k)) * cell                 # trapezoid: q_K ~ 0 on the box's edge
    coarse = float(np.sum(q_k[::2, ::2])) * 4 * cell
    tail = math.exp(-R_TAIL ** 2 / 2)
    tol = abs(fine - coarse) + tail + 4 * q_k.size * EPS * fine
    ok = residual <= 1e-9 * (1 + float(np.max(np.abs(y))))
    name = f"flows.{kind}_mass"
    return make_claim(
        name, f"The change-of-variables density of a {STEPS}-step 2-D {kind} flow integrates to 1 "
        "over z_K (each grid point inverted to z_0, q_K = q_0 exp(-sum logdet))",
        "int q_0(f^-1(z_K)) exp(-sum_k logdet_k) dz_K = 1", fine, 1.0, abs(fine - 1), tol,
        f"the trapezoid sum's change from step 2h to h ({GRID} x {GRID} points), the mass of q_0 "
        "outside the box (|eps| > 8.5: e^-36), and the rounding of the sum", unit="mass",
        passed=bool(abs(fine - 1) <= tol and ok),
        details=dict(coarse=coarse, inverse_residual=residual, box=[lo, hi], mu=mu, sigma=sigma))


# --------------------------------------------------------------------------- (b) Jacobian
def _numerical_logdet(step, z, h_rel=1e-5):
    """ln |det J| of each row's step by central differences (``numerics.central_difference``,
    one Jacobian per row), with the bound sum_ij |J^-1_ji| |dJ_ij| on its error, dJ the
    difference quotient's bound: the change from step h to 2h plus the rounding
    8 eps (max |f| + 1) / 2h of the row's values."""
    J, dJ = central_difference(step, z, h_rel, terms=1.0, rows=True)
    sign, lnabs = np.linalg.slogdet(J)
    bound = 2 * np.sum(np.abs(np.linalg.inv(J)).transpose(0, 2, 1) * dJ, axis=(1, 2))
    return sign, lnabs, bound


def _logdet_record(kind, rng):
    worst, rows = 0.0, []
    for D in (1, 2, 3, 5):
        z = rng.standard_normal((20, D))
        raw = rng.standard_normal((20, raw_size(kind, D)))
        p = split_raw(kind, raw, D)
        if kind == "planar":
            args = (ops.planar_u_hat_forward(p["u"], p["w"])[0], p["w"], p["b"])
            forward = ops.planar_forward
        else:
            z = p["z_ref"] + rng.choice([-1, 1], z.shape) * (0.1 + np.abs(z))   # r >= 0.1
            args = (p["z_ref"],) + ops.radial_params_forward(p["alpha_raw"], p["beta_raw"])[:2]
            forward = ops.radial_forward
        logdet = forward(z, *args)[1]
        sign, lnabs, bound = _numerical_logdet(lambda v: forward(v, *args)[0], z)
        ratio = np.where(sign > 0, np.abs(logdet - lnabs) / bound, np.inf)
        worst = max(worst, float(ratio.max()))
        rows.append(dict(D=D, max_abs_error=float(np.max(np.abs(logdet - lnabs))),
                         max_bound=float(bound.max()), min_sign=float(sign.min())))
    return make_claim(
        f"flows.{kind}_logdet", f"Each {kind} step's logdet equals ln det of the central-"
        "difference Jacobian of its f (and that det is > 0), D = 1, 2, 3, 5, 20 drawn rows each",
        "logdet = ln det(df/dz)", float(logdet[0]), float(lnabs[0]), worst, 1.0,
        "each row within the error bound of the numerical ln det: sum |J^-1| |dJ|, dJ from the "
        "steps h and 2h plus rounding; the error is in units of that bound", unit="x bound",
        details=dict(rows=rows))


# --------------------------------------------------------------------------- (c) invertibility
def unconstrained_u(u, w):
    """The planar step's u used as it is, without the invertibility correction."""
    return u


def _monotone_along_w(u_hat_of, rng, cases=40):
    """min over drawn extreme parameters of diff(g) / bound, g(t) = w.f(z* + t w/|w|) on a fine t
    grid through the hyperplane w.z + b = 0 (z* = -b w/|w|^2): g' = |w| det J, so g decreasing
    means det J < 0 there. Also the smallest slope g'/|w| seen (det J where g is resolved)."""
    worst_ratio, min_slope = np.inf, np.inf
    for _ in range(cases):
        u = rng.uniform(-50, 50, (1, 2))
        w = rng.uniform(-50, 50, (1, 2)) * 10 ** rng.uniform(-2, 0)
        b = rng.uniform(-50, 50)
        u_hat = np.asarray(u_hat_of(u, w))[0]
        w = w[0]
        norm = math.sqrt(float(w @ w))
        t = np.linspace(-30, 30, 6001) / norm                   # a = w.z + b from -30 to 30
        z = -b * w / norm ** 2 + t[:, None] * (w / norm)
        f = z + np.tanh(z @ w + b)[:, None] * u_hat             # the planar map
        g = f @ w
        scale = np.abs(z) @ np.abs(w) + np.abs(u_hat) @ np.abs(w) + abs(b)
        bound = 16 * EPS * (scale[1:] + scale[:-1])
        worst_ratio = min(worst_ratio, float(np.min(np.diff(g) / bound)))
        min_slope = min(min_slope, float(np.min(np.diff(g) / (norm * np.diff(t)))))
    return worst_ratio, min_slope


def _invertibility_records(rng):
    state = rng.bit_generator.state
    ratio, slope = _monotone_along_w(lambda u, w: ops.planar_u_hat_forward(u, w)[0], rng)
    rng.bit_generator.state = state                             # the same draws, u raw
    raw_ratio, raw_slope = _monotone_along_w(unconstrained_u, rng)
    reason = ("each difference of w.f between neighbouring grid points is compared with its "
              "rounding bound 16 eps (|w|.|z| + |w|.|u_hat| + |b|) per point")
    return [make_claim(
        "flows.invertible", "With u_hat = u + (m(w.u) - w.u) w/|w|^2 the planar map is monotone "
        "along w (det J >= 0) for 40 draws of raw u, w, b up to |50|",
        "d/dt w.f(z* + t w/|w|) = |w| (1 + tanh' w.u_hat) >= 0", slope, 0.0,
        max(0.0, -ratio), 1.0, reason + "; error = the largest decrease in units of it",
        relation=">=", unit="x rounding", details=dict(min_ratio=ratio)),
        make_claim(
        "flows.not_invertible_without_u_hat", "With the raw u (no correction) the same draws give "
        "a map that decreases along w somewhere: det J < 0, not invertible",
        "min_t d/dt w.f < 0", raw_slope, 0.0, max(0.0, raw_ratio + 1), 0.0,
        reason + "; passes when some decrease exceeds it (error = how far the largest falls short)",
        relation="<=", unit="x rounding", details=dict(min_ratio=raw_ratio))]


# --------------------------------------------------------------------------- (d) KL
def _kl_record(rng):
    D = 3
    mu, sigma = rng.uniform(-1.5, 1.5, (1, D)), np.exp(rng.uniform(-1, 0.5, (1, D)))
    eps = rng.standard_normal((KL_DRAWS, D))
    z0 = mu + sigma * eps
    zs, logdets, _ = chain_forward("planar", z0, [])                 # a zero-length flow
    log_q = (-0.5 * np.sum(eps * eps, 1) - np.sum(np.log(sigma)) - D / 2 * LN_2PI
             - np.sum(np.reshape(logdets, (-1, KL_DRAWS)), axis=0))
    log_p = -0.5 * np.sum(zs[-1] ** 2, 1) - D / 2 * LN_2PI
    mean, se = monte_carlo(log_q - log_p)
    closed = float(ops.kl_forward(mu, sigma)[0][0])
    return make_claim(
        "flows.zero_length_kl", "With no flow step, the Monte Carlo KL E_q0[ln q_0(z_0) - sum "
        "logdet - ln p(z_K)] equals the closed-form KL of the diagonal Gaussian",
        "E[ln q_K(z_K) - ln p(z_K)] = 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2)  (K = 0)",
        float(mean), closed, abs(float(mean) - closed) / float(se), MC_SIGMAS,
        f"{MC_SIGMAS:g} standard errors of a mean of {KL_DRAWS} draws", unit="SE",
        details=dict(se=float(se), mu=mu[0], sigma=sigma[0]))


def flow_claims(seed=0):
    """Claim: q_K = q_0 exp(-sum logdet) integrates to 1 (planar, radial), logdet = ln det J of the
    numerical Jacobian, the planar map is invertible with u_hat and not without it, and the
    zero-length flow's Monte Carlo KL = the closed form."""
    rng = np.random.default_rng([seed, 31])
    records = [_mass_record("planar", rng), _mass_record("radial", rng),
               _logdet_record("planar", rng), _logdet_record("radial", rng)]
    records += _invertibility_records(rng)
    records.append(_kl_record(rng))
    return records
