"""Check an analytic gradient against finite differences, directional derivatives or complex step.

For f(params) -> scalar and its claimed gradient ``grads`` (dicts of arrays with the same keys):

* coordinates:  n_i = (f(x + h e_i) - f(x - h e_i)) / 2h,  h = h_rel * max(1, |x_i|)
* directional:  u . grad f  vs  (f(x + h u) - f(x - h u)) / 2h  for random unit u, per tensor and for
  one direction across all tensors at once (two evaluations check every parameter)
* complex:      Im f(x + i h e_i) / h with h = 1e-20, exact to rounding where f is analytic

A coordinate's error is |a - n| / max(|a| + |n|, noise / tol), where ``noise`` is the rounding
error of the difference quotient (16 * machine epsilon * |f| / 2h): the error is below ``tol``
when the gradients agree to ``tol`` relatively, or to within what the quotient can resolve. A
failing coordinate whose one-sided slopes disagree (|f(x+h) - 2 f(x) + f(x-h)| / h larger than a
tenth of the discrepancy) straddles a kink (a ReLU at 0) and is counted as skipped, not failed.
When the quotient's rounding noise is larger than the gradient itself it is counted inconclusive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_choice, check_int, check_positive, check_rng

METHODS = ("coordinates", "directional", "complex")


def relative_error(a, n, floor=0.0):
    """|a - n| / max(|a| + |n|, floor, tiny): 0 for equal values, 1 for opposite or one-zero."""
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), max(floor, 1e-300))


@dataclass
class TensorResult:
    """One row of a report: how one parameter tensor fared."""
    name: str
    max_error: float
    checked: int
    skipped_kink: int = 0
    inconclusive: int = 0
    failed: int = 0

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        return "pass" if self.checked > self.skipped_kink + self.inconclusive else "inconclusive"


@dataclass
class GradcheckReport:
    """Per-tensor results of one check; ``passed`` is True when no coordinate failed and at least
    one was conclusive."""
    method: str
    tol: float
    rows: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not any(r.failed for r in self.rows)
                and any(r.status == "pass" for r in self.rows))

    @property
    def max_error(self) -> float:
        return max((r.max_error for r in self.rows), default=float("nan"))

    def to_dict(self) -> dict:
        return dict(method=self.method, tol=self.tol, passed=self.passed,
                    rows=[dict(r.__dict__, status=r.status) for r in self.rows])

    def __str__(self):
        width = max([len(r.name) for r in self.rows] + [9])
        lines = [f"gradient check ({self.method}, pass if error < {self.tol:g})",
                 f"{'parameter':<{width}}  {'max error':>10}  {'checked':>7}  {'kink':>5}  "
                 f"{'inconcl.':>8}  status"]
        for r in self.rows:
            lines.append(f"{r.name:<{width}}  {r.max_error:10.2e}  {r.checked:7d}  "
                         f"{r.skipped_kink:5d}  {r.inconclusive:8d}  {r.status}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


def _as_dict(params, grads):
    if isinstance(params, np.ndarray):
        params, grads = {"x": params}, {"x": grads}
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise ValueError("params and grads must both be arrays or dicts name -> array")
    if params.keys() != grads.keys():
        raise ValueError(f"grads must have the keys of params; differ in "
                         f"{sorted(set(params) ^ set(grads))}")
    for name, p in params.items():
        if np.shape(grads[name]) != np.shape(p):
            raise ValueError(f"grads[{name!r}] has shape {np.shape(grads[name])}, "
                             f"params[{name!r}] has {np.shape(p)}")
    return params, {n: np.array(g, dtype=np.result_type(g, float)) for n, g in grads.items()}


def _judge(row, a, n, f_plus, f_0, f_minus, h, tol, dtype):
    """Classify one difference quotient n against analytic a and fold it into ``row``."""
    noise = 16 * np.finfo(dtype).eps * max(abs(f_plus), abs(f_minus), 1e-300) / (2 * h)
    err = float(relative_error(a, n, noise / tol))
    row.checked += 1
    if err < tol:
        row.max_error = max(row.max_error, err)
    elif abs(f_plus - 2 * f_0 + f_minus) / h > 0.1 * abs(n - a):
        row.skipped_kink += 1                       # one-sided slopes disagree: a kink inside
    elif noise > abs(a) + abs(n):
        row.inconclusive += 1                       # the quotient cannot resolve this gradient
    else:
        row.failed += 1
        row.max_error = max(row.max_error, err)


def check_gradients(f, params, grads, *, method="coordinates", coords=None, directions=3,
                    h_rel=1e-6, tol=1e-6, rng=None) -> GradcheckReport:
    """Compare ``grads`` with numerical derivatives of ``f`` at ``params``.

    Parameters
    ----------
    f : callable(params) -> float. For "coordinates" and "directional" the arrays of ``params``
        are perturbed in place (and restored), so f may read them through views; for "complex" f
        is called with a shallow copy of ``params`` holding one complex array.
    params, grads : dict name -> array (or two arrays); float64 gives meaningful checks
    method : "coordinates", "directional" or "complex"
    coords : int or None, coordinates sampled per tensor (None: all of them)
    directions : int, random unit directions per tensor ("directional")
    h_rel : relative step; tol : error threshold (the default 1e-6 leaves a margin of ten over the
        ~1e-7 a correct float64 central difference typically reaches)
    rng : numpy.random.Generator for sampled coordinates and directions

    Returns
    -------
    GradcheckReport (``print`` it; ``.passed``; ``.to_dict()``)
    """
    method = check_choice("method", method, METHODS)
    if isinstance(params, np.ndarray):      # two arrays: f takes the array itself, not a dict
        f_of_array = f
        f = lambda p: f_of_array(p["x"])    # noqa: E731
    params, grads = _as_dict(params, grads)
    tol = check_positive("tol", tol)
    h_rel = check_positive("h_rel", h_rel)
    directions = check_int("directions", directions)
    if coords is not None:
        coords = check_int("coords", coords)
    rng = np.random.default_rng(0) if rng is None else check_rng("rng", rng)
    report = GradcheckReport(method, tol)
    if method == "complex":
        for name in params:
            report.rows.append(_complex_rows(f, params, grads, name, coords, tol, rng))
        return report
    f_0 = float(f(params))
    for name, x in params.items():
        row = TensorResult(name, 0.0, 0)
        dtype = x.dtype
        if method == "coordinates":
            for i in _indices(x, coords, rng):
                h = h_rel * max(1.0, abs(float(x.flat[i])))
                f_p, f_m = _evaluate_pair(f, params, [(x, i)], h)
                _judge(row, float(grads[name].flat[i]), (f_p - f_m) / (2 * h), f_p, f_0, f_m, h,
                       tol, dtype)
        else:
            for _ in range(directions):
                u = rng.standard_normal(x.shape)
                u /= np.linalg.norm(u) or 1.0
                h = h_rel * max(1.0, float(np.max(np.abs(x))))
                f_p, f_m = _evaluate_pair(f, params, [(x, u)], h)
                _judge(row, float(np.sum(u * grads[name])), (f_p - f_m) / (2 * h), f_p, f_0, f_m,
                       h, tol, dtype)
        report.rows.append(row)
    if method == "directional" and len(params) > 1:
        report.rows.append(_all_at_once(f, params, grads, f_0, h_rel, tol, rng))
    return report


def _indices(x, coords, rng):
    if coords is None or coords >= x.size:
        return range(x.size)
    return rng.choice(x.size, size=coords, replace=False)


def _evaluate_pair(f, params, moves, h):
    """f at x + h*d and x - h*d for moves [(array, flat index or direction array)], restoring x."""
    saved = [x.copy() for x, _ in moves]
    values = []
    for sign in (1.0, -1.0):
        for x, d in moves:
            if isinstance(d, np.ndarray):
                x += sign * h * d
            else:
                x.flat[d] += sign * h
        values.append(float(f(params)))
        for (x, _), old in zip(moves, saved):
            x[...] = old
    return values


def _all_at_once(f, params, grads, f_0, h_rel, tol, rng):
    """One random unit direction across every tensor: two evaluations check all parameters."""
    us = {n: rng.standard_normal(x.shape) for n, x in params.items()}
    norm = np.sqrt(sum(float(np.sum(u * u)) for u in us.values()))
    scale = max(1.0, max(float(np.max(np.abs(x))) for x in params.values()))
    h = h_rel * scale
    f_p, f_m = _evaluate_pair(f, params, [(params[n], us[n] / norm) for n in params], h)
    analytic = sum(float(np.sum(us[n] * grads[n])) for n in params) / norm
    row = TensorResult("(all at once)", 0.0, 0)
    dtype = next(iter(params.values())).dtype
    _judge(row, analytic, (f_p - f_m) / (2 * h), f_p, f_0, f_m, h, tol, dtype)
    return row


def _complex_rows(f, params, grads, name, coords, tol, rng, h=1e-20):
    """Complex step: Im f(x + i h e_i) / h, no subtractive cancellation, so any h works."""
    x = params[name]
    row = TensorResult(name, 0.0, 0)
    for i in _indices(x, coords, rng):
        xc = x.astype(complex)
        xc.flat[i] += 1j * h
        n = float(np.imag(f({**params, name: xc}))) / h
        err = float(relative_error(float(grads[name].flat[i]), n, 1e-300))
        row.checked += 1
        row.max_error = max(row.max_error, err)
        row.failed += err >= tol
    return row


def check_model(model, x, k=1, eps=None, *, method="directional", coords=None, directions=3,
                tol=1e-6, rng=None) -> GradcheckReport:
    """Check ``model.loss_and_grads`` at x with frozen noise eps (drawn once if not given).

    Freezing eps makes the loss a deterministic function of the parameters, so the check cannot be
    fooled by fresh noise per evaluation. Use a float64 model for a meaningful check.
    """
    rng = np.random.default_rng(0) if rng is None else check_rng("rng", rng)
    if eps is None:
        eps = rng.standard_normal((int(k), np.shape(x)[0], model.z_dim))
    _, grads = model.loss_and_grads(x, k=k, eps=eps)
    grads = {n: g.copy() for n, g in grads.items()}
    return check_gradients(lambda params: model.loss(x, k=k, eps=eps), model.params, grads,
                           method=method, coords=coords, directions=directions, tol=tol, rng=rng)
