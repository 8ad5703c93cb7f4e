"""The training loop: shuffled mini-batches, joint or alternating updates, per-epoch history."""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_array, check_choice, check_int
from ..core.batch import check_representable, check_unit_interval, to_float
from ..core.model import VAE
from ..ops.errors import SingularMapError
from ..optim import Optimizer

SCHEDULES = ("joint", "alternating")


class TrainingDivergedError(FloatingPointError):
    """The loss or a gradient became NaN or inf (or a gradient so large that its squared norm
    overflows); the parameters are those from before that step.

    Attributes: ``epoch``, ``step`` (1-based, within the epoch) and ``loss`` of the failing step.
    """

    def __init__(self, message, epoch=None, step=None, loss=None):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


def _check_data(X, model):
    X = check_array("X", X, ndim=2)
    if X.shape[1] != model.x_dim:
        raise ValueError(f"X must have shape (n, {model.x_dim}) for this model, got {X.shape}")
    if X.dtype != np.uint8:
        if not np.issubdtype(X.dtype, np.floating):
            raise ValueError(f"X must be uint8 grey levels or floats, got dtype {X.dtype}")
        if model.decoder_likelihood.unit_interval:
            check_unit_interval("X", X)
        # a batch cast to the model's dtype would hold inf: not a divergence of training
        check_representable("X", X, model.dtype)
    return X


def to_batch(X, index, dtype, binarize_rng=None):
    """Rows ``index`` of X as ``dtype``: uint8 scaled by 1/255 (here, per batch, so the data set
    stays uint8 in memory); with ``binarize_rng``, a fresh Bernoulli draw x ~ Bern(grey level)."""
    x = to_float(X[index], dtype)        # fancy indexing has already copied
    if binarize_rng is not None:
        x = (binarize_rng.random(x.shape, dtype=dtype) < x).astype(dtype)
    return x


def fit(model: VAE, X, optimizer, epochs=1, batch_size=128, k=1, rng=None, callback=None,
        schedule="joint", binarize=False, first_epoch=1, objective="elbo", estimator="standard"):
    """Train ``model`` on the rows of X by stochastic gradient steps on the negative ELBO (or,
    with ``objective="iwae"``, on the negative importance-weighted bound).

    Parameters
    ----------
    model : VAE
    X : (N, x_dim) uint8 grey levels (scaled by 1/255 per batch) or floats
    optimizer : Optimizer, or for ``schedule="alternating"`` optionally a pair
        (encoder optimizer, decoder optimizer); a single one is then paired with ``spawn()``.
    epochs, batch_size, k : ints >= 1 (k Monte Carlo samples per example)
    rng : numpy.random.Generator for shuffling, eps and binarization (default: ``model.rng``)
    callback : called as ``callback(event)`` with a dict: ``event["kind"]`` is "step" (after each
        update: epoch, step, steps, loss (the batch's objective), examples, seconds) or "epoch"
        (epoch, loss, recon, kl, seconds: the history's row). Returning False stops training
        after that step.
    schedule : "joint" (default: one step on all parameters per batch) or "alternating" (a phi step
        on the encoder, then a theta step on the decoder, each from a fresh gradient, per batch).
    binarize : draw a fresh binarization x ~ Bernoulli(x) for every batch (dynamic binarization);
        float X must then lie in [0, 1] (ValueError otherwise, whatever the likelihood).
    first_epoch : int >= 1, the number of the first epoch in the history, callbacks and errors
        (a caller that trains one epoch at a time passes its own count).
    objective : a registered objective (``vae_np.core.objective.OBJECTIVES``): "elbo" (default)
        or "iwae": train on the negative importance-weighted bound over the k samples
        (``vae_np.objectives.iwae``).
    estimator : "standard" (the loss's gradient) or, with objective="iwae", "dreg": the
        doubly-reparameterized encoder gradient (``vae_np.objectives.dreg``).

    Returns
    -------
    history : dict of lists, one entry per epoch (nats per example, each averaged over the
        epoch's batches weighted by their size, at the parameters of each batch's step):

        epoch    the epoch's number
        loss     the objective being minimised (as the objective's ``history_loss`` reports it):
                 the -ELBO, or with objective="iwae" the bound -L_k = -mean_b ln (1/k sum_k w_bk)
        recon    the reconstruction term 1/k sum_k -ln p(x|z_k), over the k samples of z
        kl       the ELBO's KL term KL(q(z|x) || p(z)), the model's KL term: in closed form for
                 the Gaussian posterior and N(0, I) (also under objective="iwae", which does not
                 use it), else the Monte Carlo 1/k sum_k [ln q(z_k|x) - ln p(z_k)] (a flow)
        seconds  the epoch's wall time

        recon + kl is the k-sample -ELBO for every objective: it equals loss for "elbo" and is
        >= loss in expectation for "iwae" (-L_k <= -ELBO; sample by sample too with a flow's
        Monte Carlo KL, by Jensen's inequality).

    Raises
    ------
    TrainingDivergedError if the loss or gradient becomes non-finite (or |g|^2 overflows), or a
    map of the model becomes singular (``vae_np.ops.errors.SingularMapError``, e.g. a flow step);
    it names the step, and the parameters are left as they were before that step.
    """
    if not isinstance(model, VAE):
        raise ValueError(f"model must be a vae_np.VAE, got {type(model).__name__}")
    X = _check_data(X, model)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    k = check_int("k", k)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    optimizers = _optimizers(optimizer, schedule)
    rng = model.rng if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {callback!r}")
    if not isinstance(binarize, (bool, np.bool_)):
        raise ValueError(f"binarize must be True or False, got {binarize!r}")
    if binarize and X.dtype != np.uint8:     # x ~ Bernoulli(x) needs probabilities
        check_unit_interval("X", X, "binarize=True (x ~ Bernoulli(x))")
    first_epoch = check_int("first_epoch", first_epoch)
    model._objective(objective, estimator)      # a ValueError naming a wrong one, before training
    objective = (objective, estimator)

    n = X.shape[0]
    steps = -(-n // batch_size)
    history = {"epoch": [], "loss": [], "recon": [], "kl": [], "seconds": []}
    for epoch in range(first_epoch, first_epoch + epochs):
        start = time.perf_counter()
        totals = np.zeros(3)                  # loss, recon, kl, each weighted by batch size
        order = rng.permutation(n)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            x = to_batch(X, index, model.dtype, rng if binarize else None)
            terms = _update(model, x, k, rng, optimizers, epoch, step + 1, steps, objective)
            totals += len(index) * np.array(terms)
            if callback is not None:
                go_on = callback(dict(kind="step", epoch=epoch, step=step + 1, steps=steps,
                                      loss=terms[0], examples=min((step + 1) * batch_size, n),
                                      seconds=time.perf_counter() - start))
                if go_on is False:
                    return history
        loss, recon, kl = totals / n
        seconds = time.perf_counter() - start
        for key, value in zip(history, (epoch, loss, recon, kl, seconds)):
            history[key].append(value if key == "epoch" else float(value))
        if callback is not None:
            callback(dict(kind="epoch", epoch=epoch, loss=loss, recon=recon, kl=kl,
                          seconds=seconds))
    return history


def _optimizers(optimizer, schedule):
    if schedule == "alternating" and isinstance(optimizer, (tuple, list)):
        if len(optimizer) != 2 or not all(isinstance(o, Optimizer) for o in optimizer):
            raise ValueError("optimizer must be an Optimizer or a pair (encoder, decoder) of them")
        return tuple(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a vae_np.optim Optimizer, got {optimizer!r}")
    return (optimizer, optimizer.spawn()) if schedule == "alternating" else (optimizer,)


def _gradient_step(model, x, k, rng, epoch, step, steps, objective=("elbo", "standard")):
    """Forward and backward on one batch; refuse to go on from a non-finite loss or gradient.

    Returns (loss, recon, kl) of the batch, means over its examples: the objective's loss, the
    mean -ln p(x|z) over the k samples, and the ELBO's KL term as the model records it.
    """
    eps = rng.standard_normal((k, x.shape[0], model.noise_dim), dtype=model.dtype)
    # Overflow or log(0) shows up as a non-finite loss or gradient, which is checked just below and
    # reported with the step; a NumPy warning (an exception under -W error) would hide that report.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            trace = model.backward(model.forward(x, eps, objective=objective[0],
                                                 estimator=objective[1]))
        except SingularMapError as exc:     # parameters ran off to a singular map (a flow step)
            raise TrainingDivergedError(
                f"{exc.what} became singular at epoch {epoch}, step {step}/{steps} ({exc}); the "
                f"parameters are those from before this step. Try a lower learning rate.",
                epoch=epoch, step=step, loss=float("nan")) from exc
        recon = float(trace.values["nll"].mean())
        kl = float(trace.values["kl"].mean())      # the ELBO's KL, whatever the objective
        loss = trace.objective.history_loss(trace, recon, kl)   # the ELBO's: recon + kl
        finite = _finite_step(loss, model.grad_flat)     # |g|^2 may overflow: no warning
    if not finite:
        raise TrainingDivergedError(
            f"non-finite loss or gradient at epoch {epoch}, step {step}/{steps} "
            f"(loss = {loss:.6g}); the parameters are those from before this step. "
            f"Try a lower learning rate.", epoch=epoch, step=step, loss=loss)
    return loss, recon, kl


def _finite_step(loss, grad_flat):
    """The divergence guard: the loss and |g|^2 are finite.

    |g|^2 is NaN/inf iff some g_i is, or |g| > 1.8e19 (float32; 1.3e154 in float64): no sane step
    has such a gradient, and a component that large would leave Adam's second moment inf for ever.
    One BLAS dot product is the cheapest full pass over the gradient.
    """
    return bool(np.isfinite(loss) and np.isfinite(np.dot(grad_flat, grad_flat)))


def _update(model, x, k, rng, optimizers, epoch, step, steps, objective=("elbo", "standard")):
    terms = _gradient_step(model, x, k, rng, epoch, step, steps, objective)
    if len(optimizers) == 1:
        optimizers[0].step(model.flat, model.grad_flat)
        return terms
    # Alternating schedule: a phi (encoder) step, then a theta (decoder) step from a fresh
    # gradient computed with the updated encoder.
    e = model.n_encoder
    phi_before = model.flat[:e].copy()
    optimizers[0].step(model.flat[:e], model.grad_flat[:e])
    try:
        _gradient_step(model, x, k, rng, epoch, step, steps, objective)
    except TrainingDivergedError:
        model.flat[:e] = phi_before     # undo the phi step: parameters from before this step
        raise
    optimizers[1].step(model.flat[e:], model.grad_flat[e:])
    return terms
