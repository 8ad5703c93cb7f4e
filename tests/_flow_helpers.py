"""Shared helpers of the flow tests (tests/test_flow_ops.py, tests/test_flow_properties.py):
drawn raw parameters, the stacked (f, logdet) output for assert_backward, independent reference
formulas, the central-difference Jacobian with its error bound, and ``check_backward``."""
import numpy as np
from hypothesis import strategies as st

from strategies import arrays, floats
from vae_np.numerics import difference_quotient, step_size
from vae_np.testing.backward import COMPLEX_ATOL, COMPLEX_FLOOR, COMPLEX_H, COMPLEX_RTOL, SUBNORMAL

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


def check_backward(forward, backward, inputs, dout, names, exposure=None):
    """backward(dout, cache) against central differences and the complex step of
    L = sum(forward(*inputs)[0] * dout), every input, every coordinate, in float64.

    Like ``vae_np.testing.assert_backward`` (same step h = 1e-6 max(1, |x|), same tolerance 1e-6,
    same truncation estimate |n(2h) - n(h)|, same rounding floor 16 eps sum|out * dout| / span,
    same complex-step bound), plus the rounding of intermediates that L does not show: a = w.z + b
    of size 33 moved by 2e-22 (a flips by one ulp) or w.u_hat summed from terms of size 100 down to
    -1 change L by |dL/dv| eps |v|, above the floor sum|out * dout| sets when L is e^-66 small.
    ``exposure(*inputs, dout)`` gives per row sum_v |dL/dv| |v| over such intermediates v, and
    4 eps exposure / span is added; so is 4 x the spread of the quotient over five steps
    h (1 + k 1e-3), k = -2..2 (noise differs between them, a wrong gradient does not). Every input
    has rows first. Raises AssertionError naming the input and coordinate."""
    xs = [np.array(v, dtype=np.float64) for v in inputs]
    dout = np.array(dout, dtype=np.float64)
    before, dout_before = [x.copy() for x in xs], dout.copy()
    out, cache = forward(*xs)
    floor_terms = float(np.sum(np.abs(np.asarray(out) * dout)))
    rows = np.zeros(len(xs[0])) if exposure is None else np.asarray(exposure(*xs, dout))
    grads = backward(dout, cache)
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    assert len(grads) == len(xs), f"backward returned {len(grads)} gradients for {len(xs)}"
    for i, (x, g) in enumerate(zip(xs, grads)):
        g = np.asarray(g, dtype=np.float64)
        assert g.shape == x.shape and np.all(np.isfinite(g)), (names[i], g.shape, x.shape)

        def L(v, i=i):
            return np.sum(np.asarray(forward(*xs[:i], v, *xs[i + 1:])[0]) * dout)
        probe = x.copy()
        for j in range(x.size):
            h = step_size(probe.flat[j], 1e-6)
            quotients = [difference_quotient(L, probe, j, h * (1 + k * 1e-3)) for k in range(-2, 3)]
            n, span = quotients[2][0], quotients[2][3]
            spread = np.ptp([q[0] for q in quotients])
            n2 = difference_quotient(L, probe, j, 2 * h)[0]
            bound = (1e-6 * (abs(g.flat[j]) + abs(n)) + abs(n2 - n)
                     + 16 * (EPS * floor_terms + SUBNORMAL) / span + 4 * spread
                     + 4 * EPS * rows[np.unravel_index(j, x.shape)[0]] / span)
            assert abs(g.flat[j] - n) <= bound, (
                f"{names[i]}[{np.unravel_index(j, x.shape)}]: analytic {g.flat[j]!r}, central "
                f"difference {n!r}, allowed {bound:.3g}")
        xc = x.astype(np.complex128)
        for j in range(x.size):
            old = xc.flat[j]
            xc.flat[j] = old + 1j * COMPLEX_H
            imag = np.imag(np.asarray(forward(*xs[:i], xc, *xs[i + 1:])[0])) * dout
            xc.flat[j] = old
            n_c, S = float(np.sum(imag)) / COMPLEX_H, float(np.sum(np.abs(imag))) / COMPLEX_H
            scale = max(1.0, float(np.max(np.abs(g))), float(np.max(np.abs(dout))))
            slack = (COMPLEX_RTOL * (abs(g.flat[j]) + abs(n_c)) + 64 * EPS * S + COMPLEX_FLOOR
                     + COMPLEX_ATOL * scale)
            assert abs(g.flat[j] - n_c) <= slack, (
                f"{names[i]}[{np.unravel_index(j, x.shape)}]: analytic {g.flat[j]!r}, complex "
                f"step {n_c!r}, allowed {slack:.3g}")
    for name, x, old in zip(names, xs, before):
        assert np.array_equal(x, old), f"{name} was modified in place"
    assert np.array_equal(dout, dout_before), "backward modified dout in place"


def sech2_ref(a):
    e = np.exp(-2 * np.abs(a))
    return 4 * e / (1 + e) ** 2


def planar_exposure(z, u_hat, w, b, dout):
    """Per row |dL/da| (sum|w z| + |b|) + |dL/d w.u_hat| sum|w u_hat| for L = f.df + logdet dl,
    by the textbook formulas: dL/da = (df.u_hat) tanh' + dl w.u_hat tanh'' / det,
    dL/d(w.u_hat) = dl tanh' / det."""
    a = np.sum(w * z, 1) + b
    t, s, wuh = np.tanh(a), sech2_ref(a), np.sum(w * u_hat, 1)
    det = 1 + s * wuh
    df, dl = dout[:, :-1], dout[:, -1]
    dl_da = np.sum(df * u_hat, 1) * s + dl * wuh * (-2 * t * s) / det
    return (np.abs(dl_da) * (np.sum(np.abs(w * z), 1) + np.abs(b))
            + np.abs(dl * s / det) * np.sum(np.abs(w * u_hat), 1))


def chain_exposure(kind, z0, *raws_and_dout):
    """planar_exposure of every planar step of the chain, dL/da_l by the complex step of L in
    b_l (a_l = w_l.z + b_l: the same derivative), dL/d(w.u_hat)_l = dl tanh'_l / det_l (w.u_hat
    enters only the step's logdet, which enters L with the weight dl). 0 for radial chains."""
    *raws, dout = raws_and_dout
    N, D = z0.shape
    if kind != "planar":
        return np.zeros(N)
    from vae_np.flows import chain as flow_chain
    total, z = np.zeros(N), z0

    def L(rs):
        zs, lds, _ = flow_chain.chain_forward(kind, z0, rs)
        return np.concatenate([zs[-1], np.sum(lds, axis=0)[:, None]], 1) * dout
    for l, raw in enumerate(raws):
        u, w, b = raw[:, :D], raw[:, D:2 * D], raw[:, 2 * D]
        ww, wu = np.sum(w * w, 1), np.sum(w * u, 1)
        u_hat = u + ((softplus_ref(wu) - 1 - wu) / ww)[:, None] * w
        moved = [r.astype(np.complex128) for r in raws]
        moved[l][:, 2 * D] += 1e-20j
        dl_da = np.sum(np.imag(L(moved)), 1) / 1e-20
        a = np.sum(w * z, 1) + b
        s, wuh = sech2_ref(a), np.sum(w * u_hat, 1)
        total += (np.abs(dl_da) * (np.sum(np.abs(w * z), 1) + np.abs(b))
                  + np.abs(dout[:, -1] * s / (1 + s * wuh)) * np.sum(np.abs(w * u_hat), 1))
        z = z + u_hat * np.tanh(a)[:, None]
    return total
