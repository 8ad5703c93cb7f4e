"""The backprop lesson: one training step of any VAE, read from the model's own trace.

``explain()`` builds a float64 VAE (by default the 3-2-1 lesson: encoder 3 -> 2 -> (mu, s),
decoder 1 -> 2 -> 3, tanh, Gaussian decoder with sigma = 1, sigma = exp(s/2)), draws x and eps from
a seeded generator and freezes them, and runs ``model.trace``: the library's one implementation of
the step, not a copy. For every quantity of the trace it shows the forward equation, shape and
value; for every d<name> = d loss / d <name> the backward equation and a central difference of the
loss with that quantity nudged where the forward pass computes it; then every parameter's gradient
against central differences of the loss, and one SGD step. ``mistake=`` plants a known error in one
backward op (``MISTAKES``) so that a teacher can show where the check turns red.

The whole step on one page, without the components: ``vae_np.teaching.lecture`` (the ELBO step of the
plain VAE in NumPy, forward, backward and SGD, one chain-rule factor per line, equal to this
trace to 1e-12); ``python -m vae_np lecture`` prints it.
"""
from __future__ import annotations

import contextlib
import textwrap

import numpy as np

from .. import ops
from .._validate import check_choice, check_int, check_positive
from ..core.model import FAMILIES, VAE
from ..numerics import difference_quotient, relative_error, step_size
from ..optim import SGD

LR = 0.1
FD_STEP = 1e-6          # relative step h = FD_STEP * max(1, |v|)
FD_TOL = 1e-6           # a correct float64 quotient lands near 1e-8..1e-10 here
MAX_COORDS = 12         # central differences per quantity or parameter (all when fewer)
LESSON = dict(x_dim=3, hidden=(2,), z_dim=1, activation="tanh", likelihood="gaussian",
              sigma_param="logvar")


def _plant(name, wrong):
    """A mistake: replace ``vae_np.ops.<name>`` by ``wrong(original)`` while it is planted."""
    return name, wrong


MISTAKES = {
    "kl-gradient-doubled": (
        "the KL gradient 2(1/sigma - sigma), -2 mu that circulates: twice the truth",
        _plant("kl_backward", lambda f: lambda dkl, c: tuple(2 * g for g in f(dkl, c)))),
    "eps-dropped": (
        "dsigma = dz instead of dz * eps (dz/dsigma forgotten)",
        _plant("reparameterize_backward",
               lambda f: lambda dz, c: (f(dz, c)[0], f(dz, c)[0]))),
    "half-dropped-in-ds": (
        "ds = dsigma * sigma for sigma = exp(s/2) (the 1/2 of the chain rule dropped)",
        _plant("sigma_logvar_backward", lambda f: lambda dsigma, sigma: dsigma * sigma)),
    "db-as-mean": (
        "db = mean_b dy instead of sum_b dy in every dense layer (shows with --batch 2)",
        _plant("dense_backward", lambda f: lambda dy, c, **kw: _db_mean(f, dy, c, **kw))),
}
"""name -> (what it does, (vae_np.ops function it replaces, wrong version of it))."""


def _db_mean(f, dy, cache, **kw):
    dx, dW, db = f(dy, cache, **kw)
    db /= dy.shape[0]           # in place: db is the model's own gradient view
    return dx, dW, db


@contextlib.contextmanager
def planted(mistake):
    """Within the block, ``vae_np.ops`` computes ``mistake`` wrongly (None: nothing planted)."""
    if mistake is None:
        yield
        return
    name, wrong = MISTAKES[check_choice("mistake", mistake, MISTAKES)][1]
    original = getattr(ops, name)
    setattr(ops, name, wrong(original))
    try:
        yield
    finally:
        setattr(ops, name, original)


FAMILY_KEYS = tuple(sorted(set().union(*(registry.keywords() for registry in FAMILIES))))
"""The keywords of the registered posterior families and priors (flow, flow_length, prior,
pseudo_inputs, z2_dim, hidden2, top_kl, ...)."""
ARCH_KEYS = tuple(LESSON) + FAMILY_KEYS
"""The keyword arguments ``build_model`` (and so ``explain``) accepts."""


def build_model(seed=0, **arch) -> VAE:
    """The lesson's model, float64: VAE(3, (2,), 1, tanh, gaussian, logvar) unless ``arch``
    overrides x_dim, hidden, z_dim, activation, likelihood, sigma_param, or chooses a posterior
    family or a prior by its keywords (flow, flow_length; prior, pseudo_inputs; z2_dim, hidden2,
    top_kl: see ``VAE``). Any other key is a ValueError (it was ignored, so ``flow=`` taught the
    plain model)."""
    unknown = sorted(set(arch) - set(ARCH_KEYS))
    if unknown:
        raise ValueError(f"arch accepts only {list(ARCH_KEYS)}, got {unknown}")
    a = {**LESSON, **arch}
    families = {key: a[key] for key in FAMILY_KEYS if key in a}
    return VAE(a["x_dim"], a["hidden"], a["z_dim"], a["activation"], a["likelihood"],
               a["sigma_param"], dtype=np.float64, seed=seed, **families)


def _inputs(model, batch, k, seed):
    rng = np.random.default_rng([seed, 1])
    if model.decoder_likelihood.unit_interval:
        x = rng.random((batch, model.x_dim))
    else:
        x = rng.standard_normal((batch, model.x_dim))
    return x, rng.standard_normal((k, batch, model.noise_dim))


def _coords(size, rng):
    return np.arange(size) if size <= MAX_COORDS else np.sort(
        rng.choice(size, MAX_COORDS, replace=False))


def _check(analytic, quotient_at, value, coords, scale):
    """Max relative error of ``analytic`` against central differences at ``coords``; the
    comparison floor is the quotient's rounding noise (16 eps scale / 2h) over FD_TOL.

    ``scale`` is the size of what the loss sums, not of the sum: about D + Z terms of order 1
    (pixels and latent units), which can cancel (784 continuous Bernoulli pixel terms of about 1
    sum to a loss of 2) while the sum still rounds like its terms."""
    worst, fd = 0.0, np.full(analytic.shape, np.nan)
    for i in coords:
        h = step_size(value.flat[i], FD_STEP)
        fd.flat[i] = quotient_at(i, h)
        noise = 16 * np.finfo(float).eps * scale / (2 * h)
        worst = max(worst, float(relative_error(analytic.flat[i], fd.flat[i], noise / FD_TOL)))
    return worst, fd


def explain(seed=0, lr=LR, *, batch=1, k=1, mistake=None, objective="elbo", **arch) -> dict:
    """Run the lesson and return it as a JSON-serialisable dict.

    Parameters
    ----------
    seed : int >= 0, the weights' seed and the seed of x and eps
    lr : the SGD step's learning rate
    batch, k : examples and Monte Carlo samples
    mistake : None or a name in MISTAKES, planted for the whole lesson
    objective : "elbo" or "iwae" (the importance-weighted bound over the k samples)
    arch : x_dim, hidden, z_dim, activation, likelihood, sigma_param (default: the 3-2-1 lesson),
           and the keywords of a posterior family or prior (``FAMILY_KEYS``: flow, flow_length;
           prior, pseudo_inputs; z2_dim, hidden2, top_kl; default none)

    Returns
    -------
    dict: model, x, eps, forward (name, equation, shape, value), backward (name, equation, value,
    fd, rel_error, checked, passed; the trace's quantities in backward order), parameters (the
    same per parameter tensor, in backward order), sgd_step, first_failure (name or None),
    passed. Backward order is the order in which ``model.backward`` computes the gradients:
    dnll and dkl, then the likelihood's, the decoder's from its last layer down (a layer's dW
    and db right after its d<output>), the posterior's and the encoder's. ``first_failure`` is
    the first wrong gradient in that order, quantity or parameter.
    """
    seed = check_int("seed", seed, minimum=0)
    lr = check_positive("lr", lr)
    batch, k = check_int("batch", batch), check_int("k", k)
    model = build_model(seed, **arch)
    x, eps = _inputs(model, batch, k, seed)
    rng = np.random.default_rng([seed, 2])
    with planted(mistake):
        trace = model.trace(x, k=k, eps=eps, objective=objective)
        loss = trace.loss
        scale = abs(loss) + model.x_dim + model.z_dim      # what the loss sums (see _check)
        equations = model.grad_equations(objective)

        def loss_with(nudges=None):
            return model.forward(x, eps, nudges, objective).loss

        forward = [dict(name=n, equation=trace.equations[n], shape=list(np.shape(v)),
                        value=np.asarray(v).tolist()) for n, v in trace.values.items()]
        # backward order: the order in which the backward pass filled trace.grads (objective,
        # likelihood, decoder, posterior, encoder; each layer's dW, db right after its dy)
        order = list(trace.grads)
        backward = []
        for name in [n for n in order if n in trace.values and n not in ("x", "eps", "loss")]:
            value, analytic = np.asarray(trace.values[name]), np.asarray(trace.grads[name])

            def quotient(i, h, name=name, value=value):
                delta = np.zeros(value.shape)
                return difference_quotient(lambda d: loss_with({name: d}), delta, i, h)[0]
            coords = _coords(value.size, rng)
            err, fd = _check(analytic, quotient, value, coords, scale)
            backward.append(dict(name=name, equation=equations[name], value=analytic.tolist(),
                                 fd=np.where(np.isnan(fd), None, fd).tolist(),   # JSON null
                                 rel_error=err, checked=len(coords),
                                 passed=err < FD_TOL))
        parameters = []
        for name in [n for n in order if n in model.params]:
            p = model.params[name]
            analytic = trace.grads[name].copy()
            coords = _coords(p.size, rng)

            def quotient(i, h, p=p):
                return difference_quotient(lambda _: loss_with(), p, i, h)[0]
            err, fd = _check(analytic, quotient, p, coords, scale)
            parameters.append(dict(name=name, equation=equations[name], shape=list(p.shape),
                                   rel_error=err, checked=len(coords), passed=err < FD_TOL))
        grad_norm2 = float(model.grad_flat @ model.grad_flat)
    SGD(lr).step(model.flat, model.grad_flat)
    loss_after = model.loss(x, k=k, eps=eps, objective=objective)
    sgd = dict(lr=lr, loss_before=loss, loss_after=loss_after,
               first_order_change=-lr * grad_norm2, actual_change=loss_after - loss)
    failed = sorted((r["name"] for r in backward + parameters if not r["passed"]),
                    key=order.index)        # the first wrong one the backward pass computes
    return dict(model=repr(build_model(seed, **arch)), x=x.tolist(), eps=eps.tolist(),
                batch=batch, k=k, seed=seed, mistake=mistake, objective=objective,
                fd_tolerance=FD_TOL,
                forward=forward, backward=backward, parameters=parameters, sgd_step=sgd,
                first_failure=failed[0] if failed else None,
                passed=not failed and loss_after < loss)


# --------------------------------------------------------------------------- text for a projector
def _num(v, digits) -> str:
    """``v`` with ``digits`` significant digits; scientific notation below 1e-4 (``g``), and a
    zero never signed (-0.0 + 0.0 is 0.0)."""
    return f"{float(v) + 0.0:.{digits}g}"


def _fmt(value, width=26) -> str:
    """A short value that fits ``width`` columns and is never cut: the numbers in full (4
    significant digits) if they fit, else the range and the mean, the range with fewer digits
    or left out before the mean loses any of its 3 significant digits."""
    a = np.asarray(value, dtype=float)
    text = "[" + ", ".join(_num(v, 4) for v in a.ravel()) + "]"
    if len(text) <= width:
        return text
    mean = "mean " + _num(a.mean(), 3)
    for digits in (3, 2, 1):
        text = f"{_num(a.min(), digits)}..{_num(a.max(), digits)}, {mean}"
        if len(text) <= width:
            return text
    return mean


def _row(name, equation, rest, eq_width, name_width=15):
    """``name  equation  rest``; an equation too long for its column gets a line of its own."""
    if len(equation) <= eq_width:
        return [f"  {name:>{name_width}}  {equation:<{eq_width}}  {rest}"]
    return [f"  {name:>{name_width}}  {equation}",
            f"  {'':>{name_width}}  {'':<{eq_width}}  {rest}"]


def format_lesson(result: dict) -> str:
    """The lesson as text that fits 100 columns: forward, backward, parameters, one SGD step."""
    lines = [textwrap.fill(f"One training step of {result['model']}", 100,
                           subsequent_indent="  "),
             f"batch {result['batch']}, k = {result['k']}; x and eps drawn with seed "
             f"{result['seed']} and frozen",
             "the ELBO step of the plain VAE on one page, in NumPy: python -m vae_np lecture"]
    if result["mistake"]:
        lines.append(textwrap.fill(f"PLANTED MISTAKE {result['mistake']}: "
                                   f"{MISTAKES[result['mistake']][0]}", 100,
                                   subsequent_indent="  "))
    width = max([6] + [len(r["name"]) for r in result["forward"]])     # sigma1p: 7
    lines += ["", f"FORWARD  {'':<{width - 6}}{'equation':<{56 - width}}  {'shape':<8} value"]
    for r in result["forward"]:
        shape = "x".join(map(str, r["shape"])) or "scalar"
        lines += _row(r["name"], r["equation"], f"{shape:<8} {_fmt(r['value'])}", 56 - width,
                      width)
    # name, equation, then 41 columns: d<v> or shape (26), rel. err (8), ok / FAIL
    name_width = max([15] + [len("d" + r["name"]) for r in result["backward"]]
                     + [len(r["name"]) for r in result["parameters"]])
    eq_width = 100 - 2 - name_width - 2 - 2 - 41
    lines += ["", "BACKWARD  d<v> = d loss / d v, checked against a central difference of the "
                  "loss with v nudged",
              f"{'':>{name_width + 4}}{'equation':<{eq_width}}  {'d<v>':<26} {'rel. err':>8}"]
    for r in result["backward"]:
        rest = f"{_fmt(r['value']):<26} {r['rel_error']:8.1e}  {'ok' if r['passed'] else 'FAIL'}"
        lines += _row("d" + r["name"], r["equation"], rest, eq_width, name_width)
    lines += ["", f"PARAMETERS  in backward order, each against central differences of the "
                  f"loss (all, or {MAX_COORDS} drawn)"]
    for r in result["parameters"]:
        shape = "(" + "x".join(map(str, r["shape"])) + ")"
        rest = f"{shape:<26} {r['rel_error']:8.1e}  {'ok' if r['passed'] else 'FAIL'}"
        lines += _row(r["name"], r["equation"], rest, eq_width, name_width)
    s = result["sgd_step"]
    lines += ["", textwrap.fill(f"one SGD step, lr {s['lr']:g}: loss {s['loss_before']:.6f} -> "
                                f"{s['loss_after']:.6f}, change {s['actual_change']:+.6f}; "
                                f"first-order prediction {s['first_order_change']:+.6f}", 100,
                                subsequent_indent="  ")]
    if result["passed"]:
        lines.append(f"PASSED: every d<v> and parameter gradient agrees with central differences "
                     f"(rel. error < {result['fd_tolerance']:g})")
        if result["mistake"]:
            lines.append("  the planted mistake changes no gradient of this model and batch")
    elif result["first_failure"] is None:       # right gradients, but the step overshot
        lines.append(f"FAILED: the SGD step with lr {s['lr']:g} raised the loss (every gradient "
                     f"agrees): try a smaller --lr")
    else:
        first = result["first_failure"]
        in_trace = any(r["name"] == first for r in result["backward"])
        lines.append(f"FAILED: the first wrong gradient in backward order is "
                     f"{'d' + first if in_trace else first}")
    return "\n".join(lines)
