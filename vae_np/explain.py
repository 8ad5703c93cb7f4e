"""The backprop lesson: one training step of a tiny VAE, every quantity by name.

``explain()`` builds a float64 VAE 3-2-1 (encoder 3 -> 2 -> (mu, s), decoder 1 -> 2 -> 3, tanh,
Gaussian decoder with sigma = 1, sigma = exp(s/2)), fixes x and eps, and recomputes one training
step by calling the ``vae_np.ops`` functions one at a time in the order of ``VAE._forward`` and
``VAE._backward``. Every backward quantity d<name> = d loss / d <name> is checked against a central
difference of the loss (nudging that quantity in the forward pass, or that parameter), the
step-by-step parameter gradients are compared with ``VAE.loss_and_grads``, and one SGD step shows
the loss going down. ``format_lesson`` prints it; ``python -m vae_np explain`` runs both.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .gradcheck import relative_error
from .model import VAE
from .optim import SGD

X = np.array([[1.0, -0.5, 0.25]])
EPS_FIXED = np.array([[0.8]])
LR = 0.1
FD_STEP = 1e-6
FD_TOL = 1e-6   # a correct float64 central difference lands near 1e-8..1e-10 here

# short lesson names for the model's parameters
PARAM_NAMES = {"W1": "encoder.0.W", "b1": "encoder.0.b", "Wmu": "encoder.mu.W",
               "bmu": "encoder.mu.b", "Ws": "encoder.sigma.W", "bs": "encoder.sigma.b",
               "W3": "decoder.0.W", "b3": "decoder.0.b", "W4": "decoder.out.W",
               "b4": "decoder.out.b"}

FORWARD_EQUATIONS = [
    ("a1", "a1 = x W1 + b1"),
    ("h", "h = tanh(a1)"),
    ("mu", "mu = h Wmu + bmu"),
    ("s", "s = h Ws + bs                 (s = ln sigma^2)"),
    ("sigma", "sigma = exp(s / 2)"),
    ("z", "z = mu + sigma * eps"),
    ("kl", "kl = 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2)"),
    ("a2", "a2 = z W3 + b3"),
    ("g", "g = tanh(a2)"),
    ("xt", "xt = g W4 + b4               (decoder mean x~)"),
    ("nll", "nll = 1/2 ||x - xt||^2 + D/2 ln 2 pi"),
    ("loss", "loss = mean_b(nll + kl)"),
]


def build_model(seed=0) -> VAE:
    """The lesson's model: VAE(3, (2,), 1, tanh, gaussian, logvar, float64)."""
    return VAE(3, (2,), 1, "tanh", "gaussian", "logvar", dtype=np.float64, seed=seed)


def forward(params, x, eps, nudge=None):
    """The forward pass step by step with vae_np.ops, as in VAE._forward (B examples, K = 1).

    ``nudge = (name, delta)`` adds ``delta`` to the intermediate ``name`` right after it is
    computed, so that central differences of the loss give d loss / d name. Returns (values dict
    name -> array, caches dict).
    """
    v, c = {}, {}

    def keep(name, value):
        if nudge is not None and nudge[0] == name:
            value = value + nudge[1]
        v[name] = value
        return value

    p = params
    a1, c["a1"] = ops.dense_forward(x, p["W1"], p["b1"])
    h, c["h"] = ops.tanh_forward(keep("a1", a1))
    h = keep("h", h)                                   # h fans out to both heads
    mu, c["mu"] = ops.dense_forward(h, p["Wmu"], p["bmu"])
    s, c["s"] = ops.dense_forward(h, p["Ws"], p["bs"])
    sigma, c["sigma"] = ops.sigma_logvar_forward(keep("s", s))
    mu, sigma = keep("mu", mu), keep("sigma", sigma)
    z, c["z"] = ops.reparameterize_forward(mu, sigma, eps)
    kl, c["kl"] = ops.kl_forward(mu, sigma)
    a2, c["a2"] = ops.dense_forward(keep("z", z), p["W3"], p["b3"])
    g, c["g"] = ops.tanh_forward(keep("a2", a2))
    xt, c["xt"] = ops.dense_forward(keep("g", g), p["W4"], p["b4"])
    nll, c["nll"] = ops.gaussian_nll_forward(keep("xt", xt), x, 1.0)
    nll, kl = keep("nll", nll), keep("kl", kl)
    v["loss"] = np.array(np.mean(nll + kl))
    return v, c


def backward(v, c, params):
    """The backward pass step by step with vae_np.ops, as in VAE._backward.

    Returns a list of (name, equation, value, check) in order, where ``check`` says how to
    finite-difference it: ("nudge", intermediate), ("param", lesson name) or ("kl", "mu"/"sigma")
    for the KL's own partial derivatives.
    """
    B = v["nll"].shape[0]
    rows = []

    def row(name, equation, value, check):
        rows.append((name, equation, value, check))
        return value

    dnll = row("dnll", "dnll = d loss/d nll = 1/B", np.full(B, 1.0 / B), ("nudge", "nll"))
    dkl = row("dkl", "dkl = d loss/d kl = 1/B", np.full(B, 1.0 / B), ("nudge", "kl"))
    dxt = row("dxt", "dxt = dnll * (xt - x) / 1^2", ops.gaussian_nll_backward(dnll, c["nll"]),
              ("nudge", "xt"))
    dg, dW4, db4 = ops.dense_backward(dxt, c["xt"])
    row("dW4", "dW4 = g^T dxt", dW4, ("param", "W4"))
    row("db4", "db4 = sum_b dxt", db4, ("param", "b4"))
    row("dg", "dg = dxt W4^T", dg, ("nudge", "g"))
    da2 = row("da2", "da2 = dg * (1 - g^2)", ops.tanh_backward(dg, c["g"]), ("nudge", "a2"))
    dz, dW3, db3 = ops.dense_backward(da2, c["a2"])
    row("dW3", "dW3 = z^T da2", dW3, ("param", "W3"))
    row("db3", "db3 = sum_b da2", db3, ("param", "b3"))
    row("dz", "dz = da2 W3^T", dz, ("nudge", "z"))
    dmu_z, dsigma_z = ops.reparameterize_backward(dz, c["z"])
    dmu_kl, dsigma_kl = ops.kl_backward(dkl, c["kl"])
    row("dmu_kl", "dmu_kl = dkl * mu                (KL's own dKL/dmu)", dmu_kl, ("kl", "mu"))
    row("dsigma_kl", "dsigma_kl = dkl * (sigma - 1/sigma)", dsigma_kl, ("kl", "sigma"))
    dmu = row("dmu", "dmu = dz + dkl * mu             (dz/dmu = 1)", dmu_z + dmu_kl,
              ("nudge", "mu"))
    dsigma = row("dsigma", "dsigma = dz * eps + dkl * (sigma - 1/sigma)   (dz/dsigma = eps)",
                 dsigma_z + dsigma_kl, ("nudge", "sigma"))
    ds = row("ds", "ds = dsigma * sigma / 2         (sigma = exp(s/2))",
             ops.sigma_logvar_backward(dsigma, c["sigma"]), ("nudge", "s"))
    dh_mu, dWmu, dbmu = ops.dense_backward(dmu, c["mu"])
    dh_s, dWs, dbs = ops.dense_backward(ds, c["s"])
    row("dWmu", "dWmu = h^T dmu", dWmu, ("param", "Wmu"))
    row("dbmu", "dbmu = sum_b dmu", dbmu, ("param", "bmu"))
    row("dWs", "dWs = h^T ds", dWs, ("param", "Ws"))
    row("dbs", "dbs = sum_b ds", dbs, ("param", "bs"))
    dh = row("dh", "dh = dmu Wmu^T + ds Ws^T        (h fans out to both heads: +=)",
             dh_mu + dh_s, ("nudge", "h"))
    da1 = row("da1", "da1 = dh * (1 - h^2)", ops.tanh_backward(dh, c["h"]), ("nudge", "a1"))
    _, dW1, db1 = ops.dense_backward(da1, c["a1"])
    row("dW1", "dW1 = x^T da1", dW1, ("param", "W1"))
    row("db1", "db1 = sum_b da1", db1, ("param", "b1"))
    return rows


def _finite_difference(check, shape, params, x, eps, values):
    """Central difference of the loss for one backward row."""
    kind, target = check
    out = np.zeros(shape)
    for i in range(out.size):
        if kind == "kl":      # d kl_b / d mu (or sigma), times dkl = 1/B
            base = {"mu": values["mu"], "sigma": values["sigma"]}
            h = FD_STEP * max(1.0, abs(float(base[target].flat[i])))
            f = []
            for sign in (1, -1):
                moved = {k: a.copy() for k, a in base.items()}
                moved[target].flat[i] += sign * h
                f.append(float(np.mean(ops.kl_forward(moved["mu"], moved["sigma"])[0])))
            out.flat[i] = (f[0] - f[1]) / (2 * h)
            continue
        if kind == "param":
            h = FD_STEP * max(1.0, abs(float(params[target].flat[i])))
        else:
            h = FD_STEP * max(1.0, abs(float(values[target].flat[i])))
        f = []
        for sign in (1, -1):
            if kind == "param":
                moved = {k: a.copy() for k, a in params.items()}
                moved[target].flat[i] += sign * h
                f.append(float(forward(moved, x, eps)[0]["loss"]))
            else:
                delta = np.zeros(values[target].shape)
                delta.flat[i] = sign * h
                f.append(float(forward(params, x, eps, nudge=(target, delta))[0]["loss"]))
        out.flat[i] = (f[0] - f[1]) / (2 * h)
    return out


def explain(seed=0, lr=LR) -> dict:
    """Run the lesson and return everything as a JSON-serialisable dict.

    Keys: model, x, eps, parameters, forward (list of name/equation/value), backward (list of
    name/equation/value/fd/rel_error/passed), model_check (step-by-step vs VAE.loss_and_grads),
    sgd_step (loss before/after one step), passed.
    """
    model = build_model(seed)
    params = {short: model.params[long].copy() for short, long in PARAM_NAMES.items()}
    x, eps = X.copy(), EPS_FIXED.copy()
    values, caches = forward(params, x, eps)
    forward_rows = [dict(name=n, equation=e, value=np.asarray(values[n]).tolist())
                    for n, e in FORWARD_EQUATIONS]
    backward_rows = []
    for name, equation, value, check in backward(values, caches, params):
        fd = _finite_difference(check, np.shape(value), params, x, eps, values)
        err = float(np.max(relative_error(np.asarray(value), fd, 1e-12)))
        backward_rows.append(dict(name=name, equation=equation, value=np.asarray(value).tolist(),
                                  fd=fd.tolist(), rel_error=err, passed=err < FD_TOL))

    loss_model, grads = model.loss_and_grads(x, k=1, eps=eps)
    by_name = {r["name"]: np.asarray(r["value"]) for r in backward_rows}
    diffs = {short: float(np.max(np.abs(by_name["d" + short] - grads[long])))
             for short, long in PARAM_NAMES.items()}
    loss_diff = abs(float(values["loss"]) - loss_model)
    model_check = dict(max_abs_gradient_difference=max(diffs.values()), per_parameter=diffs,
                       loss_step_by_step=float(values["loss"]), loss_model=loss_model,
                       loss_difference=loss_diff,
                       equal=max(diffs.values()) <= 1e-15 and loss_diff <= 1e-15)

    grad_norm2 = float(model.grad_flat @ model.grad_flat)
    SGD(lr).step(model.flat, model.grad_flat)
    loss_after = model.loss(x, k=1, eps=eps)
    sgd = dict(lr=lr, loss_before=loss_model, loss_after=loss_after,
               first_order_change=-lr * grad_norm2, actual_change=loss_after - loss_model)
    passed = all(r["passed"] for r in backward_rows) and model_check["equal"] and \
        loss_after < loss_model
    return dict(model=repr(build_model(seed)), x=x.tolist(), eps=eps.tolist(),
                parameters={short: dict(model_name=long, value=params[short].tolist())
                            for short, long in PARAM_NAMES.items()},
                forward=forward_rows, backward=backward_rows, model_check=model_check,
                sgd_step=sgd, fd_tolerance=FD_TOL, passed=passed)


def _fmt(value) -> str:
    """An array on one line, rows of a matrix side by side: [[a, b], [c, d]]."""
    value = np.asarray(value, dtype=float)
    if value.ndim > 1:
        return "[" + ", ".join(_fmt(row) for row in value) + "]"
    return np.array2string(value, precision=6, floatmode="maxprec", separator=", ",
                           max_line_width=10_000)


def format_lesson(result: dict) -> str:
    """The lesson as text: forward quantities, then backward quantities with their FD checks."""
    lines = [f"One training step of {result['model']}",
             f"x = {_fmt(result['x'])}   eps = {_fmt(result['eps'])} (fixed)   batch 1, k = 1",
             "", "PARAMETERS"]
    for short, p in result["parameters"].items():
        lines.append(f"  {short:<4} {'(' + p['model_name'] + ')':<17} = {_fmt(p['value'])}")
    lines += ["", "FORWARD"]
    for r in result["forward"]:
        lines.append(f"  {r['equation']:<48} {r['name']:>5} = {_fmt(r['value'])}")
    lines += ["", "BACKWARD  (d<v> = d loss / d v;  fd: central difference of the loss with v "
                  f"nudged by +-{FD_STEP:g} max(1, |v|);  ok if rel. error < "
                  f"{result['fd_tolerance']:g})"]
    for r in result["backward"]:
        lines.append(f"  {r['equation']}")
        lines.append(f"      {r['name']:>9} = {_fmt(r['value'])}")
        lines.append(f"      {'fd':>9} = {_fmt(r['fd'])}   rel. error {r['rel_error']:.1e}  "
                     f"{'ok' if r['passed'] else 'FAIL'}")
    m = result["model_check"]
    lines += ["", f"step-by-step == VAE.loss_and_grads: loss {m['loss_step_by_step']:.12g} vs "
                  f"{m['loss_model']:.12g}; max |gradient difference| = "
                  f"{m['max_abs_gradient_difference']:.1e}  "
                  f"{'(identical)' if m['equal'] else 'DIFFER'}"]
    s = result["sgd_step"]
    lines.append(f"one SGD step (theta <- theta - {s['lr']:g} * grad): loss {s['loss_before']:.6f} "
                 f"-> {s['loss_after']:.6f} (change {s['actual_change']:+.6f}; first-order "
                 f"prediction -lr ||grad||^2 = {s['first_order_change']:+.6f})")
    lines.append("PASSED" if result["passed"] else "FAILED")
    return "\n".join(lines)
