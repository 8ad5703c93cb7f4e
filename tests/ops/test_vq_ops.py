"""The VQ ops (vae_np.ops.vq): the nearest-code search against brute-force distances, ties, and
each gradient term against central differences of its definition with the stop-gradient held
fixed; scatter-adds onto shared codes and nothing onto unused ones.

Each reference here is written out in the test (a brute-force loop or plain NumPy), never taken
from the op under test. The planted bugs at the end are the public ones: a codebook gradient
given to the first chooser only, beta on the codebook term, the codebook term moving z_e.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import assert_complex_close, assert_fd_close, central_difference, complex_step
from vae_np import ops
from vae_np.ops import vq

EPS = np.finfo(np.float64).eps


def brute_distances(z, e):
    """|z_n - e_k|^2 by a loop over codes, the definition."""
    return np.stack([((z - e[k]) ** 2).sum(axis=1) for k in range(len(e))], axis=1)


@given(n=st.integers(1, 40), k=st.integers(1, 30), d=st.integers(1, 9),
       seed=st.integers(0, 2 ** 32 - 1), scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_nearest_code_is_the_brute_force_argmin(n, k, d, seed, scale):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d)) * scale
    e = rng.standard_normal((k, d)) * scale
    if k > 1:                             # a vector sitting on a code: the expansion cancels there
        z[0] = e[k - 1]
    codes = ops.nearest_code(z, e)
    exact = brute_distances(z, e)
    # the expansion |z|^2 - 2 z.e + |e|^2 rounds by a few eps of its terms
    slack = 8 * EPS * ((z ** 2).sum(1)[:, None] + (e ** 2).sum(1)[None, :] + exact).max(axis=1)
    chosen = exact[np.arange(n), codes]
    assert codes.dtype == np.int64 and codes.shape == (n,)
    assert np.all(chosen <= exact.min(axis=1) + slack)
    # where the nearest code is nearer than the rest by more than the rounding, it is the one
    order = np.sort(exact, axis=1)
    clear = order[:, 1] - order[:, 0] > 2 * slack if k > 1 else np.ones(n, bool)
    np.testing.assert_array_equal(codes[clear], exact.argmin(axis=1)[clear])
    np.testing.assert_allclose(vq.code_distances(z, e), exact, rtol=0, atol=slack.max())


def test_nearest_code_keeps_leading_shape():
    rng = np.random.default_rng(1)
    z, e = rng.standard_normal((4, 3, 2)), rng.standard_normal((5, 2))
    codes = ops.nearest_code(z, e)
    assert codes.shape == (4, 3)
    np.testing.assert_array_equal(codes.ravel(), brute_distances(z.reshape(-1, 2), e).argmin(1))


def test_ties_go_to_the_lowest_index():
    # z = 0 is at distance 1 from all three codes (exactly, in floating point too)
    e = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    assert ops.nearest_code(np.zeros((1, 2)), e)[0] == 0
    # halfway between two codes, in either order; duplicated codes
    assert ops.nearest_code(np.array([[2.0, 0.0]]), np.array([[3.0, 0.0], [1.0, 0.0]]))[0] == 0
    assert ops.nearest_code(np.array([[2.0, 0.0]]), np.array([[5.0, 5.0], [1.0, 0.0],
                                                               [3.0, 0.0]]))[0] == 1
    assert ops.nearest_code(np.ones((1, 2)), np.array([[2.0, 2.0], [1.0, 1.0],
                                                        [1.0, 1.0]]))[0] == 1


def test_a_tied_vector_pulls_only_the_code_it_chose():
    e = np.array([[3.0, 0.0], [1.0, 0.0]])
    z_e = np.array([[[2.0, 0.0]]])                          # tied: distance 1 to both
    codes = ops.nearest_code(z_e, e)
    _, cache = ops.vq_codebook_forward(z_e, e, codes)
    de = ops.vq_codebook_backward(np.ones(1), cache)
    np.testing.assert_array_equal(de, [[2.0, 0.0], [0.0, 0.0]])   # 2 (e_0 - z_e) on code 0 only


def codebook_case(seed=0, B=3, M=4, D=2, K=6):
    rng = np.random.default_rng(seed)
    z_e = rng.standard_normal((B, M, D))
    e = rng.standard_normal((K, D))
    codes = rng.integers(0, K - 2, size=(B, M))            # codes K-2, K-1 unused
    codes[0, :2] = 1                                       # several vectors on one code
    codes[1, 0] = 1
    dloss = rng.uniform(0.5, 2.0, size=B)
    return z_e, e, codes, dloss


def test_codebook_gradient_against_central_differences():
    z_e, e, codes, dloss = codebook_case()

    def f(e_):                                  # sum_b dloss_b sum_{m,d} (sg(z_e) - e_c)^2
        return float(sum(dloss[b] * sum(((z_e[b, m] - e_[codes[b, m]]) ** 2).sum()
                                        for m in range(z_e.shape[1]))
                         for b in range(len(dloss))))

    _, cache = ops.vq_codebook_forward(z_e, e, codes)
    de = ops.vq_codebook_backward(dloss, cache)
    assert_fd_close(de, central_difference(f, e, h_rel=1e-6)[0], f_terms=abs(f(e)),
                    what="dcodebook")


def test_codebook_scatter_sums_shared_codes_and_leaves_unused_ones():
    z_e, e, codes, dloss = codebook_case(seed=3)
    _, cache = ops.vq_codebook_forward(z_e, e, codes)
    de = ops.vq_codebook_backward(dloss, cache)
    expected = np.zeros_like(e)
    for b, m in np.ndindex(codes.shape):        # one chooser at a time
        expected[codes[b, m]] += 2 * dloss[b] * (e[codes[b, m]] - z_e[b, m])
    np.testing.assert_allclose(de, expected, rtol=1e-14, atol=1e-14)
    assert np.all(de[-2:] == 0)                 # unused codes: exactly zero
    assert np.count_nonzero(codes == 1) >= 3    # the shared code really is shared


def test_commitment_gradient_against_central_differences():
    z_e, e, codes, dloss = codebook_case(seed=5)
    beta = 0.37
    e_c = e[codes]

    def f(z):                                   # sum_b dloss_b beta sum (z_e - sg(e_c))^2
        return float(np.sum(dloss[:, None, None] * beta * (z - e_c) ** 2))

    loss, cache = ops.vq_commitment_forward(z_e, e_c, beta)
    np.testing.assert_allclose(loss, beta * ((z_e - e_c) ** 2).sum(axis=(1, 2)), rtol=1e-14)
    dz = ops.vq_commitment_backward(dloss, cache)
    assert_fd_close(dz, central_difference(f, z_e, h_rel=1e-6)[0], f_terms=abs(f(z_e)),
                    what="dz_e commitment")


def test_codebook_and_commitment_backward_against_complex_step():
    """Both terms are polynomials of their moving argument, so the complex step through the op's
    own forward agrees with the backward to rounding (the forwards are checked against their
    definitions above and below)."""
    z_e, e, codes, dloss = codebook_case(seed=7)
    loss, cache = ops.vq_codebook_forward(z_e, e, codes)
    np.testing.assert_allclose(loss, ((z_e - e[codes]) ** 2).sum(axis=(1, 2)), rtol=1e-14)
    assert_complex_close(ops.vq_codebook_backward(dloss, cache),
                         complex_step(lambda e_: np.sum(dloss * ops.vq_codebook_forward(
                             z_e, e_, codes)[0]), e), what="dcodebook")
    e_c = e[codes]
    _, cache = ops.vq_commitment_forward(z_e, e_c, 0.37)
    assert_complex_close(ops.vq_commitment_backward(dloss, cache),
                         complex_step(lambda z: np.sum(dloss * ops.vq_commitment_forward(
                             z, e_c, 0.37)[0]), z_e), what="dz_e commitment")


def test_straight_through_copies_dz_q():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((5, 3))
    codes = rng.integers(0, 5, size=(4, 2))
    z_q, cache = ops.vq_quantize_forward(e, codes)
    np.testing.assert_array_equal(z_q, e[codes])
    dz_q = rng.standard_normal(z_q.shape)
    dz_e = ops.vq_straight_through_backward(dz_q, cache)
    np.testing.assert_array_equal(dz_e, dz_q)
    assert dz_e is not dz_q


@pytest.mark.parametrize("call, message", [
    (lambda: ops.nearest_code(np.zeros((2, 3)), np.zeros((4, 2))), "codebook must have shape"),
    (lambda: ops.vq_quantize_forward(np.zeros((4, 2)), np.array([[4]])), r"codes must lie in"),
    (lambda: ops.vq_quantize_forward(np.zeros((4, 2)), np.array([[0.5]])), "integer code"),
    (lambda: ops.vq_codebook_forward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros((2, 3), int)),
     r"z_e must have shape \(B, M, D\)"),
    (lambda: ops.vq_commitment_forward(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), -1.0), "beta"),
    (lambda: ops.vq_codebook_backward(np.ones(3), ops.vq_codebook_forward(
        np.zeros((2, 3, 1)), np.zeros((4, 1)), np.zeros((2, 3), int))[1]), "dloss must have"),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- planted bugs
def first_chooser_only(dloss, cache):
    """The public bug: de[codes] = pull (fancy assignment keeps one chooser per code)."""
    z_e, e, codes = cache
    D = e.shape[1]
    pull = (2.0 * (e[codes] - z_e) * dloss[:, None, None]).reshape(-1, D)
    flat = codes.ravel()
    _, first = np.unique(flat, return_index=True)
    de = np.zeros_like(e)
    de[flat[first]] = pull[first]
    return de


def test_planted_first_chooser_only_fails_the_scatter_test(monkeypatch):
    monkeypatch.setattr(ops, "vq_codebook_backward", first_chooser_only)
    with pytest.raises(AssertionError):
        test_codebook_scatter_sums_shared_codes_and_leaves_unused_ones()
    with pytest.raises(AssertionError):
        test_codebook_gradient_against_central_differences()


def test_planted_beta_on_the_codebook_term_fails(monkeypatch):
    original = ops.vq_commitment_backward
    monkeypatch.setattr(ops, "vq_commitment_backward",
                        lambda dloss, cache: original(dloss, (cache[0], 1.0)))  # beta dropped
    with pytest.raises(AssertionError):
        test_commitment_gradient_against_central_differences()
