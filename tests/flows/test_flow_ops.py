"""The gradients of the flow ops (vae_np.ops.flows) and the flow chain (vae_np.flows.chain), bad
input and mutation, in float64.

``vae_np.testing.assert_backward`` with the options of tests/flows/_flow_helpers.FLOW_CHECK (the
complex step required; the central bound widened by the measured spread of the quotient, and by the
rounding exposure of intermediates such as a = w.z + b where a formula is given) compares each
backward with central differences and with the complex step (exact to rounding), for drawn N, D
in 1..6 and raw parameters up to |50|. The ops output (f, logdet), stacked as one (N, D + 1) array
whose last column is logdet; a drawn mask checks the log-determinant's gradient alone, f's alone,
or both. A planted public bug, a planar backward without the tanh'' term, must fail the central
differences, with the flow options and without. (The properties are in
tests/flows/test_flow_properties.py.)
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _flow_helpers import (DIMS, FLOW_CHECK, RAW, ROWS, chain_exposure, draw_dout,
                           planar_det_ref, planar_exposure, stacked, well_conditioned)
from strategies import arrays, assert_unchanged, snapshot
from vae_np.flows import chain as flow_chain
from vae_np.ops import flows
from vae_np.testing import assert_backward
from vae_np.testing.backward import BackwardMismatch


# --------------------------------------------------------------------------- gradients
@given(data=st.data(), N=ROWS, D=DIMS)
def test_planar_u_hat_gradients(data, N, D):
    u, w = data.draw(arrays((N, D), elements=RAW)), data.draw(arrays((N, D), elements=RAW))
    assume(np.all(np.sum(w * w, 1) >= 1e-2))
    assert_backward(flows.planar_u_hat_forward, flows.planar_u_hat_backward, u, w,
                    dout=data.draw(arrays((N, D), -2, 2)), **FLOW_CHECK)


@given(data=st.data(), N=ROWS, D=DIMS)
def test_planar_gradients_including_logdet(data, N, D):
    z = data.draw(arrays((N, D)))
    u, w = data.draw(arrays((N, D), elements=RAW)), data.draw(arrays((N, D), elements=RAW))
    b = data.draw(arrays((N,), elements=RAW))
    assume(np.all(np.sum(w * w, 1) >= 1e-2))
    u_hat, _ = flows.planar_u_hat_forward(u, w)
    assume(np.all(planar_det_ref(z, u_hat, w, b) >= 1e-3))    # away from a singular step
    assert_backward(*stacked(flows.planar_forward, flows.planar_backward), z, u_hat, w, b,
                    dout=draw_dout(data, N, D), names=["z", "u_hat", "w", "b"],
                    exposure=planar_exposure, **FLOW_CHECK)


@given(data=st.data(), N=ROWS)
def test_radial_params_gradients(data, N):
    def fwd(alpha_raw, beta_raw):
        alpha, beta, cache = flows.radial_params_forward(alpha_raw, beta_raw)
        return np.stack([alpha, beta], 1), cache

    def bwd(dout, cache):
        return flows.radial_params_backward(dout[:, 0], dout[:, 1], cache)
    assert_backward(fwd, bwd, data.draw(arrays((N,), elements=RAW)),
                    data.draw(arrays((N,), elements=RAW)), dout=data.draw(arrays((N, 2), -2, 2)),
                    **FLOW_CHECK)


@given(data=st.data(), N=ROWS, D=DIMS)
def test_radial_gradients_including_logdet(data, N, D):
    # alpha, beta themselves (a step of 1e-6 must keep alpha > 0 and beta >= -alpha); extreme raw
    # values reach the op through the chain test below
    z, z_ref = data.draw(arrays((N, D))), data.draw(arrays((N, D)))
    alpha = data.draw(arrays((N,), 0.05, 5))
    beta = -alpha + data.draw(arrays((N,), 1e-3, 10))
    assume(np.all(np.linalg.norm(z - z_ref, axis=1) >= 1e-2))  # r = 0 is the map's kink
    assert_backward(*stacked(flows.radial_forward, flows.radial_backward), z, z_ref, alpha, beta,
                    dout=draw_dout(data, N, D), names=["z", "z_ref", "alpha", "beta"],
                    **FLOW_CHECK)


def chain_pair(kind):
    def fwd(z0, *raws):
        zs, logdets, caches = flow_chain.chain_forward(kind, z0, list(raws))
        return np.concatenate([zs[-1], np.sum(logdets, axis=0)[:, None]], axis=1), caches

    def bwd(dout, caches):
        dz0, draws = flow_chain.chain_backward(dout[:, :-1], dout[:, -1], caches)
        return (dz0, *draws)
    return fwd, bwd


@given(data=st.data(), kind=st.sampled_from(sorted(flow_chain.FLOW_KINDS)),
       N=st.integers(1, 2), D=DIMS, L=st.integers(1, 4))
def test_chain_gradients(data, kind, N, D, L):
    z0 = data.draw(arrays((N, D)))
    P = flow_chain.raw_size(kind, D)
    raws = [data.draw(arrays((N, P), elements=RAW)) for _ in range(L)]
    assume(well_conditioned(kind, z0, raws))
    assert_backward(*chain_pair(kind), z0, *raws, dout=draw_dout(data, N, D),
                    names=["z0"] + [f"raws[{l}]" for l in range(L)],
                    exposure=lambda *a: chain_exposure(kind, *a), **FLOW_CHECK)


# --------------------------------------------------------------------------- planted gradient bug
def planar_backward_without_h2(df, dlogdet, cache):
    """Planted public bug: the logdet's gradient through a misses d h'(a)/da = h''(a)."""
    dz, du_hat, dw, db = flows.planar_backward(df, dlogdet, cache)
    z, u_hat, w, t, s, wuh, det = cache
    da_h2 = dlogdet / det * wuh * (-2 * t * s)            # the term the bug leaves out
    return dz - da_h2[:, None] * w, du_hat, dw - da_h2[:, None] * z, db - da_h2


def test_planar_backward_without_the_h2_term_fails():
    rng = np.random.default_rng(4)
    z, u, w = (rng.standard_normal((3, 2)) for _ in range(3))
    b = rng.standard_normal(3)
    u_hat, _ = flows.planar_u_hat_forward(u, w)
    dout = rng.standard_normal((3, 3))
    for options in ({}, FLOW_CHECK):
        assert_backward(*stacked(flows.planar_forward, flows.planar_backward), z, u_hat, w, b,
                        dout=dout, **options)
        with pytest.raises(BackwardMismatch) as info:
            assert_backward(*stacked(flows.planar_forward, planar_backward_without_h2), z, u_hat,
                            w, b, dout=dout, **options)
        assert info.value.problems[0]["method"] == "central differences"


# --------------------------------------------------------------------------- inputs, bad input
@given(data=st.data(), kind=st.sampled_from(sorted(flow_chain.FLOW_KINDS)), N=ROWS, D=DIMS)
def test_no_input_is_mutated(data, kind, N, D):
    z0 = data.draw(arrays((N, D)))
    raws = [data.draw(arrays((N, flow_chain.raw_size(kind, D)))) for _ in range(2)]
    dz, dlogdet = data.draw(arrays((N, D))), data.draw(arrays((N,)))
    assume(well_conditioned(kind, z0, raws))
    before = snapshot(z0, *raws, dz, dlogdet)
    zs, logdets, caches = flow_chain.chain_forward(kind, z0, raws)
    flow_chain.chain_backward(dz, dlogdet, caches)
    assert_unchanged(before, z0, *raws, dz, dlogdet)


Z, R = np.zeros((2, 3)), np.ones((2, 3))
BAD_INPUT = [
    ("w", lambda: flows.planar_u_hat_forward(R, np.ones((2, 2)))),
    ("w", lambda: flows.planar_u_hat_forward(R, np.array([[1.0, 0, 0], [0, 0, 0]]))),
    ("u", lambda: flows.planar_u_hat_forward(np.ones(3), np.ones(3))),
    ("u_hat", lambda: flows.planar_forward(Z, np.ones((2, 2)), R, np.zeros(2))),
    ("b", lambda: flows.planar_forward(Z, R, R, np.zeros(3))),
    ("u_hat", lambda: flows.planar_forward(Z, -R, R, np.zeros(2))),      # w.u = -3: raw u
    ("df", lambda: flows.planar_backward(np.ones((2, 2)), np.ones(2),
                                         flows.planar_forward(Z, R / 9, R, np.zeros(2))[2])),
    ("one_plus_wuh", lambda: flows.planar_forward(Z, R, R, np.zeros(2), np.ones(3))),
    ("one_plus_wuh must be >= 0", lambda: flows.planar_forward(Z, R, R, np.zeros(2),
                                                              -np.ones(2))),   # w.u_hat given
    ("done_plus_wuh", lambda: flows.planar_u_hat_backward(R, flows.planar_u_hat_forward(R, R)[1],
                                                          np.ones(3))),
    ("cache", lambda: flows.planar_one_plus_wuh((R, R))),
    ("dlogdet", lambda: flows.planar_backward(R, np.ones(3), flows.planar_forward(
        Z, R, R, np.zeros(2), np.ones(2))[2])),
    ("dlogdet", lambda: flows.radial_backward(R, np.ones(3),
                                              flows.radial_forward(Z, R, np.ones(2),
                                                                   np.ones(2))[2])),
    ("z_ref", lambda: flows.radial_forward(Z, np.ones((3, 3)), np.ones(2), np.ones(2))),
    ("alpha", lambda: flows.radial_forward(Z, R, np.ones(3), np.ones(2))),
    ("alpha", lambda: flows.radial_forward(Z, R, np.zeros(2), np.ones(2))),
    ("beta", lambda: flows.radial_forward(Z, R, np.ones(2), -2 * np.ones(2))),
    ("beta_raw", lambda: flows.radial_params_forward(np.ones(2), np.ones(3))),
    ("kind", lambda: flow_chain.chain_forward("sylvester", Z, [])),
    (r"raws\[1\]", lambda: flow_chain.chain_forward("radial", Z, [np.ones((2, 5)),
                                                                  np.ones((2, 6))])),
    ("z0", lambda: flow_chain.chain_forward("planar", np.ones(3), [])),
    ("dzL", lambda: flow_chain.chain_backward(np.ones((2, 2)), np.ones(2), flow_chain.
                                              chain_forward("radial", Z, [np.ones((2, 5))])[2])),
    ("dlogdet_sum", lambda: flow_chain.chain_backward(R, np.ones(3), flow_chain.chain_forward(
        "radial", Z, [np.ones((2, 5))])[2])),
    ("raw", lambda: flow_chain.split_raw("planar", np.ones((2, 6)), 3)),
]


@pytest.mark.parametrize("name, call", BAD_INPUT)
def test_bad_input_names_the_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_zero_length_chain_is_the_identity():
    z0 = np.arange(6.0).reshape(3, 2)
    zs, logdets, caches = flow_chain.chain_forward("planar", z0, [])
    assert len(zs) == 1 and zs[0] is z0 and logdets == []
    dz0, draws = flow_chain.chain_backward(np.ones((3, 2)), np.ones(3), caches)
    assert np.array_equal(dz0, np.ones((3, 2))) and draws == []


def failing(forward, backward, *inputs, **options):
    """The names of the inputs assert_backward fails, with the method that failed each."""
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(forward, backward, *inputs, names=["z", "u_hat", "w", "b"], **options)
    return [(p["name"], p.get("method")) for p in info.value.problems]


def w_off_by_1e_3(df, dlogdet, cache):
    dz, du_hat, dw, db = flows.planar_backward(df, dlogdet, cache)
    return dz, du_hat, dw * (1 + 1e-3), db


def test_an_intermediate_flipping_by_one_ulp_is_noise_not_a_wrong_gradient():
    """Found by hypothesis: w_0 = 2.2e-16, a = 33 + 3.6e-15 sits at half an ulp of 33, and z_0
    moved by 1e-6 flips a by one ulp: the quotient of a logdet of size 3e-29 is then 2e-37 where
    the gradient is 1e-44. Without assert_backward's exposure= (|dL/da| |a|) this fails, even
    with the measured spread (the flip is the same at five nearby steps); with it the correct
    backward passes and a w gradient 1 + 1e-3 times the true one still fails."""
    z = np.array([[5.96046448e-08, 5.96046448e-08, 3.0, 5.96046448e-08]])
    w = np.array([[2.22044605e-16, 5.96046448e-08, 11.0, 0.0]])
    u_hat, _ = flows.planar_u_hat_forward(np.zeros((1, 4)), w)
    dout, args = np.array([[0.0, 0.0, 0.0, 0.0, 1.0]]), (z, u_hat, w, np.zeros(1))
    pair = stacked(flows.planar_forward, flows.planar_backward)
    assert failing(*pair, *args, dout=dout, **FLOW_CHECK) == [("z", "central differences")]
    assert_backward(*pair, *args, dout=dout, exposure=planar_exposure, **FLOW_CHECK)
    off = stacked(flows.planar_forward, w_off_by_1e_3)
    assert failing(*off, *args, dout=dout, exposure=planar_exposure, **FLOW_CHECK) == [
        ("w", "central differences")]


def test_rounding_of_intermediates_is_noise_not_a_wrong_gradient():
    """Found by hypothesis: a = w.z + b = 64 moves by 5e-10 when w_0 moves by h, so the quotient
    of the logdet (of size 1e-56) carries a relative noise of 1e-5, above assert_backward's floor
    (it counts the terms of L only). measure_noise=True measures that noise and passes the
    correct backward, and still fails one whose w gradient is 1 + 1e-3 times the true one."""
    z, u, w, b = np.array([[5e-4, -1.0]]), np.zeros((1, 2)), np.array([[1.0, -41.0]]), np.ones(1)
    b = 23 * b
    u_hat, _ = flows.planar_u_hat_forward(u, w)
    dout, args = np.array([[0.0, 0.0, 1.0]]), (z, u_hat, w, b)
    pair = stacked(flows.planar_forward, flows.planar_backward)
    assert ("w", "central differences") in failing(*pair, *args, dout=dout)
    assert_backward(*pair, *args, dout=dout, **FLOW_CHECK)
    off = stacked(flows.planar_forward, w_off_by_1e_3)
    assert failing(*off, *args, dout=dout, **FLOW_CHECK) == [("w", "central differences")]


def test_a_cancelling_radial_logdet_is_noise_not_a_wrong_gradient():
    """Found by hypothesis (radial chain, z0 = 1, raw = [z_ref 0, alpha_raw -24, beta_raw 0]):
    alpha = 3.8e-11, so q - 1 = beta h - beta r h^2 = alpha beta h^2 = 2.6e-11 is the difference
    of two terms of 0.69, and rounds by ~1e-16: the logdet's central quotients are off by up to
    1e-12 / 2e-6 while the floor (16 eps sum|out dout|, out of size 2.6e-11) allows 1e-20, and
    the rounding is the same at five steps 0.1 % apart (measure_noise cannot see it).
    chain_exposure's radial terms (|dL/dq| (|beta h| + |beta r h^2|), ...) pass the correct
    backward. Central differences cannot resolve this gradient (alpha_raw's bound is now 2.6e-11,
    the gradient's own size); the complex step does: it fails the alpha_raw gradient 1 + 1e-2
    times the true one (2.6e-13 off, above its absolute floor of 1e-13)."""
    z0, raw, dout = np.array([[1.0]]), np.array([[0.0, -24.0, 0.0]]), np.array([[0.0, 1.0]])
    exposure = lambda *a: chain_exposure("radial", *a)    # noqa: E731
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(*chain_pair("radial"), z0, raw, dout=dout, **FLOW_CHECK)
    assert {p["method"] for p in info.value.problems} == {"central differences"}
    assert_backward(*chain_pair("radial"), z0, raw, dout=dout, exposure=exposure, **FLOW_CHECK)

    def off(dout, caches):
        dz0, draw = chain_pair("radial")[1](dout, caches)
        return dz0, draw * np.array([[1.0, 1 + 1e-2, 1.0]])
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(chain_pair("radial")[0], off, z0, raw, dout=dout, exposure=exposure,
                        **FLOW_CHECK)
    assert [(p["position"], p["index"], p["method"]) for p in info.value.problems] == [
        (1, (0, 1), "the complex step")]


@pytest.mark.parametrize("kind", sorted(flow_chain.FLOW_KINDS))
def test_float32_stays_float32(kind):
    """A float32 model's chain computes in float32 (a float64 constant upcast the planar logdet)
    and agrees with the float64 chain to float32 rounding (1e-4: about 1700 float32 ulps through
    three steps and their backward)."""
    rng = np.random.default_rng(5)
    z0 = rng.standard_normal((4, 3))
    raws = [rng.standard_normal((4, flow_chain.raw_size(kind, 3))) for _ in range(3)]
    results = []
    for dtype in (np.float32, np.float64):
        zs, logdets, caches = flow_chain.chain_forward(kind, z0.astype(dtype),
                                                       [r.astype(dtype) for r in raws])
        dz0, draws = flow_chain.chain_backward(np.ones((4, 3), dtype), np.ones(4, dtype), caches)
        results.append([zs[-1], np.sum(logdets, 0), dz0, *draws])
    for low, high in zip(*results):
        assert low.dtype == np.float32
        np.testing.assert_allclose(low, high, rtol=1e-4, atol=1e-4 * np.max(np.abs(high)))
