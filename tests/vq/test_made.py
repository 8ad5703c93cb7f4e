"""The MADE prior (vae_np.vq.made) and its two ops (vae_np.ops.masked).

* every parameter's gradient against central differences in float64 (M, K, widths drawn);
* the autoregressive property by perturbation: changing code m' never changes the logits of any
  position m <= m' (the masks are not read);
* normalisation: for tiny M, K the prior's mass over all K^M code vectors is 1;
* ancestral sampling: frequencies of drawn code vectors against exp(log_prob), chi-square;
* bad input: a ValueError naming the argument.

The last section plants each bug these checks exist for (a mask that lets position m see itself,
an unmasked weight gradient, d logits without its onehot, a sampler that draws every position from
one pass) and asserts that the check fails.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from strategies import arrays, assert_fd_close, central_difference
from vae_np import ops
from vae_np.vq.made import MADEPrior, made_masks
from vae_np.testing import assert_backward


# --------------------------------------------------------------------------- helpers (measures)
def all_codes(M, K):
    """Every code vector of M positions with K values, (K^M, M), in lexicographic order."""
    return np.array(list(itertools.product(range(K), repeat=M)), dtype=np.int64)


def random_codes(prior, n, seed):
    return np.random.default_rng(seed).integers(0, prior.codebook_size, (n, prior.n_latents))


def gradient_gap(prior, codes):
    """Assert the analytic gradient of the mean -ln prior equals central differences."""
    loss, grads = prior.loss_and_grads(codes)
    analytic = prior.grad_flat.copy()

    def f(v):
        saved = prior.flat.copy()
        prior.flat[:] = v
        try:
            return prior.loss_and_grads(codes)[0]
        finally:
            prior.flat[:] = saved

    numeric = central_difference(f, prior.flat.copy(), h_rel=1e-6)[0]
    # the loss sums, per example, M logsumexps and M picked logits: their size bounds rounding
    f_terms = abs(loss) + float(np.mean(np.sum(np.abs(prior.logits(codes)), axis=(1, 2))))
    assert_fd_close(analytic, numeric, f_terms, "MADE parameters")
    assert set(grads) == set(prior.params)


def autoregressive_violations(prior, codes):
    """(violations, later_changes): perturb each position m' of each code vector to every other
    value and count positions m <= m' whose logits changed (must be 0), and positions m > m' whose
    logits changed (must be > 0 for M > 1, or the check could not see a dependence at all)."""
    base = prior.logits(codes)
    violations, later = [], 0
    for m2 in range(prior.n_latents):
        for value in range(prior.codebook_size):
            moved = codes.copy()
            moved[:, m2] = value
            logits = prior.logits(moved)
            changed = np.any(logits != base, axis=2)                   # (B, M)
            violations += [(m2, m) for m in range(m2 + 1) if changed[:, m].any()]
            later += int(changed[:, m2 + 1:].sum())
    return violations, later


def total_log_mass(prior):
    """ln of the sum over all K^M code vectors of prior(c); 0 for a normalised prior."""
    return float(np.logaddexp.reduce(prior.log_prob(all_codes(prior.n_latents,
                                                              prior.codebook_size))))


def chi_square(prior, samples):
    """(statistic, dof) of the drawn code vectors' counts against n exp(log_prob)."""
    M, K = prior.n_latents, prior.codebook_size
    index = samples @ (K ** np.arange(M - 1, -1, -1))                # lexicographic index
    observed = np.bincount(index, minlength=K ** M)
    expected = len(samples) * np.exp(prior.log_prob(all_codes(M, K)))
    return float(np.sum((observed - expected) ** 2 / expected)), K ** M - 1


def peaked_prior(M=2, K=3, seed=3):
    """A tiny prior with weights scaled up, so that the conditionals differ strongly."""
    prior = MADEPrior(M, K, hidden=(6,), activation="tanh", seed=seed)
    prior.flat *= 4.0
    return prior


@st.composite
def priors(draw, max_M=4, max_K=4):
    M = draw(st.integers(1, max_M))
    K = draw(st.integers(2, max_K))
    hidden = tuple(draw(st.lists(st.integers(1, 6), max_size=2)))
    activation = draw(st.sampled_from(["tanh", "relu", "softplus"]))
    return MADEPrior(M, K, hidden=hidden, activation=activation, seed=draw(st.integers(0, 999)))


# --------------------------------------------------------------------------- ops
@given(data=st.data())
def test_masked_dense_backward(data):
    B, n_in, n_out = (data.draw(st.integers(1, 4)) for _ in range(3))
    mask = data.draw(arrays((n_in, n_out), elements=st.sampled_from([0.0, 1.0])))
    x, W, b = data.draw(arrays((B, n_in))), data.draw(arrays((n_in, n_out))), data.draw(
        arrays((n_out,)))
    G = data.draw(arrays((B, n_out), -2, 2))
    assert_backward(ops.masked_dense_forward, ops.masked_dense_backward, x, W, b, dout=G,
                    kwargs=dict(mask=mask), names=["x", "W", "b"])
    y, cache = ops.masked_dense_forward(x, W, b, mask)
    np.testing.assert_allclose(y, np.einsum("bi,ij->bj", x, np.where(mask > 0, W, 0.0)) + b,
                               rtol=1e-12, atol=1e-12)
    _, dW, _ = ops.masked_dense_backward(G, cache)
    assert np.all(dW[mask == 0] == 0)                    # a cut weight gets exactly no gradient


@given(data=st.data())
def test_categorical_nll_backward(data):
    B, M, K = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(
        st.integers(2, 4))
    logits = data.draw(arrays((B, M, K), -5, 5))
    codes = data.draw(arrays((B, M), elements=st.integers(0, K - 1), dtype=np.int64))
    G = data.draw(arrays((B,), -2, 2))
    assert_backward(ops.categorical_nll_forward, ops.categorical_nll_backward, logits, dout=G,
                    kwargs=dict(codes=codes), names=["logits"])
    nll, _ = ops.categorical_nll_forward(logits, codes)
    p = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)      # direct softmax
    picked = np.take_along_axis(p, codes[..., None], axis=2)[..., 0]
    np.testing.assert_allclose(nll, -np.log(picked).sum(axis=1), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the prior
@given(prior=priors(), seed=st.integers(0, 999), B=st.integers(1, 5))
def test_gradient_of_every_parameter(prior, seed, B):
    gradient_gap(prior, random_codes(prior, B, seed))


@given(prior=priors(max_M=5), seed=st.integers(0, 999))
def test_autoregressive_by_perturbation(prior, seed):
    violations, later = autoregressive_violations(prior, random_codes(prior, 3, seed))
    assert violations == []
    if prior.n_latents > 1 and prior.activation != "relu":     # (a relu unit may be dead)
        assert later > 0            # the perturbation does reach later positions


def test_first_position_reads_biases_only():
    prior = MADEPrior(3, 4, hidden=(8,), seed=2)
    logits = prior.logits(all_codes(3, 4))
    np.testing.assert_array_equal(logits[:, 0], np.broadcast_to(prior.params["out.b"][:4],
                                                                (64, 4)))


@given(prior=priors(max_M=3, max_K=3))
def test_prior_normalises(prior):
    assert abs(total_log_mass(prior)) < 1e-12


def test_sampling_frequencies_match_log_prob():
    prior = peaked_prior()
    samples = prior.sample(30000, np.random.default_rng(0))
    statistic, dof = chi_square(prior, samples)
    assert statistic < stats.chi2.ppf(1 - 1e-6, dof), (statistic, dof)
    assert samples.dtype == np.int64 and samples.shape == (30000, 2)


def test_sampling_is_reproducible_and_config_rebuilds():
    prior = MADEPrior(3, 5, hidden=(7, 4), seed=4)
    a, b = (prior.sample(50, np.random.default_rng(9)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    again = MADEPrior(**prior.config())
    np.testing.assert_array_equal(again.flat, prior.flat)


def test_float32_prior_runs():
    prior = MADEPrior(3, 4, hidden=(5,), seed=1, dtype=np.float32)
    loss, grads = prior.loss_and_grads(random_codes(prior, 6, 0))
    assert np.isfinite(loss) and prior.grad_flat.dtype == np.float32


@pytest.mark.parametrize("codes, word", [
    (np.array([[0, 4, 1]]), "codes"), (np.array([[0, -1, 1]]), "codes"),
    (np.array([0, 1, 2]), "codes"), (np.array([[0, 1]]), "codes"),
    (np.array([[0.0, 1.0, 2.0]]), "codes"), (np.array([[0, 1, np.nan]]), "codes"),
    (np.zeros((0, 3), dtype=int), "codes")])
def test_bad_codes(codes, word):
    prior = MADEPrior(3, 4, hidden=(5,))
    for method in (prior.log_prob, prior.loss_and_grads, prior.logits):
        with pytest.raises(ValueError, match=word):
            method(codes)


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_latents=0, codebook_size=4), "n_latents"), (dict(n_latents=2, codebook_size=1),
                                                        "codebook_size"),
    (dict(n_latents=2, codebook_size=3, hidden=(4, 0)), r"hidden\[1\]"),
    (dict(n_latents=2, codebook_size=3, hidden="wide"), "hidden"),
    (dict(n_latents=2, codebook_size=3, activation="cube"), "activation"),
    (dict(n_latents=2, codebook_size=3, dtype=np.int32), "dtype"),
    (dict(n_latents=2.5, codebook_size=3), "n_latents")])
def test_bad_constructor_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        MADEPrior(**kwargs)


def test_bad_sample_arguments():
    prior = MADEPrior(2, 3, hidden=(4,))
    with pytest.raises(ValueError, match="n must"):
        prior.sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        prior.sample(5, 0)


# --------------------------------------------------------------------------- planted bugs
def test_self_seeing_mask_fails_autoregressive_and_normalisation():
    """Output mask deg_out >= deg_in (position m reads itself): both checks must fail."""
    prior = MADEPrior(3, 3, hidden=(6,), activation="tanh", seed=5)
    prior.flat *= 3.0
    deg_hidden = 1 + np.arange(6) % 2
    deg_out = np.repeat(np.arange(1, 4), 3)
    prior.masks[-1] = (deg_out[None, :] >= deg_hidden[:, None]).astype(np.float64)
    violations, _ = autoregressive_violations(prior, random_codes(prior, 3, 0))
    assert violations and all(m == m2 for m2, m in violations)      # m sees itself, no earlier
    assert abs(total_log_mass(prior)) > 1e-3


def test_unmasked_input_layer_fails_autoregressive():
    """A first hidden layer that reads every position: later positions leak into earlier ones."""
    prior = MADEPrior(3, 3, hidden=(6,), seed=1)
    prior.masks[0] = np.ones_like(prior.masks[0])
    assert autoregressive_violations(prior, random_codes(prior, 3, 0))[0]
    assert abs(total_log_mass(prior)) > 1e-3


def test_masks_match_the_degree_rule():
    """The same rule written elementwise (a second route to the masks used above)."""
    masks = made_masks(3, 2, (4,))
    deg_in, deg_h, deg_out = [1, 1, 2, 2, 3, 3], [1, 2, 1, 2], [1, 1, 2, 2, 3, 3]
    for i, j in itertools.product(range(6), range(4)):
        assert masks[0][i, j] == (deg_h[j] >= deg_in[i])
    for i, j in itertools.product(range(4), range(6)):
        assert masks[1][i, j] == (deg_out[j] > deg_h[i])


def test_unmasked_weight_gradient_fails(monkeypatch):
    """dW = x^T dy without the mask: the cut weights get a gradient the loss does not have."""
    right = ops.masked_dense_backward

    def unmasked(dy, cache, out_dW=None, out_db=None, need_dx=True):
        dx, dW, db = right(dy, cache, out_dW, out_db, need_dx)
        np.matmul(cache[0].T, dy, out=dW)
        return dx, dW, db

    monkeypatch.setattr(ops, "masked_dense_backward", unmasked)
    prior = MADEPrior(3, 3, hidden=(5,), activation="tanh", seed=0)
    with pytest.raises(AssertionError, match="differ"):
        gradient_gap(prior, random_codes(prior, 4, 0))


@pytest.mark.parametrize("bug", ["no onehot", "sign"])
def test_wrong_dlogits_fails(monkeypatch, bug):
    def wrong(dnll, cache):
        probs, onehot = cache
        d = probs if bug == "no onehot" else onehot - probs
        return dnll[:, None, None] * d

    monkeypatch.setattr(ops, "categorical_nll_backward", wrong)
    prior = MADEPrior(2, 3, hidden=(4,), activation="tanh", seed=0)
    with pytest.raises(AssertionError, match="differ"):
        gradient_gap(prior, random_codes(prior, 4, 0))


def test_one_pass_sampler_fails_chi_square():
    """Every position drawn from the logits of the all-zero context (not ancestral)."""
    prior = peaked_prior()
    rng = np.random.default_rng(0)
    logits = prior.logits(np.zeros((30000, 2), dtype=np.int64))
    p = np.exp(ops.log_softmax(logits))
    u = rng.random((30000, 2, 1))
    samples = np.minimum((np.cumsum(p, axis=2) <= u).sum(axis=2), 2)
    statistic, dof = chi_square(prior, samples)
    assert statistic > stats.chi2.ppf(1 - 1e-6, dof)


@pytest.mark.parametrize("hidden, message", [
    ("512", r"hidden must be a sequence of positive ints such as \(512,\), got '512'"),
    (3.5, r"hidden must be a sequence of positive ints"),
    ((8, 0), r"hidden\[1\] must be an integer >= 1, got 0")])
def test_made_refuses_widths_that_are_not_positive_ints(hidden, message):
    """The same check of layer widths as the VAE's hidden and hidden2 (a string is not a
    sequence of widths; each width is named by its place)."""
    with pytest.raises(ValueError, match=message):
        MADEPrior(n_latents=4, codebook_size=16, hidden=hidden)
