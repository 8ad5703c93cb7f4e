"""The training loop: shuffled mini-batches, the divergence guard, joint or alternating updates,
per-epoch history, held-out monitors and keeping the best epoch, for every kind of model.

What differs between kinds (the terms of a step, their data, the codebook's upkeep of a VQ-VAE)
is the model kind's (:mod:`vae_np.training.kind`); this module names none of them.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_choice, check_int
from ..ops.errors import SingularMapError
from ..optim import Optimizer
from .kind import MODEL_KINDS, to_batch  # noqa: F401  (to_batch: the loop's batch helper)
from .threads import check_threads, steps_for

SCHEDULES = ("joint", "alternating")

# fit's keywords that some kinds read and others do not, with fit's defaults: a kind that does
# not read one refuses it only when it is set away from the default
SHARED_OPTIONS = dict(k=1, binarize=False, objective="elbo", estimator="standard")


class TrainingDivergedError(FloatingPointError):
    """The loss or a gradient became NaN or inf (or a gradient so large that its squared norm
    overflows); the parameters are those from before that step.

    Attributes: ``epoch``, ``step`` (1-based, within the epoch) and ``loss`` of the failing step.
    """

    def __init__(self, message, epoch=None, step=None, loss=None):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


def fit(model, X, optimizer, epochs=1, batch_size=128, k=1, rng=None, callback=None,
        schedule="joint", binarize=False, first_epoch=1, objective="elbo", estimator="standard",
        *, monitor=None, keep_best=None, threads=None, **options):
    """Train ``model`` on the rows of X by stochastic gradient steps on its kind's loss.

    The model's kind (``vae_np.training.kind.MODEL_KINDS``) gives the loss and its terms: a VAE
    the negative ELBO (or the importance-weighted bound, with its estimators; a flow posterior
    alike), see ``vae_np.training.vae.VAEKind``; a VQ-VAE its surrogate loss with the codebook's
    upkeep (``vae_np.vq.train.VQKind``); a MADE prior the mean -ln prior of code vectors
    (``vae_np.vq.prior.MADEKind``).

    Parameters
    ----------
    model : a model of a registered kind (vae_np.VAE, vae_np.VQVAE, vae_np.MADEPrior, ...)
    X : (N, ...) the training data, as the kind takes it: for a VAE or VQ-VAE (N, x_dim) uint8
        grey levels (scaled by 1/255 per batch) or floats; for a MADE prior (N, M) codes
    optimizer : Optimizer, or for ``schedule="alternating"`` optionally a pair (first group's
        optimizer, second group's: a VAE's encoder and decoder); a single one is then paired
        with ``spawn()``.
    epochs, batch_size : ints >= 1
    k : int >= 1, Monte Carlo samples per example (a VAE)
    rng : numpy.random.Generator for shuffling and the kind's draws (eps, binarization, a
        codebook's initialisation and re-seeding); default: the kind's (a VAE's ``model.rng``,
        else a generator seeded by ``model.seed``)
    callback : called as ``callback(event)`` with a dict: ``event["kind"]`` is "step" (after each
        update: epoch, step, steps, loss (the batch's loss), examples (so far in the epoch),
        seconds) or "epoch" (the history's row). Returning False from a "step" event stops
        training after that step.
    schedule : "joint" (default: one step on all parameters per batch) or "alternating" (one
        step on each of the kind's parameter groups in turn, each from a fresh gradient of the
        batch; a VAE's: a phi step on the encoder, then a theta step on the decoder).
    binarize : draw a fresh binarization x ~ Bernoulli(x) for every batch (dynamic binarization;
        a VAE or VQ-VAE); float X must then lie in [0, 1] (ValueError otherwise).
    first_epoch : int >= 1, the number of the first epoch in the history, callbacks and errors
        (a caller that trains one epoch at a time passes its own count).
    objective, estimator : a VAE's objective ("elbo", "iwae", ...; ``vae_np.core.objective``)
        and gradient estimator ("standard", or "dreg" with "iwae").
    monitor : dict name -> f(model) -> float, evaluated after each epoch's last step (and the
        kind's end-of-epoch hook) and recorded in the history under its name (e.g. the mean
        -ln prior of held-out codes).
    keep_best : None, or the name of a monitor to minimise: the history gains ``best`` (True
        where the epoch's value is below every earlier one, the first epoch included), and
        ``fit`` returns the model with the parameters (and state) of the last best epoch
        (early stopping; a NaN is never best).
    threads : int >= 1, or None for ``vae_np.training.threads.default_threads(rows)`` (the number of
        cores, at most 2, when a step has rows = B x the kind's rows per example (a VAE's k) >= 128;
        else 1, where splitting a step was measured slower). With N > 1 each batch is split into N
        shards of about B / N examples, each shard's forward and backward runs on its own thread
        with BLAS on one thread, the gradients are summed weighted by the shards' sizes in shard
        order, and the optimizer's update is split over the parameter vector
        (``vae_np.training.threads``). The loss and gradient equal the one-thread ones up to float
        rounding (the terms of the sums over examples are added in another order), and a run is
        deterministic for a given thread count and seed (a resume is bit-exact with the same count).
        threads=1 is the one-thread loop, call for call, with BLAS's threads as the process has
        them. A kind that cannot split its batch (``ModelKind.can_shard``: e.g. free bits, whose
        floor reads the batch mean) trains as with threads=1.
    **options : the kind's own keywords (a VQ-VAE's ``init_codebook``, ``reseed``); a keyword
        the kind does not read is refused.

    Returns
    -------
    history : dict of lists, one entry per epoch, in this order: ``epoch``; the kind's terms
        (``history_keys``), each averaged over the epoch's examples (each batch weighted by its
        size, at the parameters of its step); the kind's ``epoch_keys``; the monitors; ``best``
        (with keep_best); ``seconds`` (the epoch's wall time). A VAE's:

        loss     the objective being minimised (the objective's ``history_loss``): the -ELBO,
                 or with objective="iwae" the bound -L_k = -mean_b ln (1/k sum_k w_bk)
        recon    the reconstruction term 1/k sum_k -ln p(x|z_k), over the k samples of z
        kl       the ELBO's KL term KL(q(z|x) || p(z)), the model's KL term: in closed form for
                 the Gaussian posterior and N(0, I) (also under objective="iwae", which does not
                 use it), else the Monte Carlo 1/k sum_k [ln q(z_k|x) - ln p(z_k)] (a flow)

        recon + kl is the k-sample -ELBO for every objective: it equals loss for "elbo" and is
        >= loss in expectation for "iwae" (-L_k <= -ELBO; sample by sample too with a flow's
        Monte Carlo KL, by Jensen's inequality).

    Raises
    ------
    TrainingDivergedError if the loss or gradient becomes non-finite (or |g|^2 overflows), or a
    map of the model becomes singular (``vae_np.ops.errors.SingularMapError``, e.g. a flow step);
    it names the step, and the parameters are left as they were before that step.
    """
    kind = _kind(model, dict(k=k, binarize=binarize, objective=objective, estimator=estimator,
                             **options))
    X = kind.check_data(X)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    optimizers = _optimizers(optimizer, schedule)
    groups = _groups(kind, schedule)
    rng = kind.default_rng() if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {callback!r}")
    first_epoch = check_int("first_epoch", first_epoch)
    monitor = _monitors(monitor, keep_best)
    threads = check_threads(threads, rows=min(batch_size, len(X)) * kind.rows_per_example)
    engine, workers = steps_for(kind, threads)
    try:
        return _epochs(model, X, kind, engine, optimizers, groups, rng, callback, epochs,
                       batch_size, first_epoch, monitor, keep_best)
    finally:
        if workers is not None:
            workers.close()


def _epochs(model, X, kind, engine, optimizers, groups, rng, callback, epochs, batch_size,
            first_epoch, monitor, keep_best):
    """fit's loop, once its arguments are checked (fit's docstring)."""

    n = X.shape[0]
    steps = -(-n // batch_size)
    keys = ("epoch", *kind.history_keys, *kind.epoch_keys, *monitor,
            *(("best",) if keep_best is not None else ()), "seconds")
    history = {key: [] for key in keys}
    best = _Best(kind, keep_best)
    kind.begin(X, rng, batch_size, first_epoch)
    for epoch in range(first_epoch, first_epoch + epochs):
        start = time.perf_counter()
        totals = np.zeros(len(kind.history_keys))     # each term weighted by its batch's size
        kind.begin_epoch(epoch)
        order = rng.permutation(n)
        with engine.blas():                     # with threads: BLAS on one thread a worker
            for step in range(steps):
                index = order[step * batch_size:(step + 1) * batch_size]
                x = kind.batch(X, index, rng)
                terms = _update(kind, x, rng, optimizers, groups, epoch, step + 1, steps,
                                engine)
                totals += len(index) * np.array(terms)
                if callback is not None:
                    go_on = callback(dict(kind="step", epoch=epoch, step=step + 1,
                                          steps=steps, loss=terms[0],
                                          examples=min((step + 1) * batch_size, n),
                                          seconds=time.perf_counter() - start))
                    if go_on is False:
                        best.restore()
                        return history
        row = dict(epoch=epoch, **{key: float(value) for key, value in
                                   zip(kind.history_keys, totals / n)})
        row.update(kind.end_epoch(rng))
        row.update((name, f(model)) for name, f in monitor.items())
        if keep_best is not None:
            row["best"] = best.offer(row[keep_best])
        row["seconds"] = time.perf_counter() - start
        for key in keys:
            history[key].append(row[key])
        if callback is not None:
            callback(dict(kind="epoch", **row))
    best.restore()
    return history


def _kind(model, options):
    """The model's kind, built with the keywords it reads; ValueError for any other keyword
    (fit's shared ones only when set away from fit's default)."""
    cls = MODEL_KINDS.of(model)
    for name, value in options.items():
        if name in cls.options:
            continue
        if name not in SHARED_OPTIONS:
            raise TypeError(f"fit() got an unexpected keyword argument {name!r} (a "
                            f"{type(model).__name__} takes {sorted(cls.options) or 'none'})")
        if not _is_default(value, SHARED_OPTIONS[name]):
            raise ValueError(f"{name} does not apply to a {type(model).__name__}, got "
                             f"{name}={value!r}")
    return cls(model, **{name: value for name, value in options.items() if name in cls.options})


def _is_default(value, default):
    try:
        return bool(value == default)
    except (TypeError, ValueError):        # e.g. an array: never a default
        return False


def _monitors(monitor, keep_best):
    if monitor is None:
        monitor = {}
    if not isinstance(monitor, dict) or not all(isinstance(name, str) and callable(f)
                                                for name, f in monitor.items()):
        raise ValueError(f"monitor must be None or a dict name -> f(model), got {monitor!r}")
    if keep_best is not None and keep_best not in monitor:
        raise ValueError(f"keep_best must be None or the name of a monitor "
                         f"({sorted(monitor)}), got {keep_best!r}")
    return monitor


class _Best:
    """Early stopping: the parameters and state of the epoch with the lowest monitored value."""

    def __init__(self, kind, name):
        self.kind, self.name, self.value, self.saved = kind, name, np.inf, None

    def offer(self, value) -> bool:
        """Whether ``value`` is a new best (strictly below every earlier one); keeps a copy."""
        if not value < self.value:
            return False
        self.value = value
        self.saved = (self.kind.flat.copy(),
                      {key: a.copy() for key, a in self.kind.state().items()})
        return True

    def restore(self):
        if self.saved is not None:
            flat, state = self.saved
            self.kind.flat[...] = flat
            for key, a in self.kind.state().items():
                a[...] = state[key]


def _optimizers(optimizer, schedule):
    if schedule == "alternating" and isinstance(optimizer, (tuple, list)):
        if len(optimizer) != 2 or not all(isinstance(o, Optimizer) for o in optimizer):
            raise ValueError("optimizer must be an Optimizer or a pair (encoder, decoder) of them")
        return tuple(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a vae_np.optim Optimizer, got {optimizer!r}")
    return (optimizer, optimizer.spawn()) if schedule == "alternating" else (optimizer,)


def _groups(kind, schedule):
    """The parameter groups stepped in turn: None for the joint schedule."""
    if schedule == "joint":
        return None
    if kind.groups is None:
        raise ValueError(f"schedule must be 'joint' for a {type(kind.model).__name__} (it has "
                         f"no parameter groups to alternate over), got {schedule!r}")
    return kind.groups


def _gradient_step(engine, x, rng, epoch, step, steps):
    """The kind's forward and backward on one batch (``engine``: on one thread, or in shards
    on several); refuse to go on from a non-finite loss or gradient. Returns the kind's terms
    (the loss first)."""
    # Overflow or log(0) shows up as a non-finite loss or gradient, which is checked just below and
    # reported with the step; a NumPy warning (an exception under -W error) would hide that report.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            terms = engine.gradient(x, rng)
        except SingularMapError as exc:     # parameters ran off to a singular map (a flow step)
            raise TrainingDivergedError(
                f"{exc.what} became singular at epoch {epoch}, step {step}/{steps} ({exc}); the "
                f"parameters are those from before this step. Try a lower learning rate.",
                epoch=epoch, step=step, loss=float("nan")) from exc
        finite = engine.finite(terms)       # |g|^2 may overflow: no warning
    if not finite:
        raise TrainingDivergedError(
            f"non-finite loss or gradient at epoch {epoch}, step {step}/{steps} "
            f"(loss = {terms[0]:.6g}); the parameters are those from before this step. "
            f"Try a lower learning rate.", epoch=epoch, step=step, loss=terms[0])
    return terms


# The divergence guard (``engine.finite``): the loss and |g|^2 are finite. |g|^2 is NaN/inf iff
# some g_i is, or |g| > 1.8e19 (float32; 1.3e154 in float64): no sane step has such a gradient,
# and a component that large would leave Adam's second moment inf for ever. One BLAS dot product
# is the cheapest full pass over the gradient.


def _update(kind, x, rng, optimizers, groups, epoch, step, steps, engine):
    """One batch: the gradient, the guard and the optimizer step (joint), or one of each per
    parameter group (alternating; a failure restores the groups already stepped); then the
    kind's after-step hook. Returns the terms of the first gradient."""
    terms = _gradient_step(engine, x, rng, epoch, step, steps)
    if groups is None:
        engine.step(optimizers[0], None)
    else:
        # Alternating schedule: a step on the first group (a VAE's encoder, phi), then on the
        # next (its decoder, theta) from a fresh gradient computed with the first one updated.
        stepped = []
        for i, (part, optimizer) in enumerate(zip(groups, optimizers)):
            if i:
                try:
                    _gradient_step(engine, x, rng, epoch, step, steps)
                except TrainingDivergedError:
                    for done, before in stepped:    # parameters from before this step
                        kind.flat[done] = before
                    raise
            if i < len(groups) - 1:
                stepped.append((part, kind.flat[part].copy()))
            engine.step(optimizer, part)
    kind.after_step()
    return terms
