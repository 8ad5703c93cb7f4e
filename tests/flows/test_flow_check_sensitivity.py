"""``vae_np.testing.assert_backward`` with the flow tests' options
(tests/flows/_flow_helpers.FLOW_CHECK: ``measure_noise=True``, ``complex_step=True``, and
``exposure=`` where the rounding of intermediates has a formula) widens its central-difference bound
by measured noise: the truncation estimate |n(2h) - n(h)|, 4 x the spread of the quotient over five
nearby steps, and the rounding exposure of intermediates. These tests show that the widening cannot
hide a wrong gradient.

* For drawn planar, radial and chain inputs (raw values up to |50|, as in
  tests/flows/test_flow_ops.py) the same draw passes with the true backward and fails with ONE
  coordinate of ONE gradient multiplied by 1 + 1e-4 (the coordinate of largest |gradient|, among
  those the complex step resolves to 1e-6 relative: its slack 64 eps S + 1e-13 max|g| is below 1e-6
  |g|, S the sum of the absolute terms of that coordinate's complex-step derivative); the failure
  names that input and that coordinate.
* An error of 1e-8 relative is below the central-difference tolerance (1e-6) and must still fail,
  through the complex step (exact to rounding): the complex-step half of the check is live.
* On well-conditioned input an error of 1e-5 relative fails the central half itself.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _flow_helpers import (FLOW_CHECK, RAW, chain_exposure, draw_dout, planar_det_ref,
                           planar_exposure, stacked, well_conditioned)
from strategies import arrays
from test_flow_ops import chain_pair
from vae_np.flows import chain as flow_chain
from vae_np.ops import flows
from vae_np.testing import BackwardMismatch, assert_backward, complex_step

EPS = np.finfo(np.float64).eps


def off_by(backward, which, index, factor):
    """backward with gradient ``which``'s coordinate ``index`` multiplied by ``factor``."""
    def wrong(dout, cache):
        grads = [np.array(g, dtype=np.float64) for g in backward(dout, cache)]
        grads[which].flat[index] *= factor
        return tuple(grads)
    return wrong


def check(forward, backward, inputs, dout, names, exposure=None):
    """assert_backward with the flow tests' options; [] when it passes, else its problems as
    (name, worst coordinate, method)."""
    try:
        assert_backward(forward, backward, *inputs, dout=dout, names=names, exposure=exposure,
                        **FLOW_CHECK)
    except BackwardMismatch as failure:
        return [(p["name"], p.get("index"), p.get("method")) for p in failure.problems]
    return []


def resolved_largest(forward, backward, inputs, dout):
    """(which, index) of the largest |gradient| among coordinates whose complex-step slack
    64 eps S + 1e-13 max|g| is below 1e-6 |g|; None if there is none. S = sum_k |d out_k / dx_j
    dout_k|, with d out / dx by vae_np.testing.complex_step (not by assert_backward)."""
    xs = [np.array(v, dtype=np.float64) for v in inputs]
    grads = [np.asarray(g) for g in backward(dout, forward(*xs)[1])]
    best, best_g = None, 0.0
    for i, (x, g) in enumerate(zip(xs, grads)):
        jac = complex_step(lambda v, i=i: forward(*xs[:i], v, *xs[i + 1:])[0], x)
        S = np.sum(np.abs(jac * dout.reshape(dout.shape + (1,) * x.ndim)),
                   axis=tuple(range(dout.ndim)))
        for j in range(x.size):
            slack = 64 * EPS * S.flat[j] + 1e-13 * max(1.0, float(np.max(np.abs(g))))
            if abs(g.flat[j]) > max(best_g, 1e6 * slack):
                best, best_g = (i, j), abs(g.flat[j])
    return best


def draw_case(data, kind):
    """(forward, backward, inputs, dout, names, exposure) like tests/flows/test_flow_ops.py's
    draws."""
    N, D = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    dout = draw_dout(data, N, D)
    if kind == "planar":
        z = data.draw(arrays((N, D)))
        u, w = data.draw(arrays((N, D), elements=RAW)), data.draw(arrays((N, D), elements=RAW))
        b = data.draw(arrays((N,), elements=RAW))
        assume(np.all(np.sum(w * w, 1) >= 1e-2))
        u_hat, _ = flows.planar_u_hat_forward(u, w)
        assume(np.all(planar_det_ref(z, u_hat, w, b) >= 1e-3))
        return (*stacked(flows.planar_forward, flows.planar_backward), (z, u_hat, w, b), dout,
                ["z", "u_hat", "w", "b"], planar_exposure)
    if kind == "radial":
        z, z_ref = data.draw(arrays((N, D))), data.draw(arrays((N, D)))
        alpha = data.draw(arrays((N,), 0.05, 5))
        beta = -alpha + data.draw(arrays((N,), 1e-3, 10))
        assume(np.all(np.linalg.norm(z - z_ref, axis=1) >= 1e-2))
        return (*stacked(flows.radial_forward, flows.radial_backward), (z, z_ref, alpha, beta),
                dout, ["z", "z_ref", "alpha", "beta"], None)
    chain_kind = kind.split()[1]
    z0 = data.draw(arrays((N, D)))
    P = flow_chain.raw_size(chain_kind, D)
    raws = [data.draw(arrays((N, P), elements=RAW)) for _ in range(data.draw(st.integers(1, 2)))]
    assume(well_conditioned(chain_kind, z0, raws))
    return (*chain_pair(chain_kind), (z0, *raws), dout,
            ["z0"] + [f"raws[{l}]" for l in range(len(raws))],
            lambda *a: chain_exposure(chain_kind, *a))


@given(data=st.data(),
       kind=st.sampled_from(["planar", "radial", "chain planar", "chain radial"]))
def test_one_coordinate_off_by_1e_4_fails_the_check(data, kind):
    forward, backward, inputs, dout, names, exposure = draw_case(data, kind)
    where = resolved_largest(forward, backward, inputs, dout)
    assume(where is not None)
    assert check(forward, backward, inputs, dout, names, exposure) == []
    which, j = where
    problems = check(forward, off_by(backward, which, j, 1 + 1e-4), inputs, dout, names, exposure)
    assert [p[:2] for p in problems] == [
        (names[which], tuple(int(k) for k in np.unravel_index(j, np.shape(inputs[which]))))]


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_an_error_below_the_central_tolerance_fails_through_the_complex_step(kind):
    rng = np.random.default_rng(7)
    z = rng.standard_normal((3, 2))
    if kind == "planar":
        u, w = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
        inputs = (z, flows.planar_u_hat_forward(u, w)[0], w, rng.standard_normal(3))
        pair = stacked(flows.planar_forward, flows.planar_backward)
    else:
        inputs = (z, rng.standard_normal((3, 2)), np.full(3, 0.5), np.full(3, 0.3))
        pair = stacked(flows.radial_forward, flows.radial_backward)
    dout = rng.standard_normal((3, 3))
    names = ["x0", "x1", "x2", "x3"]
    assert check(*pair, inputs, dout, names) == []
    assert check(pair[0], off_by(pair[1], 0, 0, 1 + 1e-8), inputs, dout, names) == [
        ("x0", (0, 0), "the complex step")]


def fixed_case(kind, rng):
    """A well-conditioned draw (standard normal values, N = 2, D = 2) for every kind."""
    z, dout = rng.standard_normal((2, 2)), rng.standard_normal((2, 3))
    if kind == "planar":
        u, w = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
        return (*stacked(flows.planar_forward, flows.planar_backward),
                (z, flows.planar_u_hat_forward(u, w)[0], w, rng.standard_normal(2)), dout,
                planar_exposure)
    if kind == "radial":
        return (*stacked(flows.radial_forward, flows.radial_backward),
                (z, rng.standard_normal((2, 2)), np.full(2, 0.5), np.full(2, 0.3)), dout, None)
    chain_kind = kind.split()[1]
    raws = [rng.standard_normal((2, flow_chain.raw_size(chain_kind, 2))) for _ in range(2)]
    return (*chain_pair(chain_kind), (z, *raws), dout, lambda *a: chain_exposure(chain_kind, *a))


@pytest.mark.parametrize("kind", ["planar", "radial", "chain planar", "chain radial"])
def test_an_error_of_1e_5_fails_the_central_difference_half(kind):
    """On well-conditioned input the measured noise is far below 1e-6 |g|, so the central half
    alone must fail a 1e-5 relative error in the largest coordinate of every input (it runs first
    for each input; an inflated tolerance or noise term passes it on to the complex step)."""
    forward, backward, inputs, dout, exposure = fixed_case(kind, np.random.default_rng(11))
    names = [f"x{i}" for i in range(len(inputs))]
    assert check(forward, backward, inputs, dout, names, exposure) == []
    grads = backward(dout, forward(*inputs)[1])
    for i, g in enumerate(grads):
        j = int(np.argmax(np.abs(g)))
        problems = check(forward, off_by(backward, i, j, 1 + 1e-5), inputs, dout, names,
                         exposure)
        assert [(p[0], p[2]) for p in problems] == [(f"x{i}", "central differences")]
