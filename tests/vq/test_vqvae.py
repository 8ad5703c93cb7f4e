"""The VQ-VAE's surrogate gradient, term by term, against central differences in float64.

The reference is the surrogate written out here in plain NumPy with its stop-gradients held at
their values at the base point (codes c, sg(z_e) = z0, sg(e_c) = e0):

    L(theta) = mean_b [ nll(dec(z_e + (e0 - z0))) + |z0 - e_c|^2 + beta |z_e - e0|^2 ]

Every evaluation asserts that the true nearest codes of the perturbed point are still c, so that
no difference straddles a change of assignment. The planted bugs at the end are the public ones:
beta on the codebook term, the stop-gradient on the wrong side, a codebook without gradient, and
a shared code's gradient given to its first chooser only.
"""
import numpy as np
import pytest

from strategies import assert_fd_close, central_difference
from vae_np import ops
from vae_np.vq.model import VQVAE

B, X_DIM, M, D, K, BETA = 6, 12, 3, 2, 5, 0.3


def make(update="grad", hidden=(7,), seed=0):
    model = VQVAE(X_DIM, hidden=hidden, n_latents=M, code_dim=D, codebook_size=K, beta=BETA,
                  seed=seed, codebook_update=update)
    rng = np.random.default_rng(seed + 10)
    x = (rng.random((B, X_DIM)) < 0.4).astype(np.float64)
    model.init_codebook(x, rng)
    model.codebook[...] += 0.05 * rng.standard_normal(model.codebook.shape)  # no code equals a z_e
    return model, x


def relu_mlp(h, layers, params):
    for name in layers:
        h = np.maximum(h @ params[name + ".W"] + params[name + ".b"], 0.0)
    return h


def brute_codes(z_e, e):
    return np.argmin(((z_e[:, :, None, :] - e[None, None]) ** 2).sum(-1), axis=-1)


class Surrogate:
    """The surrogate as a function of the flat parameters, stop-gradients frozen at the base."""

    def __init__(self, model, x):
        self.model, self.x = model, x
        p = model.params
        self.enc = [f"encoder.{i}" for i in range(len(model.hidden))]
        self.dec = [f"decoder.{i}" for i in range(len(model.hidden))]
        z0 = self.z_e(p)
        self.codes = brute_codes(z0, p["codebook"])
        self.z0, self.e0 = z0.copy(), p["codebook"][self.codes].copy()

    def z_e(self, p):
        h = relu_mlp(self.x, self.enc, p)
        return (h @ p["encoder.out.W"] + p["encoder.out.b"]).reshape(len(self.x), M, D)

    def nll(self, z_q, p):
        g = relu_mlp(z_q.reshape(len(z_q), -1), self.dec, p)
        logits = g @ p["decoder.out.W"] + p["decoder.out.b"]
        return (np.logaddexp(0.0, logits) - self.x * logits).sum(axis=1)

    def terms(self, p, check=True):
        z_e, e = self.z_e(p), p["codebook"]
        if check:      # no difference may change a code assignment
            np.testing.assert_array_equal(brute_codes(z_e, e), self.codes)
        decoder = self.nll(z_e + (self.e0 - self.z0), p)
        codebook = ((self.z0 - e[self.codes]) ** 2).sum(axis=(1, 2))
        commitment = BETA * ((z_e - self.e0) ** 2).sum(axis=(1, 2))
        return decoder, codebook, commitment

    def __call__(self, flat, which=(0, 1, 2)):
        model = self.model
        saved = model.flat.copy()
        model.flat[...] = flat
        try:
            parts = self.terms(model.params)
        finally:
            model.flat[...] = saved
        return float(np.mean(sum(parts[i] for i in which)))

    def f_terms(self):
        parts = self.terms(self.model.params, check=False)
        return float(sum(np.abs(t).sum() for t in parts) / len(self.x)) + 10.0


def check_parameter_gradient(model, x):
    """The model's gradient of every parameter against central differences of the surrogate."""
    s = Surrogate(model, x)
    loss, grads = model.loss_and_grads(x)
    np.testing.assert_allclose(loss, s(model.flat.copy()), rtol=1e-12)
    numeric = central_difference(s, model.flat.copy(), h_rel=1e-6)[0]
    assert_fd_close(model.grad_flat.copy(), numeric, f_terms=s.f_terms(), what="VQVAE gradient")


def test_the_surrogate_gradient_of_every_parameter():
    check_parameter_gradient(*make())


def test_no_hidden_layer():
    check_parameter_gradient(*make(hidden=()))


def test_each_term_of_dz_e_against_central_differences():
    """d z_e splits into the straight-through copy (the decoder term) and the commitment term;
    each is checked against the central difference of its own term as a function of z_e."""
    model, x = make(seed=3)
    s = Surrogate(model, x)
    t = model.trace(x)
    z_base = t.values["z_e"].copy()
    e_c = model.codebook[s.codes]

    def decoder(z):
        np.testing.assert_array_equal(brute_codes(z, model.codebook), s.codes)
        return float(np.mean(s.nll(z + (s.e0 - s.z0), model.params)))

    def commitment(z):
        return float(np.mean(BETA * ((z - e_c) ** 2).sum(axis=(1, 2))))

    assert_fd_close(t.terms["straight_through"], central_difference(decoder, z_base, h_rel=1e-6)[0],
                    f_terms=s.f_terms(), what="dz_e, decoder term")
    assert_fd_close(t.terms["commitment"], central_difference(commitment, z_base, h_rel=1e-6)[0],
                    f_terms=s.f_terms(), what="dz_e, commitment term")
    np.testing.assert_array_equal(t.grads["z_e"],
                                  t.terms["straight_through"] + t.terms["commitment"])


def test_codebook_term_alone_moves_the_codebook():
    model, x = make(seed=4)
    s = Surrogate(model, x)
    _, grads = model.loss_and_grads(x)
    block = model._store.slices["codebook"]
    flat = model.flat.copy()

    def codebook_only(e):
        f = flat.copy()
        f[block] = e
        return s(f, which=(1,))

    numeric = central_difference(codebook_only, flat[block], h_rel=1e-6)[0].reshape(K, D)
    assert_fd_close(grads["codebook"], numeric, f_terms=s.f_terms(), what="dcodebook")
    used = np.unique(s.codes)
    unused = np.setdiff1d(np.arange(K), used)
    assert np.all(grads["codebook"][unused] == 0)


def test_straight_through_identity_is_exact():
    model, x = make(seed=5)
    t = model.trace(x)
    np.testing.assert_array_equal(t.terms["straight_through"], t.grads["z_q"])
    assert t.grads["z_q"].shape == (B, M, D)


def test_ema_codebook_gets_no_gradient_and_the_rest_is_unchanged():
    model_g, x = make("grad", seed=6)
    model_e, _ = make("ema", seed=6)
    np.testing.assert_array_equal(model_g.flat, model_e.flat)
    _, g = model_g.loss_and_grads(x)
    _, e = model_e.loss_and_grads(x)
    assert np.all(e["codebook"] == 0) and np.any(g["codebook"] != 0)
    for name in g:
        if name != "codebook":
            np.testing.assert_array_equal(e[name], g[name])


def test_ema_update_against_a_hand_computation():
    model, x = make("ema", seed=7)
    gamma, eps = model.ema_decay, model.ema_eps
    N, m = model.ema_count.copy(), model.ema_sum.copy()
    z_e = np.arange(B * M * D, dtype=float).reshape(B, M, D) / 10
    codes = np.array([[0, 0, 2]] * B)             # codes 1, 3, 4 unused
    model.ema_update(z_e, codes)
    n0, n2 = 2 * B, B
    s0 = z_e[:, :2].reshape(-1, D).sum(axis=0)
    s2 = z_e[:, 2].sum(axis=0)
    N_new = gamma * N + (1 - gamma) * np.array([n0, 0, n2, 0, 0])
    m_new = gamma * m
    m_new[0] += (1 - gamma) * s0
    m_new[2] += (1 - gamma) * s2
    total = N_new.sum()
    smoothed = (N_new + eps) / (total + K * eps) * total
    np.testing.assert_allclose(model.ema_count, N_new, rtol=1e-14)
    np.testing.assert_allclose(model.ema_sum, m_new, rtol=1e-14)
    np.testing.assert_allclose(model.codebook, m_new / smoothed[:, None], rtol=1e-13)


def test_codes_decode_and_nll_agree_with_the_trace():
    model, x = make(seed=8)
    t = model.trace(x)
    codes = model.encode_codes(x)
    np.testing.assert_array_equal(codes, t.values["codes"])
    np.testing.assert_array_equal(model.nll_given_codes(x, codes), t.values["nll"][0])
    probs = model.decode_codes(codes)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-t.values["logits"][0])), rtol=1e-12)
    np.testing.assert_array_equal(model.reconstruct(x), probs)
    assert VQVAE(**model.config()).config() == model.config()


@pytest.mark.parametrize("kwargs, message", [
    (dict(codebook_update="kmeans"), "codebook_update must be one of"),
    (dict(ema_decay=1.0), r"ema_decay must be in \(0, 1\)"),
    (dict(beta=-1.0), "beta must be >= 0"),
    (dict(n_latents=0), "n_latents must be an integer >= 1"),
    (dict(codebook_size=2.5), "codebook_size must be an integer"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VQVAE(X_DIM, **kwargs)


def test_bad_codes():
    model, x = make()
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\]"):
        model.decode_codes(np.full((2, M), K))
    with pytest.raises(ValueError, match="codes must be an integer array of shape"):
        model.decode_codes(np.zeros((2, M + 1), dtype=int))


# --------------------------------------------------------------------------- planted bugs
def beta_on_the_codebook_term(monkeypatch):
    cb, cm = ops.vq_codebook_backward, ops.vq_commitment_backward
    monkeypatch.setattr(ops, "vq_codebook_backward", lambda d, c: BETA * cb(d, c))
    monkeypatch.setattr(ops, "vq_commitment_backward", lambda d, c: cm(d, (c[0], 1.0)))


def stop_gradient_on_the_wrong_side(monkeypatch):
    """The codebook term moves z_e (2 (z_e - e)) and not the codebook."""
    cm = ops.vq_commitment_backward
    monkeypatch.setattr(ops, "vq_codebook_backward", lambda d, c: np.zeros_like(c[1]))
    monkeypatch.setattr(ops, "vq_commitment_backward",
                        lambda d, c: cm(d, c) + cm(d, (c[0], 1.0)))


def codebook_without_gradient(monkeypatch):
    monkeypatch.setattr(ops, "vq_codebook_backward", lambda d, c: np.zeros_like(c[1]))


def first_chooser_only(monkeypatch):
    from test_vq_ops import first_chooser_only as buggy
    monkeypatch.setattr(ops, "vq_codebook_backward", buggy)


@pytest.mark.parametrize("plant", [beta_on_the_codebook_term, stop_gradient_on_the_wrong_side,
                                   codebook_without_gradient, first_chooser_only])
def test_planted_bug_fails_the_gradient_check(monkeypatch, plant):
    model, x = make(seed=0)
    assert np.bincount(model.encode_codes(x).ravel()).max() >= 2    # some code is shared
    plant(monkeypatch)
    with pytest.raises(AssertionError):
        check_parameter_gradient(model, x)
