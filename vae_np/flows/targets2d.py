"""The four 2-D target densities of Rezende & Mohamed (2015), Table 1, with hand-written dU/dz and
ln Z by quadrature.

Each target is p(z) = exp(-U(z)) / Z on z in R^2, given by its energy U:

    w1(z) = sin(2 pi z1 / 4),  w2(z) = 3 exp(-1/2 ((z1 - 1)/0.6)^2),  w3(z) = 3 sigmoid((z1-1)/0.3)
    U1 = 1/2 ((|z| - 2)/0.4)^2 - ln( exp(-1/2 ((z1 - 2)/0.6)^2) + exp(-1/2 ((z1 + 2)/0.6)^2) )
    U2 = 1/2 ((z2 - w1)/0.4)^2                                                           + W(z1)
    U3 = -ln( exp(-1/2 ((z2 - w1)/0.35)^2) + exp(-1/2 ((z2 - w1 + w2)/0.35)^2) )          + W(z1)
    U4 = -ln( exp(-1/2 ((z2 - w1)/0.4)^2) + exp(-1/2 ((z2 - w1 + w3)/0.35)^2) )           + W(z1)

**The wall W(z1) = 1/2 (z1/4)^8.** As printed, U2, U3 and U4 do not depend on z1 except through a
bounded shift of z2, so exp(-U) integrates to infinity along z1: Z, ln p(z) and KL(q || p) do not
exist, and minimising E_q[ln q + U] lets q spread along z1 without limit (a learned sigma0 grows
forever). The wall confines z1 smoothly: it is below 0.002 for |z1| < 2, 0.05 at |z1| = 3, 0.5 at
|z1| = 4 (the edge of the paper's pictures) and 44 at |z1| = 7. With it, the z2 integral of each of
U2..U4 is a Gaussian integral at every z1 and Z has a closed form (the tests use it as an
independent check of the quadrature). U1 confines itself (its ring) and is used as printed.

The log-sum-exps are computed shifted by their maximum, so no energy overflows; the gradient of
-ln(e^a1 + e^a2) is -(s1 da1 + s2 da2) with s = softmax(a1, a2).

ln Z is computed by the trapezoid rule on a square grid (:data:`GRID`): the integrands are smooth
and negligible at the grid's edge, where the trapezoid rule converges faster than any power of the
spacing; the tests show that a wider or finer grid changes ln Z by less than 1e-6.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_array, check_choice, check_int, check_positive

TARGETS = ("1", "2", "3", "4")
"""Target names: ``"1"`` .. ``"4"`` for U1 .. U4."""

WALL_SCALE, WALL_POWER = 4.0, 8
"""W(z1) = 1/2 (z1 / WALL_SCALE)^WALL_POWER confines U2..U4 along z1 (see the module text)."""

GRID = {"half_width": 8.0, "n": 401}
"""The quadrature grid of ln Z: n x n points on [-8, 8]^2 (spacing 0.04: the narrowest feature, a
ridge of width 0.35 tilted by at most |w3'| = 2.5, is 0.14 wide along z1, and the trapezoid error
for a Gaussian of width s falls like exp(-2 pi^2 s^2 / h^2), here e^-120). At its edge every
target's density is below e^-44 of its maximum (U1: the ring term 1/2 ((8 - 2)/0.4)^2 = 112;
U2..U4: the wall 1/2 (8/4)^8 = 128 and, in z2, the Gaussian ridges lie in [-4, 1], at least
4 = 11 widths of 0.35 away)."""


# --------------------------------------------------------------------------- helpers
def _sigmoid(t):
    """sigmoid(t) = 1 / (1 + e^-t), without overflow for either sign."""
    return np.exp(-np.logaddexp(0.0, -t))


def _neg_logaddexp(a1, a2, da1, da2):
    """-ln(e^a1 + e^a2) and its gradient -(s1 da1 + s2 da2), s = softmax(a1, a2).

    a1, a2 : (N,);  da1, da2 : (N, 2) gradients of a1, a2 with respect to z.
    """
    m = np.maximum(a1, a2)
    e1, e2 = np.exp(a1 - m), np.exp(a2 - m)
    value = -(m + np.log(e1 + e2))
    s1 = e1 / (e1 + e2)                              # softmax weight of a1
    s2 = 1.0 - s1
    grad = -(s1[:, None] * da1 + s2[:, None] * da2)  # d/dz of -lse = -sum_i s_i da_i/dz
    return value, grad


def _wall(z1):
    """W(z1) = 1/2 (z1/4)^8 and dW/dz1 = (8/2) (z1/4)^7 / 4 = (z1/4)^7."""
    t = z1 / WALL_SCALE
    return 0.5 * t ** WALL_POWER, 0.5 * WALL_POWER * t ** (WALL_POWER - 1) / WALL_SCALE


def _w1(z1):
    """w1 = sin(2 pi z1 / 4) and dw1/dz1 = (2 pi / 4) cos(2 pi z1 / 4)."""
    k = 2.0 * math.pi / 4.0
    return np.sin(k * z1), k * np.cos(k * z1)


def _gauss_exponent(x, scale):
    """a = -1/2 (x/scale)^2 and da/dx = -x / scale^2."""
    return -0.5 * (x / scale) ** 2, -x / scale ** 2


# --------------------------------------------------------------------------- the energies
def _u1(z):
    z1, z2 = z[:, 0], z[:, 1]
    r = np.hypot(z1, z2)
    # ring term 1/2 ((r - 2)/0.4)^2:  d/dz = (r - 2)/0.4^2 * z / r   (z / r := 0 at r = 0, where
    # |z| has a kink and this is one of its one-sided derivatives)
    ring = 0.5 * ((r - 2.0) / 0.4) ** 2
    safe_r = np.where(r > 0, r, 1.0)
    unit = np.where((r > 0)[:, None], z / safe_r[:, None], 0.0)
    dring = ((r - 2.0) / 0.4 ** 2)[:, None] * unit
    # mode term -ln(e^a1 + e^a2), a1 = -1/2 ((z1 - 2)/0.6)^2, a2 = -1/2 ((z1 + 2)/0.6)^2
    a1, da1_dz1 = _gauss_exponent(z1 - 2.0, 0.6)
    a2, da2_dz1 = _gauss_exponent(z1 + 2.0, 0.6)
    zero = np.zeros_like(z1)
    modes, dmodes = _neg_logaddexp(a1, a2, np.stack([da1_dz1, zero], 1),
                                   np.stack([da2_dz1, zero], 1))
    return ring + modes, dring + dmodes


def _u2(z):
    z1, z2 = z[:, 0], z[:, 1]
    w1, dw1 = _w1(z1)
    e = (z2 - w1) / 0.4
    value = 0.5 * e ** 2
    # dU/dz2 = e / 0.4;  dU/dz1 = e / 0.4 * d(z2 - w1)/dz1 = -e / 0.4 * w1'
    grad = np.stack([-e / 0.4 * dw1, e / 0.4], 1)
    return value, grad


def _ridges(z, shift, dshift, scale2):
    """-ln(e^a1 + e^a2) with a1 = -1/2 ((z2 - w1)/0.35 or 0.4)^2, a2 = -1/2 ((z2 - w1 + shift)/
    0.35)^2, for U3 (shift = w2, first scale 0.35) and U4 (shift = w3, first scale 0.4)."""
    z1, z2 = z[:, 0], z[:, 1]
    w1, dw1 = _w1(z1)
    a1, da1_dx = _gauss_exponent(z2 - w1, scale2)        # x1 = z2 - w1: dx1/dz1 = -w1', dx1/dz2 = 1
    a2, da2_dx = _gauss_exponent(z2 - w1 + shift, 0.35)  # x2 = z2 - w1 + s: dx2/dz1 = -w1' + s'
    da1 = np.stack([da1_dx * -dw1, da1_dx], 1)
    da2 = np.stack([da2_dx * (dshift - dw1), da2_dx], 1)
    return _neg_logaddexp(a1, a2, da1, da2)


def _u3(z):
    z1 = z[:, 0]
    w2 = 3.0 * np.exp(-0.5 * ((z1 - 1.0) / 0.6) ** 2)
    dw2 = w2 * -(z1 - 1.0) / 0.6 ** 2                    # d/dz1 of 3 exp(-1/2 ((z1 - 1)/0.6)^2)
    return _ridges(z, w2, dw2, 0.35)


def _u4(z):
    z1 = z[:, 0]
    s = _sigmoid((z1 - 1.0) / 0.3)
    w3 = 3.0 * s
    dw3 = 3.0 * s * (1.0 - s) / 0.3                      # sigmoid' = s (1 - s), inner 1/0.3
    return _ridges(z, w3, dw3, 0.4)


def _walled(energy):
    def walled(z):
        value, grad = energy(z)
        w, dw = _wall(z[:, 0])
        grad[:, 0] += dw                                 # W depends on z1 only
        return value + w, grad
    return walled


_ENERGIES = {"1": _u1, "2": _walled(_u2), "3": _walled(_u3), "4": _walled(_u4)}


def check_target(target) -> str:
    """The target's name as a string, ``"1"`` to ``"4"``; ValueError for anything else."""
    name = str(target) if isinstance(target, (int, np.integer)) and not isinstance(target, bool) \
        else target
    return check_choice("target", name, TARGETS)


def energy(target, z):
    """U(z) and dU/dz of target ``"1"``..``"4"`` (or 1..4).

    Parameters
    ----------
    z : (N, 2) float array

    Returns
    -------
    U : (N,),  dU/dz : (N, 2)   (float64 unless z is float32)
    """
    name = check_target(target)
    z = check_array("z", z, ndim=2, shape=(None, 2))
    z = z.astype(np.result_type(z.dtype, np.float32), copy=False)
    return _ENERGIES[name](z)


def grid_points(half_width, n):
    """The n x n grid on [-half_width, half_width]^2: (axis (n,), points (n*n, 2), spacing).

    Point (i, j) of the flattened list is (axis[j], axis[i]): row i runs along z1, as an image
    whose rows are z2 values. half_width > 0, n >= 2 (one point has no spacing)."""
    half_width = check_positive("half_width", half_width)
    n = check_int("n", n, minimum=2)
    axis = np.linspace(-half_width, half_width, n)
    z1, z2 = np.meshgrid(axis, axis)
    return axis, np.stack([z1.ravel(), z2.ravel()], 1), axis[1] - axis[0]


def log_normalizer(target, half_width=GRID["half_width"], n=GRID["n"]):
    """ln Z = ln of the integral of exp(-U) over R^2, by the trapezoid rule on the n x n grid on
    [-half_width, half_width]^2 (the density must be negligible at the grid's edge; see
    :data:`GRID`). Computed as max(-U) + ln sum(weights exp(-U - max(-U))), so no exp overflows."""
    _, points, h = grid_points(half_width, n)
    u, _ = energy(target, points)
    weights = np.ones(n)
    weights[[0, -1]] = 0.5                               # trapezoid weights along each axis
    w2d = np.outer(weights, weights).ravel() * h * h
    top = np.max(-u)
    return float(top + np.log(np.sum(w2d * np.exp(-u - top))))


def density_grid(target, half_width, n, log_z=None):
    """The normalised density exp(-U - ln Z) on the n x n grid, as an (n, n) image (row = z2)."""
    _, points, _ = grid_points(half_width, n)
    u, _ = energy(target, points)
    log_z = log_normalizer(target) if log_z is None else log_z
    return np.exp(-u - log_z).reshape(n, n)
