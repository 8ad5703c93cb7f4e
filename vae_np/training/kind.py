"""The protocol between the training loop and a kind of model, and the registry of kinds.

``vae_np.fit`` trains any model whose class is registered here. It owns what every kind shares
(the shuffled mini-batches, the divergence guard, the optimizer steps, the callbacks, the
per-epoch history, held-out monitors and keeping the best epoch) and asks the model's *kind*
for the rest, through the methods below. One epoch of ``fit``, with the hooks in order::

    kind = KIND(model, **options)           the kind's own fit keywords, checked
    X = kind.check_data(X)
    kind.begin(X, rng, batch_size, first_epoch)                   (hook: a VQ codebook's init)
    for each epoch:
        kind.begin_epoch(epoch)             (hook: an objective's per-epoch state, KL warm-up)
        order = rng.permutation(N)
        for each batch of order:
            x = kind.batch(X, index, rng)
            terms = kind.gradient(x, rng)   fills grad_flat; terms[0] is the loss
                                            (= kind.run(model, kind.draw(x, rng)); with
                                            threads, one run per shard of the batch)
            guard: terms[0] and |grad_flat|^2 finite, else TrainingDivergedError
            optimizer.step(flat, grad_flat)  (schedule="alternating": one group at a time,
                                              each from a fresh gradient)
            kind.after_step()                 (hook: the EMA codebook; reads kind.outputs)
        row = epoch, mean of each term over the examples, kind.end_epoch(rng) (hook: dead codes
              re-seeded, usage, perplexity), monitors, seconds

With ``fit(threads=N)`` (:mod:`vae_np.training.threads`) a step is split into N shards of the
batch: ``draw`` makes the step's inputs on the calling thread, ``run`` is called once per shard,
each on its own model (``replica``: the same parameters, its own gradient vector), and the
shards' terms and gradients are combined weighted by their share of the batch. A kind whose
terms and gradient are means over the batch's examples, each computed from that example alone,
implements ``draw``, ``run`` and ``batch_axes`` and gets this; ``can_shard`` says whether it
can (a kind that overrides ``gradient`` alone trains on one thread).

A kind is a subclass of :class:`ModelKind` registered with ``MODEL_KINDS.register(name, cls)``:
the VAE's is ``vae_np.training.vae``, the VQ-VAE's ``vae_np.vq.train``, the MADE prior's
``vae_np.vq.prior``. Nothing in the loop names a kind, an objective or an extension.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_array
from ..core.batch import check_representable, check_unit_interval, to_float
from ..core.registry import Registry


class ModelKind:
    """How ``fit`` trains one kind of model (the protocol; the defaults suit a model on images).

    Attributes
    ----------
    model_class : the class of the models this kind trains (``isinstance``)
    options : dict keyword -> default, the keywords of ``fit`` this kind reads (e.g. ``k``,
        ``objective``, ``binarize``; its own, e.g. ``reseed``). ``fit`` refuses any other
        keyword, and any of its shared ones (k, objective, estimator, binarize) set away from
        its default, with ``ValueError("k does not apply to a VQVAE")``.
    history_keys : names of the terms ``gradient`` returns, in its order; the first is the loss
        that the divergence guard and the "step" callback read. Each becomes a history column,
        the term averaged over the epoch's examples.
    epoch_keys : names of the columns ``end_epoch`` returns
    groups : None, or the parameter groups (slices of ``flat``) that ``schedule="alternating"``
        steps in turn, each from a fresh gradient (a VAE: encoder, decoder); None refuses it.
    batch_axes : for each array ``draw`` returns, the axis along which its examples lie (x:
        0; a VAE's eps (K, B, noise_dim): 1): the axis a shard is cut along.
    outputs : dict name -> array of the last step (examples along axis 0), what ``run``
        returned for the hooks to read (whole-batch: with threads, concatenated over shards).

    The instance holds ``model``; ``flat`` and ``grad_flat`` are the model's flat parameter and
    gradient vectors (every parameter a view into them), which the optimizers update in place.
    """
    model_class = object
    options: dict = {}
    history_keys: tuple = ("loss",)
    epoch_keys: tuple = ()
    groups = None
    batch_axes: tuple = (0,)
    rows_per_example: int = 1
    """The rows each example gives the step's matrix products (a VAE's k samples); fit's
    default thread count reads it (``vae_np.training.threads.MIN_SHARDED_ROWS``)."""

    def __init__(self, model, **options):
        self.model = model
        self.outputs = {}

    # ------------------------------------------------------------------ the vectors
    @property
    def flat(self):
        """(P,) every parameter of the model, in place."""
        return self.model.flat

    @property
    def grad_flat(self):
        """(P,) the gradient the last ``gradient`` call filled."""
        return self.model.grad_flat

    def state(self) -> dict:
        """Arrays of the model's state that are not parameters and that training changes (a VQ
        codebook's EMA statistics), name -> the live array. Checkpoints save and restore them
        and ``fit(keep_best=...)`` keeps them with the parameters. Default: none."""
        return {}

    # ------------------------------------------------------------------ the data
    def default_rng(self) -> np.random.Generator:
        """The generator ``fit`` uses when given ``rng=None``: one seeded by the model's seed."""
        return np.random.default_rng(self.model.seed)

    def check_data(self, X):
        """X checked (ValueError naming X and the expected form), as the loop will index it."""
        return check_images(X, self.model, False)

    def batch(self, X, index, rng):
        """The batch of rows ``index`` of X, as ``gradient`` takes it."""
        return to_batch(X, index, self.model.dtype)

    # ------------------------------------------------------------------ one step
    def begin(self, X, rng, batch_size, first_epoch):
        """Hook: before the first epoch (default: nothing)."""

    def begin_epoch(self, epoch):
        """Hook: before each epoch, with its number (counted from 1 over the whole run: a caller
        training one epoch at a time passes its own count as ``first_epoch``); default: nothing."""

    def gradient(self, x, rng) -> tuple:
        """Forward and backward on the batch x: fill ``grad_flat`` and return the terms named by
        ``history_keys`` (floats, means over the batch's examples). It must not change the
        parameters. It may raise ``vae_np.ops.errors.SingularMapError`` (a divergence).

        Default: ``terms, self.outputs = run(model, draw(x, rng))``; a kind may override it
        instead of ``draw`` and ``run`` (it then trains on one thread)."""
        terms, self.outputs = self.run(self.model, self.draw(x, rng))
        return terms

    # ------------------------------------------------------------------ one step, in shards
    def draw(self, x, rng) -> tuple:
        """The step's inputs: (x, then every random draw of the step), drawn from ``rng`` here,
        on the calling thread, so that a step draws the same numbers whatever the thread count.
        Each array has its examples along its ``batch_axes`` entry. Default: (x,)."""
        return (x,)

    def run(self, model, inputs) -> tuple:
        """Forward and backward of ``model`` (this kind's model or one of its replicas) on
        ``inputs`` (``draw``'s arrays, or a shard of them: the same arrays cut to some of the
        examples). Fills ``model.grad_flat`` with the gradient of the mean loss over those
        examples and returns (terms, outputs): the ``history_keys`` terms, means over the
        examples, and a dict of arrays with the examples along axis 0 that the hooks read
        (``outputs``). Called from worker threads: it must change nothing but ``model``'s
        gradients, and read no state a hook changes during a step."""
        raise NotImplementedError

    def replica(self):
        """A model for another thread: the same parameters (the same ``flat`` memory), its own
        ``grad_flat``. Default: ``model.replica()``."""
        return self.model.replica()

    def can_shard(self) -> bool:
        """Whether ``fit(threads=N)`` may split a batch into shards: the kind implements
        ``run`` (and ``draw``), it or its model has ``replica``, and its terms are means over the
        examples each computed from its example alone (so the batch's are the shards' means,
        weighted). A kind whose loss couples the examples of a batch says False."""
        return (type(self).run is not ModelKind.run
                and (type(self).replica is not ModelKind.replica
                     or callable(getattr(self.model, "replica", None))))

    def after_step(self):
        """Hook: after the optimizer step(s) of a batch (default: nothing)."""

    def end_epoch(self, rng) -> dict:
        """Hook: at the end of an epoch, after its last step; returns the ``epoch_keys``
        columns of the history row (default: none)."""
        return {}


class KindRegistry(Registry):
    """name -> ModelKind subclass; :meth:`of` finds the kind of a model by its class."""

    def _check(self, name, cls):
        if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
            raise ValueError(f"a model kind must be a ModelKind subclass, got {cls!r}")

    def of(self, model):
        """The registered kind whose ``model_class`` the model is an instance of; ValueError
        naming the registered model classes otherwise."""
        for cls in self.values():
            if isinstance(model, cls.model_class):
                return cls
        names = ", ".join(sorted({cls.model_class.__name__ for cls in self.values()}))
        raise ValueError(f"model must be one of the model kinds fit trains ({names}), got "
                         f"{type(model).__name__}")


MODEL_KINDS = KindRegistry("model kind")


# ---------------------------------------------------------------------- helpers for image data
def check_images(X, model, binarize):
    """X as an (N, model.x_dim) array of uint8 grey levels or floats in the model's range.

    Floats must lie in [0, 1] for a likelihood on the unit interval (Bernoulli) and for
    ``binarize`` (x ~ Bernoulli(x) needs probabilities), and must be finite in the model's dtype
    (a batch cast to it would hold inf: no divergence of training).
    """
    X = check_array("X", X, ndim=2)
    if X.shape[1] != model.x_dim:
        raise ValueError(f"X must have shape (n, {model.x_dim}) for this model, got {X.shape}")
    if X.dtype != np.uint8:
        if not np.issubdtype(X.dtype, np.floating):
            raise ValueError(f"X must be uint8 grey levels or floats, got dtype {X.dtype}")
        if model.decoder_likelihood.unit_interval:
            check_unit_interval("X", X)
        check_representable("X", X, model.dtype)
        if binarize:
            check_unit_interval("X", X, "binarize=True (x ~ Bernoulli(x))")
    return X


def to_batch(X, index, dtype, binarize_rng=None):
    """Rows ``index`` of X as ``dtype``: uint8 scaled by 1/255 (here, per batch, so the data set
    stays uint8 in memory); with ``binarize_rng``, a fresh Bernoulli draw x ~ Bern(grey level)."""
    x = to_float(X[index], dtype)        # fancy indexing has already copied
    if binarize_rng is not None:
        x = (binarize_rng.random(x.shape, dtype=dtype) < x).astype(dtype)
    return x


def check_flag(name, value):
    """``value`` if it is a bool, else ValueError ``NAME must be True or False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
