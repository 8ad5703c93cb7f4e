"""Float64 gradient checks of the planar step's det = tanh(a)^2 + tanh'(a) softplus(w.u) path
(vae_np.ops.flows: planar_u_hat_forward's softplus(w.u), planar_forward's one_plus_wuh, and the
sigmoid(w.u) factor in planar_u_hat_backward), by vae_np.testing.assert_backward with the flow
tests' options (tests/flows/_flow_helpers.FLOW_CHECK: central differences and the complex step) at
ordinary values and at w.u = -30, where 1 + w.u_hat is 9e-14; at the fold itself (a within 3e-7
of 0) by the complex step alone. A backward that drops the sigmoid factor is a planted bug that
must fail."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _flow_helpers import DIMS, FLOW_CHECK, RAW, ROWS, draw_dout, sech2_ref, stacked
from strategies import arrays, assert_complex_close, floats
from test_planar_float32 import softplus64
from vae_np.flows import chain as flow_chain
from vae_np.ops import flows
from vae_np.testing import BackwardMismatch, assert_backward, complex_step


def exposure_with_p(z, u_hat, w, b, p, dout, wu=None, wu_terms=0.0):
    """Per row sum_v |dL/dv| |v| over the intermediates the check cannot see: a = w.z + b (terms
    sum|w z| + |b|), p - 1 (|p| + 1) and, through the chain, w.u (terms sum|w u|, dp/d(w.u) =
    sigmoid). Textbook formulas: det = tanh^2 + sech^2 p, dL/da = (df.u_hat) sech^2
    + dl 2 tanh sech^2 (1 - p) / det, dL/dp = dl sech^2 / det."""
    a = np.sum(w * z, 1) + b
    t, s = np.tanh(a), sech2_ref(a)
    det = t * t + s * p
    df, dl = dout[:, :-1], dout[:, -1]
    dl_da = np.sum(df * u_hat, 1) * s + dl * 2 * t * s * (1 - p) / det
    dl_dp = dl * s / det
    sig = 0.0 if wu is None else 1 / (1 + np.exp(-wu))
    return (np.abs(dl_da) * (np.sum(np.abs(w * z), 1) + np.abs(b))
            + np.abs(dl_dp) * (np.abs(p) + 1 + sig * wu_terms))


@given(data=st.data(), N=ROWS, D=DIMS)
def test_u_hat_and_softplus_gradients(data, N, D):
    """planar_u_hat_backward with done_plus_wuh: the gradient of (u_hat, softplus(w.u))."""
    u, w = data.draw(arrays((N, D), elements=RAW)), data.draw(arrays((N, D), elements=RAW))
    assume(np.all(np.sum(w * w, 1) >= 1e-2))
    assert_backward(u_hat_and_p, u_hat_and_p_backward(flows.planar_u_hat_backward), u, w,
                    dout=data.draw(arrays((N, D + 1), -2, 2)), **FLOW_CHECK)


def u_hat_and_p(u, w):
    u_hat, cache = flows.planar_u_hat_forward(u, w)
    return np.concatenate([u_hat, flows.planar_one_plus_wuh(cache)[:, None]], 1), cache


def u_hat_and_p_backward(u_hat_backward):
    return lambda dout, cache: u_hat_backward(dout[:, :-1], cache, dout[:, -1])


@given(data=st.data(), N=ROWS, D=DIMS)
def test_planar_gradients_with_one_plus_wuh(data, N, D):
    z, u_hat, w = (data.draw(arrays((N, D), elements=RAW)) for _ in range(3))
    b = data.draw(arrays((N,), elements=RAW))
    p = data.draw(arrays((N,), elements=st.one_of(floats(0.01, 3), floats(3, 60))))
    assume(np.all(np.tanh(np.sum(w * z, 1) + b) ** 2 + sech2_ref(np.sum(w * z, 1) + b) * p
                  >= 1e-3))                               # a step of 1e-6 keeps det > 0
    assert_backward(*stacked(flows.planar_forward, flows.planar_backward), z, u_hat, w, b, p,
                    dout=draw_dout(data, N, D), names=["z", "u_hat", "w", "b", "one_plus_wuh"],
                    exposure=exposure_with_p, **FLOW_CHECK)


def one_step_rows(seed=6):
    """Raw [u | w | b] and z0 (float64, D = 3): w.u = -30 at a in {0, 1e-5, 1e-3, 0.5, -2} (u
    with a part orthogonal to w), then 5 rows of standard normal raw values. (At a = 1e-7, det =
    a^2 + 9e-14 bends on a scale of 3e-7, below a central difference's step: see the next test.)"""
    rng = np.random.default_rng(seed)
    a = np.array([0, 1e-5, 1e-3, 0.5, -2])
    w = rng.standard_normal((5, 3))
    v = rng.standard_normal((5, 3))
    v -= (np.sum(v * w, 1) / np.sum(w * w, 1))[:, None] * w
    u = -30 * w / np.sum(w * w, 1)[:, None] + v
    z0 = rng.standard_normal((10, 3))
    b = a - np.sum(w * z0[:5], 1)
    raw = np.concatenate([np.concatenate([u, w, b[:, None]], 1), rng.standard_normal((5, 7))])
    return z0, raw


def one_step_pair(u_hat_backward=flows.planar_u_hat_backward):
    """One planar chain step (z0, raw) -> [z1 | logdet] and its backward (the chain's own, with
    planar_u_hat_backward replaceable for a planted bug)."""
    def fwd(z0, raw):
        zs, logdets, caches = flow_chain.chain_forward("planar", z0, [raw])
        return np.concatenate([zs[1], logdets[0][:, None]], 1), caches

    def bwd(dout, caches):
        real = flow_chain.planar_u_hat_backward
        flow_chain.planar_u_hat_backward = u_hat_backward
        try:
            dz0, (draw,) = flow_chain.chain_backward(dout[:, :-1], dout[:, -1], caches)
        finally:
            flow_chain.planar_u_hat_backward = real
        return dz0, draw
    return fwd, bwd


def one_step_exposure(z0, raw, dout):
    u, w, b = raw[:, :3], raw[:, 3:6], raw[:, 6]
    wu = np.sum(w * u, 1)
    u_hat = u + ((softplus64(-wu) - 1) / np.sum(w * w, 1))[:, None] * w
    return exposure_with_p(z0, u_hat, w, b, softplus64(wu), dout, wu, np.sum(np.abs(w * u), 1))


@pytest.mark.parametrize("part", ["both", "logdet", "f"])
def test_chain_step_gradients_at_w_dot_u_minus_30_and_ordinary(part):
    z0, raw = one_step_rows()
    dout = np.random.default_rng(7).standard_normal((10, 4))
    dout[:, :-1] *= part != "logdet"
    dout[:, -1] *= part != "f"
    assert_backward(*one_step_pair(), z0, raw, dout=dout, exposure=one_step_exposure,
                    **FLOW_CHECK)


@pytest.mark.parametrize("a", [1e-7, -3e-7, 1e-9])
def test_chain_step_gradients_by_complex_step_at_the_fold(a):
    """w.u = -30 and a within sqrt(softplus(-30)) = 3e-7 of 0: the complex step alone (exact to
    rounding at any curvature) against the backward, for z0 and the raw parameters."""
    z0, raw = one_step_rows()
    z0, raw = z0[:1].copy(), raw[:1].copy()
    raw[0, 6] = a - np.sum(raw[0, 3:6] * z0[0])
    dout = np.random.default_rng(8).standard_normal((1, 4))
    fwd, bwd = one_step_pair()
    out, caches = fwd(z0, raw)
    assert out[0, -1] < -14                                 # ln(a^2 + 9.4e-14): near the fold
    dz0, draw = bwd(dout, caches)
    assert_complex_close(dz0, complex_step(lambda v: np.sum(fwd(v, raw)[0] * dout), z0), "z0")
    assert_complex_close(draw, complex_step(lambda v: np.sum(fwd(z0, v)[0] * dout), raw), "raw")


def u_hat_backward_without_sigmoid(du_hat, cache, done_plus_wuh):
    """Planted bug: d softplus(w.u) / d(w.u) taken as 1 (the sigmoid factor dropped)."""
    du, dw = flows.planar_u_hat_backward(du_hat, cache)
    u, w = cache[0], cache[1]
    return du + done_plus_wuh[:, None] * w, dw + done_plus_wuh[:, None] * u


def test_the_gradient_checks_fail_without_the_sigmoid_factor():
    z0, raw = one_step_rows()
    dout = np.random.default_rng(7).standard_normal((10, 4))
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(*one_step_pair(u_hat_backward_without_sigmoid), z0, raw, dout=dout,
                        exposure=one_step_exposure, **FLOW_CHECK)
    assert [(p["name"], p["method"]) for p in info.value.problems] == [
        ("raw", "central differences")]
    u, w = raw[:, :3], raw[:, 3:6]
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(u_hat_and_p, u_hat_and_p_backward(u_hat_backward_without_sigmoid), u, w,
                        dout=dout, **FLOW_CHECK)
    assert {p["method"] for p in info.value.problems} == {"central differences"}
