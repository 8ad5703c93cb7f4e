"""Posterior collapse in the linear VAE (Lucas, Tucker, Grosse & Norouzi 2019, "Don't Blame the
ELBO!").

For the linear VAE of ``linear_model`` with the decoder variance sigma^2 held fixed, the maximum of
the ELBO is the pPCA maximum likelihood at that sigma^2: with l_1 >= l_2 >= ... the eigenvalues
of the data covariance and u_j its eigenvectors, unit j of the optimum has

    decoder column  w_j = u_j sqrt(max(l_j - sigma^2, 0))
    posterior       tau_j^2 = sigma^2 / l_j,   Var_x(E_q[z_j]) = (l_j - sigma^2) / l_j
                    (for l_j > sigma^2)
    mean KL         KL_j = 1/2 (Var_x(E_q z_j) + tau_j^2 - 1 - ln tau_j^2) = 1/2 ln(l_j / sigma^2)

and every unit whose eigenvalue is at most sigma^2 collapses: w_j = 0, q(z_j|x) = p(z_j), KL_j = 0.
The collapse is decided by sigma^2 against the spectrum, not by the ELBO: with sigma^2 above l_1
every unit collapses.
"""
from __future__ import annotations

import math

import numpy as np

from . import linear_model as lm
from ._record import EPS, make_claim
from .linear import ppca_data

D, Q_DATA, Q_MODEL, N = 6, 3, 4, 2000
ACTIVE_THRESHOLD = 0.01


def fit_fixed_sigma(X, sigma2, rng, beta=1.0):
    """The linear VAE with Q_MODEL units and sigma^2 fixed, fitted to X (KL weighted by beta);
    returns theta and the convergence summary."""
    r = 0.5 * math.log(sigma2)
    theta0 = lm.initial_theta(rng, X.shape[1], Q_MODEL, learn_sigma=False)
    return lm.fit(X, Q_MODEL, theta0, learn_sigma=False, r_fixed=r, beta=beta)


def unit_summary(X, theta, sigma2):
    """Sorted (descending) per-unit mean KL and squared column norms, the activities, and the
    sensitivities (spectral norms of their Jacobians in theta)."""
    r = 0.5 * math.log(sigma2)

    def kl(v):
        return np.sort(lm.per_unit(v, X, Q_MODEL, False, r)[0])[::-1]

    def col2(v):
        return np.sort(lm.per_unit(v, X, Q_MODEL, False, r)[1])[::-1]

    activity = lm.per_unit(theta, X, Q_MODEL, False, r)[2]
    return (kl(theta), col2(theta), activity, lm.jacobian_norm(kl, theta),
            lm.jacobian_norm(col2, theta))


def predicted_active(eigenvalues, sigma2):
    """Active units at the optimum: Cov_x(E_q z_j) = max(l_j - sigma^2, 0) / l_j above the
    threshold (so only directions with l_j > sigma^2 can count)."""
    return int(np.sum(np.maximum(eigenvalues - sigma2, 0.0) / eigenvalues > ACTIVE_THRESHOLD))


def collapse_data(rng):
    """N draws of a pPCA model with Q_DATA directions in D dimensions, and the eigenvalues of
    their covariance (descending)."""
    X, _ = ppca_data(rng, d=D, q=Q_DATA, n=N)
    Xc = X - X.mean(axis=0)
    return X, np.sort(np.linalg.eigvalsh(Xc.T @ Xc / N))[::-1]


def learned_sigma_record(X, lam, rng):
    """The same linear VAE with sigma^2 learned: sigma^2 goes to the mean of the D - 4 discarded
    eigenvalues (pPCA's ML) and every unit's KL to 1/2 ln(l_j / sigma^2)."""
    theta0 = lm.initial_theta(rng, D, Q_MODEL, learn_sigma=True)
    theta, conv = lm.fit(X, Q_MODEL, theta0, learn_sigma=True)

    def kl(v):
        return np.sort(lm.per_unit(v, X, Q_MODEL, True)[0])[::-1]

    sigma2_ml = float(np.mean(lam[Q_MODEL:]))
    sigma2 = math.exp(2 * float(lm.unpack(theta, D, Q_MODEL)["r"]))
    measured = np.append(kl(theta), sigma2)
    expected = np.append(0.5 * np.log(np.maximum(lam[:Q_MODEL] / sigma2_ml, 1.0)), sigma2_ml)
    sens = lm.jacobian_norm(lambda v: np.append(kl(v), math.exp(2 * v[-1])), theta)
    eig_err = 16 * D * EPS * float(lam[0])
    tol = sens * conv["distance"] + 2 * (N + 4) * EPS * (1 + float(measured.max())) \
        + eig_err / sigma2_ml
    return make_claim(
        "posterior_collapse.learned_sigma",
        "With sigma^2 learned, the linear VAE's optimum is pPCA's: sigma^2 is the mean of the "
        "discarded eigenvalues and unit j keeps KL 1/2 ln(l_j / sigma^2) (all four above it)",
        "(KL_1..KL_4, sigma^2) = (1/2 ln(l_j / sigma^2_ML), 1/(D - 4) sum_{j>4} l_j)",
        tuple(measured), tuple(expected), float(np.max(np.abs(measured - expected))), tol,
        f"the distance to the maximum from the final gradient (|g| = {conv['grad_norm']:.1e}) "
        f"and curvature ({conv['curvature']:.3g}) times the sensitivity of (KL, sigma^2), plus "
        "the rounding of the means and eigenvalues", unit="abs",
        details=dict(eigenvalues=lam, convergence=conv))


def posterior_collapse(seed=0):
    """Claim: posterior collapse in the linear VAE is set by sigma^2 against the eigenvalues.

    Data: N = 2000 draws of a pPCA model with 3 latent directions in D = 6; the linear VAE has 4
    units. With sigma^2 fixed between the second and third eigenvalue (their geometric mean):

    * ``posterior_collapse.kl_per_unit``: mean KL per unit = 1/2 ln max(l_j / sigma^2, 1).
    * ``posterior_collapse.decoder_columns``: ||w_j||^2 = max(l_j - sigma^2, 0).
    * ``posterior_collapse.active_units``: #{j : Cov_x(E_q[z_j]) > 0.01} equals the count
      predicted from the spectrum, #{j : (l_j - sigma^2) / l_j > 0.01} (<= #{j : l_j > sigma^2}).
    * ``posterior_collapse.learned_sigma``: with sigma^2 learned, sigma^2 = sigma^2_ML (the mean of
      the discarded eigenvalues) and KL_j = 1/2 ln(l_j / sigma^2_ML).
    * ``posterior_collapse.all_units``: with sigma^2 = 2 l_1 the total KL = 0 and no unit is active.
    """
    rng = np.random.default_rng(seed)
    X, lam = collapse_data(rng)
    sigma2 = math.sqrt(lam[1] * lam[2])
    top = lam[:Q_MODEL]
    theta, conv = fit_fixed_sigma(X, sigma2, rng)
    kl, col2, activity, sens_kl, sens_col = unit_summary(X, theta, sigma2)
    kl_exact = 0.5 * np.log(np.maximum(top / sigma2, 1.0))
    col_exact = np.maximum(top - sigma2, 0.0)
    eig_err = 16 * D * EPS * float(lam[0])
    reason = (f"the distance to the maximum from the final gradient "
              f"(|g| = {conv['grad_norm']:.1e}) and curvature (smallest eigenvalue of -Hessian "
              f"{conv['curvature']:.3g}): 2 |g| / mu, "
              "times the spectral norm of the quantity's Jacobian in the parameters (central "
              "differences); plus the rounding of the N-term means and of the eigenvalues "
              "(16 D eps l_1)")
    kl_tol = sens_kl * conv["distance"] + 2 * (N + 4) * EPS * (1 + float(kl.max())) \
        + eig_err / (2 * sigma2)
    col_tol = sens_col * conv["distance"] + eig_err + 8 * D * EPS * float(col2.max())
    n_active = int(np.sum(activity > ACTIVE_THRESHOLD))
    n_expected = predicted_active(top, sigma2)
    spectrum = dict(eigenvalues=lam, sigma2=sigma2, convergence=conv)
    records = [
        make_claim(
            "posterior_collapse.kl_per_unit",
            f"With sigma^2 fixed at {sigma2:.3g} (between l_2 and l_3), the trained linear VAE's "
            "mean KL per unit is 1/2 ln(l_j / sigma^2) above sigma^2 and 0 at or below it "
            "(units sorted by KL)",
            "KL_j = 1/2 ln max(l_j / sigma^2, 1),  j = 1..4",
            tuple(kl), tuple(kl_exact), float(np.max(np.abs(kl - kl_exact))), kl_tol, reason,
            unit="nats", details=dict(spectrum, note=(
                f"eigenvalues {', '.join(f'{v:.3g}' for v in lam)}; sigma^2 = {sigma2:.3g}; "
                f"KL per unit {', '.join(f'{v:.3g}' for v in kl)} nats; active units "
                f"{n_active} of {Q_MODEL}"))),
        make_claim(
            "posterior_collapse.decoder_columns",
            "Its decoder columns are sqrt(l_j - sigma^2) long above sigma^2 and 0 at or below it",
            "||w_j||^2 = max(l_j - sigma^2, 0),  j = 1..4",
            tuple(col2), tuple(col_exact), float(np.max(np.abs(col2 - col_exact))), col_tol,
            reason, unit="abs", details=spectrum),
        make_claim(
            "posterior_collapse.active_units",
            f"The active units (Cov_x(E_q[z_j]) > {ACTIVE_THRESHOLD}) are exactly the "
            "eigen-directions above sigma^2",
            f"#{{j : Cov_x(E_q z_j) > {ACTIVE_THRESHOLD}}} = "
            f"#{{j <= 4 : (l_j - sigma^2) / l_j > {ACTIVE_THRESHOLD}}}",
            n_active, n_expected, abs(n_active - n_expected), 0.0,
            "exact: counts, at a certified maximum (finite distance bound); at the optimum "
            "Cov_x(E_q z_j) = (l_j - sigma^2) / l_j, here "
            f"{', '.join(f'{v:.3g}' for v in np.sort(activity)[::-1])}", unit="count",
            passed=bool(n_active == n_expected and math.isfinite(conv["distance"])),
            details=dict(spectrum, activity=activity))]

    records.append(learned_sigma_record(X, lam, rng))
    sigma2_all = 2 * float(lam[0])
    theta_all, conv_all = fit_fixed_sigma(X, sigma2_all, rng)
    kl_all, _, activity_all, sens_all, _ = unit_summary(X, theta_all, sigma2_all)
    total = float(kl_all.sum())
    active_all = int(np.sum(activity_all > ACTIVE_THRESHOLD))
    tol_all = Q_MODEL * sens_all * conv_all["distance"] + 2 * (N + 4) * EPS
    records.append(make_claim(
        "posterior_collapse.all_units",
        f"With sigma^2 fixed above the largest eigenvalue (2 l_1 = {sigma2_all:.3g}) every unit "
        "collapses: the total KL is 0 and no unit is active",
        "sum_j KL_j = 0  and  #active units = 0",
        total, 0.0, abs(total), tol_all,
        reason.replace("plus the rounding of the N-term means and of the eigenvalues (16 D eps "
                       "l_1)", "summed over the units, plus the rounding of the N-term means"),
        passed=bool(math.isfinite(tol_all) and abs(total) <= tol_all and active_all == 0),
        unit="nats",
        details=dict(sigma2=sigma2_all, active_units=active_all, kl_per_unit=kl_all,
                     convergence=conv_all)))
    return records
