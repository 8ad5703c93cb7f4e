"""Shared helpers of the flow tests (tests/flows/test_flow_ops.py,
tests/flows/test_flow_properties.py): drawn raw parameters, the stacked (f, logdet) output for
assert_backward and the options the flow tests pass it (``FLOW_CHECK``), independent reference
formulas for the rounding exposure of intermediates, and ln det of the central-difference Jacobian
with its error bound."""
import numpy as np
from hypothesis import strategies as st

from strategies import arrays, floats
from vae_np.testing import central_difference, complex_step

EPS = np.finfo(np.float64).eps
RAW = st.one_of(floats(-3, 3), floats(-50, 50))       # moderate and extreme raw parameters
ROWS, DIMS = st.integers(1, 4), st.integers(1, 6)

# assert_backward's options for the flow ops: the complex step is required (every flow op is
# complex-analytic; a forward that drops the imaginary part fails instead of being skipped), and
# the central bound adds the measured spread of the quotient over five steps near h (the
# rounding of intermediates such as a = w.z + b, which the floor 16 eps sum|out * dout| cannot
# see). Tests add exposure= where a formula for that rounding is known.
FLOW_CHECK = dict(complex_step=True, measure_noise=True)


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


def jacobian_logdet(step, z, h_rel=1e-5):
    """(sign, ln|det|) of the central-difference Jacobian of each row's map, with an error bound
    on ln|det|: |delta ln det| <= sum_ij |J^-1_ji| |delta J_ij|, doubled, plus 1e-12, where
    delta J is vae_np.testing.central_difference's bound (rows=True: truncation from the steps h
    and 2h, rounding 8 eps (max |f| + 1) / 2h, the 1 for the coordinates of z a row adds up)."""
    J, dJ = central_difference(step, z, h_rel, terms=1.0, rows=True)   # J[n, i, j] = df_i/dz_j
    sign, lnabs = np.linalg.slogdet(J)
    bound = 2 * np.sum(np.abs(np.linalg.inv(J)).transpose(0, 2, 1) * dJ, axis=(1, 2)) + 1e-12
    return sign, lnabs, bound


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


def chain_gradient_of_raw(kind, z0, raws, dout, l):
    """(N, P) dL/d raws[l] row by row, L = sum([z_L | sum logdet] * dout), by
    vae_np.testing.complex_step (exact to rounding; row n of L depends on row n of raws[l])."""
    from vae_np.flows import chain as flow_chain

    def row_L(raw):
        rs = [r.astype(np.complex128) for r in raws]
        rs[l] = raw
        zs, lds, _ = flow_chain.chain_forward(kind, z0.astype(np.complex128), rs)
        return np.sum(np.concatenate([zs[-1], np.sum(lds, axis=0)[:, None]], 1) * dout, 1)
    jac = complex_step(row_L, raws[l])                  # (N, N, P): dL_n / d raws[l][m, p]
    return jac[np.arange(len(z0)), np.arange(len(z0))]


def chain_exposure(kind, z0, *raws_and_dout):
    """Per row, sum_v |dL/dv| |v| over the intermediates v of every step of the chain whose
    rounding L does not show, by textbook formulas (dout = [df | dl]):

    planar: a_l = w_l.z_l + b_l (terms sum|w z| + |b|; dL/da_l = dL/db_l, from
        chain_gradient_of_raw) and w.u_hat_l (terms sum|w u_hat|; dL/d(w.u_hat)_l =
        dl tanh'_l / det_l: w.u_hat enters only the step's logdet, weighted by dl);
    radial: d_l = z_l - z_ref (terms |z| + |z_ref| per coordinate; dL/dd = -dL/dz_ref),
        beta_l = -alpha_l + softplus(beta_raw) (terms alpha + softplus(beta_raw); dL/dbeta =
        dL/dbeta_raw / sigmoid(beta_raw)) and q_l - 1 = beta h - beta r h^2 (terms |beta h| +
        |beta r h^2|, which cancel to alpha beta h^2 when alpha << r; dL/dq_l = dl / q_l)."""
    *raws, dout = raws_and_dout
    N, D = z0.shape
    total, z, dl = np.zeros(N), z0, dout[:, -1]
    for l, raw in enumerate(raws):
        dL_draw = chain_gradient_of_raw(kind, z0, raws, dout, l)
        if kind == "planar":
            u, w, b = raw[:, :D], raw[:, D:2 * D], raw[:, 2 * D]
            ww, wu = np.sum(w * w, 1), np.sum(w * u, 1)
            u_hat = u + ((softplus_ref(wu) - 1 - wu) / ww)[:, None] * w
            a = np.sum(w * z, 1) + b
            s, wuh = sech2_ref(a), np.sum(w * u_hat, 1)
            total += (np.abs(dL_draw[:, 2 * D]) * (np.sum(np.abs(w * z), 1) + np.abs(b))
                      + np.abs(dl * s / (1 + s * wuh)) * np.sum(np.abs(w * u_hat), 1))
            z = z + u_hat * np.tanh(a)[:, None]
            continue
        z_ref, alpha, sp_beta = raw[:, :D], softplus_ref(raw[:, D]), softplus_ref(raw[:, D + 1])
        beta = -alpha + sp_beta
        r = np.sqrt(np.sum((z - z_ref) ** 2, 1))
        h = 1 / (alpha + r)
        dL_dbeta = dL_draw[:, D + 1] * (1 + np.exp(-raw[:, D + 1]))    # / sigmoid(beta_raw)
        total += (np.sum(np.abs(dL_draw[:, :D]) * (np.abs(z) + np.abs(z_ref)), 1)
                  + np.abs(dL_dbeta) * (alpha + sp_beta)
                  + np.abs(dl / (1 + beta * h - beta * r * h * h))
                  * (np.abs(beta * h) + np.abs(beta * r * h * h)))
        z = z + (beta * h)[:, None] * (z - z_ref)
    return total
