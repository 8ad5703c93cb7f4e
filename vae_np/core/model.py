"""The Variational Autoencoder: encoder q_phi(z|x), decoder p_theta(x|z), prior p(z).

One training step computes the negative ELBO and its gradient by hand (docs/design.md walks
through it):

    x -> encoder MLP -> h -> posterior (mu, s -> sigma, z = mu + sigma * eps) -> prior, KL (kl)
      -> decoder MLP -> g -> likelihood (logits or mean, nll) -> objective (loss)

The model is that pipeline of components, each chosen once at construction: the encoder and
decoder stacks (``layers.MLP``), the posterior family (``posterior.POSTERIOR_FAMILIES``, the
design card's ``DiagonalGaussian`` by default), the prior (``prior.PRIORS``, N(0, I) by default)
and the KL term the two offer together (closed form, or Monte Carlo), the likelihood
(``likelihood.LIKELIHOOD_COMPONENTS``) and the objective, found by name per step
(``objective.OBJECTIVES``; ``NegativeELBO`` by default). Every intermediate is recorded in a
``Trace`` under its derivation name; the backward pass is the same pipeline in reverse and fills
d<name> for each. The model names no extension: a posterior family or prior is chosen by its own
keywords (``vae_np.core.registry``), an objective by its registered name.

Backward order (each component reads the gradients that arrived on its outputs):

    objective.backward          d loss / d nll, kl (and ln p(z), ln q(z|x), ... if it read them)
    likelihood, decoder         -> d z along the decoder's path
    objective.backward_z        the hook on that path (DReG reweights it)
    kl_term.backward            d kl -> d mu, d sigma (closed form) or d ln q, d ln p(z) (Monte Carlo)
    prior.backward              d ln p(z) -> d z (and its parameters)
    posterior.backward          d z, d ln q, ... -> d h (and its parameters)
    encoder.backward            -> every encoder layer
    prior.backward_shared       gradients into parameters the prior shares with the encoder

A prior may name the decoder's input (``decoder_input``, the two-layer prior's alias ``z1_x``):
the decoder's share of d z is then recorded under that name and the prior sums the shares into
d z. An objective is a registered name or an instance (``vae_np.objectives.KLWarmup(...)``); a
prior may refuse a capability an objective needs (``prior.unavailable``, e.g. DReG's path
gradient).
"""
from __future__ import annotations

import copy

import numpy as np

from .. import ops
from .._validate import (check_array, check_choice, check_dtype, check_int, check_positive,
                         check_rng, check_widths)
from .batch import as_batch, check_representable
from .layers import MLP, Dense, FlatParameters
from .likelihood import LIKELIHOOD_COMPONENTS, MEAN_LINKS, DecoderSettings
from .objective import ESTIMATORS, OBJECTIVES, Objective, log_weights
from .posterior import POSTERIOR_FAMILIES, SIGMA_HEADS
from .prior import PRIORS
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
    return check_widths("hidden", hidden, "(400,) or (400, 400)")


FAMILIES = (POSTERIOR_FAMILIES, PRIORS)
"""The registries whose families ``VAE`` chooses by keyword options, in config order."""
DEFAULT_OBJECTIVE = "elbo"


def _choose_families(options):
    """[(name, class, checked options)] of the posterior family and the prior the keyword
    ``options`` ask for; TypeError for a keyword no registered family reads (as Python
    says for any unknown keyword)."""
    known = {name for registry in FAMILIES for name in registry.keywords()}
    unknown = [name for name in options if name not in known]
    if unknown:
        raise TypeError(f"VAE() got an unexpected keyword argument {unknown[0]!r}")
    return [registry.choose(options) for registry in FAMILIES]


def _entries(spec):
    """A component's parameter entries as [(name, shape, init)]: a dense layer's
    (prefix, (n_in, n_out)) becomes its W and b with init None (the layers' rule)."""
    out = []
    for entry in spec:
        if len(entry) == 3:
            out.append(tuple(entry))
        else:
            prefix, shape = entry
            out += [(prefix + ".W", shape, None), (prefix + ".b", (shape[1],), None)]
    return out


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
    **options                 the keywords of a registered posterior family or prior, which
                              choose it (``vae_np.core.registry``); none: the diagonal Gaussian
                              q(z|x) and p(z) = N(0, I). ``vae_np.flows`` registers ``flow``
                              ("planar" or "radial") and ``flow_length`` (L >= 0 steps): that
                              Gaussian followed by L amortized flow steps, with a Monte Carlo KL.
                              ``vae_np.priors`` registers the VampPrior (``prior="vamp"``,
                              ``pseudo_inputs=M``) and a second stochastic layer (``z2_dim``,
                              ``hidden2``, ``top_kl``; its top prior is the one ``prior`` names).
                              Each option is also an attribute of the model (``model.flow``;
                              ``config()["prior"]`` names the prior, ``model.prior`` is it).

    Attributes
    ----------
    params, grads : dict name -> array, views into ``flat`` / ``grad_flat``; names in forward
        order: encoder.{i}.W/b, encoder.mu.W/b, encoder.sigma.W/b, decoder.{i}.W/b,
        decoder.out.W/b (and decoder.logsigma.W/b). W has shape (in, out).
    n_encoder : int  the encoder's parameters are ``flat[:n_encoder]``, the decoder's (and the
        prior's) the rest
    encoder, decoder : layers.MLP;  posterior : a posterior family (posterior.DiagonalGaussian);
    prior : a prior (prior.StandardNormal);  kl_term : the pair's KL component;
    decoder_likelihood : a likelihood.LIKELIHOOD_COMPONENTS value;  objective : NegativeELBO
    noise_dim : standard normal numbers per (sample, example): eps is (K, B, noise_dim), the
        posterior's (z_dim) followed by the prior's (0 for N(0, I), z2_dim for two layers)
    rng : numpy.random.Generator seeded by ``seed``; used when no rng or eps is passed
    """

    def __init__(self, x_dim, hidden=(400,), z_dim=20, activation="relu", likelihood="bernoulli",
                 sigma_param="logvar", dtype=np.float64, seed=0, *, sigma_min=1e-4,
                 decoder_sigma=1.0, decoder_sigma_min=0.0, decoder_mean="identity", init_std=None,
                 **options):
        self.x_dim = check_int("x_dim", x_dim)
        self.z_dim = check_int("z_dim", z_dim)
        self.hidden = _hidden(hidden)
        act = _activation(activation)
        self.activation = act[0] if isinstance(activation, str) else activation
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOOD_COMPONENTS)
        self.sigma_param = check_choice("sigma_param", sigma_param, SIGMA_HEADS)
        self.decoder_mean = check_choice("decoder_mean", decoder_mean, DECODER_MEANS)
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.decoder_sigma = check_positive("decoder_sigma", decoder_sigma)
        self.decoder_sigma_min = check_positive("decoder_sigma_min", decoder_sigma_min,
                                                allow_zero=True)
        if init_std is not None:
            init_std = check_positive("init_std", init_std)
        self.init_std = init_std
        posterior, prior = _choose_families(options)
        _, self._posterior_family, self.posterior_options = posterior
        _, self._prior_family, self.prior_options = prior
        self._selected = {r.selector: r.selected(choice) for r, choice
                          in zip(FAMILIES, (posterior, prior)) if r.selector}   # prior="vamp"
        self.dtype = check_dtype("dtype", dtype)
        self.seed = check_int("seed", seed, minimum=0)
        self.rng = np.random.default_rng(seed)

        spec, n_encoder = self._spec()
        self._store = FlatParameters([(name, shape) for name, shape, _ in spec], self.dtype)
        self.flat, self.grad_flat = self._store.flat, self._store.grad_flat
        self.params, self.grads = self._store.params, self._store.grads
        self.n_encoder = self._store.slices[spec[n_encoder - 1][0]].stop
        self._build_components(act)
        self._initialize(spec)
        for registry in FAMILIES:           # each family option as an attribute (model.flow)
            for name, default in registry.option_defaults().items():
                if hasattr(self, name):
                    raise ValueError(f"{registry.kind} option {name!r} would shadow the VAE "
                                     f"attribute of that name; rename the option")
                setattr(self, name, self._options().get(name, default))

    # ------------------------------------------------------------------ construction
    def _options(self):
        """The chosen families' options, keyword -> value."""
        return {**self.posterior_options, **self.prior_options}

    def _spec(self):
        """([(parameter name, shape, init)] in forward order: the flat vectors' layout; the number
        of entries that are the encoder's, its layers and the posterior's)."""
        depth = len(self.hidden)
        dims_enc = (self.x_dim,) + self.hidden
        dims_dec = (self.z_dim,) + self.hidden[::-1]
        encoder = [(f"encoder.{i}", (dims_enc[i], dims_enc[i + 1])) for i in range(depth)]
        encoder += self._posterior_family.param_spec(dims_enc[-1], self.z_dim,
                                                     **self.posterior_options)
        decoder = [(f"decoder.{i}", (dims_dec[i], dims_dec[i + 1])) for i in range(depth)]
        decoder += [(head, (dims_dec[-1], self.x_dim))
                    for head in LIKELIHOOD_COMPONENTS[self.likelihood].heads]
        encoder = _entries(encoder)
        return (encoder + _entries(decoder)
                + _entries(self._prior_family.param_spec(self, **self.prior_options)),
                len(encoder))

    def _build_components(self, activation):
        depth = len(self.hidden)
        store = self._store
        self.encoder = MLP([Dense(store, f"encoder.{i}") for i in range(depth)], activation,
                           "a", "h", "x")
        sigma_head = SIGMA_HEADS[self.sigma_param](self.sigma_min)
        self.posterior = self._posterior_family(store, sigma_head, self.encoder.output_name,
                                                self.z_dim, **self.posterior_options)
        # the decoder reads z under the name the prior gives it: "z", or an alias that the prior
        # records so that the decoder's share of d z is a line of its own (the two-layer prior)
        self.decoder = MLP([Dense(store, f"decoder.{i}") for i in range(depth)], activation,
                           "c", "g", getattr(self._prior_family, "decoder_input", "z"))
        settings = DecoderSettings(self.decoder_sigma, self.decoder_sigma_min, self.decoder_mean)
        likelihood = LIKELIHOOD_COMPONENTS[self.likelihood]
        self.decoder_likelihood = likelihood(store, self.decoder.output_name, settings)
        self.prior = self._prior_family(self, store, **self.prior_options)
        self.kl_term = self.prior.kl_term(self.posterior)    # closed form if the pair has one
        self.noise_dim = self.posterior.noise_dim + self.prior.noise_dim
        self._objectives = {}                # (name, estimator) -> instance, built on first use
        self.objective = self._objective(DEFAULT_OBJECTIVE)

    def _initialize(self, spec):
        init_rng = np.random.default_rng(self.seed)
        for name, shape, init in spec:
            if init is not None:            # a component's own rule (drawn after the layers')
                self.params[name][...] = init(init_rng, shape)
                continue
            fan_in = self.params[name[:-2] + ".W"].shape[0]
            if self.init_std is None:
                bound = 1 / np.sqrt(fan_in)
                values = init_rng.uniform(-bound, bound, size=shape)
            else:
                values = init_rng.normal(0.0, self.init_std, size=shape)
            self.params[name][...] = values

    def replica(self) -> "VAE":
        """A twin of this model for another thread: the same parameters, its own gradients.

        The twin's ``flat`` and every ``params`` view are this model's (``FlatParameters.replica``)
        and its components are built anew on a gradient vector ``grad_flat`` of its own, so its
        forward and backward read the shared parameters and write only its own gradients. The
        objective instances are shared too (an objective's per-epoch state, KL warm-up's beta,
        is the model's). ``fit(threads=N)`` runs one shard of each batch on each of N - 1
        replicas and the model itself. The twin draws no noise: ``rng`` is this model's.
        """
        twin = copy.copy(self)
        twin._store = self._store.replica()
        twin.grad_flat, twin.grads = twin._store.grad_flat, twin._store.grads
        twin._build_components(_activation(self.activation))
        twin._objectives, twin.objective = self._objectives, self.objective
        return twin

    def config(self) -> dict:
        """The constructor arguments as a JSON-serialisable dict (``VAE(**config)`` rebuilds it)."""
        return dict(x_dim=self.x_dim, hidden=list(self.hidden), z_dim=self.z_dim,
                    activation=self.activation, likelihood=self.likelihood,
                    sigma_param=self.sigma_param, dtype=self.dtype.name, seed=self.seed,
                    sigma_min=self.sigma_min, decoder_sigma=self.decoder_sigma,
                    decoder_sigma_min=self.decoder_sigma_min, decoder_mean=self.decoder_mean,
                    init_std=self.init_std, **self._selected,
                    **{name: self._options().get(name, default) for registry in FAMILIES
                       for name, default in registry.option_defaults().items()})

    def __repr__(self):
        arch = "-".join(map(str, (self.x_dim,) + self.hidden + (self.z_dim,)))
        act = self.activation if isinstance(self.activation, str) else "custom activation"
        labels = "".join(f"{c.label}, " for c in (self.posterior, self.prior) if c.label)
        return (f"VAE({arch}, {act}, {self.likelihood}, sigma={self.sigma_param}, {labels}"
                f"{self.dtype.name}, {self.flat.size} parameters)")

    # ------------------------------------------------------------------ inputs
    def _batch(self, x):
        return as_batch("x", x, self.x_dim, self.dtype,
                        unit_interval=self.decoder_likelihood.unit_interval)

    def _noise(self, batch, k, eps, rng):
        k = check_int("k", k)
        n = self.noise_dim
        if eps is None:
            rng = self.rng if rng is None else check_rng("rng", rng)
            return rng.standard_normal((k, batch, n), dtype=self.dtype)
        eps = check_array("eps", eps)
        expected = (batch, n) if k == 1 else (k, batch, n)
        if eps.shape == (batch, n) and k == 1:
            eps = eps[None]
        elif eps.shape != (k, batch, n):
            width = "z_dim" if n == self.z_dim else "noise_dim"
            raise ValueError(f"eps must have shape {expected} (k, batch, {width}) for k={k}, "
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
        eps : (K, B, noise_dim) array of the model's dtype (noise_dim = z_dim but for a prior
            that draws noise of its own, whose numbers follow the posterior's)
        nudges : optional dict name -> array added to that quantity where it is computed (see
            ``vae_np.core.trace``)
        objective : a registered objective's name (``vae_np.core.objective.OBJECTIVES``):
            "elbo" (the negative ELBO) or "iwae" (the negative importance-weighted bound over the
            K samples, ``vae_np.objectives``)
        estimator : "standard" (the loss's own gradient) or, for "iwae", "dreg" (the
            doubly-reparameterized encoder gradient: an unbiased estimator, not the gradient of
            this batch's loss)
        """
        if not (isinstance(x, np.ndarray) and isinstance(eps, np.ndarray) and x.ndim == 2
                and eps.ndim == 3 and x.shape[1] == self.x_dim
                and eps.shape[1:] == (x.shape[0], self.noise_dim)):
            raise ValueError(f"forward needs x (B, {self.x_dim}) and eps (K, B, {self.noise_dim}) "
                             f"arrays, got x {np.shape(x)} and eps {np.shape(eps)}")
        t = Trace(nudges)
        t.objective = self._objective(objective, estimator)
        n_q = self.posterior.noise_dim
        x = t.record("x", x, "the data batch")
        h = self.encoder.forward(t, x)                  # a1, h1, ...
        z = self.posterior.forward(t, h, eps[..., :n_q])  # mu, s, sigma, eps, z (...)
        self.prior.forward(t, eps[..., n_q:])           # (the prior's own noise, if any)
        self.kl_term.forward(t)                         # kl
        K, B, Z = z.shape
        z = t.values[self.decoder.inputs[0]]            # z, or the prior's alias of it
        g = self.decoder.forward(t, z.reshape(K * B, Z))  # c1, g1, ... (rows: K x B samples)
        self.decoder_likelihood.forward(t, g, x, K)     # logits or x~ (and r), nll
        t.objective.forward(t, self)                    # loss
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
        d[self.decoder.inputs[0]] = dz.reshape(t.values["z"].shape)   # (or d of z's alias)
        t.objective.backward_z(t)                       # the objective's hook on that path
        self.kl_term.backward(t)                        # d kl -> d mu, d sigma (or d ln q, ln p)
        self.prior.backward(t)                          # d ln p(z) -> d z
        need_dh = bool(self.encoder.layers)             # with no hidden layer, h is the data
        dh = self.posterior.backward(t, need_dh)        # d z, d mu, d sigma, ... -> d h
        if need_dh:
            self.encoder.backward(t, dh, need_dx=False)  # -> d a, d h of every layer
        self.prior.backward_shared(t)                   # its share of the encoder's parameters
        return t

    def _objective(self, name, estimator="standard"):
        """The objective instance for (name, estimator), built and checked on first use: a
        ValueError names a wrong name, an estimator registered for other objectives, or a
        capability the objective needs and the posterior (or the prior) lacks, with its reason.

        ``name`` may also be an objective instance (an ``Objective`` built with options, such
        as ``vae_np.objectives.KLWarmup(warmup_epochs=10)``): it is checked once and used as
        it is, with estimator "standard"."""
        try:                    # the common case costs one dict lookup per step
            return self._objectives[name, estimator]
        except (KeyError, TypeError):
            pass
        if isinstance(name, Objective):
            if estimator != "standard":
                raise ValueError(f"estimator must be 'standard' with an objective instance "
                                 f"({type(name).__name__}), got {estimator!r}")
            self._check_requires(name, f"objective={type(name).__name__}", "another objective")
            self._objectives[name, estimator] = name
            return name
        check_choice("objective", name, OBJECTIVES)
        check_choice("estimator", estimator, ("standard",) + tuple(e for _, e in ESTIMATORS))
        cls = OBJECTIVES[name] if estimator == "standard" else ESTIMATORS.get((name, estimator))
        if cls is None:
            raise ValueError(f"estimator={estimator!r} applies to objective="
                             f"{[o for o, e in ESTIMATORS if e == estimator]}, not {name!r}")
        self._check_requires(cls, *((f"objective={name!r}", "another objective")
                                    if estimator == "standard" else
                                    (f"estimator={estimator!r}", "estimator='standard'")))
        self._objectives[name, estimator] = cls()
        return self._objectives[name, estimator]

    def _check_requires(self, objective, asked, instead):
        """ValueError unless the posterior offers every capability ``objective.requires`` and
        the prior does not refuse it (a prior's optional ``unavailable``: capability -> why), and
        a prior with parameters offers every one of ``objective.prior_requires``."""
        for capability, need in objective.requires.items():
            if capability not in self.posterior.capabilities:
                options = ", ".join(f"{k}={v!r}" for k, v in self.posterior_options.items())
                why = self.posterior.unavailable.get(capability, "this posterior does not offer it")
                raise ValueError(f"{asked} is not supported with {options or 'this posterior'}: "
                                 f"{need}, and {why}; use {instead}")
            refused = getattr(self.prior, "unavailable", {})
            if capability in refused:
                raise ValueError(f"{asked} is not supported with {self.prior.label}: {need}, "
                                 f"and {refused[capability]}; use {instead}")
        offered = getattr(self.prior, "capabilities", frozenset())
        for capability, need in getattr(objective, "prior_requires", {}).items():
            # only a prior with parameters of its own is asked (vae_np.core.prior)
            if (capability not in offered
                    and self._prior_family.param_spec(self, **self.prior_options)):
                label = self.prior.label or "this prior"
                raise ValueError(f"{asked} is not supported with {label}: {need}, and this "
                                 f"prior's backward does not read it (its parameters would get "
                                 f"a biased gradient); use {instead}")

    def grad_equations(self, objective="elbo") -> dict:
        """name -> the backward equation of d<name>, for every quantity of the trace (but the
        inputs x and eps) and every parameter, from the components that compute them.

        Each component adds the equations of the gradients it computes; a component upstream of
        another learns from ``eq`` which of its outputs received a gradient (an equation for
        d log_q means someone read ln q), and from ``terms`` the terms others send to its
        quantities (the closed-form KL's dkl * mu)."""
        obj = self._objective(objective)
        eq = dict(obj.grad_equations)
        for component in (self.decoder_likelihood, self.decoder, self.encoder):
            eq.update(component.grad_equations())
        terms = {}
        # the prior last: a prior that shares the encoder's weights (the VampPrior) adds its
        # share to the equations of the heads, which the posterior writes
        for component in (self.kl_term, self.posterior, self.prior):
            component.grad_equations(eq, terms)
        return eq

    # ------------------------------------------------------------------ public API
    def trace(self, x, k=1, eps=None, rng=None, objective="elbo", estimator="standard") -> Trace:
        """One training step with every intermediate and its gradient, by derivation name.

        Parameters are those of ``loss_and_grads``. Returns a ``vae_np.core.trace.Trace`` whose
        ``values`` and ``grads`` are dicts keyed by the names listed in ``vae_np.core.trace`` (x, a1,
        h1, ..., mu, s, sigma, eps, z, kl, c1, g1, ..., logits or x~, nll, loss); ``grads`` also
        holds every parameter's gradient under its name in ``params``. With
        ``objective="iwae"`` (or a Monte Carlo KL) the trace also holds log_pz, log_q (and log_w)
        (K, B).
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
        eps : (K, B, noise_dim), or (B, noise_dim) when k = 1 (noise_dim = z_dim unless the
            prior draws noise of its own); frozen noise makes the loss deterministic
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
        recon : (B,) 1/K sum_k -ln p(x_b | z_bk);   kl : (B,) KL(q(z|x_b) || p(z)), the model's
            KL term (closed form for the diagonal Gaussian and N(0, I), else Monte Carlo over k)
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
        """n draws of the decoder mean at z ~ p(z) (N(0, I) by default): (n, x_dim)."""
        n = check_int("n", n)
        rng = self.rng if rng is None else check_rng("rng", rng)
        return self.decode(self.prior.sample(n, rng))

    def reconstruct(self, x):
        """Decoder mean at z = mu(x), the posterior mean: (B, x_dim)."""
        return self.decode(self.encode(x)[0])

    def log_weights(self, x, k=1, eps=None, rng=None):
        """Importance log-weights ln p(x, z_k) - ln q(z_k | x) for z_k ~ q(z|x): (K, B).

        ln w = -nll + ln p(z) - ln q(z|x): the prior's and the posterior's ``log_density`` (for
        the diagonal Gaussian, ln N(z; mu, sigma^2) with (z - mu)/sigma = eps exactly), as the
        IWAE objective records them. Their mean over k is the ELBO with a Monte Carlo KL; the
        log-mean-exp over k is the IWAE bound.
        """
        x = self._batch(x)
        trace = self.forward(x, self._noise(x.shape[0], k, eps, rng))
        return log_weights(trace, self)
