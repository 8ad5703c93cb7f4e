"""The Variational Autoencoder: encoder q_phi(z|x), decoder p_theta(x|z), prior p(z) = N(0, I).

One training step computes the negative ELBO and its gradient by hand (see DESIGN.md):

    x -> encoder MLP -> (mu, s) -> sigma = g(s) -> z = mu + sigma * eps -> decoder MLP -> logits/mean
    loss = mean_b [ 1/K sum_k -ln p(x_b | z_bk) + KL(q(z|x_b) || N(0, I)) ]     (nats per example)
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import ops
from ._validate import (check_array, check_choice, check_dtype, check_int, check_positive,
                        check_rng)
from .layers import MLP, Dense, FlatParameters

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
DECODER_MEANS = ("identity", "sigmoid")


def as_batch(name, x, x_dim, dtype, likelihood="gaussian"):
    """Check a batch of data and convert it to ``dtype``; uint8 grey levels are scaled by 1/255."""
    x = check_array(name, x, ndim=2)
    if x.shape[1] != x_dim:
        raise ValueError(f"{name} must have shape (batch, {x_dim}), got {x.shape}")
    scale = 1 / 255 if x.dtype == np.uint8 else 1
    _check_representable(name, x, dtype)
    x = x.astype(dtype, copy=False) * dtype.type(scale) if scale != 1 else x.astype(dtype, copy=False)
    if likelihood == "bernoulli" and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli likelihood, "
                         f"got values in [{x.min():g}, {x.max():g}]")
    return x


def _check_representable(name, a, dtype):
    """Before a cast of the (finite) array ``a`` to the model's dtype: values beyond its range
    (|a| > 3.4e38 for float32) would become inf."""
    if np.issubdtype(a.dtype, np.floating) and a.dtype.itemsize > dtype.itemsize and a.size:
        big = np.finfo(dtype).max
        if a.max() > big or a.min() < -big:
            raise ValueError(f"{name} must be finite in the model's dtype {dtype.name}: values "
                             f"reach [{a.min():g}, {a.max():g}], beyond +-{big:.3g}")


class VAE:
    """A VAE with MLP encoder and decoder and hand-written backward passes.

    Parameters
    ----------
    x_dim : int               data dimension D
    hidden : tuple of int     encoder hidden widths; the decoder uses them mirrored
    z_dim : int               latent dimension Z
    activation : str          one of ``ops.ACTIVATIONS``
    likelihood : str          "bernoulli" (decoder gives logits), "gaussian" (fixed
                              ``decoder_sigma``) or "gaussian-learned" (a log-sigma head,
                              sigma = decoder_sigma_min + e^r)
    sigma_param : str         "logvar" (sigma = exp(s/2)) or "softplus" (softplus(s) + sigma_min)
    decoder_mean : str        "identity" or "sigmoid" (squash the Gaussian mean into (0, 1))
    init_std : float or None  None: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); else N(0, init_std^2)

    Attributes
    ----------
    params, grads : dict name -> array, views into ``flat`` / ``grad_flat``; names in forward
        order: encoder.{i}.W/b, encoder.mu.W/b, encoder.sigma.W/b, decoder.{i}.W/b,
        decoder.out.W/b (and decoder.logsigma.W/b). W has shape (in, out).
    n_encoder : int  the encoder's parameters are ``flat[:n_encoder]``, the decoder's the rest
    rng : numpy.random.Generator seeded by ``seed``; used when no rng or eps is passed
    """

    def __init__(self, x_dim, hidden=(400,), z_dim=20, activation="relu", likelihood="bernoulli",
                 sigma_param="logvar", dtype=np.float64, seed=0, *, sigma_min=1e-4,
                 decoder_sigma=1.0, decoder_sigma_min=0.0, decoder_mean="identity", init_std=None):
        self.x_dim = check_int("x_dim", x_dim)
        self.z_dim = check_int("z_dim", z_dim)
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        try:
            self.hidden = tuple(check_int("hidden", h) for h in hidden)
        except TypeError:
            raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}") from None
        self.activation = check_choice("activation", activation, ops.ACTIVATIONS)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        self.sigma_param = check_choice("sigma_param", sigma_param, ops.SIGMA_PARAMETERIZATIONS)
        self.decoder_mean = check_choice("decoder_mean", decoder_mean, DECODER_MEANS)
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.decoder_sigma = check_positive("decoder_sigma", decoder_sigma)
        self.decoder_sigma_min = check_positive("decoder_sigma_min", decoder_sigma_min,
                                                allow_zero=True)
        if init_std is not None:
            init_std = check_positive("init_std", init_std)
        self.init_std = init_std
        self.dtype = check_dtype("dtype", dtype)
        self.seed = check_int("seed", seed, minimum=0)
        self.rng = np.random.default_rng(seed)

        spec, enc_names, dec_names = self._spec()
        self._store = FlatParameters(spec, self.dtype)
        self.flat, self.grad_flat = self._store.flat, self._store.grad_flat
        self.params, self.grads = self._store.params, self._store.grads
        self.n_encoder = self._store.slices[enc_names[-1] + ".b"].stop
        self._build_layers(enc_names, dec_names)
        self._initialize(spec)
        self._sigma_forward, self._sigma_backward = ops.SIGMA_PARAMETERIZATIONS[sigma_param]

    # ------------------------------------------------------------------ construction
    def _spec(self):
        dims_enc = (self.x_dim,) + self.hidden
        dims_dec = (self.z_dim,) + self.hidden[::-1]
        enc = [f"encoder.{i}" for i in range(len(self.hidden))] + ["encoder.mu", "encoder.sigma"]
        dec = [f"decoder.{i}" for i in range(len(self.hidden))] + ["decoder.out"]
        if self.likelihood == "gaussian-learned":
            dec.append("decoder.logsigma")
        shapes = {}
        for i in range(len(self.hidden)):
            shapes[f"encoder.{i}"] = (dims_enc[i], dims_enc[i + 1])
            shapes[f"decoder.{i}"] = (dims_dec[i], dims_dec[i + 1])
        shapes["encoder.mu"] = shapes["encoder.sigma"] = (dims_enc[-1], self.z_dim)
        shapes["decoder.out"] = shapes["decoder.logsigma"] = (dims_dec[-1], self.x_dim)
        spec = []
        for name in enc + dec:
            spec += [(name + ".W", shapes[name]), (name + ".b", (shapes[name][1],))]
        return spec, enc, dec

    def _build_layers(self, enc, dec):
        depth = len(self.hidden)
        self.encoder = MLP([Dense(self._store, n) for n in enc[:depth]], self.activation)
        self.encoder_mu = Dense(self._store, "encoder.mu")
        self.encoder_sigma = Dense(self._store, "encoder.sigma")
        self.decoder = MLP([Dense(self._store, n) for n in dec[:depth]], self.activation)
        self.decoder_out = Dense(self._store, "decoder.out")
        self.decoder_logsigma = (Dense(self._store, "decoder.logsigma")
                                 if self.likelihood == "gaussian-learned" else None)

    def _initialize(self, spec):
        init_rng = np.random.default_rng(self.seed)
        for name, shape in spec:
            fan_in = self.params[name[:-2] + ".W"].shape[0]
            if self.init_std is None:
                bound = 1 / np.sqrt(fan_in)
                values = init_rng.uniform(-bound, bound, size=shape)
            else:
                values = init_rng.normal(0.0, self.init_std, size=shape)
            self.params[name][...] = values

    def config(self) -> dict:
        """The constructor arguments, as a JSON-serialisable dict (``VAE(**config)`` rebuilds it)."""
        return dict(x_dim=self.x_dim, hidden=list(self.hidden), z_dim=self.z_dim,
                    activation=self.activation, likelihood=self.likelihood,
                    sigma_param=self.sigma_param, dtype=self.dtype.name, seed=self.seed,
                    sigma_min=self.sigma_min, decoder_sigma=self.decoder_sigma,
                    decoder_sigma_min=self.decoder_sigma_min, decoder_mean=self.decoder_mean,
                    init_std=self.init_std)

    def __repr__(self):
        arch = "-".join(map(str, (self.x_dim,) + self.hidden + (self.z_dim,)))
        return (f"VAE({arch}, {self.activation}, {self.likelihood}, sigma={self.sigma_param}, "
                f"{self.dtype.name}, {self.flat.size} parameters)")

    # ------------------------------------------------------------------ inputs
    def _batch(self, x):
        return as_batch("x", x, self.x_dim, self.dtype, self.likelihood)

    def _noise(self, batch, k, eps, rng):
        k = check_int("k", k)
        if eps is None:
            rng = self.rng if rng is None else check_rng("rng", rng)
            return rng.standard_normal((k, batch, self.z_dim), dtype=self.dtype)
        eps = check_array("eps", eps)
        expected = (batch, self.z_dim) if k == 1 else (k, batch, self.z_dim)
        if eps.shape == (batch, self.z_dim) and k == 1:
            eps = eps[None]
        elif eps.shape != (k, batch, self.z_dim):
            raise ValueError(f"eps must have shape {expected} (k, batch, z_dim) for k={k}, "
                             f"got {eps.shape}")
        _check_representable("eps", eps, self.dtype)
        return eps.astype(self.dtype, copy=False)

    # ------------------------------------------------------------------ forward
    def _forward(self, x, eps):
        """Every intermediate of one forward pass; x (B, D) and eps (K, B, Z) already checked."""
        p = SimpleNamespace(x=x, eps=eps)
        h, p.encoder_caches = self.encoder.forward(x)
        p.mu, p.mu_cache = self.encoder_mu.forward(h)
        s, p.s_cache = self.encoder_sigma.forward(h)
        p.sigma, p.sigma_cache = (self._sigma_forward(s) if self.sigma_param == "logvar"
                                  else self._sigma_forward(s, self.sigma_min))
        p.z, p.z_cache = ops.reparameterize_forward(p.mu, p.sigma, eps)      # (K, B, Z)
        p.kl, p.kl_cache = ops.kl_forward(p.mu, p.sigma)                      # (B,)
        K, B, Z = eps.shape
        g, p.decoder_caches = self.decoder.forward(p.z.reshape(K * B, Z))
        out, p.out_cache = self.decoder_out.forward(g)
        out = out.reshape(K, B, self.x_dim)
        if self.likelihood == "bernoulli":
            p.nll, p.nll_cache = ops.bernoulli_nll_forward(out, x)           # (K, B)
            return p
        if self.decoder_mean == "sigmoid":
            out, p.mean_cache = ops.sigmoid_forward(out)
        if self.likelihood == "gaussian":
            p.nll, p.nll_cache = ops.gaussian_nll_forward(out, x, self.decoder_sigma)
        else:
            r, p.r_cache = self.decoder_logsigma.forward(g)
            p.nll, p.nll_cache = ops.gaussian_learned_nll_forward(
                out, r.reshape(K, B, self.x_dim), x, self.decoder_sigma_min)
        return p

    # ------------------------------------------------------------------ backward
    def _backward(self, p):
        """Write d(loss)/d(params) into ``grad_flat`` for loss = mean_b(1/K sum_k nll + kl)."""
        K, B, Z = p.eps.shape
        dnll = np.full((K, B), 1 / (K * B), dtype=self.dtype)   # d loss / d nll_kb
        dkl = np.full(B, 1 / B, dtype=self.dtype)               # d loss / d kl_b
        if self.likelihood == "bernoulli":
            dout = ops.bernoulli_nll_backward(dnll, p.nll_cache)
        elif self.likelihood == "gaussian":
            dout = ops.gaussian_nll_backward(dnll, p.nll_cache)
        else:
            dout, dr = ops.gaussian_learned_nll_backward(dnll, p.nll_cache)
        if self.likelihood != "bernoulli" and self.decoder_mean == "sigmoid":
            dout = ops.sigmoid_backward(dout, p.mean_cache)
        dg = self.decoder_out.backward(dout.reshape(K * B, self.x_dim), p.out_cache)
        if self.likelihood == "gaussian-learned":
            dg += self.decoder_logsigma.backward(dr.reshape(K * B, self.x_dim), p.r_cache)
        dz = self.decoder.backward(dg, p.decoder_caches).reshape(K, B, Z)

        dmu, dsigma = ops.reparameterize_backward(dz, p.z_cache)   # dz/dmu = 1, dz/dsigma = eps
        dmu_kl, dsigma_kl = ops.kl_backward(dkl, p.kl_cache)       # mu, sigma - 1/sigma
        dmu += dmu_kl
        dsigma += dsigma_kl
        ds = self._sigma_backward(dsigma, p.sigma_cache)          # the parameterization's dsigma/ds
        trunk = bool(self.encoder.layers)
        dh = self.encoder_mu.backward(dmu, p.mu_cache, need_dx=trunk)
        if trunk:
            dh += self.encoder_sigma.backward(ds, p.s_cache)        # h fans out to both heads
            self.encoder.backward(dh, p.encoder_caches, need_dx=False)
        else:
            self.encoder_sigma.backward(ds, p.s_cache, need_dx=False)

    # ------------------------------------------------------------------ public API
    def loss_and_grads(self, x, k=1, eps=None, rng=None):
        """Negative ELBO (mean over the batch, nats per example) and its gradient.

        Parameters
        ----------
        x : (B, x_dim) float in the model's range (uint8 is scaled by 1/255)
        k : int >= 1, Monte Carlo samples per example
        eps : (K, B, z_dim), or (B, z_dim) when k = 1; frozen noise makes the loss deterministic
        rng : numpy.random.Generator for eps (default: the model's own ``rng``)

        Returns
        -------
        loss : float
        grads : dict name -> array, the same keys and shapes as ``params``. These are views of
            ``grad_flat`` and are overwritten by the next call: copy them to keep them.
        """
        x = self._batch(x)
        p = self._forward(x, self._noise(x.shape[0], k, eps, rng))
        self._backward(p)
        return float(np.mean(p.nll.mean(axis=0) + p.kl)), self.grads

    def elbo_terms(self, x, k=1, eps=None, rng=None):
        """Per-example terms of the negative ELBO (forward only).

        Returns
        -------
        recon : (B,) 1/K sum_k -ln p(x_b | z_bk);   kl : (B,) KL(q(z|x_b) || N(0, I))
        """
        x = self._batch(x)
        p = self._forward(x, self._noise(x.shape[0], k, eps, rng))
        return p.nll.mean(axis=0), p.kl

    def loss(self, x, k=1, eps=None, rng=None):
        """The negative ELBO alone (mean over the batch), without computing gradients."""
        recon, kl = self.elbo_terms(x, k, eps, rng)
        return float(np.mean(recon + kl))

    def encode(self, x):
        """Parameters of q(z|x): mu, sigma, each (B, z_dim)."""
        x = self._batch(x)
        h, _ = self.encoder.forward(x)
        s, _ = self.encoder_sigma.forward(h)
        sigma, _ = (self._sigma_forward(s) if self.sigma_param == "logvar"
                    else self._sigma_forward(s, self.sigma_min))
        return self.encoder_mu.forward(h)[0], sigma

    def decode(self, z):
        """Mean of p(x|z): Bernoulli probabilities sigmoid(logits) or the Gaussian mean, (N, x_dim)."""
        z = check_array("z", z, ndim=2)
        if z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {z.shape}")
        _check_representable("z", z, self.dtype)
        z = z.astype(self.dtype, copy=False)
        g, _ = self.decoder.forward(z)
        out, _ = self.decoder_out.forward(g)
        if self.likelihood == "bernoulli" or self.decoder_mean == "sigmoid":
            return ops.sigmoid(out)
        return out

    def sample(self, n, rng=None):
        """n draws of the decoder mean at z ~ N(0, I): (n, x_dim)."""
        n = check_int("n", n)
        rng = self.rng if rng is None else check_rng("rng", rng)
        return self.decode(rng.standard_normal((n, self.z_dim), dtype=self.dtype))

    def reconstruct(self, x):
        """Decoder mean at z = mu(x), the posterior mean: (B, x_dim)."""
        return self.decode(self.encode(x)[0])

    def log_weights(self, x, k=1, eps=None, rng=None):
        """Importance log-weights ln p(x, z_k) - ln q(z_k | x) for z_k ~ q(z|x): (K, B).

        ln w = -nll + ln N(z; 0, I) - ln N(z; mu, sigma^2), where the last term uses
        (z - mu)/sigma = eps exactly. Their mean over k is the ELBO; the log-mean-exp over k is
        the IWAE bound.
        """
        x = self._batch(x)
        p = self._forward(x, self._noise(x.shape[0], k, eps, rng))
        log_prior = -0.5 * np.sum(p.z * p.z, axis=-1)
        log_q = -0.5 * np.sum(p.eps * p.eps, axis=-1) - np.sum(np.log(p.sigma), axis=-1)
        return -p.nll + log_prior - log_q   # the (Z/2) ln 2 pi terms cancel
