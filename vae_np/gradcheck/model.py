"""Check a model's full gradient: ``loss_and_grads(x, k, eps)`` against finite differences.

The checker needs nothing of the model but its public interface: ``params`` (dict name -> array,
perturbed in place and restored), ``noise_dim`` (or ``z_dim``: to draw the noise when none is
given) and ``loss_and_grads(x, k=..., eps=...) -> (loss, grads)``. Freezing eps makes the loss a
deterministic function of the parameters, so the check cannot be fooled by fresh noise per
evaluation.

float32 models. A central difference in float32 cannot resolve a tolerance of 1e-6 (its rounding
noise is ~|f| / |x| at h = 1e-6), so a plain check of a float32 model says INCONCLUSIVE whatever
its gradient. ``reference=`` checks it anyway: the float32 analytic gradient is compared with
central differences of a float64 model holding the same parameters, data and noise. The float64
quotients resolve 1e-8; what remains is the float32 rounding of the analytic gradient itself, and
the tolerance is set by it: tol = sqrt(eps32) = 3.5e-4 relative (the threshold below which the
checker calls a discrepancy rounding in any dtype), with an absolute floor of sqrt(eps32) times
the tensor's largest gradient entry (float32 sums round relative to their largest terms, so a
coordinate that nearly cancels carries the rounding of its neighbours). A correct float32 gradient
differs from the float64 one by about eps32 = 1.2e-7 relative (7e-8 to 1.3e-7 measured over the
test architectures); a factor 2 is an error of 1/3, a sign error an error of 1.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_array, check_int, check_rng
from .generic import GradcheckReport, check_gradients

FLOAT32_TOL = float(np.sqrt(np.finfo(np.float32).eps))


def _check_model_interface(model):
    if not (callable(getattr(model, "loss_and_grads", None))
            and isinstance(getattr(model, "params", None), dict)):
        raise ValueError(f"model must be a vae_np.VAE (or any object with a params dict and "
                         f"loss_and_grads(x, k, eps)), got {type(model).__name__}")


def check_model(model, x, k=1, eps=None, *, method="directional", coords=None, directions=3,
                tol=None, h_rel=1e-6, rng=None, reference=None) -> GradcheckReport:
    """Check ``model.loss_and_grads`` at x with frozen noise eps (drawn once if not given).

    Parameters
    ----------
    model : a vae_np.VAE, or any object with ``params`` and ``loss_and_grads(x, k=, eps=)``
    x : (B, x_dim) data
    k : samples per example
    eps : (k, B, noise_dim) or (B, noise_dim)
        for k = 1 (noise_dim = z_dim, plus a prior's own noise: the two-layer model's z2 noise);
        drawn from ``rng`` when None
    method, coords, directions, h_rel, rng : as for ``vae_np.gradcheck.generic.check_gradients``
        (h_rel is the relative step; a complex step cannot run through a real parameter buffer)
    tol : error threshold; default 1e-6, or sqrt(eps32) = 3.5e-4 with ``reference`` for a
        float32 model (a float64 model keeps 1e-6)
    reference : None, "float64", or a float64 model of the same architecture. With it, the
        model's (float32) analytic gradient is checked against central differences of the
        reference holding the model's parameters (copied into it), data and noise; "float64"
        builds the reference from ``model.config()``. Without it a float32 model's check is
        INCONCLUSIVE (its own quotients cannot resolve the tolerance).

    Returns
    -------
    GradcheckReport (``print`` it; ``.passed``; ``.verdict``)
    """
    _check_model_interface(model)
    if method == "complex":     # the model's parameters live in a real buffer: no complex step
        raise ValueError("method must be 'coordinates' or 'directional' for check_model (a VAE's "
                         "real parameter buffer cannot carry a complex step), got 'complex'")
    x = check_array("x", x, ndim=2)
    k = check_int("k", k)
    rng = np.random.default_rng(0) if rng is None else check_rng("rng", rng)
    if eps is None:
        eps = rng.standard_normal((k, x.shape[0], getattr(model, "noise_dim", None)
                                   or model.z_dim))
    _, grads = model.loss_and_grads(x, k=k, eps=eps)
    grads = {n: np.array(g, dtype=np.float64) for n, g in grads.items()}
    options = dict(method=method, coords=coords, directions=directions, h_rel=h_rel, rng=rng)
    if reference is None:
        return check_gradients(lambda params: model.loss_and_grads(x, k=k, eps=eps)[0],
                               model.params, grads, tol=1e-6 if tol is None else tol, **options)
    ref = _reference(model, reference)
    dtype = next(iter(model.params.values())).dtype
    x_ref = x if x.dtype == np.uint8 else x.astype(dtype).astype(np.float64)
    eps_ref = check_array("eps", eps).astype(dtype).astype(np.float64)
    # the rounding of the model's own dtype: sqrt(eps32) for float32; for a float64 model the
    # plain check's 1e-6 (sqrt(eps32) would pass a float64 gradient 1e-4 off)
    rounding = float(np.sqrt(np.finfo(dtype).eps))
    floor = {n: rounding * float(np.max(np.abs(g), initial=0.0)) for n, g in grads.items()}
    return check_gradients(lambda params: ref.loss_and_grads(x_ref, k=k, eps=eps_ref)[0],
                           ref.params, grads, tol=max(1e-6, rounding) if tol is None else tol,
                           floor=floor, **options)


def _reference(model, reference):
    """The float64 reference model holding ``model``'s parameters."""
    if isinstance(reference, str):
        if reference != "float64":
            raise ValueError(f"reference must be None, 'float64' or a float64 model, "
                             f"got {reference!r}")
        config = getattr(model, "config", None)
        if not callable(config):
            raise ValueError("reference='float64' needs model.config() to rebuild the model; "
                             "pass a float64 model of the same architecture as reference")
        reference = type(model)(**{**config(), "dtype": np.float64})
    _check_model_interface(reference)
    mine = {n: p.shape for n, p in model.params.items()}
    theirs = {n: p.shape for n, p in reference.params.items()}
    if mine != theirs:
        raise ValueError(f"reference must have the model's parameters (names and shapes); "
                         f"differ in {sorted(set(mine.items()) ^ set(theirs.items()))}")
    for name, p in reference.params.items():
        if p.dtype != np.float64:
            raise ValueError(f"reference must be a float64 model, got {name} in {p.dtype}")
        p[...] = model.params[name]
    return reference
