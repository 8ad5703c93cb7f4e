"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, arXiv:1711.00937): discrete latents.

    x -> encoder MLP -> h -> z_e = h W + b, as M vectors of D      (encoder.out)
      -> codes = argmin_k |z_e,m - e_k|^2, z_q = e_codes         (the codebook, K x D)
      -> decoder MLP on the M D values of z_q -> logits -> nll = -ln p(x | z_q)

The surrogate loss (nats per example, mean over the batch) and where each term's gradient goes:

    loss = mean_b [ nll + sum ||sg(z_e) - e_c||^2 + beta sum ||z_e - sg(e_c)||^2 ]
           decoder params  <- backprop of nll;   z_e <- dL/dz_q  (straight-through copy)
           codebook        <- 2 (e_c - z_e) / B  (codebook term; chosen codes only, summed)
           z_e             <- 2 beta (z_e - e_c) / B  (commitment term)

With ``codebook_update="ema"`` the codebook term is still computed and reported, but the
codebook's gradient is zero: it moves only by ``ema_update`` (the paper's appendix), which the
training loop calls after each step.

Trace names: x, a1, h1, ..., z_e (B, M, D), codes (B, M), z_q (B, M, D), c1, g1, ..., logits
(1, B, x_dim), nll (1, B), codebook_loss (B,), commitment_loss (B,), loss. After the backward
pass, ``trace.terms`` holds the two parts of dz_e: "straight_through" (= d z_q exactly) and
"commitment".
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._validate import check_array, check_choice, check_dtype, check_int, check_positive, check_rng
from ..core.batch import as_batch
from ..core.layers import MLP, Dense, FlatParameters
from ..core.likelihood import LIKELIHOOD_COMPONENTS, DecoderSettings
from ..core.model import _activation, _hidden
from ..core.trace import Trace

CODEBOOK_UPDATES = ("grad", "ema")


class VQVAE:
    """A VQ-VAE with MLP encoder and decoder and a hand-written straight-through backward.

    Parameters
    ----------
    x_dim : int              data dimension
    hidden : tuple of int    encoder hidden widths; the decoder uses them mirrored
    n_latents : int          M, latent vectors per example
    code_dim : int           D, dimension of each latent vector and code
    codebook_size : int      K, number of codes
    beta : float >= 0        weight of the commitment term
    activation, likelihood   as for ``vae_np.VAE`` (likelihood: one of LIKELIHOOD_COMPONENTS)
    dtype, seed              parameter dtype; seed of the initialisation
    codebook_update : str    "grad" (the codebook term's gradient, through the optimizer) or
                             "ema" (exponential moving averages; the codebook's gradient is 0)
    ema_decay : float        gamma in (0, 1) of the EMA update
    ema_eps : float > 0      Laplace smoothing of the EMA counts

    Attributes
    ----------
    params, grads : dict name -> view into ``flat`` / ``grad_flat``: encoder.{i}.W/b,
        encoder.out.W/b, codebook (K, D), decoder.{i}.W/b, decoder.out.W/b
    codebook : (K, D) view of params["codebook"]
    ema_count : (K,) N_i;  ema_sum : (K, D) m_i  (the EMA state; N_i = 1, m_i = e_i at start)
    """

    def __init__(self, x_dim, hidden=(400,), n_latents=16, code_dim=8, codebook_size=64,
                 beta=0.25, activation="relu", likelihood="bernoulli", dtype=np.float64, seed=0,
                 codebook_update="grad", ema_decay=0.99, ema_eps=1e-5):
        self.x_dim = check_int("x_dim", x_dim)
        self.hidden = _hidden(hidden)
        self.n_latents = check_int("n_latents", n_latents)
        self.code_dim = check_int("code_dim", code_dim)
        self.codebook_size = check_int("codebook_size", codebook_size)
        self.beta = check_positive("beta", beta, allow_zero=True)
        if not isinstance(activation, str):
            raise ValueError(f"activation must be one of {sorted(ops.ACTIVATIONS)} for a VQVAE, "
                             f"got {activation!r}")
        act = _activation(activation)
        self.activation = activation
        self.likelihood = check_choice("likelihood", likelihood, tuple(LIKELIHOOD_COMPONENTS))
        self.dtype = check_dtype("dtype", dtype)
        self.seed = check_int("seed", seed, minimum=0)
        self.codebook_update = check_choice("codebook_update", codebook_update, CODEBOOK_UPDATES)
        self.ema_decay = check_positive("ema_decay", ema_decay)
        if self.ema_decay >= 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay!r}")
        self.ema_eps = check_positive("ema_eps", ema_eps)

        spec = self._spec()
        self._store = FlatParameters(spec, self.dtype)
        self.flat, self.grad_flat = self._store.flat, self._store.grad_flat
        self.params, self.grads = self._store.params, self._store.grads
        self.codebook = self.params["codebook"]
        depth = len(self.hidden)
        self.encoder = MLP([Dense(self._store, f"encoder.{i}") for i in range(depth)], act,
                           "a", "h", "x")
        self.enc_out = Dense(self._store, "encoder.out")
        self.decoder = MLP([Dense(self._store, f"decoder.{i}") for i in range(depth)], act,
                           "c", "g", "z_q")
        self.decoder_likelihood = LIKELIHOOD_COMPONENTS[self.likelihood](
            self._store, self.decoder.output_name, DecoderSettings())
        self._initialize(spec)

    # ------------------------------------------------------------------ construction
    def _spec(self):
        """[(parameter name, shape)] in forward order: the flat vectors' layout."""
        enc = (self.x_dim,) + self.hidden
        dec = (self.n_latents * self.code_dim,) + self.hidden[::-1]
        layers = [(f"encoder.{i}", (enc[i], enc[i + 1])) for i in range(len(self.hidden))]
        layers.append(("encoder.out", (enc[-1], self.n_latents * self.code_dim)))
        after = [(f"decoder.{i}", (dec[i], dec[i + 1])) for i in range(len(self.hidden))]
        after += [(head, (dec[-1], self.x_dim))
                  for head in LIKELIHOOD_COMPONENTS[self.likelihood].heads]
        spec = []
        for prefix, shape in layers:
            spec += [(prefix + ".W", shape), (prefix + ".b", (shape[1],))]
        spec.append(("codebook", (self.codebook_size, self.code_dim)))
        for prefix, shape in after:
            spec += [(prefix + ".W", shape), (prefix + ".b", (shape[1],))]
        return spec

    def _initialize(self, spec):
        """W, b ~ U(+-1/sqrt(fan_in)); codebook ~ U(+-1/sqrt(D)) until ``init_codebook``."""
        rng = np.random.default_rng(self.seed)
        for name, shape in spec:
            fan_in = self.code_dim if name == "codebook" else self.params[name[:-2] + ".W"].shape[0]
            bound = 1 / np.sqrt(fan_in)
            self.params[name][...] = rng.uniform(-bound, bound, size=shape)
        self.reset_ema()

    def reset_ema(self):
        """EMA state from the current codebook: N_i = 1, m_i = e_i (so that e_i = m_i / N_i)."""
        self.ema_count = np.ones(self.codebook_size, dtype=self.dtype)
        self.ema_sum = self.codebook.copy()

    def config(self) -> dict:
        """The constructor arguments, JSON-serialisable (``VQVAE(**config)`` rebuilds it)."""
        return dict(x_dim=self.x_dim, hidden=list(self.hidden), n_latents=self.n_latents,
                    code_dim=self.code_dim, codebook_size=self.codebook_size, beta=self.beta,
                    activation=self.activation, likelihood=self.likelihood,
                    dtype=self.dtype.name, seed=self.seed, codebook_update=self.codebook_update,
                    ema_decay=self.ema_decay, ema_eps=self.ema_eps)

    def __repr__(self):
        arch = "-".join(map(str, (self.x_dim,) + self.hidden))
        return (f"VQVAE({arch}, {self.n_latents} x {self.code_dim} latents, "
                f"{self.codebook_size} codes ({self.codebook_update}), beta={self.beta:g}, "
                f"{self.activation}, {self.likelihood}, {self.dtype.name}, "
                f"{self.flat.size} parameters)")

    # ------------------------------------------------------------------ one step
    def _batch(self, x):
        return as_batch("x", x, self.x_dim, self.dtype,
                        unit_interval=self.decoder_likelihood.unit_interval)

    def forward(self, x, nudges=None) -> Trace:
        """The forward pass on a prepared (B, x_dim) batch of the model's dtype: a Trace."""
        if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == self.x_dim):
            raise ValueError(f"forward needs x of shape (B, {self.x_dim}), got {np.shape(x)}")
        B, M, D = x.shape[0], self.n_latents, self.code_dim
        t = Trace(nudges)
        x = t.record("x", x, "the data batch")
        h = self.encoder.forward(t, x)                              # a1, h1, ...
        z, cache = self.enc_out.forward(h)
        z_e = t.record("z_e", z.reshape(B, M, D),
                       f"z_e = {self.encoder.output_name} W + b   (encoder.out), (B, M, D)", cache)
        codes = t.record("codes", ops.nearest_code(z_e, self.codebook),
                         "codes = argmin_k |z_e - e_k|^2   (ties: lowest k)")
        z_q, cache = ops.vq_quantize_forward(self.codebook, codes)
        z_q = t.record("z_q", z_q, "z_q = e_codes   (straight-through: z_e + sg(e_codes - z_e))",
                       cache)
        g = self.decoder.forward(t, z_q.reshape(B, M * D))           # c1, g1, ...
        self.decoder_likelihood.forward(t, g, x, 1)                  # logits, nll (1, B)
        cb, cache = ops.vq_codebook_forward(z_e, self.codebook, codes)
        cb = t.record("codebook_loss", cb, "sum ||sg(z_e) - e_codes||^2", cache)
        cm, cache = ops.vq_commitment_forward(z_e, self.codebook[codes], self.beta)
        cm = t.record("commitment_loss", cm, "beta sum ||z_e - sg(e_codes)||^2", cache)
        t.record("loss", np.mean(t.values["nll"][0] + cb + cm),
                 "loss = mean_b [nll + codebook_loss + commitment_loss]")
        if nudges:
            t.check_nudges()
        return t

    def backward(self, t: Trace) -> Trace:
        """Fill t.grads (and ``grad_flat``) with the surrogate gradient; returns t."""
        if not isinstance(t, Trace) or "loss" not in t.values or t.grads:
            raise ValueError(f"backward needs the Trace that forward(x) returned, not yet "
                             f"through backward; got {t!r}")
        d, caches = t.grads, t.caches
        B, M, D = t.values["z_e"].shape
        share = np.full(B, 1.0 / B, dtype=self.dtype)               # d loss / d term_b = 1/B
        d["nll"], d["codebook_loss"], d["commitment_loss"] = share[None], share, share
        dg = self.decoder_likelihood.backward(t)                     # d logits -> d g
        d["z_q"] = self.decoder.backward(t, dg).reshape(B, M, D)     # -> d c, d g -> d z_q
        straight = ops.vq_straight_through_backward(d["z_q"], caches["z_q"])   # dz_e = dz_q
        commit = ops.vq_commitment_backward(d["commitment_loss"],
                                            caches["commitment_loss"])  # 2 beta (z_e - e) / B
        d["z_e"] = straight + commit
        t.terms = {"straight_through": straight, "commitment": commit}
        if self.codebook_update == "grad":        # 2 (e_k - z_e) / B, summed over k's choosers
            self.grads["codebook"][...] = ops.vq_codebook_backward(d["codebook_loss"],
                                                                   caches["codebook_loss"])
        else:                                     # EMA: the optimizer must not move the codebook
            self.grads["codebook"][...] = 0
        d["codebook"] = self.grads["codebook"]
        need_dh = bool(self.encoder.layers)
        dh, d["encoder.out.W"], d["encoder.out.b"] = self.enc_out.backward(
            d["z_e"].reshape(B, M * D), caches["z_e"], need_dx=need_dh)
        if need_dh:
            self.encoder.backward(t, dh, need_dx=False)             # -> d a, d h of every layer
        return t

    # ------------------------------------------------------------------ public API
    def trace(self, x) -> Trace:
        """One training step (forward and backward) with every quantity by name."""
        return self.backward(self.forward(self._batch(x)))

    def loss_and_grads(self, x):
        """The surrogate loss (mean over the batch, nats per example) and its gradient.

        Returns (loss float, grads dict name -> view of ``grad_flat``, overwritten by the next
        call). The codebook's entry is the codebook term's gradient (zero under EMA updates).
        """
        return self.trace(x).loss, self.grads

    def encode(self, x):
        """z_e (B, M, D), the encoder's output."""
        x = self._batch(x)
        h = self.encoder.forward(Trace(), x)
        return self.enc_out.forward(h)[0].reshape(x.shape[0], self.n_latents, self.code_dim)

    def encode_codes(self, x):
        """The nearest code of each latent vector: (B, M) int64."""
        return ops.nearest_code(self.encode(x), self.codebook)

    def _codes(self, codes):
        codes = check_array("codes", codes, ndim=2)
        if codes.shape[1] != self.n_latents or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be an integer array of shape (B, {self.n_latents}), "
                             f"got {codes.dtype} {codes.shape}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size - 1}], got values in "
                             f"[{codes.min()}, {codes.max()}]")
        return codes

    def _decoder_output(self, codes):
        z_q = self.codebook[self._codes(codes)]
        return self.decoder.forward(Trace(), z_q.reshape(len(z_q), -1))

    def decode_codes(self, codes):
        """The mean of p(x | z_q = e_codes): (B, x_dim)."""
        return self.decoder_likelihood.mean(self._decoder_output(codes))

    def nll_given_codes(self, x, codes):
        """-ln p(x | z_q = e_codes) per example, in nats: (B,)."""
        x = self._batch(x)
        codes = self._codes(codes)
        if len(codes) != len(x):
            raise ValueError(f"codes must have one row per example of x ({len(x)}), got "
                             f"{len(codes)}")
        t = Trace()
        self.decoder_likelihood.forward(t, self._decoder_output(codes), x, 1)
        return t.values["nll"][0]

    def reconstruct(self, x):
        """The decoder mean at the codes of x: (B, x_dim)."""
        return self.decode_codes(self.encode_codes(x))

    # ------------------------------------------------------------------ the codebook's health
    def init_codebook(self, x, rng):
        """Set the codebook to K encoder outputs of the batch x, drawn by ``rng`` (without
        replacement when the batch has at least K latent vectors); resets the EMA state."""
        rng = check_rng("rng", rng)
        z = self.encode(x).reshape(-1, self.code_dim)
        pick = rng.choice(len(z), size=self.codebook_size, replace=len(z) < self.codebook_size)
        self.codebook[...] = z[pick]
        self.reset_ema()

    def reseed(self, dead, z_e, rng):
        """Move the codes ``dead`` (int indices) onto encoder outputs drawn by ``rng`` from z_e
        (any shape (..., D)); their EMA state restarts at N_i = 1, m_i = e_i."""
        rng = check_rng("rng", rng)
        dead = self._code_indices("dead", dead)
        if dead.size == 0:
            return
        z = self._latent_vectors(z_e)
        pick = rng.choice(len(z), size=dead.size, replace=len(z) < dead.size)
        self.codebook[dead] = z[pick]
        self.ema_count[dead] = 1
        self.ema_sum[dead] = self.codebook[dead]

    def _code_indices(self, name, codes):
        """codes as a flat int64 array; ValueError naming ``name`` unless integers in [0, K)."""
        codes = np.asarray(codes)
        if codes.size and (not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0
                           or codes.max() >= self.codebook_size):
            raise ValueError(f"{name} must be integer code indices in [0, "
                             f"{self.codebook_size - 1}], got {codes.dtype} values "
                             f"{codes.ravel()[:5].tolist()}...")
        return codes.astype(np.int64).ravel()

    def _latent_vectors(self, z_e):
        """z_e (..., D) as (N, D) floats, N >= 1; ValueError naming z_e otherwise."""
        z = np.asarray(z_e)
        if z.ndim < 1 or z.shape[-1] != self.code_dim or z.size == 0:
            raise ValueError(f"z_e must have shape (..., {self.code_dim}) with at least one "
                             f"vector, got {z.shape}")
        return z.reshape(-1, self.code_dim)

    def ema_update(self, z_e, codes):
        """One EMA step of the codebook from a batch's z_e (B, M, D) and codes (B, M):

            n_i = #{vectors with code i},  s_i = sum of those vectors
            N_i <- gamma N_i + (1 - gamma) n_i;   m_i <- gamma m_i + (1 - gamma) s_i
            e_i = m_i / N~_i,  N~_i = (N_i + eps) / (n + K eps) n,  n = sum_i N_i

        (Laplace smoothing keeps an unused code's N~_i > 0; the stored N_i is not smoothed.)
        """
        K, D, gamma = self.codebook_size, self.code_dim, self.ema_decay
        codes = self._code_indices("codes", codes)
        z = self._latent_vectors(z_e)
        if len(z) != codes.size:
            raise ValueError(f"codes must hold one code per latent vector of z_e ({len(z)}), "
                             f"got {codes.size}")
        counts = np.bincount(codes, minlength=K)                                  # n_i
        index = (codes[:, None] * D + np.arange(D)).ravel()
        sums = np.bincount(index, weights=z.ravel(), minlength=K * D).reshape(K, D)  # s_i
        self.ema_count *= gamma
        self.ema_count += (1 - gamma) * counts
        self.ema_sum *= gamma
        self.ema_sum += (1 - gamma) * sums
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.ema_eps) / (n + K * self.ema_eps) * n
        self.codebook[...] = self.ema_sum / smoothed[:, None]
