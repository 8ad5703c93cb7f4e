"""The 2-D targets U1..U4, their ln Z, the flow-fitting objective's gradient, a short fit, the
``flows`` command and its bad input (vae_np.flows2d_targets, vae_np.flows2d, vae_np.cli_flows).

Every expected value here comes from the formulas worked by hand (energies), from closed forms or
an independent quadrature in polar coordinates (ln Z), or from central differences (gradients);
none is computed by the code under test. The ``*_fails`` tests plant a bug in the quantity a check
checks and show that the check then fails.
"""
import json
import math

import numpy as np
import pytest
from scipy.special import gamma

from vae_np import flows2d, flows2d_targets as T
from vae_np.cli import main
from vae_np.testing.numerical import assert_fd_close, central_difference

WALL = lambda z1: 0.5 * (z1 / 4.0) ** 8          # noqa: E731  the confining wall of U2..U4


# --------------------------------------------------------------------------- energies by hand
def _lse_neg(a1, a2):
    """-ln(e^a1 + e^a2), for the hand-computed values below."""
    m = max(a1, a2)
    return -(m + math.log(math.exp(a1 - m) + math.exp(a2 - m)))


HAND = [
    # U1 at the origin: r = 0, ring 1/2 (2/0.4)^2 = 12.5; both modes at distance 2: -ln(2 e^{-50/9})
    ("1", (0.0, 0.0), 12.5 + 50 / 9 - math.log(2)),
    # U1 on the ring at (2, 0): ring 0; modes -ln(1 + e^{-1/2 (4/0.6)^2}) = -ln(1 + e^{-200/9})
    ("1", (2.0, 0.0), -math.log1p(math.exp(-200 / 9))),
    # U1 at (0, 3): ring 1/2 (1/0.4)^2 = 3.125; modes as at the origin
    ("1", (0.0, 3.0), 3.125 + 50 / 9 - math.log(2)),
    # U2 at (1, 1): w1 = sin(pi/2) = 1, so 0; wall 1/2 (1/4)^8
    ("2", (1.0, 1.0), 0.5 / 4 ** 8),
    # U2 at (2, 0.4): w1 = sin(pi) = 0, 1/2 (0.4/0.4)^2 = 0.5; wall 1/2 (1/2)^8
    ("2", (2.0, 0.4), 0.5 + 0.5 / 2 ** 8),
    # U2 at (-1, 0): w1 = sin(-pi/2) = -1, 1/2 (1/0.4)^2 = 3.125
    ("2", (-1.0, 0.0), 3.125 + 0.5 / 4 ** 8),
    # U3 at (1, -0.5): w1 = 1, w2 = 3; a1 = -1/2 (1.5/0.35)^2 = a2, so 1/2 (1.5/.35)^2 - ln 2
    ("3", (1.0, -0.5), 0.5 * (1.5 / 0.35) ** 2 - math.log(2) + 0.5 / 4 ** 8),
    # U3 at (1, -2): on the lower ridge a2 = 0, a1 = -1/2 (3/0.35)^2
    ("3", (1.0, -2.0), _lse_neg(-0.5 * (3 / 0.35) ** 2, 0.0) + 0.5 / 4 ** 8),
    # U3 at (3, 0): w1 = sin(3 pi/2) = -1, w2 = 3 e^{-1/2 (2/0.6)^2}; x1 = 1, x2 = 1 + w2
    ("3", (3.0, 0.0), _lse_neg(-0.5 * (1 / 0.35) ** 2,
                               -0.5 * ((1 + 3 * math.exp(-50 / 9)) / 0.35) ** 2)
     + 0.5 * 0.75 ** 8),
    # U4 at (1, 0.25): w1 = 1, w3 = 3/2; x1 = -0.75 (scale 0.4), x2 = 0.75 (scale 0.35)
    ("4", (1.0, 0.25), _lse_neg(-0.5 * (0.75 / 0.4) ** 2, -0.5 * (0.75 / 0.35) ** 2)
     + 0.5 / 4 ** 8),
    # U4 at (0, 0): w1 = 0, w3 = 3 / (1 + e^{10/3}); x1 = 0, x2 = w3
    ("4", (0.0, 0.0), _lse_neg(0.0, -0.5 * (3 / (1 + math.exp(10 / 3)) / 0.35) ** 2)),
]


@pytest.mark.parametrize("target, z, expected", HAND)
def test_energy_at_hand_computed_points(target, z, expected):
    u, _ = T.energy(target, np.array([z]))
    assert u.shape == (1,)
    assert u[0] == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_energies_do_not_overflow_far_out():
    z = np.array([[30.0, -30.0], [-12.0, 40.0], [0.0, -25.0]])
    for t in T.TARGETS:
        u, g = T.energy(t, z)
        assert np.isfinite(u).all() and np.isfinite(g).all() and (u > 50).all()


# --------------------------------------------------------------------------- dU/dz
POINTS = np.random.default_rng(7).uniform(-4.5, 4.5, size=(12, 2))


def _grad_check(target, points, energy=T.energy):
    _, g = energy(target, points)
    for z, gz in zip(points, g):
        n = central_difference(lambda x: float(energy(target, x[None])[0][0]), z)
        u = float(energy(target, z[None])[0][0])
        # the terms of U are of the size of its largest part: |U| + 50 covers the ring/ridge
        # exponents (< 50 inside [-4.5, 4.5]^2) whose difference U is
        assert_fd_close(gz, n, abs(u) + 50, f"dU{target}/dz at {z}")


@pytest.mark.parametrize("target", T.TARGETS)
def test_energy_gradient_matches_central_differences(target):
    _grad_check(target, POINTS)


def test_a_wrong_energy_gradient_fails_the_check(monkeypatch):
    """dw1/dz1 without its factor 2 pi / 4 (U2), a Gaussian exponent's derivative -x/scale instead
    of -x/scale^2 (U1, U4), the wall's derivative dropped (U3): each fails the check."""
    bugs = [("2", "_w1", lambda z1: (np.sin(math.pi / 2 * z1), np.cos(math.pi / 2 * z1))),
            ("1", "_gauss_exponent", lambda x, s: (-0.5 * (x / s) ** 2, -x / s)),
            ("4", "_gauss_exponent", lambda x, s: (-0.5 * (x / s) ** 2, -x / s))]
    for target, name, bug in bugs:
        with monkeypatch.context() as m:
            m.setattr(T, name, bug)
            with pytest.raises(AssertionError):
                _grad_check(target, POINTS)

    def no_wall_slope(target, z):
        u, g = T.energy(target, z)
        return u, g - np.stack([(z[:, 0] / 4) ** 7, np.zeros(len(z))], 1)
    with pytest.raises(AssertionError):
        _grad_check("3", POINTS, energy=no_wall_slope)


# --------------------------------------------------------------------------- ln Z
def _wall_integral():
    """int exp(-1/2 (x/4)^8) dx over R = 2 * 4 * 2^(1/8) Gamma(1 + 1/8) (substitute s = t^8 / 2)."""
    return 2 * 4 * 2 ** (1 / 8) * gamma(1 + 1 / 8)


def _closed_form_log_z(target):
    """U2..U4: at every z1 the z2 integral is Gaussian: sqrt(2 pi) times 0.4 (U2), 0.35 + 0.35
    (U3), 0.4 + 0.35 (U4), whatever the shifts w1, w2, w3; times the wall's integral over z1."""
    width = {"2": 0.4, "3": 0.7, "4": 0.75}[target]
    return math.log(width * math.sqrt(2 * math.pi) * _wall_integral())


def _u1_log_z_polar(n_r=200, n_theta=400):
    """ln Z of U1 in polar coordinates: Gauss-Legendre in r on [0, 7], the periodic trapezoid rule
    in theta; exp(-U1) r = exp(-1/2 ((r - 2)/0.4)^2) (g(r cos t - 2) + g(r cos t + 2)) r with
    g(x) = exp(-1/2 (x/0.6)^2)."""
    x, w = np.polynomial.legendre.leggauss(n_r)
    r, wr = 3.5 * (x + 1), 3.5 * w
    theta = 2 * math.pi * np.arange(n_theta) / n_theta
    c = r[:, None] * np.cos(theta)[None, :]
    g = lambda v: np.exp(-0.5 * (v / 0.6) ** 2)           # noqa: E731
    inner = (g(c - 2) + g(c + 2)).sum(1) * (2 * math.pi / n_theta)
    return math.log(np.sum(wr * r * np.exp(-0.5 * ((r - 2) / 0.4) ** 2) * inner))


@pytest.mark.parametrize("target", T.TARGETS)
def test_log_z_is_converged_in_width_and_spacing(target):
    base = T.log_normalizer(target)
    wider = T.log_normalizer(target, half_width=10.0, n=501)        # same spacing 0.04
    finer = T.log_normalizer(target, half_width=8.0, n=801)         # spacing 0.02
    assert abs(wider - base) < 1e-6 and abs(finer - base) < 1e-6


def test_log_z_matches_independent_routes():
    for t in ("2", "3", "4"):
        assert T.log_normalizer(t) == pytest.approx(_closed_form_log_z(t), abs=1e-10)
    assert _u1_log_z_polar() == pytest.approx(_u1_log_z_polar(300, 600), abs=1e-12)
    assert T.log_normalizer("1") == pytest.approx(_u1_log_z_polar(), abs=1e-10)


def test_log_z_check_fails_for_a_grid_too_narrow_or_a_shifted_log_z():
    """A grid of [-4, 4]^2 cuts off the wall's tails (the paper's picture is not the density's
    support): it misses the closed form by far more than the tolerance; so does ln Z + 1e-8."""
    narrow = T.log_normalizer("2", half_width=4.0, n=201)
    assert abs(narrow - _closed_form_log_z("2")) > 1e-2
    assert abs(T.log_normalizer("3") + 1e-8 - _closed_form_log_z("3")) > 1e-10
