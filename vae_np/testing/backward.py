"""``assert_backward``: check a forward/backward pair of the ops convention numerically, in float64.

The convention (the one of ``vae_np.ops``): ``forward(*inputs, **kwargs) -> (out, cache)`` and
``backward(dout, cache) -> grads``, one gradient per input, in order (a single array when there
is one), except for the inputs named in ``constants`` (data such as x or the noise eps, which get
no gradient). A backward that returns fewer gradients than that (a forgotten dgamma), more, None
or an array of the wrong shape for an input fails, naming the input. With a fixed ``dout`` the
scalar L = sum(out * dout) has dL/d(input) = backward(dout, cache), and that is what is compared
with numerical derivatives of L.

Central differences (every input, every coordinate): n_i = (L(x + h e_i) - L(x - h e_i)) /
(x+ - x-), h = h_rel * max(1, |x_i|), by ``vae_np.numerics.difference_quotient`` (the quotient of
``vae_np.testing.central_difference``; this check keeps its own noise model). Its error bound per
coordinate is the measured truncation |n(2h) - n(h)| plus the rounding of the numerator,
16 eps F / (x+ - x-) with F = sum |out * dout| (the terms of L, not L, which can cancel to 0): the
same noise model as ``vae_np.gradcheck.generic`` (with eps F raised to the smallest subnormal
number, the absolute rounding unit where L underflows below 2.2e-308). A coordinate passes when
|a - n| <= tol (|a| + |n|) + bound, tol = 1e-6 as in the gradient checker (ten times the ~1e-7 a
correct float64 central difference reaches); a factor 2, a sign or a missing term misses it by
orders of magnitude.

Complex step (where the forward is complex-analytic): Im L(x + i h e_i) / h with h = 1e-20
(``vae_np.numerics.complex_quotient``) has no subtractive cancellation, so it equals the
derivative to rounding. Its bound is 1e-10 (|a| + |n|)
(the backward formulas themselves lose up to eps / |f'| relatively, e.g. 1 - tanh^2 near
saturation) plus 64 eps S_i, S_i = sum_j |d out_j / d x_i * dout_j| (the rounding of the sum),
plus 1e-13 max(1, max |a|, max |dout|) (the backward's own rounding of terms that cancel: 1 -
e^-2r near r = 0 is 2r with an absolute error of eps, 450 eps leaves a margin), plus tiny / h =
2.2e-288 (an imaginary part h dL below the smallest normal number underflows). With
``complex_step="auto"`` (the default) it runs when the forward maps complex inputs to a complex
output, and a complex-step value that disagrees with central differences as well as with the
analytic gradient is taken as a forward that is not analytic (abs, maximum) and ignored.

Rounding that L does not show. The floor 16 eps F counts the terms of L; an intermediate v that
rounds coarser than they do (a = w.z + b of size 33 flipping by one ulp when z moves by 2e-22,
or a sum of terms of size 100 that cancels to -1) moves L by |dL/dv| eps |v| regardless of F. Two
options widen the central-difference bound by such noise, never the complex step's:

* ``measure_noise=True`` adds 4 x the spread (max - min) of the quotient over the five steps
  h (1 + k 1e-3), k = -2..2: rounding usually differs between such close steps, a wrong gradient
  (the same at all five) does not. Four more quotients per coordinate. It misses rounding that
  is the same at all five (an intermediate that flips by one ulp, or cancels to a value whose
  ulps the steps do not move): that needs
* ``exposure(*inputs, dout)``, the caller's formula for sum_v |dL/dv| |v| over the intermediates
  v (one number, or one per row of the inputs); 4 eps exposure / (x+ - x-) is added.

Where these make the central half blind (its bound as large as the gradient), the complex step,
whose absolute floor 1e-13 max(1, max |a|, max |dout|) is never widened, still checks the
gradient; below that floor (gradients of saturated steps, 1e-20 and less) nothing does, and
tests must check such steps at ordinary values.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..gradcheck.report import constant_ratio, describe_ratio
from ..numerics import complex_quotient, difference_quotient, step_size

EPS = float(np.finfo(np.float64).eps)
SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)    # rounding unit below tiny
COMPLEX_H = 1e-20
COMPLEX_RTOL = 1e-10
COMPLEX_ATOL = 1e-13
COMPLEX_FLOOR = float(np.finfo(np.float64).tiny) / COMPLEX_H


class BackwardMismatch(AssertionError):
    """Raised by ``assert_backward``; ``problems`` holds one dict per wrong input (name, index,
    analytic, numerical, ratio, transposed, method, shape, off, total, and the whole arrays
    all_analytic, all_numerical with their slack and tol)."""

    def __init__(self, message, problems):
        super().__init__(message)
        self.problems = problems


def assert_backward(forward, backward, *inputs, dout=None, kwargs=None, names=None, constants=(),
                    tol=1e-6, h_rel=1e-6, complex_step="auto", seed=0, measure_noise=False,
                    exposure=None):
    """Assert that ``backward`` is the gradient of ``forward``; explain how it is wrong if not.

    Parameters
    ----------
    forward : callable(*inputs, **kwargs) -> (out, cache)
    backward : callable(dout, cache) -> one gradient per input not in ``constants``, in order
        (a tuple, or one array)
    inputs : arrays (converted to float64 copies; the originals are never touched)
    dout : array of out's shape (default: standard normal from ``numpy.random.default_rng(seed)``)
    kwargs : dict of non-differentiated keyword arguments for forward (e.g. ``sigma_min``)
    names : names of the inputs for messages (default: forward's parameter names)
    constants : names or positions of the inputs that get no gradient (data, noise); backward
        returns one gradient for each of the other inputs, in their order
    tol : relative tolerance
    h_rel : relative step of the central differences
    complex_step : "auto", True (required; a non-analytic forward fails) or False
    measure_noise : add 4 x the spread of the central quotient over five steps within 0.2 % of
        h to each coordinate's bound (rounding of intermediates; see the module docstring)
    exposure : callable(*inputs, dout) -> number or (N,) array: sum_v |dL/dv| |v| over the
        intermediates v whose rounding L does not show, per row (the first axis of every
        differentiated input) for an array; 4 eps exposure / (x+ - x-) is added to the bound

    Returns
    -------
    dict name -> the largest relative error |a - n| / (|a| + |n|) of that input's gradient

    Raises
    ------
    BackwardMismatch (an AssertionError) naming the input, the worst coordinate, the analytic and
    numerical values, and the constant factor or transpose when that is what is wrong; or naming
    the input whose gradient is missing, None, not finite or of the wrong shape.
    ValueError when ``constants`` names no input.
    """
    if complex_step not in ("auto", True, False):
        raise ValueError(f"complex_step must be 'auto', True or False, got {complex_step!r}")
    kwargs = dict(kwargs or {})
    xs = [np.array(v, dtype=np.float64) for v in inputs]
    names = list(names) if names is not None else _input_names(forward, len(xs))
    wanted = _differentiated(constants, names)
    before = [x.copy() for x in xs]
    out, cache = forward(*xs, **kwargs)
    out = np.asarray(out)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape)
    dout = np.array(dout, dtype=np.float64)
    if dout.shape != out.shape:
        raise ValueError(f"dout must have the forward output's shape {out.shape}, got {dout.shape}")
    dout_before = dout.copy()
    grads = backward(dout, cache)
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    for i, (x, old) in enumerate(zip(xs, before)):
        if not np.array_equal(x, old, equal_nan=True):
            raise BackwardMismatch(f"assert_backward: forward or backward modified input "
                                   f"'{names[i]}' in place", [dict(name=names[i], kind="mutated")])
    if not np.array_equal(dout, dout_before):
        raise BackwardMismatch("assert_backward: backward modified dout in place",
                               [dict(name="dout", kind="mutated")])
    if len(grads) > len(wanted):
        raise BackwardMismatch(_too_many(forward, names, wanted, len(grads)),
                               [dict(name="backward", kind="count", got=len(grads),
                                     expected=len(wanted))])

    def objective(i, x):
        out_i = np.asarray(forward(*xs[:i], x, *xs[i + 1:], **kwargs)[0])
        return out_i

    noise = _Noise(measure_noise, exposure, xs, dout, wanted, names)
    errors, problems = {}, []
    for i, g in zip(wanted, grads):
        problem, err = _check_input(objective, i, names[i], xs[i], g, dout, tol, h_rel,
                                    complex_step, noise)
        errors[names[i]] = err
        if problem:
            problems.append(problem)
    for i in wanted[len(grads):]:                  # a forgotten gradient: no coordinate checked
        errors[names[i]] = np.inf
        problems.append(dict(name=names[i], position=i, shape=xs[i].shape, transposed=False,
                             kind="missing", got=len(grads), expected=len(wanted)))
    for p in problems:
        if p.get("kind") == "values" and p["ratio"] is None and not p["transposed"]:
            p["ratio"], p["probed"] = _probe_ratio(forward, backward, xs, kwargs, dout, p, h_rel,
                                                   seed, wanted, noise), True
    if problems:
        raise BackwardMismatch("\n".join(_message(p, forward) for p in problems), problems)
    return errors


class _Noise:
    """The options that widen the central bound at the inputs xs: measure_noise, and exposure
    evaluated there (None, one number, or one number per row)."""

    def __init__(self, measure, exposure, xs, dout, wanted, names):
        self.measure, self.fn, self.rows = bool(measure), exposure, None
        self.wanted, self.names = wanted, names
        if exposure is None:
            return
        rows = np.asarray(exposure(*[x.copy() for x in xs], dout.copy()), dtype=np.float64)
        if rows.ndim > 1 or any(rows.ndim and xs[i].shape[:1] != rows.shape for i in wanted):
            listed = ", ".join(f"'{names[i]}' {xs[i].shape}" for i in wanted)
            raise ValueError(f"exposure must return a number or an (N,) array, N the first axis "
                             f"of every differentiated input ({listed}); got shape {rows.shape}")
        if not np.all(np.isfinite(rows)) or np.any(rows < 0):
            raise ValueError(f"exposure must return finite values >= 0, got {rows!r}")
        self.rows = rows

    def moved(self, xs, dout):
        """The same options at other inputs (the nearby points of _probe_ratio)."""
        return _Noise(self.measure, self.fn, xs, dout, self.wanted, self.names)

    def exposure(self, x, j):
        """sum_v |dL/dv| |v| for coordinate j (flat) of x: its row's, or the one number."""
        if self.rows is None:
            return 0.0
        return float(self.rows[np.unravel_index(j, x.shape)[0]] if self.rows.ndim else self.rows)


def _probe_ratio(forward, backward, xs, kwargs, dout, problem, h_rel, seed, wanted, noise,
                 probes=3):
    """The constant factor of a wrong gradient, pooled over the failing point and a few nearby
    ones (every input moved by at most 10 % of max(|x|, 0.1), so a positive sigma stays
    positive): a minimal example with one nonzero coordinate cannot show a factor on its own.
    Diagnosis only; the verdict is the failing point's. None if the factor is not constant."""
    i, rng = problem["position"], np.random.default_rng(seed + 1)
    k = wanted.index(i)                               # its place among backward's gradients
    a_all = [np.ravel(problem["all_analytic"])]
    n_all = [np.ravel(problem["all_numerical"])]
    slack = [np.ravel(np.broadcast_to(problem["slack"], problem["all_analytic"].shape))]
    for _ in range(probes):
        moved = [x + 0.05 * np.clip(rng.standard_normal(x.shape), -2, 2) * np.maximum(np.abs(x),
                                                                                       0.1)
                 for x in xs]
        try:
            with np.errstate(all="ignore"):
                _, cache = forward(*moved, **kwargs)
                g = backward(dout.copy(), cache)
                g = np.asarray(list(g)[k] if isinstance(g, (tuple, list)) else g, dtype=float)

                def objective(j, x, moved=moved):
                    return np.asarray(forward(*moved[:j], x, *moved[j + 1:], **kwargs)[0])
                numeric, bound = _central(objective, i, moved[i], dout, h_rel,
                                          noise.moved(moved, dout))
        except Exception:                  # noqa: BLE001 (a probe outside the op's domain)
            continue
        if g.shape == numeric.shape and np.all(np.isfinite(g)) and np.all(np.isfinite(numeric)):
            a_all.append(np.ravel(g))
            n_all.append(np.ravel(numeric))
            slack.append(np.ravel(bound))
    return constant_ratio(np.concatenate(a_all), np.concatenate(n_all), problem["tol"],
                          np.concatenate(slack))


def _differentiated(constants, names):
    """Positions of the inputs that get a gradient: all but those ``constants`` names (by name or
    position)."""
    if isinstance(constants, (str, int)):
        constants = [constants]
    skip = set()
    for c in constants:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(names):
            skip.add(int(c))
        elif isinstance(c, str) and c in names:
            skip.add(names.index(c))
        else:
            raise ValueError(f"constants must name inputs (one of {', '.join(map(repr, names))}) "
                             f"or give their positions 0..{len(names) - 1}, got {c!r}")
    return [i for i in range(len(names)) if i not in skip]


def _too_many(forward, names, wanted, got):
    """The message for a backward that returns more gradients than there are inputs for them."""
    listed = ", ".join(f"'{names[i]}'" for i in wanted) or "none"
    skipped = [f"'{n}'" for i, n in enumerate(names) if i not in wanted]
    words = (f"assert_backward: backward returned {got} gradients for {len(wanted)} inputs of "
             f"{getattr(forward, '__name__', 'forward')} ({listed})")
    if skipped:
        words += f"; {', '.join(skipped)} {'is' if len(skipped) == 1 else 'are'} constant"
    return words + f": gradient {len(wanted)} belongs to no input"


def _input_names(forward, count):
    try:
        params = [p.name for p in inspect.signature(forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input {i}" for i in range(count)]


def _check_input(objective, i, name, x, g, dout, tol, h_rel, complex_step, noise):
    """(problem dict or None, max relative error) for input i's gradient g."""
    problem = dict(name=name, position=i, shape=x.shape, transposed=False)
    if g is None:
        return dict(problem, kind="none"), np.inf
    g = np.asarray(g)
    if not np.issubdtype(g.dtype, np.number) or not np.all(np.isfinite(g)):
        return dict(problem, kind="nonfinite"), np.inf
    g = g.astype(np.float64)
    numeric, bound = _central(objective, i, x, dout, h_rel, noise)
    if g.shape != x.shape:
        if g.ndim == 2 and g.T.shape == x.shape and _agree(g.T, numeric, bound, tol).all():
            return dict(problem, kind="transposed", transposed=True, got_shape=g.shape), np.inf
        return dict(problem, kind="shape", got_shape=g.shape), np.inf
    ok = _agree(g, numeric, bound, tol)
    err = np.abs(g - numeric) / np.maximum(np.abs(g) + np.abs(numeric), 1e-300)
    if not ok.all():
        transposed = (g.ndim == 2 and g.shape[0] == g.shape[1] and g.shape[0] > 1
                      and _agree(g.T, numeric, bound, tol).all())
        return _describe(problem, g, numeric, ~ok, err, bound, tol, "central differences",
                         transposed), float(err.max())
    if complex_step is False:
        return None, float(err.max(initial=0.0))
    exact = _complex(objective, i, x, dout)
    if exact is None:
        if complex_step is True:
            return dict(problem, kind="not_complex"), float(err.max(initial=0.0))
        return None, float(err.max(initial=0.0))
    n_c, s = exact
    scale = max(1.0, float(np.max(np.abs(g), initial=0.0)), float(np.max(np.abs(dout))))
    slack = 64 * EPS * s + COMPLEX_ATOL * scale + COMPLEX_FLOOR
    ok_c = np.abs(g - n_c) <= COMPLEX_RTOL * (np.abs(g) + np.abs(n_c)) + slack
    if ok_c.all():
        return None, float(err.max(initial=0.0))
    if complex_step == "auto" and not _agree(n_c, numeric, bound, tol).all():
        return None, float(err.max(initial=0.0))         # the forward is not complex-analytic
    err_c = np.abs(g - n_c) / np.maximum(np.abs(g) + np.abs(n_c), 1e-300)
    return _describe(problem, g, n_c, ~ok_c, err_c, slack, COMPLEX_RTOL,
                     "the complex step", False), float(err_c.max())


def _agree(a, n, bound, tol):
    return np.abs(a - n) <= tol * (np.abs(a) + np.abs(n)) + bound


def _central(objective, i, x, dout, h_rel, noise):
    """Central differences of L = sum(out * dout) along every coordinate of x, with the bound
    |n(2h) - n(h)| + 16 (eps F + smallest subnormal) / span, plus, as ``noise`` asks, 4 x the
    spread of n over the steps h (1 + k 1e-3), k = -2..2, and 4 eps exposure / span."""
    x = x.copy()
    numeric, bound = np.empty(x.shape), np.empty(x.shape)
    terms = []

    def L(v):
        out = objective(i, v)
        terms.append(float(np.sum(np.abs(out * dout))))
        return float(np.sum(out * dout))
    for j in range(x.size):
        h = step_size(x.flat[j], h_rel)
        terms.clear()
        d1, _, _, span = difference_quotient(L, x, j, h)
        d2, _, _, _ = difference_quotient(L, x, j, 2 * h)
        numeric.flat[j] = d1
        bound.flat[j] = (abs(d2 - d1) + 16 * (EPS * max(terms) + SUBNORMAL) / span
                         + 4 * EPS * noise.exposure(x, j) / span)
        if noise.measure:
            near = [difference_quotient(L, x, j, h * (1 + k * 1e-3))[0] for k in (-2, -1, 1, 2)]
            bound.flat[j] += 4 * (max(near + [d1]) - min(near + [d1]))
    return numeric, bound


def _complex(objective, i, x, dout):
    """Complex-step derivatives of L (``numerics.complex_quotient`` of out, contracted with dout)
    and the scale S = sum |Im out * dout| / h of their rounding, or None if the forward does not
    carry a complex input to a finite complex output."""
    xc = x.astype(np.complex128)
    numeric, scale = np.empty(x.shape), np.empty(x.shape)
    for j in range(x.size):
        try:
            with np.errstate(all="ignore"):
                d_out = complex_quotient(lambda v: objective(i, v), xc, j, COMPLEX_H)
        except (TypeError, ValueError, AttributeError):
            return None
        numeric.flat[j] = float(np.sum(d_out * dout))
        scale.flat[j] = float(np.sum(np.abs(d_out * dout)))
    return numeric, scale


def _describe(problem, g, numeric, bad, err, bound, tol, method, transposed):
    worst = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), g.shape)
    bound = np.broadcast_to(bound, g.shape)
    return dict(problem, kind="values", method=method, index=tuple(int(k) for k in worst),
                analytic=float(g[worst]), numerical=float(numeric[worst]),
                allowed=float(tol * (abs(g[worst]) + abs(numeric[worst])) + bound[worst]),
                off=int(bad.sum()), total=int(g.size), transposed=transposed,
                ratio=constant_ratio(g, numeric, tol, bound), all_analytic=g,
                all_numerical=numeric, slack=np.array(bound), tol=tol)


def _message(p, forward):
    where = (f"the gradient of input '{p['name']}' (input {p.get('position', '?')} of "
             f"{getattr(forward, '__name__', 'forward')}, shape {p.get('shape')})")
    kind = p.get("kind")
    if kind == "none":
        return f"assert_backward: {where} is None"
    if kind == "missing":
        return (f"assert_backward: {where} is missing: backward returned {p['got']} gradient"
                f"{'' if p['got'] == 1 else 's'} for {p['expected']} inputs (if '{p['name']}' "
                f"is data that gets no gradient, pass constants=['{p['name']}'])")
    if kind == "nonfinite":
        return f"assert_backward: {where} is not a finite numeric array"
    if kind == "transposed":
        return (f"assert_backward: {where} has shape {p['got_shape']}: your gradient is the "
                f"transpose of the true one")
    if kind == "shape":
        return f"assert_backward: {where} has shape {p['got_shape']}, expected {p['shape']}"
    if kind == "not_complex":
        return (f"assert_backward: {where}: complex_step=True but the forward does not map a "
                f"complex input to a complex output")
    lines = [f"assert_backward: {where} disagrees with {p['method']}",
             f"  worst coordinate {p['index']}: analytic {p['analytic']:.6g}, numerical "
             f"{p['numerical']:.6g} (allowed |a - n| <= {p['allowed']:.2g})",
             f"  {p['off']} of {p['total']} coordinates off"]
    if p["transposed"]:
        lines[-1] += "; your gradient is the transpose of the true one"
    elif p["ratio"] is not None:
        lines[-1] += f"; {describe_ratio(p['ratio'])}"
        if p.get("probed"):
            lines[-1] += " (here and at nearby points)"
    return "\n".join(lines)
