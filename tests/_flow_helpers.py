"""Shared helpers of the flow tests (tests/test_flow_ops.py, tests/test_flow_properties.py):
drawn raw parameters, the stacked (f, logdet) output for assert_backward, independent reference
formulas, and the central-difference Jacobian with its error bound."""
import numpy as np
from hypothesis import strategies as st

from strategies import arrays, floats

EPS = np.finfo(np.float64).eps
RAW = st.one_of(floats(-3, 3), floats(-50, 50))       # moderate and extreme raw parameters
ROWS, DIMS = st.integers(1, 4), st.integers(1, 6)


def stacked(forward, backward):
    """(forward, backward) with the op's (f, logdet) as one (N, D + 1) output."""
    def fwd(*inputs):
        f, logdet, cache = forward(*inputs)
        return np.concatenate([f, logdet[:, None]], axis=1), cache

    def bwd(dout, cache):
        return backward(dout[:, :-1], dout[:, -1], cache)
    return fwd, bwd


def draw_dout(data, N, D):
    """A drawn gradient of (f, logdet); the mask zeroes f's part or logdet's part or neither."""
    dout = data.draw(arrays((N, D + 1), -2, 2))
    part = data.draw(st.sampled_from(["both", "logdet", "f"]))
    if part == "logdet":
        dout[:, :-1] = 0
    elif part == "f":
        dout[:, -1] = 0
    return dout


def softplus_ref(x):
    return np.logaddexp(0.0, x)


def planar_det_ref(z, u_hat, w, b):
    """1 + (1 - tanh(a)^2) w.u_hat by the textbook formula, for the test's assumptions."""
    return 1 + (1 - np.tanh(np.sum(w * z, 1) + b) ** 2) * np.sum(w * u_hat, 1)


def well_conditioned(kind, z0, raws):
    """Every step's determinant factors >= 1e-3 and, radial, r >= 1e-2 (independent formulas)."""
    D, z = z0.shape[1], z0
    for raw in raws:
        if kind == "planar":
            u, w, b = raw[:, :D], raw[:, D:2 * D], raw[:, 2 * D]
            ww, wu = np.sum(w * w, 1), np.sum(w * u, 1)
            if np.any(ww < 1e-2):
                return False
            u_hat = u + ((softplus_ref(wu) - 1 - wu) / ww)[:, None] * w
            if np.any(planar_det_ref(z, u_hat, w, b) < 1e-3):
                return False
            z = z + u_hat * np.tanh(np.sum(w * z, 1) + b)[:, None]
        else:
            z_ref, alpha = raw[:, :D], softplus_ref(raw[:, D])
            beta = -alpha + softplus_ref(raw[:, D + 1])
            r = np.linalg.norm(z - z_ref, axis=1)
            h = 1 / (alpha + r)
            if np.any(r < 1e-2) or np.any(1 + beta * h < 1e-3) or np.any(1 + alpha * beta * h * h
                                                                          < 1e-3):
                return False
            z = z + (beta * h)[:, None] * (z - z_ref)
    return True


def jacobian_logdet(step, z, h=1e-5):
    """(sign, ln|det|) of the central-difference Jacobian of each row's map, with an error bound
    on ln|det|: |delta ln det| <= sum_ij |J^-1_ji| |delta J_ij|, delta J from the steps h and 2h."""
    def jac(step_size):
        cols = []
        for j in range(z.shape[1]):
            e = np.zeros_like(z)
            e[:, j] = step_size
            cols.append((step(z + e) - step(z - e)) / (2 * step_size))
        return np.stack(cols, axis=2)                     # J[n, i, j] = d f_i / d z_j
    J1, J2 = jac(h), jac(2 * h)
    scale = np.max(np.abs(step(z)), axis=1)[:, None, None] + 1
    dJ = np.abs(J2 - J1) + 4 * EPS * scale / h
    sign, lnabs = np.linalg.slogdet(J1)
    bound = 2 * np.sum(np.abs(np.linalg.inv(J1)).transpose(0, 2, 1) * dJ, axis=(1, 2)) + 1e-12
    return sign, lnabs, bound
