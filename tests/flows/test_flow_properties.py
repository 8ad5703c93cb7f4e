"""Properties of the flow steps, in float64: w.u_hat > -1 and beta >= -alpha for extreme raw
values, each step's logdet = ln det of its central-difference Jacobian, the constrained planar map
invertible on a grid. Each check is also run on a planted public bug and must fail there: u_hat
dividing by |w| instead of |w|^2, no u_hat correction at all, a radial logdet with the sign of its
h' term flipped.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _flow_helpers import (DIMS, EPS, RAW, ROWS, jacobian_logdet, softplus_ref,
                           well_conditioned)
from strategies import arrays
from vae_np.flows import chain as flow_chain
from vae_np.ops import flows


def u_hat_constraint_violations(u_hat_forward, u, w):
    """Rows where w.u_hat breaks w.u_hat = m(w.u) = -1 + softplus(w.u) > -1 beyond rounding.

    The rounding bound of the computed w.u_hat: each u_hat_i = u_i + c w_i carries up to
    2 eps (|u_i| + |c w_i|), and the dot product adds D eps sum |w_i u_hat_i|."""
    D = u.shape[1]
    u_hat, _ = u_hat_forward(u, w)
    wuh = np.sum(w * u_hat, 1)
    m = softplus_ref(np.sum(w * u, 1)) - 1
    c = (m - np.sum(w * u, 1)) / np.sum(w * w, 1)
    bound = 4 * D * EPS * (np.sum(np.abs(w * u), 1) + np.abs(c) * np.sum(w * w, 1)
                           + np.sum(np.abs(w * u_hat), 1) + 1)
    wrong = np.abs(wuh - m) > bound                       # not the constrained value
    below = wuh < -1 - bound                              # not >= -1
    not_strict = (m + 1 > bound) & (wuh <= -1)            # representably above -1, yet not > -1
    return np.flatnonzero(wrong | below | not_strict)


def u_hat_divided_by_norm(u, w):
    """Planted public bug: (m(w.u) - w.u) w / |w| instead of / |w|^2."""
    wu, norm = np.sum(w * u, 1), np.sqrt(np.sum(w * w, 1))
    return u + ((softplus_ref(wu) - 1 - wu) / norm)[:, None] * w, None


def extreme_raw(seed, N=200, D=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(-50, 50, (N, D)), rng.uniform(-50, 50, (N, D))


@given(data=st.data(), N=ROWS, D=DIMS)
def test_u_hat_keeps_w_dot_u_hat_above_minus_one(data, N, D):
    u, w = data.draw(arrays((N, D), elements=RAW)), data.draw(arrays((N, D), elements=RAW))
    assume(np.all(np.sum(w * w, 1) >= 1e-2))
    assert u_hat_constraint_violations(flows.planar_u_hat_forward, u, w).size == 0


def test_u_hat_divided_by_norm_breaks_the_constraint():
    u, w = extreme_raw(1)
    assert u_hat_constraint_violations(flows.planar_u_hat_forward, u, w).size == 0
    assert u_hat_constraint_violations(u_hat_divided_by_norm, u, w).size > 50


@given(alpha_raw=arrays((5,), elements=RAW), beta_raw=arrays((5,), elements=RAW))
def test_radial_params_constraint(alpha_raw, beta_raw):
    alpha, beta, _ = flows.radial_params_forward(alpha_raw, beta_raw)
    assert np.all(alpha > 0) and np.all(beta >= -alpha)
    np.testing.assert_allclose(alpha, softplus_ref(alpha_raw), rtol=4 * EPS)


def radial_flipped_forward(z, z_ref, alpha, beta):
    """Planted bug: the radial logdet's last term with + beta r h^2 (the sign of h' flipped)."""
    f, logdet, cache = flows.radial_forward(z, z_ref, alpha, beta)
    r, h = np.linalg.norm(z - z_ref, axis=1), 1 / (alpha + np.linalg.norm(z - z_ref, axis=1))
    return f, logdet - np.log(1 + beta * h - beta * r * h * h) + np.log(1 + beta * h
                                                                        + beta * r * h * h), cache


def logdet_mismatch(kind, forward, z, raw):
    """Rows where the op's logdet differs from ln det of the numerical Jacobian (or det <= 0)."""
    p = flow_chain.split_raw(kind, raw, z.shape[1])
    if kind == "planar":
        u_hat, _ = flows.planar_u_hat_forward(p["u"], p["w"])
        args = (u_hat, p["w"], p["b"])
    else:
        args = flows.radial_params_forward(p["alpha_raw"], p["beta_raw"])[:2]
        args = (p["z_ref"],) + args
    logdet = forward(z, *args)[1]
    sign, lnabs, bound = jacobian_logdet(lambda v: forward(v, *args)[0], z)
    return np.flatnonzero((sign <= 0) | (np.abs(logdet - lnabs) > bound))


@given(data=st.data(), kind=st.sampled_from(sorted(flow_chain.FLOW_KINDS)), N=ROWS, D=DIMS)
def test_logdet_is_ln_det_of_the_numerical_jacobian(data, kind, N, D):
    z = data.draw(arrays((N, D)))
    raw = data.draw(arrays((N, flow_chain.raw_size(kind, D)), -3, 3))
    assume(well_conditioned(kind, z, [raw]))
    forward = flows.planar_forward if kind == "planar" else flows.radial_forward
    assert logdet_mismatch(kind, forward, z, raw).size == 0


def test_radial_logdet_with_a_flipped_term_fails_the_jacobian_check():
    rng = np.random.default_rng(2)
    z, raw = rng.standard_normal((50, 2)), rng.standard_normal((50, 4))
    assert logdet_mismatch("radial", flows.radial_forward, z, raw).size == 0
    assert logdet_mismatch("radial", radial_flipped_forward, z, raw).size > 25


def planar_map(z, u_hat, w, b):
    return z + u_hat * np.tanh(np.sum(w * z, 1) + b)[:, None]


def non_invertible_points(u_hat_of, u, w, b, grid):
    """For one step's parameters (1, D), grid points where the map is not invertible: numerical
    Jacobian determinant <= 0 (2-D), or f decreasing along the 1-D grid by more than rounding."""
    u_hat = u_hat_of(u, w)[0]
    rows = lambda a: np.repeat(a, len(grid), axis=0)   # noqa: E731
    step = lambda v: planar_map(v, rows(u_hat), rows(w), np.repeat(b, len(grid)))  # noqa: E731
    if grid.shape[1] == 1:
        f = step(grid)[:, 0]
        return np.flatnonzero(np.diff(f) < -8 * EPS * (np.abs(f[1:]) + 1))
    sign, lnabs, bound = jacobian_logdet(step, grid)
    return np.flatnonzero((sign <= 0) & (lnabs > np.log(1e-6)))


def no_correction(u, w):
    return u, None


@pytest.mark.parametrize("D", [1, 2])
def test_the_constrained_planar_map_is_invertible_and_the_raw_one_is_not(D):
    rng = np.random.default_rng(3)
    axis = np.linspace(-4, 4, 401 if D == 1 else 41)
    grid = axis[:, None] if D == 1 else np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    broken = 0
    for _ in range(20):
        u, w = rng.uniform(-50, 50, (1, D)), rng.uniform(-50, 50, (1, D)) / 10
        b = rng.uniform(-3, 3, 1)
        assert non_invertible_points(flows.planar_u_hat_forward, u, w, b, grid).size == 0
        broken += non_invertible_points(no_correction, u, w, b, grid).size > 0
    assert broken >= 5                                    # w.u < -1 in about half the draws
