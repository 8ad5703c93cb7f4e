"""Every forward/backward pair of vae_np.ops against central differences and complex step.

Each gradient is checked by ``vae_np.testing.assert_backward`` (the same assertion users import):
for the scalar L = sum(out * G) with a hypothesis-drawn G, backward(G, cache) must equal dL/d(input)
by central differences (|a - n| <= 1e-6 (|a| + |n|) + the quotient's own measured error bound)
and, for the complex-analytic ops, by the complex step (exact to rounding). assert_backward also
fails when forward or backward modifies an input or G in place. Each forward is compared with an
independent formula.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import (arrays, assert_unchanged, away_from_zero, dense_shapes, floats,
                        matrix_shapes, sample_counts, snapshot)
from vae_np import ops
from vae_np.testing import assert_backward

LN_2PI = np.log(2 * np.pi)


def check(forward, backward, inputs, G, complex_step=True, constants=(), **kwargs):
    """forward's output for ``inputs`` (a dict, in forward's order) after assert_backward passed;
    also asserts that nothing the caller passed was mutated. ``constants``: the inputs (data,
    noise) that get no gradient."""
    before = snapshot(*inputs.values(), G)
    assert_backward(forward, backward, *inputs.values(), dout=G, kwargs=kwargs,
                    names=list(inputs), constants=constants, complex_step=complex_step)
    out, _ = forward(*inputs.values(), **kwargs)
    assert_unchanged(before, *inputs.values(), G)
    return out


# --------------------------------------------------------------------------- dense
@given(data=st.data())
def test_dense(data):
    B, n_in, n_out = data.draw(dense_shapes())
    inputs = dict(x=data.draw(arrays((B, n_in))), W=data.draw(arrays((n_in, n_out))),
                  b=data.draw(arrays((n_out,))))
    G = data.draw(arrays((B, n_out), -2, 2))
    out = check(ops.dense_forward, ops.dense_backward, inputs, G)
    np.testing.assert_allclose(out, inputs["x"] @ inputs["W"] + inputs["b"], rtol=1e-14, atol=1e-14)


@given(data=st.data())
def test_dense_backward_writes_into_given_arrays(data):
    B, n_in, n_out = data.draw(dense_shapes())
    x, W = data.draw(arrays((B, n_in))), data.draw(arrays((n_in, n_out)))
    b = data.draw(arrays((n_out,)))
    G = data.draw(arrays((B, n_out), -2, 2))
    _, cache = ops.dense_forward(x, W, b)
    dx, dW, db = ops.dense_backward(G, cache)
    out_dW, out_db = np.full_like(W, np.nan), np.full_like(b, np.nan)
    dx2, dW2, db2 = ops.dense_backward(G, cache, out_dW=out_dW, out_db=out_db, need_dx=False)
    assert dx2 is None
    assert dW2 is out_dW and db2 is out_db
    np.testing.assert_array_equal(out_dW, dW)
    np.testing.assert_array_equal(out_db, db)


def test_dense_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="dense_forward"):
        ops.dense_forward(np.zeros((2, 3)), np.zeros((4, 2)), np.zeros(2))


# --------------------------------------------------------------------------- activations
# Values for each activation: ReLU-type ones away from the kink at 0 (no 1e-6 step crosses it).
ACTIVATION_VALUES = {
    "relu": away_from_zero(), "leaky_relu": away_from_zero(),
    "tanh": floats(-4, 4), "sigmoid": floats(-4, 4), "softplus": floats(-4, 4),
    "identity": floats(-5, 5),
}
# Independent forward formulas (moderate x).
ACTIVATION_REFERENCE = {
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "identity": lambda x: x,
}
ANALYTIC_ACTIVATIONS = ("tanh", "sigmoid", "softplus", "identity")


def test_activation_table_is_covered():
    assert set(ACTIVATION_VALUES) == set(ops.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ops.ACTIVATIONS))
@given(data=st.data())
def test_activation(name, data):
    forward, backward = ops.ACTIVATIONS[name]
    shape = data.draw(matrix_shapes())
    inputs = dict(x=data.draw(arrays(shape, elements=ACTIVATION_VALUES[name])))
    G = data.draw(arrays(shape, -2, 2))
    out = check(forward, backward, inputs, G, complex_step=name in ANALYTIC_ACTIVATIONS)
    np.testing.assert_allclose(out, ACTIVATION_REFERENCE[name](inputs["x"]), rtol=1e-13, atol=1e-15)


def test_relu_type_derivatives_at_and_near_zero():
    x = np.array([[-1e-300, 0.0, 1e-300, -2.0, 2.0]])
    np.testing.assert_array_equal(ops.relu_backward(np.ones_like(x), x), [[0, 0, 1, 0, 1]])
    np.testing.assert_array_equal(ops.leaky_relu_backward(np.ones_like(x), x),
                                  [[0.01, 0.01, 1, 0.01, 1]])


def test_sigmoid_and_softplus_are_finite_for_huge_inputs():
    x = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    s = ops.sigmoid(x)
    assert np.all(np.isfinite(s)) and s[0] == 0 and s[-1] == 1 and s[3] == 0.5
    sp = ops.softplus(x)
    assert np.all(np.isfinite(sp)) and sp[0] == 0 and sp[-1] == 1e4
    np.testing.assert_allclose(sp[2], np.exp(-40.0), rtol=1e-14)    # ln(1 + e^-40) ~ e^-40
    np.testing.assert_allclose(sp[4], 40.0, rtol=1e-15)


# --------------------------------------------------------------------------- sigma of q(z|x)
@given(data=st.data())
def test_sigma_logvar(data):
    shape = data.draw(matrix_shapes())
    inputs = dict(s=data.draw(arrays(shape, -4, 4)))
    G = data.draw(arrays(shape, -2, 2))
    out = check(ops.sigma_logvar_forward, ops.sigma_logvar_backward, inputs, G)
    np.testing.assert_allclose(out ** 2, np.exp(inputs["s"]), rtol=1e-14)    # s = ln sigma^2


@given(data=st.data(), sigma_min=st.one_of(st.just(1e-4), floats(1e-8, 1.0)))
def test_sigma_softplus(data, sigma_min):
    shape = data.draw(matrix_shapes())
    inputs = dict(s=data.draw(arrays(shape, -4, 4)))
    G = data.draw(arrays(shape, -2, 2))
    out = check(ops.sigma_softplus_forward, ops.sigma_softplus_backward, inputs, G,
                sigma_min=sigma_min)
    np.testing.assert_allclose(out, np.log1p(np.exp(inputs["s"])) + sigma_min, rtol=1e-14)
    assert np.all(out > sigma_min)


# --------------------------------------------------------------------------- reparameterization
@pytest.mark.parametrize("sampled", [False, True], ids=["eps(B,Z)", "eps(K,B,Z)"])
@given(data=st.data())
def test_reparameterize(sampled, data):
    B, Z = data.draw(matrix_shapes())
    eps_shape = (data.draw(sample_counts), B, Z) if sampled else (B, Z)
    inputs = dict(mu=data.draw(arrays((B, Z))), sigma=data.draw(arrays((B, Z), 0.05, 3)),
                  eps=data.draw(arrays(eps_shape)))
    G = data.draw(arrays(eps_shape, -2, 2))
    out = check(ops.reparameterize_forward, ops.reparameterize_backward, inputs, G,
                constants=["eps"])
    np.testing.assert_allclose(out, inputs["mu"] + inputs["sigma"] * inputs["eps"],
                               rtol=1e-15, atol=1e-15)


def test_reparameterize_rejects_mismatched_eps():
    with pytest.raises(ValueError, match="eps"):
        ops.reparameterize_forward(np.zeros((2, 3)), np.ones((2, 3)), np.zeros((3, 2)))


# --------------------------------------------------------------------------- KL
@given(data=st.data())
def test_kl(data):
    B, Z = data.draw(matrix_shapes())
    inputs = dict(mu=data.draw(arrays((B, Z))), sigma=data.draw(arrays((B, Z), 0.1, 3)))
    G = data.draw(arrays((B,), -2, 2))
    out = check(ops.kl_forward, ops.kl_backward, inputs, G)
    assert out.shape == (B,)
    # reference: per dimension KL = ln(1/sigma) + (sigma^2 + mu^2) / 2 - 1/2, written the way
    # the Gaussian-to-Gaussian KL is usually tabulated (not the library's grouping)
    mu, sigma = inputs["mu"], inputs["sigma"]
    expected = np.sum(np.log(1 / sigma) + (sigma ** 2 + mu ** 2) / 2 - 0.5, axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12 * mu.shape[1])


def test_kl_known_values():
    """KL(N(1, 1) || N(0, 1)) = 1/2 and KL(N(0, e^2) || N(0, 1)) = (e^2 - 3) / 2, per dimension:
    a KL forward scaled by any factor (a beta = 2 model) fails here."""
    kl, _ = ops.kl_forward(np.array([[1.0, 0.0]]), np.array([[1.0, np.e]]))
    np.testing.assert_allclose(kl, [0.5 + (np.e ** 2 - 3) / 2], rtol=1e-14)


# --------------------------------------------------------------------------- likelihoods
@pytest.mark.parametrize("sampled", [False, True], ids=["(B,D)", "(K,B,D)"])
@given(data=st.data())
def test_bernoulli_nll(sampled, data):
    B, D = data.draw(matrix_shapes())
    shape = (data.draw(sample_counts), B, D) if sampled else (B, D)
    inputs = dict(logits=data.draw(arrays(shape, -8, 8)), x=data.draw(arrays((B, D), 0, 1)))
    G = data.draw(arrays(shape[:-1], -2, 2))
    out = check(ops.bernoulli_nll_forward, ops.bernoulli_nll_backward, inputs, G,
                constants=["x"])
    assert out.shape == shape[:-1]


@given(logits=arrays(matrix_shapes(), -10, 10), data=st.data())
def test_bernoulli_nll_equals_cross_entropy_of_probabilities(logits, data):
    """For moderate logits, -[x ln p + (1 - x) ln(1 - p)] with p = 1/(1 + e^-l), computed
    naively, is accurate: 1 - p >= 4.5e-5 loses at most ~3e-12 relatively, hence rtol 1e-9."""
    x = data.draw(arrays(logits.shape, 0, 1))          # grey levels, not only 0/1
    p = 1 / (1 + np.exp(-logits))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)
    nll, _ = ops.bernoulli_nll_forward(logits, x)
    np.testing.assert_allclose(nll, expected, rtol=1e-9, atol=1e-9 * logits.shape[-1])


@given(logits=arrays(matrix_shapes(), -1e4, 1e4), data=st.data())
def test_bernoulli_nll_stable_for_extreme_logits(logits, data):
    """Logits up to +-1e4 give finite values with the right limits, no log(0)."""
    x = data.draw(arrays(logits.shape, 0, 1))
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    dlogits = ops.bernoulli_nll_backward(np.ones(nll.shape), cache)
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(dlogits))
    # Independent stable form: l > 0: (1 - x) l + ln(1 + e^-l);  l <= 0: -x l + ln(1 + e^l).
    pos = logits > 0
    per_pixel = np.where(pos, (1 - x) * logits, -x * logits) + np.log1p(np.exp(-np.abs(logits)))
    np.testing.assert_allclose(nll, per_pixel.sum(-1), rtol=1e-12, atol=1e-12)
    # d/dl = sigmoid(l) - x, whose limits are 1 - x and -x.
    big = np.abs(logits) > 40
    np.testing.assert_allclose(dlogits[big], np.where(pos, 1 - x, -x)[big], rtol=0, atol=1e-17)


def test_bernoulli_nll_limits_exactly():
    logits = np.array([[1e4, -1e4, 1e4, -1e4]])
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    per_pixel = [ops.bernoulli_nll_forward(logits[:, i:i + 1], x[:, i:i + 1])[0][0]
                 for i in range(4)]
    assert per_pixel == [0.0, 0.0, 1e4, 1e4]
    d = ops.bernoulli_nll_backward(np.ones(1), ops.bernoulli_nll_forward(logits, x)[1])
    np.testing.assert_array_equal(d, [[0.0, 0.0, 1.0, -1.0]])


@pytest.mark.parametrize("block", [1, 7, 24, 1 << 16])
@pytest.mark.parametrize("shape", [(5, 3, 4), (2, 2, 3, 4), (3, 4), (1, 3, 4), (0, 3, 4)])
def test_bernoulli_blocks_cover_every_sample_once(monkeypatch, block, shape):
    """The Bernoulli ops work through the samples in cache-sized blocks (ops.likelihoods.
    BLOCK_ELEMENTS numbers). Shrunk here to 1, 7 and 24 numbers, so that (B, D) = (3, 4) blocks
    hold one or two samples and the last block is partial, every sample must still get its own
    value with x lined up, against the stable formula written out here."""
    from vae_np.ops import likelihoods
    monkeypatch.setattr(likelihoods, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(shape) * 30
    x = rng.random(shape[-2:])                                  # grey levels
    dnll = rng.standard_normal(shape[:-1])
    nll, cache = ops.bernoulli_nll_forward(logits, x)
    per_pixel = (np.where(logits > 0, (1 - x) * logits, -x * logits)
                 + np.log1p(np.exp(-np.abs(logits))))
    np.testing.assert_allclose(nll, per_pixel.sum(-1), rtol=1e-13, atol=1e-13)
    with np.errstate(over="ignore"):
        expected = dnll[..., None] * (1 / (1 + np.exp(-logits)) - x)
    np.testing.assert_allclose(ops.bernoulli_nll_backward(dnll, cache), expected,
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_block_size_changes_no_bit(monkeypatch, dtype):
    """Elementwise work split into blocks is the same arithmetic: an IWAE-sized (K, B, D) =
    (50, 20, 784) array gives bit for bit the values of one block holding everything."""
    from vae_np.ops import likelihoods
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((50, 20, 784)) * 10).astype(dtype)
    x = (rng.random((20, 784)) < 0.3).astype(dtype)
    dnll = rng.random((50, 20)).astype(dtype)
    blocked = ops.bernoulli_nll_forward(logits, x)
    d_blocked = ops.bernoulli_nll_backward(dnll, blocked[1])
    monkeypatch.setattr(likelihoods, "BLOCK_ELEMENTS", logits.size)
    whole = ops.bernoulli_nll_forward(logits, x)
    assert blocked[0].dtype == dtype and np.array_equal(blocked[0], whole[0])
    assert np.array_equal(d_blocked, ops.bernoulli_nll_backward(dnll, whole[1]))


@pytest.mark.parametrize("sampled", [False, True], ids=["(B,D)", "(K,B,D)"])
@given(data=st.data(), sigma=floats(0.2, 3))
def test_gaussian_nll(sampled, data, sigma):
    B, D = data.draw(matrix_shapes())
    shape = (data.draw(sample_counts), B, D) if sampled else (B, D)
    inputs = dict(mean=data.draw(arrays(shape)), x=data.draw(arrays((B, D))))
    G = data.draw(arrays(shape[:-1], -2, 2))
    out = check(ops.gaussian_nll_forward, ops.gaussian_nll_backward, inputs, G, sigma=sigma,
                constants=["x"])
    r = inputs["x"] - inputs["mean"]
    expected = np.sum(0.5 * r ** 2 / sigma ** 2 + np.log(sigma) + 0.5 * LN_2PI, axis=-1)
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("sampled", [False, True], ids=["(B,D)", "(K,B,D)"])
@given(data=st.data(), sigma_min=st.one_of(st.just(0.0), floats(1e-4, 1.0)))
def test_gaussian_learned_nll(sampled, data, sigma_min):
    B, D = data.draw(matrix_shapes())
    shape = (data.draw(sample_counts), B, D) if sampled else (B, D)
    inputs = dict(mean=data.draw(arrays(shape)), r=data.draw(arrays(shape, -2, 2)),
                  x=data.draw(arrays((B, D))))
    G = data.draw(arrays(shape[:-1], -2, 2))
    # ln(sigma_min + e^r) is written with logaddexp, which is real-only: complex step at 0 only
    out = check(ops.gaussian_learned_nll_forward, ops.gaussian_learned_nll_backward, inputs, G,
                complex_step=sigma_min == 0, sigma_min=sigma_min, constants=["x"])
    sig = sigma_min + np.exp(inputs["r"])
    resid = inputs["x"] - inputs["mean"]
    per_pixel = 0.5 * resid ** 2 / sig ** 2 + np.log(sig) + 0.5 * LN_2PI
    np.testing.assert_allclose(out, per_pixel.sum(-1), rtol=1e-12, atol=1e-12)


def test_gaussian_learned_sigma_min_bounds_the_likelihood():
    """sigma = sigma_min + e^r: a reproduced pixel with r -> -inf gives a bounded -ln p."""
    x = np.zeros((1, 1))
    nll, _ = ops.gaussian_learned_nll_forward(x, np.full((1, 1), -700.0), x, sigma_min=0.1)
    np.testing.assert_allclose(nll, np.log(0.1) + 0.5 * LN_2PI, rtol=1e-12)


# --------------------------------------------------------------------------- in-place fast paths
@pytest.mark.parametrize("shape", [(), (3,), (2, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_in_place_paths_equal_the_formulas_for_every_shape_and_dtype(shape, dtype):
    """sigmoid and tanh_backward compute in one work array for real float arrays of rank >= 1;
    0-d arrays (NumPy returns scalars there), complex input and a wider dy take the plain formula.
    Every case must give the formula's value bit for bit and leave the inputs untouched."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 30).astype(dtype)
    y = np.tanh(x)
    dy = rng.standard_normal(shape).astype(np.float64)      # wider than float32: no in-place
    x0, y0, dy0 = x.copy(), y.copy(), dy.copy()
    with np.errstate(over="ignore"):
        expected_sigmoid = 1 / (1 + np.exp(-x))
    assert np.array_equal(ops.sigmoid(x), expected_sigmoid)
    assert np.array_equal(ops.tanh_backward(dy, y), dy * (1 - y * y))
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(dy, dy0)
