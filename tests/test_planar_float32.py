"""The planar step where softplus(w.u) is below float32's rounding of 1.

With w.u = -30, 1 + w.u_hat = softplus(-30) = 9.4e-14: a float32 dot product w.u_hat rounds to -1
(or a few ulps either side), so 1 + tanh'(a) w.u_hat at a = 0 came out 0 (SingularStepError) or
1e-6 (logdet -13.4 where it is -30). The chain now takes det = tanh(a)^2 + tanh'(a) softplus(w.u)
from softplus(w.u) itself (vae_np.ops.flows.planar_forward's one_plus_wuh).
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _flow_helpers import DIMS, RAW, ROWS, check_backward, draw_dout, sech2_ref, stacked
from strategies import arrays, assert_complex_close, complex_step, floats
from vae_np import flow_chain
from vae_np.ops import flows

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


def test_the_old_form_without_one_plus_wuh_is_kept_and_still_singular_there():
    """planar_forward(z, u_hat, w, b) keeps its former meaning (det from the dot product w.u_hat),
    which is why the chain passes one_plus_wuh: at the regression point it is still singular."""
    raw = raw_at((1.0, 0.0, 0.0), -30.0)
    u_hat, _ = flows.planar_u_hat_forward(raw[:, :3], raw[:, 3:6])
    with pytest.raises(flows.SingularStepError, match="w.u_hat"):
        flows.planar_forward(np.zeros((1, 3), F32), u_hat, raw[:, 3:6], raw[:, 6])


# --------------------------------------------------------------------------- float32 vs float64
def planar_step32(z, u, w, b, forward=flows.planar_forward):
    """The chain's planar step (u_hat, then the step with one_plus_wuh): (logdet, det)."""
    u_hat, cache = flows.planar_u_hat_forward(u, w)
    _, logdet, op_cache = forward(z, u_hat, w, b, flows.planar_one_plus_wuh(cache))
    return logdet, op_cache[6]


def float32_mismatch(z, u, w, b, step=planar_step32):
    """Rows where the float32 step has det <= 0, a non-finite logdet, or a logdet farther from the
    float64 formula (on the same float32 inputs) than float32 rounding explains.

    The inputs are built so that a = w.z + b is rounded once (w.z is exact: both have 3 bits after
    the point), an error eps32 |a|; w.u is a D-term dot product, error D eps32 sum|w u|. They move
    logdet = ln(tanh(a)^2 + sech(a)^2 softplus(w.u)) by |dlogdet/da| and |dlogdet/d(w.u)| times
    that: dlogdet/da = 2 tanh sech^2 (1 - softplus) / det, dlogdet/d(w.u) = sech^2 sigmoid / det.
    The rest (tanh, sech^2, softplus, the sum, ln or log1p) is a few ulps: 16 eps32 (1 + |ln det|).
    """
    eps = np.finfo(F32).eps
    logdet, det = step(z, u, w, b)
    z64, u64, w64, b64 = (np.asarray(v, dtype=np.float64) for v in (z, u, w, b))
    a, wu = np.sum(w64 * z64, 1) + b64, np.sum(w64 * u64, 1)
    t, s, p = np.tanh(a), 1 / np.cosh(a) ** 2, softplus64(wu)
    det64 = t * t + s * p
    ref = np.log(det64)
    dld_a = np.abs(2 * t * s * (1 - p)) / det64
    dld_wu = s / (1 + np.exp(-wu)) / det64
    tol = (16 * eps * (1 + np.abs(ref)) + 2 * dld_a * eps * np.abs(a)
           + 2 * dld_wu * w.shape[1] * eps * np.sum(np.abs(w64 * u64), 1))
    bad = (det <= 0) | ~np.isfinite(logdet) | (np.abs(logdet - ref) > tol)
    return np.flatnonzero(bad)


def eighths(k):
    """Integers k -> k / 8 in float32: products of two have 6 bits after the point, exact."""
    return (np.asarray(k, dtype=np.float64) / 8).astype(F32)


def build_rows(kw, kz, wu, delta):
    """Float32 rows with w = kw / 8, z = kz / 8, w.u = wu (u along w), a = w.z + b = delta up to
    one rounding."""
    w, z = eighths(kw), eighths(kz)
    w64 = w.astype(np.float64)
    u = (np.asarray(wu)[:, None] * w64 / np.sum(w64 * w64, 1)[:, None]).astype(F32)
    b = (np.asarray(delta) - np.sum(w64 * z.astype(np.float64), 1)).astype(F32)
    return z, u, w, b


@given(data=st.data(), N=st.integers(1, 8), D=st.integers(1, 4))
def test_float32_logdet_is_the_float64_one_for_w_dot_u_in_minus_60_60(data, N, D):
    kw = data.draw(hnp.arrays(np.int64, (N, D), elements=st.integers(-24, 24)))
    assume(np.all(np.any(kw != 0, axis=1)))
    kz = data.draw(hnp.arrays(np.int64, (N, D), elements=st.integers(-24, 24)))
    wu = data.draw(hnp.arrays(np.float64, (N,), elements=floats(-60, 60)))
    delta = data.draw(hnp.arrays(np.float64, (N,), elements=st.one_of(
        st.just(0.0), floats(-1e-3, 1e-3), floats(-30, 30))))
    assert float32_mismatch(*build_rows(kw, kz, wu, delta)).size == 0


def grid_rows(seed=0, wu_lo=-60.0, wu_hi=60.0):
    """w.u on 241 points of [wu_lo, wu_hi] times a in {0, +-1e-7, 1e-4, 0.3, -3, 20}, D = 3."""
    rng = np.random.default_rng(seed)
    wu, delta = np.meshgrid(np.linspace(wu_lo, wu_hi, 241), [0, 1e-7, -1e-7, 1e-4, 0.3, -3, 20])
    n = wu.size
    kw = rng.integers(-24, 25, (n, 3))
    kw[np.all(kw == 0, axis=1), 0] = 1
    return build_rows(kw, rng.integers(-24, 25, (n, 3)), wu.ravel(), delta.ravel())


def test_float32_logdet_on_a_grid_of_w_dot_u_and_a():
    assert float32_mismatch(*grid_rows()).size == 0


# --------------------------------------------------------------------------- planted bugs
def forward_without_tanh2(z, u_hat, w, b, one_plus_wuh):
    """Planted bug: det = h'(a) p where the ln form is used (the tanh(a)^2 term dropped)."""
    f, logdet, cache = flows.planar_forward(z, u_hat, w, b, one_plus_wuh)
    t, s, wuh, det, p = cache[3], cache[4], cache[5], cache[6], cache[7]
    far = np.abs(s * wuh) >= 0.5
    det = np.where(far, s * p, det)
    return f, np.where(far, np.log(det), logdet), cache[:6] + (det, p)


def forward_given_wuh(z, u_hat, w, b, one_plus_wuh):
    """Planted bug: w.u_hat = softplus(w.u) - 1 passed where 1 + w.u_hat is wanted."""
    return flows.planar_forward(z, u_hat, w, b, one_plus_wuh - 1)


def test_the_float32_checks_fail_without_the_tanh2_term():
    rows = grid_rows()
    assert float32_mismatch(*rows).size == 0
    bad = float32_mismatch(*rows, step=lambda *r: planar_step32(*r, forward=forward_without_tanh2))
    assert bad.size > 200


def test_the_float32_checks_fail_given_w_dot_u_hat_for_one_plus_it():
    rows = grid_rows(wu_lo=1.0)                         # softplus(w.u) - 1 > 0: no ValueError
    bad = float32_mismatch(*rows, step=lambda *r: planar_step32(*r, forward=forward_given_wuh))
    assert bad.size > 200
    with pytest.raises(ValueError, match="one_plus_wuh must be >= 0"):   # the regression point
        planar_step32(*build_rows([[8, 0, 0]], [[0, 0, 0]], [-30.0], [0.0]),
                      forward=forward_given_wuh)


# --------------------------------------------------------------------------- gradients, float64
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
    check_backward(u_hat_and_p, u_hat_and_p_backward(flows.planar_u_hat_backward), (u, w),
                   data.draw(arrays((N, D + 1), -2, 2)), ["u", "w"])


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
    check_backward(*stacked(flows.planar_forward, flows.planar_backward), (z, u_hat, w, b, p),
                   draw_dout(data, N, D), ["z", "u_hat", "w", "b", "one_plus_wuh"],
                   exposure=exposure_with_p)


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
    check_backward(*one_step_pair(), (z0, raw), dout, ["z0", "raw"], exposure=one_step_exposure)


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
    with pytest.raises(AssertionError, match=r"^raw\[.*central difference"):
        check_backward(*one_step_pair(u_hat_backward_without_sigmoid), (z0, raw), dout,
                       ["z0", "raw"], exposure=one_step_exposure)
    u, w = raw[:, :3], raw[:, 3:6]
    with pytest.raises(AssertionError, match=r"central difference"):
        check_backward(u_hat_and_p, u_hat_and_p_backward(u_hat_backward_without_sigmoid),
                       (u, w), dout, ["u", "w"])
