"""The Variational Autoencoder: encoder q_phi(z|x), decoder p_theta(x|z), prior p(z) = N(0, I).

One training step computes the negative ELBO and its gradient by hand (docs/design.md walks
through it):

    x -> encoder MLP -> h -> posterior (mu, s -> sigma, z = mu + sigma * eps, kl)
      -> decoder MLP -> g -> likelihood (logits or mean, nll) -> objective (loss)

The model is that pipeline of components, each chosen once at construction: the encoder and
decoder stacks (``layers.MLP``), the posterior (``posterior.DiagonalGaussian`` with a sigma head),
the likelihood (``likelihood.LIKELIHOOD_COMPONENTS``) and the objective
(``objective.NegativeELBO``). Every intermediate is recorded in a ``Trace`` under its derivation
name; the backward pass is the same pipeline in reverse and fills d<name> for each.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._validate import check_array, check_choice, check_dtype, check_int, check_positive, check_rng
from ..flows.chain import FLOW_KINDS
from ..flows.posterior import FlowPosterior
from .batch import as_batch, check_representable
from .layers import MLP, Dense, FlatParameters
from .likelihood import LIKELIHOOD_COMPONENTS, MEAN_LINKS, DecoderSettings
from .objective import ESTIMATORS, OBJECTIVES
from .posterior import SIGMA_HEADS, DiagonalGaussian
from .trace import Trace

LIKELIHOODS = tuple(LIKELIHOOD_COMPONENTS)
DECODER_MEANS = tuple(MEAN_LINKS)


def _activation(value):
    """(name, forward, backward) from a name in ops.ACTIVATIONS or a user's (forward, backward)
    pair following the ops convention: forward(a) -> (h, cache), backward(dh, cache) -> da."""
    if isinstance(value, str):
        check_choice("activation", value, ops.ACTIVATIONS)
        return (value,) + tuple(ops.ACTIVATIONS[value])
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(callable(f) for f in value)):
        return (getattr(value[0], "__name__", "custom").replace("_forward", ""),) + tuple(value)
    raise ValueError(f"activation must be one of {sorted(ops.ACTIVATIONS)} or a pair "
                     f"(forward, backward) of functions, got {value!r}")


def _hidden(hidden):
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if isinstance(hidden, str) or not hasattr(hidden, "__iter__"):
        raise ValueError(f"hidden must be a sequence of positive ints such as (400,) or "
                         f"(400, 400), got {hidden!r}")
    return tuple(check_int("hidden", h) for h in hidden)


def _flow(flow, flow_length):
    """(flow, flow_length) checked: (None, None) or (a FLOW_KINDS name, an int >= 0)."""
    if flow is None:
        if flow_length is not None:
            raise ValueError(f"flow_length applies to a flow posterior: pass flow as one of "
                             f"{sorted(FLOW_KINDS)} with it, or flow_length=None; "
                             f"got flow_length={flow_length!r} with flow=None")
        return None, None
    check_choice("flow", flow, FLOW_KINDS)
    if flow_length is None:
        raise ValueError(f"flow_length must be an integer >= 0 (the number of flow steps) "
                         f"with flow={flow!r}, got None")
    return flow, check_int("flow_length", flow_length, minimum=0)


class VAE:
    """A VAE with MLP encoder and decoder and hand-written backward passes.

    Parameters
    ----------
    x_dim : int               data dimension D
    hidden : tuple of int     encoder hidden widths; the decoder uses them mirrored
    z_dim : int               latent dimension Z
    activation : str          one of ``ops.ACTIVATIONS``, or your own pair (forward, backward)
                              following the ops convention (forward(a) -> (h, cache),
                              backward(dh, cache) -> da): the supported way to put a new
                              activation into the model and gradient-check it (such a model's
                              ``config()`` holds the functions and cannot go into a run directory)
    likelihood : str          "bernoulli" (decoder gives logits), "gaussian" (fixed
                              ``decoder_sigma``) or "gaussian-learned" (a log-sigma head,
                              sigma = decoder_sigma_min + e^r)
    sigma_param : str         "logvar" (sigma = exp(s/2)) or "softplus" (softplus(s) + sigma_min)
    decoder_mean : str        "identity" or "sigmoid" (squash the Gaussian mean into (0, 1))
    init_std : float or None  None: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); else N(0, init_std^2)
    flow : None or str        None: q(z|x) is the diagonal Gaussian (analytic KL); "planar" or
                              "radial" (``flow_chain.FLOW_KINDS``): that Gaussian followed by
                              ``flow_length`` amortized flow steps (``posterior_flow``), with a
                              Monte Carlo KL
    flow_length : int or None the number of flow steps L >= 0 (required with a flow; None without)

    Attributes
    ----------
    params, grads : dict name -> array, views into ``flat`` / ``grad_flat``; names in forward
        order: encoder.{i}.W/b, encoder.mu.W/b, encoder.sigma.W/b, decoder.{i}.W/b,
        decoder.out.W/b (and decoder.logsigma.W/b). W has shape (in, out).
    n_encoder : int  the encoder's parameters are ``flat[:n_encoder]``, the decoder's the rest
    encoder, decoder : layers.MLP;  posterior : posterior.DiagonalGaussian;
    decoder_likelihood : a likelihood.LIKELIHOOD_COMPONENTS value;  objective : NegativeELBO
    rng : numpy.random.Generator seeded by ``seed``; used when no rng or eps is passed
    """

    def __init__(self, x_dim, hidden=(400,), z_dim=20, activation="relu", likelihood="bernoulli",
                 sigma_param="logvar", dtype=np.float64, seed=0, *, sigma_min=1e-4,
                 decoder_sigma=1.0, decoder_sigma_min=0.0, decoder_mean="identity", init_std=None,
                 flow=None, flow_length=None):
        self.x_dim = check_int("x_dim", x_dim)
        self.z_dim = check_int("z_dim", z_dim)
        self.hidden = _hidden(hidden)
        act = _activation(activation)
        self.activation = act[0] if isinstance(activation, str) else activation
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        self.sigma_param = check_choice("sigma_param", sigma_param, SIGMA_HEADS)
        self.decoder_mean = check_choice("decoder_mean", decoder_mean, DECODER_MEANS)
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.decoder_sigma = check_positive("decoder_sigma", decoder_sigma)
        self.decoder_sigma_min = check_positive("decoder_sigma_min", decoder_sigma_min,
                                                allow_zero=True)
        if init_std is not None:
            init_std = check_positive("init_std", init_std)
        self.init_std = init_std
        self.flow, self.flow_length = _flow(flow, flow_length)
        self.dtype = check_dtype("dtype", dtype)
        self.seed = check_int("seed", seed, minimum=0)
        self.rng = np.random.default_rng(seed)

        spec = self._spec()
        self._store = FlatParameters(spec, self.dtype)
        self.flat, self.grad_flat = self._store.flat, self._store.grad_flat
        self.params, self.grads = self._store.params, self._store.grads
        self.n_encoder = self._store.slices[self._posterior_spec(1)[-1][0] + ".b"].stop
        self._build_components(act)
        self._initialize(spec)

    # ------------------------------------------------------------------ construction
    def _spec(self):
        """[(parameter name, shape)] in forward order: the flat vectors' layout."""
        depth = len(self.hidden)
        dims_enc = (self.x_dim,) + self.hidden
        dims_dec = (self.z_dim,) + self.hidden[::-1]
        layers = [(f"encoder.{i}", (dims_enc[i], dims_enc[i + 1])) for i in range(depth)]
        layers += self._posterior_spec(dims_enc[-1])
        layers += [(f"decoder.{i}", (dims_dec[i], dims_dec[i + 1])) for i in range(depth)]
        layers += [(head, (dims_dec[-1], self.x_dim))
                   for head in LIKELIHOOD_COMPONENTS[self.likelihood].heads]
        spec = []
        for prefix, shape in layers:
            spec += [(prefix + ".W", shape), (prefix + ".b", (shape[1],))]
        return spec

    def _posterior_spec(self, width):
        if self.flow is None:
            return DiagonalGaussian.param_spec(width, self.z_dim)
        return FlowPosterior.param_spec(width, self.z_dim, self.flow, self.flow_length)

    def _build_components(self, activation):
        depth = len(self.hidden)
        store = self._store
        self.encoder = MLP([Dense(store, f"encoder.{i}") for i in range(depth)], activation,
                           "a", "h", "x")
        sigma_head = SIGMA_HEADS[self.sigma_param](self.sigma_min)
        if self.flow is None:
            self.posterior = DiagonalGaussian(store, sigma_head, self.encoder.output_name)
        else:
            self.posterior = FlowPosterior(store, sigma_head, self.encoder.output_name, self.flow,
                                           self.flow_length, self.z_dim)
        self.decoder = MLP([Dense(store, f"decoder.{i}") for i in range(depth)], activation,
                           "c", "g", "z")
        settings = DecoderSettings(self.decoder_sigma, self.decoder_sigma_min, self.decoder_mean)
        likelihood = LIKELIHOOD_COMPONENTS[self.likelihood]
        self.decoder_likelihood = likelihood(store, self.decoder.output_name, settings)
        self.objectives = {(name, "standard"): cls() for name, cls in OBJECTIVES.items()}
        refused = getattr(self.posterior, "refused_estimators", {})
        self.objectives.update({key: cls() for key, cls in ESTIMATORS.items()
                                if key[1] not in refused})
        self.objective = self.objectives["elbo", "standard"]     # the default objective

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
        """The constructor arguments as a JSON-serialisable dict (``VAE(**config)`` rebuilds it)."""
        return dict(x_dim=self.x_dim, hidden=list(self.hidden), z_dim=self.z_dim,
                    activation=self.activation, likelihood=self.likelihood,
                    sigma_param=self.sigma_param, dtype=self.dtype.name, seed=self.seed,
                    sigma_min=self.sigma_min, decoder_sigma=self.decoder_sigma,
                    decoder_sigma_min=self.decoder_sigma_min, decoder_mean=self.decoder_mean,
                    init_std=self.init_std, flow=self.flow, flow_length=self.flow_length)

    def __repr__(self):
        arch = "-".join(map(str, (self.x_dim,) + self.hidden + (self.z_dim,)))
        act = self.activation if isinstance(self.activation, str) else "custom activation"
        flow = "" if self.flow is None else f"{self.flow} flow x {self.flow_length}, "
        return (f"VAE({arch}, {act}, {self.likelihood}, sigma={self.sigma_param}, {flow}"
                f"{self.dtype.name}, {self.flat.size} parameters)")

    # ------------------------------------------------------------------ inputs
    def _batch(self, x):
        return as_batch("x", x, self.x_dim, self.dtype,
                        unit_interval=self.decoder_likelihood.unit_interval)

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
        check_representable("eps", eps, self.dtype)
        return eps.astype(self.dtype, copy=False)

    # ------------------------------------------------------------------ one step
    def forward(self, x, eps, nudges=None, objective="elbo", estimator="standard") -> Trace:
        """The forward pass on a prepared batch: a Trace with every intermediate by name.

        Parameters
        ----------
        x : (B, x_dim) array of the model's dtype (``trace`` and ``loss_and_grads`` check and
            convert user data; this low-level method, used by ``fit``, only checks shapes)
        eps : (K, B, z_dim) array of the model's dtype
        nudges : optional dict name -> array added to that quantity where it is computed (see
            ``vae_np.core.trace``)
        objective : "elbo" (the negative ELBO, analytic KL) or "iwae" (the negative
            importance-weighted bound over the K samples); ``vae_np.core.objective``
        estimator : "standard" (the loss's own gradient) or, for "iwae", "dreg" (the
            doubly-reparameterized encoder gradient: an unbiased estimator, not the gradient of
            this batch's loss)
        """
        if not (isinstance(x, np.ndarray) and isinstance(eps, np.ndarray) and x.ndim == 2
                and eps.ndim == 3 and x.shape[1] == self.x_dim
                and eps.shape[1:] == (x.shape[0], self.z_dim)):
            raise ValueError(f"forward needs x (B, {self.x_dim}) and eps (K, B, {self.z_dim}) "
                             f"arrays, got x {np.shape(x)} and eps {np.shape(eps)}")
        t = Trace(nudges)
        t.objective = self._objective(objective, estimator)
        x = t.record("x", x, "the data batch")
        h = self.encoder.forward(t, x)                  # a1, h1, ...
        z = self.posterior.forward(t, h, eps)           # mu, s, sigma, eps, z, kl
        K, B, Z = z.shape
        g = self.decoder.forward(t, z.reshape(K * B, Z))  # c1, g1, ... (rows: K x B samples)
        self.decoder_likelihood.forward(t, g, x, K)     # logits or x~ (and r), nll
        t.objective.forward(t, self.posterior)          # loss
        if nudges:
            t.check_nudges()
        return t

    def backward(self, t: Trace) -> Trace:
        """The backward pass: fill t.grads with d loss / d <name> for every quantity and
        parameter, writing the parameter gradients into ``grad_flat``. Returns t."""
        if not isinstance(t, Trace) or "loss" not in t.values or t.grads:
            raise ValueError(f"backward needs the Trace that forward(x, eps) returned, not yet "
                             f"through backward; got {t!r}")
        d = t.grads
        t.objective.backward(t)                         # d nll, d kl (or d ln p(z), d ln q)
        dg = self.decoder_likelihood.backward(t)        # d logits (or d x~, d r) -> d g
        dz = self.decoder.backward(t, dg)               # -> d c, d g of every layer -> d z
        d["z"] = dz.reshape(t.values["z"].shape)
        need_dh = bool(self.encoder.layers)             # with no hidden layer, h is the data
        dh = self.posterior.backward(t, need_dh)        # d mu, d sigma, d s -> d h
        if need_dh:
            self.encoder.backward(t, dh, need_dx=False)  # -> d a, d h of every layer
        return t

    def _objective(self, name, estimator="standard"):
        try:                    # the common case costs one dict lookup per step
            return self.objectives[name, estimator]
        except (KeyError, TypeError):
            pass
        check_choice("objective", name, OBJECTIVES)
        check_choice("estimator", estimator, ("standard",) + tuple(e for _, e in ESTIMATORS))
        refused = getattr(self.posterior, "refused_estimators", {})
        if estimator in refused:
            raise ValueError(f"estimator={estimator!r} is not supported with flow={self.flow!r}: "
                             f"{refused[estimator]}")
        if (name, estimator) not in self.objectives:
            raise ValueError(f"estimator={estimator!r} applies to objective="
                             f"{[o for o, e in ESTIMATORS if e == estimator]}, not {name!r}")
        return self.objectives[name, estimator]

    def grad_equations(self, objective="elbo") -> dict:
        """name -> the backward equation of d<name>, for every quantity of the trace (but the
        inputs x and eps) and every parameter, from the components that compute them."""
        obj = self._objective(objective)
        eq = dict(obj.grad_equations)
        for component in (self.decoder_likelihood, self.decoder, self.encoder):
            eq.update(component.grad_equations())
        eq.update(self.posterior.grad_equations(obj.uses_sample_terms))
        if obj.uses_sample_terms:                       # ln p(z) reads z too
            eq["z"] += " - dln p(z) * z"
        return eq

    # ------------------------------------------------------------------ public API
    def trace(self, x, k=1, eps=None, rng=None, objective="elbo", estimator="standard") -> Trace:
        """One training step with every intermediate and its gradient, by derivation name.

        Parameters are those of ``loss_and_grads``. Returns a ``vae_np.core.trace.Trace`` whose
        ``values`` and ``grads`` are dicts keyed by the names listed in ``vae_np.core.trace`` (x, a1,
        h1, ..., mu, s, sigma, eps, z, kl, c1, g1, ..., logits or x~, nll, loss); ``grads`` also
        holds every parameter's gradient under its name in ``params``. With
        ``objective="iwae"`` the trace also holds log_pz, log_q and log_w (K, B).
        """
        x = self._batch(x)
        return self.backward(self.forward(x, self._noise(x.shape[0], k, eps, rng),
                                          objective=objective, estimator=estimator))

    def loss_and_grads(self, x, k=1, eps=None, rng=None, objective="elbo", estimator="standard"):
        """Negative ELBO, or IWAE bound, (mean over the batch, nats per example) and its gradient.

        Parameters
        ----------
        x : (B, x_dim) float in the model's range (uint8 is scaled by 1/255)
        k : int >= 1, Monte Carlo samples per example
        eps : (K, B, z_dim), or (B, z_dim) when k = 1; frozen noise makes the loss deterministic
        rng : numpy.random.Generator for eps (default: the model's own ``rng``)
        objective : "elbo": loss = mean_b [1/K sum_k -ln p(x|z_k) + KL(q || p(z))]; "iwae":
            loss = -mean_b [logsumexp_k ln w_k - ln K], ln w = ln p(x, z) - ln q(z|x)
        estimator : "standard", or "dreg" with "iwae": the decoder's gradient is the IWAE one,
            the encoder's the doubly-reparameterized estimator (not this batch's gradient)

        Returns
        -------
        loss : float
        grads : dict name -> array, the same keys and shapes as ``params``. These are views of
            ``grad_flat`` and are overwritten by the next call: copy them to keep them.
        """
        return self.trace(x, k, eps, rng, objective, estimator).loss, self.grads

    def elbo_terms(self, x, k=1, eps=None, rng=None):
        """Per-example terms of the negative ELBO (forward only).

        Returns
        -------
        recon : (B,) 1/K sum_k -ln p(x_b | z_bk);   kl : (B,) KL(q(z|x_b) || N(0, I))
        """
        v = self._forward_values(x, k, eps, rng)
        return v["nll"].mean(axis=0), v["kl"]

    def loss(self, x, k=1, eps=None, rng=None, objective="elbo"):
        """The loss alone (mean over the batch), without computing gradients."""
        return float(self._forward_values(x, k, eps, rng, objective)["loss"])

    def _forward_values(self, x, k, eps, rng, objective="elbo"):
        x = self._batch(x)
        return self.forward(x, self._noise(x.shape[0], k, eps, rng), objective=objective).values

    def encode(self, x):
        """Parameters of q(z|x): mu, sigma, each (B, z_dim)."""
        h = self.encoder.forward(Trace(), self._batch(x))
        return self.posterior.encode(h)

    def decode(self, z):
        """Mean of p(x|z), (N, x_dim): Bernoulli probabilities sigmoid(logits) or Gaussian mean."""
        z = check_array("z", z, ndim=2)
        if z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {z.shape}")
        check_representable("z", z, self.dtype)
        g = self.decoder.forward(Trace(), z.astype(self.dtype, copy=False))
        return self.decoder_likelihood.mean(g)

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
        (z - mu)/sigma = eps exactly (``posterior.sample_terms``, as the IWAE objective records
        them). Their mean over k is the ELBO with a Monte Carlo KL; the log-mean-exp over k is
        the IWAE bound.
        """
        return self._forward_values(x, k, eps, rng, objective="iwae")["log_w"]
