"""How ``fit`` trains a VAE (the model kind of :class:`vae_np.VAE`; protocol in
:mod:`vae_np.training.kind`).

One step on a batch x (B examples): eps ~ N(0, I) of shape (k, B, noise_dim) from the training
rng, the model's forward and backward under the objective and estimator chosen by name, and the
terms the history records, means over the batch:

    loss   the objective's ``history_loss`` (the -ELBO; the -L_k of "iwae")
    recon  1/k sum_k -ln p(x|z_k)
    kl     the model's KL term (closed form, or a flow's Monte Carlo estimate)

With threads (``fit(threads=N)``) eps is drawn for the whole batch as above and each shard
takes its examples' columns eps[:, rows]. An objective that couples the examples of a batch
(free bits: its floor reads the batch mean of each KL group) says so with
``couples_examples = True``, and such a step runs on one thread.

The parameter groups of ``schedule="alternating"`` are the encoder's parameters
(``flat[:n_encoder]``, phi) and the rest (theta). Before each epoch the objective's
``begin_epoch(epoch)`` sets its per-epoch state (KL warm-up's beta).
"""
from __future__ import annotations

from .._validate import check_int
from ..core.model import VAE
from .kind import MODEL_KINDS, ModelKind, check_flag, check_images, to_batch


class VAEKind(ModelKind):
    """The VAE's training: ``fit(vae, X, ..., k=1, objective="elbo", estimator="standard",
    binarize=False)``."""
    model_class = VAE
    options = dict(k=1, binarize=False, objective="elbo", estimator="standard")
    history_keys = ("loss", "recon", "kl")

    def __init__(self, model, k=1, binarize=False, objective="elbo", estimator="standard"):
        super().__init__(model)
        self.k = check_int("k", k)
        self.binarize = check_flag("binarize", binarize)
        model._objective(objective, estimator)      # a ValueError naming a wrong one, up front
        self.objective, self.estimator = objective, estimator
        self.groups = (slice(0, model.n_encoder), slice(model.n_encoder, None))

    def default_rng(self):
        return self.model.rng

    def check_data(self, X):
        return check_images(X, self.model, self.binarize)

    def batch(self, X, index, rng):
        return to_batch(X, index, self.model.dtype, rng if self.binarize else None)

    def begin_epoch(self, epoch):
        self.model._objective(self.objective, self.estimator).begin_epoch(epoch)

    batch_axes = (0, 1)         # x (B, x_dim), eps (K, B, noise_dim)

    @property
    def rows_per_example(self):
        """k: each example's k samples are rows of every matrix product of the step."""
        return self.k

    def draw(self, x, rng):
        eps = rng.standard_normal((self.k, x.shape[0], self.model.noise_dim),
                                  dtype=self.model.dtype)
        return x, eps

    def run(self, model, inputs):
        x, eps = inputs
        trace = model.backward(model.forward(x, eps, objective=self.objective,
                                             estimator=self.estimator))
        recon = float(trace.values["nll"].mean())
        kl = float(trace.values["kl"].mean())      # the ELBO's KL, whatever the objective
        # the ELBO's loss is recon + kl
        return (trace.objective.history_loss(trace, recon, kl), recon, kl), {}

    def can_shard(self):
        """Not with an objective whose loss couples the batch's examples (``couples_examples``:
        free bits floors the KL's batch mean, which no shard sees)."""
        objective = self.model._objective(self.objective, self.estimator)
        return super().can_shard() and not getattr(objective, "couples_examples", False)


MODEL_KINDS.register("vae", VAEKind)
