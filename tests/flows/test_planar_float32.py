"""The planar step where softplus(w.u) is below float32's rounding of 1.

With w.u = -30, 1 + w.u_hat = softplus(-30) = 9.4e-14: a float32 dot product w.u_hat rounds to -1
(or a few ulps either side), so 1 + tanh'(a) w.u_hat at a = 0 came out 0 (SingularStepError) or
1e-6 (logdet -13.4 where it is -30). The chain now takes det = tanh(a)^2 + tanh'(a) softplus(w.u)
from softplus(w.u) itself (vae_np.ops.flows.planar_forward's one_plus_wuh). Here: the regression,
the float32 logdet against the float64 formula for w.u in [-60, 60], two planted forward bugs (the
tanh^2 term dropped; w.u_hat passed for 1 + w.u_hat), and a float32 flow VAE that used to stop.
The float64 gradient checks of the same path are in tests/flows/test_planar_det_gradients.py.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strategies import floats
from vae_np import VAE, Adam, fit
from vae_np.flows import chain as flow_chain
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
    s, wuh, det, p = cache[4], cache[5], cache[6], cache[7]
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


# --------------------------------------------------------------------------- a float32 flow VAE
def flow_model_at_the_fold(dtype):
    """A 4-3-2 planar flow VAE (one step) whose raw step is the same for every example
    (encoder.flow.W = 0): w = (2^-30, 0), so a = w.z + b is about 1e-9 and tanh'(a) = 1 to working
    precision, and u = (-30 2^30, 0), so w.u = -30 and u_hat = (-2^30, 0) exactly in float32:
    w.u_hat = -1, every float32 step was singular and fit stopped at step 1 as a divergence.
    (With w = 1e-9, u = -3e10 the float32 logdet came out -14.4 instead of -30.)"""
    model = VAE(4, (3,), 2, "tanh", flow="planar", flow_length=1, seed=0, dtype=dtype)
    model.params["encoder.flow.W"][:] = 0
    model.params["encoder.flow.b"][:] = [-30 * 2.0 ** 30, 0, 2.0 ** -30, 0, 0]    # [u | w | b]
    return model


def test_a_float32_flow_vae_at_the_fold_trains_and_has_the_float64_logdet():
    rng = np.random.default_rng(0)
    x, eps = rng.random((4, 4)), rng.standard_normal((1, 4, 2))
    logdets = [flow_model_at_the_fold(d).trace(x, eps=eps).values["logdet_1"]
               for d in (F32, np.float64)]
    # ln(a^2 + softplus(-30)), a^2 ~ 1e-18: float32 rounding of w.u (one product, 30 eps32 in
    # softplus's relative error) and of softplus, the sum and ln (8 ulps of 1 + |logdet|)
    eps32 = np.finfo(F32).eps
    assert logdets[0].dtype == F32 and np.all(np.abs(logdets[1] + 30) < 1e-3)
    np.testing.assert_allclose(logdets[0], logdets[1], rtol=0, atol=8 * eps32 * 31 + 2 * 30 * eps32)
    model = flow_model_at_the_fold(F32)
    history = fit(model, (x * 255).astype(np.uint8), Adam(lr=1e-3), epochs=1, batch_size=4,
                  rng=np.random.default_rng(1))
    assert np.isfinite(history["loss"][0]) and np.all(np.isfinite(model.flat))
