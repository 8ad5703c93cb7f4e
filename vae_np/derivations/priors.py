"""Claims of the richer priors and the KL options (vae_np.priors, vae_np.objectives).

two_layer_kl   the top layer's KL in closed form given z1 and its Monte Carlo form
               ln q(z2|z1) - ln p(z2) agree in expectation over eps2, so the two-layer ELBO with
               either estimates the same bound:
                   E_{z2 ~ q(z2|z1)}[ln q(z2|z1) - ln N(z2; 0, I)] = KL(q(z2|z1) || N(0, I))
vamp_reduces   a VampPrior whose pseudo-inputs all map to the same q(z|u) = N(mu, sigma^2) is
               that Gaussian: ln 1/M sum_m N(z; mu, sigma^2) = ln N(z; mu, sigma^2)
free_bits      free bits pass no gradient to a clamped group (mean_b KL_j <= lambda): the loss
               does not move with that group's KL, and its unit feels no pull of the KL (its
               head's gradient is the reconstruction's alone); a free group's is beta / B

Every side is computed by the library (``VAE.forward`` and ``trace``) and by an independent route
(a Monte Carlo mean with its standard error, scipy.stats, a central difference, another
objective).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..numerics import central_difference
from ._record import EPS, MC_SIGMAS, make_claim, sum_rounding

TOP_DRAWS = 200_000          # eps2 draws per z1: the Monte Carlo SE ~ 0.8 % of the KL
ELBO_DRAWS = 200_000         # (eps1, eps2) draws: SE 0.001 nats, 1/10 of a 5 % top KL error


def _two_layer(seed, top_kl):
    from ..core.model import VAE
    return VAE(6, (8,), 4, "tanh", "bernoulli", dtype=np.float64, seed=seed, z2_dim=3,
               hidden2=(5, 5), top_kl=top_kl)


def top_layer_terms(seed, draws=TOP_DRAWS):
    """At one z1 (one x, one eps1), the closed-form kl2 and ``draws`` Monte Carlo terms
    ln q(z2|z1) - ln p(z2) over fresh eps2, both from the library's trace."""
    rng = np.random.default_rng([seed, 31])
    model = _two_layer(seed, "analytic")
    x = rng.random((1, model.x_dim))
    eps = rng.standard_normal((draws, 1, model.noise_dim))
    eps[:, :, :model.z_dim] = eps[0, :, :model.z_dim]          # one z1, many z2
    v = model.forward(x, eps, objective="iwae").values          # IWAE records ln q2 and ln p(z2)
    return float(v["kl2"][0, 0]), (v["log_q2"] - v["log_pz2"])[:, 0], v["kl2"][:, 0]


def elbo_estimates(seed, draws=ELBO_DRAWS):
    """Per-draw -ELBO terms of the same model and noise with the closed-form and with the
    sampled top KL (the library's nll, ln q(z1|x), ln p(z1|z2), and kl2 or ln q(z2|z1) -
    ln p(z2)), and the two models' losses: (analytic (draws,), sampled (draws,), loss, loss)."""
    rng = np.random.default_rng([seed, 32])
    analytic, sampled = _two_layer(seed, "analytic"), _two_layer(seed, "sampled")
    x = rng.random((1, analytic.x_dim))
    eps = rng.standard_normal((draws, 1, analytic.noise_dim))
    a, s = analytic.forward(x, eps), sampled.forward(x, eps)
    per_draw = []
    for v, top in ((a.values, a.values["kl2"]),
                   (s.values, s.values["log_q2"] - s.values["log_pz2"])):
        per_draw.append((v["nll"] + v["log_q"] - v["log_pz1"] + top)[:, 0])
    return per_draw[0], per_draw[1], a.loss, s.loss


def two_layer_kl(seed=0):
    """Claim: KL(q(z2|z1) || N(0, I)) = E_q(z2|z1)[ln q(z2|z1) - ln p(z2)].

    ``two_layer_kl.top_layer`` (the closed-form top KL = the mean of the Monte Carlo term at one
    z1) and ``two_layer_kl.elbo`` (the two-layer ELBO with either top KL: the same mean)."""
    closed, terms, repeated = top_layer_terms(seed)
    mean, se = float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(terms.size))
    constant = float(np.max(np.abs(repeated - closed)))
    top = make_claim(
        "two_layer_kl.top_layer",
        f"The top layer's closed-form KL given z1 equals the mean of the Monte Carlo term over "
        f"{TOP_DRAWS} draws of z2 ~ q(z2|z1) at one z1 (the library's kl2, ln q(z2|z1), ln p(z2))",
        "KL(q(z2|z1) || N(0, I)) = E_q(z2|z1)[ln q(z2|z1) - ln N(z2; 0, I)]",
        closed, mean, abs(mean - closed) / se, MC_SIGMAS,
        f"the Monte Carlo mean within {MC_SIGMAS:g} standard errors (error in SE); the closed "
        "form is one number at one z1", unit="SE", details=dict(
            se=se, closed_form_spread=constant,
            note=f"KL(q(z2|z1) || N(0, I)) = {closed:.5f}; Monte Carlo {mean:.5f} +- {se:.5f}"),
        passed=bool(abs(mean - closed) <= MC_SIGMAS * se and constant == 0.0))
    analytic, sampled, loss_a, loss_s = elbo_estimates(seed)
    diff = analytic - sampled
    d_mean, d_se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))
    elbo = make_claim(
        "two_layer_kl.elbo",
        f"The two-layer -ELBO with the closed-form top KL and with the sampled one estimate the "
        f"same bound: their per-draw difference has mean 0 over {ELBO_DRAWS} draws of (eps1, eps2) "
        "(the library's losses, top_kl='analytic' and 'sampled', same parameters and noise)",
        "E[nll + ln q(z1|x) - ln p(z1|z2) + KL_2] = E[nll + ln q(z1|x) - ln p(z1|z2) "
        "+ ln q(z2|z1) - ln p(z2)]",
        loss_a, loss_s, abs(d_mean) / d_se, MC_SIGMAS,
        f"the paired difference's mean within {MC_SIGMAS:g} of its standard errors (error in SE)",
        unit="SE", details=dict(mean_difference=d_mean, se=d_se,
                                note=f"-ELBO {loss_a:.4f} (closed-form top KL) vs {loss_s:.4f} "
                                     f"(sampled); difference {d_mean:+.5f} +- {d_se:.5f}"))
    return [top, elbo]


# --------------------------------------------------------------------------- the VampPrior
def collapsed_vamp(seed):
    """A VampPrior model whose first encoder layer ignores its input (W = 0): every pseudo-input
    (drawn apart) maps to one q(z|u) = N(mu, sigma^2)."""
    from ..core.model import VAE
    model = VAE(5, (4,), 3, "tanh", "bernoulli", dtype=np.float64, seed=seed, prior="vamp",
                pseudo_inputs=7)
    model.params["encoder.0.W"][...] = 0.0
    return model


def vamp_reduces(seed=0):
    """Claim: ln 1/M sum_m N(z; mu, sigma^2) = ln N(z; mu, sigma^2) when every q(z|u_m) is one.

    ``vamp_reduces.gaussian``: ln p(z) of the collapsed VampPrior (the library) equals
    ln N(z; mu, sigma^2) from scipy.stats at the one component."""
    rng = np.random.default_rng([seed, 33])
    model = collapsed_vamp(seed)
    u = model.params["prior.u"]
    assert np.ptp(u, axis=0).min() > 0                    # the pseudo-inputs differ
    x = rng.random((6, model.x_dim))
    eps = rng.standard_normal((3, 6, model.noise_dim))
    log_pz = model.forward(x, eps, objective="iwae").values["log_pz"]
    z = model.forward(x, eps).values["z"]
    mu, sigma = (a[0] for a in model.encode(u[:1]))
    terms = norm.logpdf(z, mu, sigma)                     # (K, B, Z)
    gaussian = terms.sum(-1)
    err = np.abs(log_pz - gaussian)
    tol = np.array([sum_rounding(t) for t in terms.reshape(-1, terms.shape[-1])]).reshape(
        err.shape) + 16 * EPS * (np.abs(gaussian) + np.log(7) + 1)
    i = np.unravel_index(np.argmax(err / tol), err.shape)
    return [make_claim(
        "vamp_reduces.gaussian",
        "A VampPrior whose 7 pseudo-inputs (all different) map to the same q(z|u) (the encoder's "
        "first layer set to ignore its input) is that Gaussian: the library's ln p(z) equals "
        "ln N(z; mu, sigma^2) by scipy.stats, at 18 samples",
        "ln 1/M sum_m N(z; mu, sigma^2) = ln N(z; mu, sigma^2)",
        log_pz[i], gaussian[i], err[i], tol[i],
        "rounding of the Z-term sums (2 (n + 4) eps sum|terms|) and of the log-sum-exp over M "
        "equal terms (16 eps (|value| + ln M + 1)); the sample closest to failing is shown",
        unit="nats", passed=bool(np.all(err <= tol)),
        details=dict(max_error=float(err.max())))]


# --------------------------------------------------------------------------- free bits
def free_bits_setup(seed):
    """A one-layer model (Z = 4 units, closed-form KL per unit), a batch, frozen eps and a floor
    lambda between the groups' batch means (the two lowest clamped, the two highest free)."""
    from ..core.model import VAE
    from ..objectives import FreeBits
    rng = np.random.default_rng([seed, 34])
    model = VAE(6, (8,), 4, "tanh", "bernoulli", dtype=np.float64, seed=seed)
    x = rng.random((5, 6))
    eps = rng.standard_normal((2, 5, 4))
    means = np.sort(model.forward(x, eps, objective=FreeBits(0.0)).values["kl_groups"].mean(0))
    lam = float(means[1] + means[2]) / 2
    objective = FreeBits(lam, warmup_epochs=2)
    objective.begin_epoch(2)                                # beta = 1/2
    return model, x, eps, objective


def group_gradients(model, x, eps, objective):
    """Per group j: the library's sum_b d loss / d kl_groups_bj, and a central difference of the
    library's loss with the whole column kl_groups[:, j] nudged (and its error bound)."""
    trace = model.trace(x, k=eps.shape[0], eps=eps, objective=objective)
    groups = trace.values["kl_groups"]
    analytic = trace.grads["kl_groups"].sum(axis=0)
    fd, bound = np.empty(groups.shape[1]), np.empty(groups.shape[1])
    for j in range(groups.shape[1]):
        def loss(t, j=j):
            delta = np.zeros_like(groups)
            delta[:, j] = t[0]
            return model.forward(x, eps, {"kl_groups": delta}, objective=objective).loss
        g, b = central_difference(loss, np.zeros(1), 1e-6)
        fd[j], bound[j] = g[0], b[0]
    clamped = groups.mean(axis=0) <= objective.free_bits
    return analytic, fd, bound, clamped, trace


def free_bits(seed=0):
    """Claim: d/dKL_j [beta max(lambda, mean_b KL_j)] = 0 where the floor holds, beta elsewhere.

    ``free_bits.clamped`` (no gradient reaches a clamped group), ``free_bits.free`` (beta / B
    per example reaches a free one) and ``free_bits.no_pull`` (a clamped unit's head gradient is
    the reconstruction's alone, as under beta = 0)."""
    from ..objectives import KLWarmup
    model, x, eps, objective = free_bits_setup(seed)
    analytic, fd, bound, clamped, _ = group_gradients(model, x, eps, objective)
    beta = objective.beta
    err = np.abs(analytic - fd)
    records = [make_claim(
        "free_bits.clamped",
        f"Free bits (lambda = {objective.free_bits:.4f} nats, beta = {beta:g}) pass no gradient to "
        f"a group whose batch-mean KL is below lambda: the library's d loss / d KL_j and a central "
        f"difference of its loss with that group's KL nudged are both 0 ({int(clamped.sum())} of "
        f"{clamped.size} units clamped)",
        "d/dKL_j [beta max(lambda, mean_b KL_j)] = 0 where mean_b KL_j < lambda",
        float(np.max(np.abs(analytic[clamped]))), float(np.max(np.abs(fd[clamped]))),
        float(np.max(np.abs(analytic[clamped])) + np.max(np.abs(fd[clamped]))),
        float(np.max(bound[clamped])),
        "the central difference's error bound (truncation and rounding of the loss); error = "
        "|analytic| + |difference quotient|, both of which must vanish", unit="nats/nat",
        details=dict(lambda_=objective.free_bits, group_means=model.forward(
            x, eps, objective=objective).values["kl_groups"].mean(0)))]
    records.append(make_claim(
        "free_bits.free",
        "A group above the floor keeps the KL's full gradient, beta for the group (beta / B per "
        "example): the library's and a central difference's",
        "d/dKL_j [beta max(lambda, mean_b KL_j)] = beta where mean_b KL_j > lambda",
        (float(analytic[~clamped][0]), float(fd[~clamped][0])), (beta, beta),
        float(np.max(np.abs(np.concatenate([analytic[~clamped], fd[~clamped]]) - beta))),
        float(np.max(bound[~clamped])),
        "the central difference's error bound; the analytic side is exact (beta / B summed over B "
        "examples)", unit="nats/nat"))
    free_trace = model.trace(x, k=2, eps=eps, objective=objective)
    g_free = free_trace.grads["encoder.mu.b"].copy()
    recon = KLWarmup(warmup_epochs=1)
    recon.begin_epoch(1)                                     # beta = 0: the reconstruction alone
    g_recon = model.trace(x, k=2, eps=eps, objective=recon).grads["encoder.mu.b"].copy()
    diff = np.abs(g_free - g_recon)
    scale = float(np.max(np.abs(g_recon)))
    records.append(make_claim(
        "free_bits.no_pull",
        "A clamped unit feels no pull of the KL: its mu head's bias gradient under free bits is "
        "the reconstruction's alone (the library under beta = 0), while a free unit's is not",
        "d loss_FB / d b_mu_j = d recon / d b_mu_j   (j clamped)",
        tuple(g_free[clamped]), tuple(g_recon[clamped]), float(np.max(diff[clamped])),
        16 * EPS * scale, "rounding: the same products, with the KL's exact 0 added (16 eps of the "
        "largest gradient entry)", unit="nats",
        passed=bool(np.max(diff[clamped]) <= 16 * EPS * scale
                    and np.min(diff[~clamped]) > 1e3 * 16 * EPS * scale),
        details=dict(free_units_difference=diff[~clamped])))
    return records
