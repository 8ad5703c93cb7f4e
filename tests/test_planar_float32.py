"""The planar step where softplus(w.u) is below float32's rounding of 1.

With w.u = -30, 1 + w.u_hat = softplus(-30) = 9.4e-14: a float32 dot product w.u_hat rounds to -1
(or a few ulps either side), so 1 + tanh'(a) w.u_hat at a = 0 came out 0 (SingularStepError) or
1e-6 (logdet -13.4 where it is -30). The chain now takes det = tanh(a)^2 + tanh'(a) softplus(w.u)
from softplus(w.u) itself (vae_np.ops.flows.planar_forward's one_plus_wuh).
"""
import numpy as np
import pytest

from vae_np import flow_chain

F32 = np.float32


def softplus64(x):
    """ln(1 + e^x) in float64, textbook formula through logaddexp (independent of vae_np)."""
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def planar_logdet64(z, u, w, b):
    """ln det of the planar step from raw [u | w | b], in float64 from the formula
    ln(tanh(a)^2 + sech(a)^2 softplus(w.u)), a = w.z + b (no vae_np code)."""
    z, u, w, b = (np.asarray(v, dtype=np.float64) for v in (z, u, w, b))
    a = np.sum(w * z, 1) + b
    return np.log(np.tanh(a) ** 2 + softplus64(np.sum(w * u, 1)) / np.cosh(a) ** 2)


# w rows for which the float32 step used to fail: (1, 0, 0) gave det = 0 (SingularStepError),
# (0.6, -0.8, 0) det = 1.5e-6 (logdet -13.38 for -30)
REGRESSION_W = [(1.0, 0.0, 0.0), (0.6, -0.8, 0.0), (2.0, 0.0, 0.0), (1.0, 1.0, 0.0)]


def raw_at(w_row, wu, dtype=F32):
    """One planar step's raw [u | w | b] with u = wu w / |w|^2 (so w.u = wu) and b = 0."""
    w = np.array([w_row], dtype=np.float64)
    u = wu * w / np.sum(w * w)
    return np.concatenate([u, w, np.zeros((1, 1))], 1).astype(dtype)


@pytest.mark.parametrize("w_row", REGRESSION_W)
def test_float32_step_at_w_dot_u_minus_30_has_the_right_logdet(w_row):
    raw = raw_at(w_row, -30.0)
    z0 = np.zeros((1, 3), F32)                          # a = w.z0 + b = 0: tanh' = 1, tanh = 0
    zs, logdets, caches = flow_chain.chain_forward("planar", z0, [raw])
    D = 3
    expected = planar_logdet64(z0, raw[:, :D], raw[:, D:2 * D], raw[:, 2 * D])
    assert abs(expected[0] + 30) < 1e-5                 # ln softplus(-30) = -30 + 5e-14
    assert logdets[0].dtype == F32
    # float32 rounding of w.u (|w.u| = 30, 3 terms) and of softplus, ln and the sum: 8 ulps of 30
    np.testing.assert_allclose(logdets[0], expected, rtol=0, atol=8 * 30 * np.finfo(F32).eps)
    dz0, draws = flow_chain.chain_backward(np.ones((1, 3), F32), np.ones(1, F32), caches)
    assert np.all(np.isfinite(dz0)) and np.all(np.isfinite(draws[0]))
