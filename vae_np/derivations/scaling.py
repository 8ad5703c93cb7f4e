"""Loss scaling: sum or mean over the batch, Adam against SGD, and the pixel-mean reconstruction.

The library's loss is the mean over the batch of the per-example negative ELBO. Summing instead
multiplies the loss and its gradient by B, which moves no stationary point. Adam's update
m_hat / (sqrt(v_hat) + eps) is unchanged when every gradient is multiplied by c > 0, up to eps;
SGD's step lr g is not, so SGD on a summed loss needs lr / B. (Scaling by a power of two is exact
in floating point, so with c = 2^k both statements hold bit for bit.)

Some examples average the reconstruction over the D pixels but sum the KL over the latents:

    mean_d nll_d + KL = (1/D) (sum_d nll_d + D KL)

which is, up to the factor 1/D, the loss of a beta-VAE with beta = D. In the linear VAE with a
Gaussian decoder of fixed variance sigma^2 (``linear_model``), a beta-VAE is the VAE with variance
beta sigma^2, so unit j stays active only when l_j > D sigma^2 (``collapse``): the pixel-mean loss
collapses the latent directions with sigma^2 < l_j <= D sigma^2 that the summed loss keeps.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.model import VAE
from ..optim import SGD, Adam
from ._record import EPS, make_claim
from .collapse import (
    ACTIVE_THRESHOLD, Q_MODEL, collapse_data, fit_fixed_sigma, predicted_active, unit_summary)
from .kl import compare_gradients

B, STEPS, LR = 32, 60, 0.01
X_DIM, HIDDEN, Z_DIM = 8, (6,), 3


def _model_and_data(seed):
    rng = np.random.default_rng(seed)
    model = VAE(X_DIM, HIDDEN, Z_DIM, "tanh", "bernoulli", dtype=np.float64, seed=seed)
    x = rng.uniform(0.0, 1.0, (B, X_DIM))
    return model, x, rng


def batch_gradient_ratio(seed):
    """The sum over the batch of per-example gradients (B calls with one example each) against the
    batch gradient of ``loss_and_grads``: (sum_b g_b, g_batch, the rounding bound per component)."""
    model, x, rng = _model_and_data(seed)
    eps = rng.standard_normal((1, B, Z_DIM))
    model.loss_and_grads(x, k=1, eps=eps)
    batch = model.grad_flat.copy()
    per_example = []
    for b in range(B):
        model.loss_and_grads(x[b:b + 1], k=1, eps=eps[:, b:b + 1])
        per_example.append(model.grad_flat.copy())
    per_example = np.array(per_example)
    # each side sums B contributions through matrix products of depth <= 4: Higham's bound
    bound = 2 * (B + 8) * EPS * np.sum(np.abs(per_example), axis=0) / B
    return per_example.sum(axis=0), batch, bound


def train(seed, optimizer, scale, steps=STEPS):
    """``steps`` updates of a fresh model on one batch, each with the gradient of scale * loss and
    the same eps sequence; returns the final flat parameters."""
    model, x, rng = _model_and_data(seed)
    for _ in range(steps):
        model.loss_and_grads(x, k=1, eps=rng.standard_normal((1, B, Z_DIM)))
        optimizer.step(model.flat, scale * model.grad_flat)
    return model.flat.copy()


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def loss_scaling(seed=0):
    """Claim: what summing, averaging and rescaling the loss change.

    * ``loss_scaling.batch_mean``: the library's batch gradient is the mean of the per-example
      gradients: the summed loss has a gradient B times larger (ratio B), the same optimum.
    * ``loss_scaling.adam``: Adam on B x loss follows the same trajectory as on the loss (eps
      1e-300, B = 32 a power of two: bit for bit); the default eps = 1e-8 effect is measured.
    * ``loss_scaling.sgd``: SGD on B x loss with lr / B follows SGD on the loss with lr (bit for
      bit), while with the same lr it ends elsewhere.
    * ``loss_scaling.pixel_mean_kl``: the linear VAE trained on mean_d nll_d + KL has the KL per
      unit of beta = D: 1/2 ln max(l_j / (D sigma^2), 1).
    * ``loss_scaling.pixel_mean_active_units``: it keeps #{l_j > D sigma^2} units active where the
      summed loss keeps #{l_j > sigma^2}.
    """
    summed, batch, bound = batch_gradient_ratio(seed)
    records = [compare_gradients(
        "loss_scaling.batch_mean",
        f"The library's loss is the batch mean: the sum of the {B} per-example gradients is B "
        "times the batch gradient (a summed loss has the same optimum, a gradient B times larger)",
        "sum_b grad loss(x_b) = B grad loss(x_1..B)   [ratio lhs = B]",
        summed, batch, bound, float(B), details=dict(batch=B),
        reason="per component: the rounding of the two B-term sums through matrix products, "
               "2 (B + 8) eps sum_b |g_b| / B, times the claimed factor B")]

    base = train(seed, Adam(LR, eps=1e-300), 1.0)
    scaled = train(seed, Adam(LR, eps=1e-300), float(B))
    default_gap = _relative(train(seed, Adam(LR), float(B)), train(seed, Adam(LR), 1.0))
    adam_error = float(np.max(np.abs(scaled - base)))
    records.append(make_claim(
        "loss_scaling.adam",
        f"Adam's trajectory does not depend on a constant scale of the loss: {STEPS} steps on "
        f"{B} x loss end where {STEPS} steps on the loss do (eps = 1e-300)",
        "theta_T(Adam, c L) = theta_T(Adam, L),  c = B = 32",
        adam_error, 0.0, adam_error, 0.0,
        "exact: multiplying by a power of two is exact in floating point, so m and sqrt(v) scale "
        "by c exactly and m / sqrt(v) does not change; eps = 1e-300 is below every sqrt(v)",
        details=dict(steps=STEPS, lr=LR, default_eps_relative_difference=default_gap,
                     note=f"Adam with the default eps = 1e-8: {B} x loss moves the final "
                          f"parameters by {default_gap:.2g} (relative) after {STEPS} steps"),
        unit="abs"))

    sgd = train(seed, SGD(LR), 1.0)
    sgd_scaled = train(seed, SGD(LR / B), float(B))
    with np.errstate(all="ignore"):
        same_lr = train(seed, SGD(LR), float(B))
    same_lr_gap = _relative(same_lr, sgd) if np.all(np.isfinite(same_lr)) else math.inf
    sgd_error = float(np.max(np.abs(sgd_scaled - sgd)))
    records.append(make_claim(
        "loss_scaling.sgd",
        f"SGD on {B} x loss needs the learning rate divided by {B} to follow SGD on the loss",
        "theta_T(SGD(lr / c), c L) = theta_T(SGD(lr), L),  c = B = 32",
        sgd_error, 0.0, sgd_error, 0.0,
        "exact: lr / c times c g is lr g bit for bit when c is a power of two",
        details=dict(same_lr_relative_difference=same_lr_gap,
                     note=f"SGD with the same lr on {B} x loss ends {same_lr_gap:.3g} (relative) "
                          "away from SGD on the loss"), unit="abs"))
    return records + pixel_mean_records(seed)


def pixel_mean_records(seed):
    """Train the linear VAE (sigma^2 fixed) on the summed and on the pixel-mean loss."""
    rng = np.random.default_rng(seed)
    X, lam = collapse_data(rng)
    D = X.shape[1]
    sigma2 = math.sqrt(lam[2] * lam[3])            # between the signal and the noise eigenvalues
    top = lam[:Q_MODEL]
    theta_sum, conv_sum = fit_fixed_sigma(X, sigma2, rng)
    theta_mean, conv = fit_fixed_sigma(X, sigma2, rng, beta=float(D))
    _, _, act_sum, _, _ = unit_summary(X, theta_sum, sigma2)
    kl_mean, _, act_mean, sens, _ = unit_summary(X, theta_mean, sigma2)
    expected = 0.5 * np.log(np.maximum(top / (D * sigma2), 1.0))
    tol = sens * conv["distance"] + 2 * (X.shape[0] + 4) * EPS * (1 + float(kl_mean.max())) \
        + 16 * D * EPS * float(lam[0]) / (2 * D * sigma2)
    counts = (int(np.sum(act_sum > ACTIVE_THRESHOLD)), int(np.sum(act_mean > ACTIVE_THRESHOLD)))
    wanted = (predicted_active(top, sigma2), predicted_active(top, D * sigma2))
    return [
        make_claim(
            "loss_scaling.pixel_mean_kl",
            f"The linear VAE trained on mean_d nll_d + KL (D = {D}, sigma^2 = {sigma2:.3g} "
            "fixed) has the KL per unit of a beta = D VAE",
            "KL_j = 1/2 ln max(l_j / (D sigma^2), 1),  j = 1..4",
            tuple(kl_mean), tuple(expected), float(np.max(np.abs(kl_mean - expected))), tol,
            f"the distance to the maximum from the final gradient (|g| = {conv['grad_norm']:.1e}) "
            f"and curvature ({conv['curvature']:.3g}) times the KL's sensitivity, plus the "
            "rounding of the means and eigenvalues (as in posterior_collapse.kl_per_unit)",
            unit="nats", details=dict(eigenvalues=lam, sigma2=sigma2, convergence=conv)),
        make_claim(
            "loss_scaling.pixel_mean_active_units",
            "Averaging the reconstruction over pixels collapses latents the summed loss keeps: "
            "active units (summed, pixel-mean) = (#{l_j > sigma^2}, #{l_j > D sigma^2})",
            "(#active summed, #active pixel-mean) = (#{(l_j - s) / l_j > 0.01} at s = sigma^2, "
            "at s = D sigma^2)",
            counts, wanted, float(max(abs(a - b) for a, b in zip(counts, wanted))), 0.0,
            f"exact: counts of units with Cov_x(E_q z_j) > {ACTIVE_THRESHOLD}, at certified maxima "
            "(finite distance bounds)", unit="count",
            passed=bool(counts == wanted and math.isfinite(conv["distance"])
                        and math.isfinite(conv_sum["distance"])),
            details=dict(activity_summed=act_sum, activity_pixel_mean=act_mean,
                         note=f"active units: summed loss {counts[0]}, pixel-mean loss "
                              f"{counts[1]} of {Q_MODEL} (eigenvalues "
                              f"{', '.join(f'{v:.3g}' for v in top)}; sigma^2 = {sigma2:.3g}, "
                              f"D sigma^2 = {D * sigma2:.3g})")),
    ]
