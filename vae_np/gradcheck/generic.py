"""Check an analytic gradient against finite differences, directional derivatives or complex step.

For f(params) -> scalar and its claimed gradient ``grads`` (dicts of arrays with the same keys):

* coordinates:  n_i = (f(x + h e_i) - f(x - h e_i)) / (x+ - x-),  h = h_rel * max(1, |x_i|)
* directional:  u . grad f  vs  (f(x + h u) - f(x - h u)) / 2h  for random unit u, per tensor and
  for one direction across all tensors at once (two evaluations check every parameter)
* complex:      Im f(x + i h e_i) / h with h = 1e-20, exact to rounding where f is analytic

A coordinate's error is |a - n| / max(|a| + |n|, noise / tol, floor / tol), where ``noise`` is the
rounding error of the difference quotient (16 * machine epsilon * |f| / 2h) and ``floor`` an
optional absolute error the caller knows the analytic gradient may carry (the rounding of a
float32 gradient, see ``vae_np.gradcheck.model``): the error is below ``tol`` when the gradients
agree to ``tol`` relatively, or to within what the quotient can resolve. A
failing coordinate whose one-sided slopes disagree (|f(x+h) - 2 f(x) + f(x-h)| / h larger than a
tenth of the discrepancy, beyond rounding) by an amount that does not shrink with the step as a
smooth function's curvature does (``_kink``) straddles a kink (a ReLU at 0) and is counted as
skipped, not failed. An agreement that holds only within a noise too coarse to resolve ``tol``
(noise above ``tol`` times both |a| + |n| and the gradient scale |f| h_rel / h, as in float32 with
h_rel = 1e-6, where the noise is ~|f| / |x|) is counted inconclusive, neither passed nor failed;
a report with no failure and nothing conclusive says INCONCLUSIVE. A discrepancy is failed only
if rounding cannot explain it: it exceeds sqrt(eps) (|a| + |n|) and persists at the larger step
eps^(1/3) * scale (and two and four times that, by the same amount) beyond
its noise; otherwise it is inconclusive (see ``_judge``).
Quotients divide by the step actually represented in the parameters' dtype, so float32 rounding
of x +- h is no false failure. In float64 with the default tol and h_rel none of this changes a
verdict: a real error persists, and agreement within the noise is resolved.

How a gradient is wrong: every row keeps the coordinate with the largest error (its analytic and
numerical values) and, over the conclusive coordinates, the least-squares ratio r of
analytic ~ r * numerical when it holds at every one of them within ``tol`` (``constant_ratio``):
a gradient that is twice, half or minus the true one says so ("your gradient is 2.000 x the true
one") instead of only reaching the error cap of 1.

``check_model`` (the VAE's full gradient with frozen noise) lives beside the model in
``vae_np.gradcheck.model``; ``vae_np.gradcheck.generic.check_model`` still finds it.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_array, check_choice, check_int, check_positive, check_rng
from ..numerics import difference_quotient, relative_error, step_size
from .report import GradcheckReport, TensorResult, constant_ratio, describe_ratio

METHODS = ("coordinates", "directional", "complex")
__all__ = ["check_gradients", "constant_ratio", "describe_ratio",
           "relative_error", "GradcheckReport", "TensorResult", "METHODS"]


def _as_dict(params, grads):
    if isinstance(params, np.ndarray):
        params, grads = {"x": params}, {"x": grads}
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise ValueError("params and grads must both be arrays or dicts name -> array")
    if params.keys() != grads.keys():
        raise ValueError(f"grads must have the keys of params; differ in "
                         f"{sorted(set(params) ^ set(grads))}")
    for name, p in params.items():
        # perturbed in place: an int array would round the step away, a list could not be moved
        if not isinstance(p, np.ndarray) or p.dtype.type not in (np.float32, np.float64):
            raise ValueError(f"params[{name!r}] must be a float32 or float64 array, got "
                             f"{getattr(p, 'dtype', type(p).__name__)}")
        check_array(f"params[{name!r}]", p)
        check_array(f"grads[{name!r}]", grads[name], shape=p.shape)
    return params, {n: np.array(g, dtype=np.result_type(g, float)) for n, g in grads.items()}


def _floors(floor, params):
    """floor as one non-negative number per tensor (a number, or a dict name -> number)."""
    if isinstance(floor, dict):
        if floor.keys() != params.keys():
            raise ValueError(f"floor must be a number or a dict with the keys of params; differ in "
                             f"{sorted(set(params) ^ set(floor))}")
        return {n: check_positive(f"floor[{n!r}]", v, allow_zero=True) for n, v in floor.items()}
    floor = check_positive("floor", floor, allow_zero=True)
    return {n: floor for n in params}


def _judge(row, quote, f_0, h, tol, dtype, h_rel, index, floor=0.0):
    """Classify one difference quotient against the analytic derivative; fold it into ``row``.

    ``quote(step) -> (a, n, f+, f-, span)`` gives the analytic derivative a and the central
    difference n at a nominal step (``h = h_rel * scale`` first), with the displacement x+ - x-
    actually represented in the parameters' dtype (``span``, 2 step up to rounding). ``noise`` is
    the rounding error of the quotient, 16 eps |f| / span; the quotient *resolves* the check when
    that noise is below ``tol`` times the larger of |a| + |n| and the natural gradient scale
    |f| h_rel / h (so noise / scale is 8 eps / h_rel: 2e-9 in float64, 0.95 in float32 at
    h_rel = 1e-6). ``floor`` is an absolute discrepancy the caller accepts as agreement.

    agreement (|a - n| < tol (|a| + |n|), within the noise or within ``floor``) that the quotient
    resolves: pass;
    agreement it cannot resolve: inconclusive (it can neither confirm nor refute to ``tol``);
    a discrepancy that rounding in the dtype can explain (below sqrt(eps) (|a| + |n|): a float32
    forward and backward pass easily errs by 10 eps = 1e-6 relative, a wrong formula by O(1)):
    inconclusive;
    a larger one: a kink when the one-sided slopes differ by more than rounding can explain
    (|f+ - 2 f0 + f-| / h > a tenth of the discrepancy) and not as a smooth curvature would
    (``_kink``): skipped; otherwise it must persist at
    the step H = eps^(1/3) scale (optimal for central differences: 6e-6 in float64, 5e-3 in
    float32), consistently at 2H and 4H, beyond a generous 64 eps |f| / 2H of noise: then a failure,
    else inconclusive (the rounding of f was larger than estimated, as it is where f is
    ill-conditioned). In float64 with tol >= sqrt(eps) = 1.5e-8 a real error always persists.
    """
    a, n, f_plus, f_minus, span = quote(h)
    f_scale = max(abs(f_plus), abs(f_minus), 1e-300)
    eps = float(np.finfo(dtype).eps)
    noise = 16 * eps * f_scale / span if span > 0 else np.inf
    err = float(relative_error(a, n, max(noise, floor) / tol))
    row.checked += 1
    if err < tol:
        if noise <= tol * max(abs(a) + abs(n), f_scale * h_rel / h):
            row.max_error = max(row.max_error, err)
            row.record(index, a, n, err, max(noise, floor))
        else:
            row.inconclusive += 1                   # agreement only within a coarse noise
    elif abs(n - a) <= np.sqrt(eps) * (abs(a) + abs(n)):
        row.inconclusive += 1                       # within the rounding of the dtype itself
    elif _kink(quote, f_0, h, a, n, f_plus, f_minus, noise * span / 16, tol):
        row.skipped_kink += 1                       # one-sided slopes disagree: a kink inside
    elif _persists(quote, h * eps ** (1 / 3) / h_rel, tol, eps):
        row.failed += 1
        row.max_error = max(row.max_error, err)
        row.record(index, a, n, err, max(noise, floor))
    else:
        row.inconclusive += 1                       # not reproducible at a larger step: noise


def _kink(quote, f_0, h, a, n, f_plus, f_minus, f_noise, tol):
    """Whether the discrepancy a - n comes from a kink within the step (a ReLU at 0), not from a
    wrong a. ``f_noise`` is eps |f|, the rounding of one value of f.

    The one-sided slopes must disagree beyond rounding: the second difference
    S(h) = |f(x+h) - 2 f(x) + f(x-h)| exceeds 0.1 h |n - a| + 32 f_noise. A smooth f has
    S(h) = f'' h^2 too, which beats 0.1 h |n - a| whenever |n - a| < 10 f'' h (a gradient off
    by 1e-5 passed as a kink), so S must also not grow like h^2: a kink at distance d < h/2 from
    x gives S(2h) / S(h) = (2h - d) / (h - d) <= 3, a smooth f gives 4. A kink at h/2 <= d < h
    is not straddled by the step h/2, where the discrepancy vanishes (a wrong a keeps it).
    """
    second = abs(f_plus - 2 * f_0 + f_minus)
    if second - 32 * f_noise <= 0.1 * h * abs(n - a):
        return False
    _, _, f_plus2, f_minus2, span2 = quote(2 * h)
    if span2 > 0 and abs(f_plus2 - 2 * f_0 + f_minus2) + 64 * f_noise < 3 * second:
        return True
    a_half, n_half, _, _, span_half = quote(h / 2)
    return span_half > 0 and (abs(n_half - a_half) <= tol * (abs(a_half) + abs(n_half))
                              + 64 * f_noise / span_half)


def _persists(quote, H, tol, eps):
    """Whether a discrepancy a - n is still there, beyond tolerance and noise, at steps H, 2H and
    4H, and the same at all three (within a quarter of it).

    A wrong a gives the same discrepancy at every step. Rounding gives one that shrinks like 1/H,
    and the noise estimate 64 eps |f| / 2H can miss it: where f is a small difference of larger
    terms (a loss of 0.016 made of terms near 1, in float32), f carries the rounding of the terms.
    Measured there: discrepancies -1.24e-5 and -8.4e-6 at H and 2H, which a 50% window took for
    a persisting error; the third step and the tighter window tell the two apart."""
    results = [quote(step) for step in (H, 2 * H, 4 * H)]
    if any(span <= 0 for *_, span in results):
        return False
    (a1, n1, p1, m1, s1), (a2, n2, _, _, _), (a4, n4, _, _, _) = results
    d1, d2, d4 = n1 - a1, n2 - a2, n4 - a4
    noise = 64 * eps * max(abs(p1), abs(m1)) / s1
    scale = abs(a1) + abs(n1)
    return (abs(d1) > max(tol * scale, np.sqrt(eps) * scale, noise)
            and abs(d2 - d1) <= 0.25 * abs(d1) and abs(d4 - d1) <= 0.25 * abs(d1))


def check_gradients(f, params, grads, *, method="coordinates", coords=None, directions=3,
                    h_rel=1e-6, tol=1e-6, rng=None, floor=0.0) -> GradcheckReport:
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
    h_rel : relative step
    tol : error threshold (the default 1e-6 leaves a margin of ten over the
        ~1e-7 a correct float64 central difference typically reaches)
    rng : numpy.random.Generator for sampled coordinates and directions
    floor : number >= 0, or dict name -> number: an absolute discrepancy |a - n| that counts as
        agreement (the rounding error the analytic gradient is known to carry; 0 by default)

    Returns
    -------
    GradcheckReport (``print`` it; ``.passed``; ``.to_dict()``; a failing row's ``explain()``)
    """
    method = check_choice("method", method, METHODS)
    if not callable(f):
        raise ValueError(f"f must be a callable f(params) -> float, got {type(f).__name__}")
    if isinstance(params, np.ndarray):      # two arrays: f takes the array itself, not a dict
        f_of_array = f
        f = lambda p: f_of_array(p["x"])    # noqa: E731
    params, grads = _as_dict(params, grads)
    tol = check_positive("tol", tol)
    h_rel = check_positive("h_rel", h_rel)
    directions = check_int("directions", directions)
    floors = _floors(floor, params)
    if coords is not None:
        coords = check_int("coords", coords)
    rng = np.random.default_rng(0) if rng is None else check_rng("rng", rng)
    report = GradcheckReport(method, tol)
    if method == "complex":
        for name in params:
            report.rows.append(_complex_rows(f, params, grads, name, coords, tol, rng))
        return report
    f_0 = _scalar(f(params))
    for name, x in params.items():
        row = TensorResult(name, 0.0, 0, tol=tol)
        dtype = x.dtype
        if method == "coordinates":
            for i in _indices(x, coords, rng):
                h = step_size(x.flat[i], h_rel)
                _judge(row, _coordinate_quote(f, params, x, i, float(grads[name].flat[i])), f_0,
                       h, tol, dtype, h_rel, np.unravel_index(i, x.shape), floors[name])
        else:
            for j in range(directions):
                u = rng.standard_normal(x.shape)
                u /= np.linalg.norm(u) or 1.0
                h = h_rel * max(1.0, float(np.max(np.abs(x))))
                _judge(row, _direction_quote(f, params, [(x, u, grads[name])]), f_0, h, tol,
                       dtype, h_rel, f"random direction {j}", floors[name])
        report.rows.append(row)
    if method == "directional" and len(params) > 1:
        report.rows.append(_all_at_once(f, params, grads, f_0, h_rel, tol, rng,
                                        max(floors.values())))
    return report


def _indices(x, coords, rng):
    if coords is None or coords >= x.size:
        return range(x.size)
    return rng.choice(x.size, size=coords, replace=False)


def _evaluate_pair(f, params, moves, h):
    """f at x + h*u and x - h*u for moves [(array, direction array)], restoring every x.

    Returns f+, f- and, per move, the displacement x+ - x- actually represented (a float64
    array): in float32 x +- h rounds to a step up to ~6 % off 2h for h = 1e-6 and |x| ~ 1, so the
    analytic side is taken along the represented displacement, not the nominal one.
    """
    saved = [x.copy() for x, _ in moves]
    values, ends = [], []
    try:
        for sign in (1.0, -1.0):
            for x, d in moves:
                x += sign * h * d
            values.append(_scalar(f(params)))
            ends.append([np.array(x, dtype=np.float64) for x, _ in moves])
            for (x, _), old in zip(moves, saved):
                x[...] = old
    finally:
        for (x, _), old in zip(moves, saved):
            x[...] = old
    spans = [up - down for up, down in zip(*ends)]
    return values[0], values[1], spans


def _scalar(value) -> float:
    """f's value as a float, or ValueError naming f when it is not one real number."""
    v = np.asarray(value) if isinstance(value, (int, float, np.generic, np.ndarray)) else None
    if v is not None and v.ndim == 0 and v.dtype.kind in "biuf":
        return float(v)
    raise ValueError(f"f must return one real number, got {type(value).__name__} "
                     f"{np.shape(value) if np.ndim(value) else value!r}")


def _all_at_once(f, params, grads, f_0, h_rel, tol, rng, floor):
    """One random unit direction across every tensor: two evaluations check all parameters."""
    us = {n: rng.standard_normal(x.shape) for n, x in params.items()}
    norm = np.sqrt(sum(float(np.sum(u * u)) for u in us.values()))
    scale = max(1.0, max(float(np.max(np.abs(x))) for x in params.values()))
    h = h_rel * scale
    row = TensorResult("(all at once)", 0.0, 0, tol=tol)
    dtype = max((x.dtype for x in params.values()), key=lambda d: np.finfo(d).eps)
    moves = [(params[n], us[n] / norm, grads[n]) for n in params]
    _judge(row, _direction_quote(f, params, moves), f_0, h, tol, dtype, h_rel,
           "one direction across all tensors", floor)
    return row


def _coordinate_quote(f, params, x, i, a):
    """quote(step) for coordinate i of x: (a, quotient, f+, f-, span), by
    ``numerics.difference_quotient`` (which divides by the represented step)."""
    def f_of_x(_):
        return _scalar(f(params))

    def quote(step):
        old = x.flat[i]
        if x.dtype.type(old + step) == x.dtype.type(old - step):   # step below one ulp of x_i
            f_same = f_of_x(x)
            return a, 0.0, f_same, f_same, 0.0
        n, f_p, f_m, span = difference_quotient(f_of_x, x, i, step)
        return a, n, f_p, f_m, span
    return quote


def _direction_quote(f, params, moves):
    """quote(step) along the unit directions of moves [(array, direction, its gradient)]: the
    analytic derivative along the displacement actually represented, per unit of 2 step."""
    def quote(step):
        f_p, f_m, spans = _evaluate_pair(f, params, [(x, u) for x, u, _ in moves], step)
        a = sum(float(np.sum(span * g)) for (_, _, g), span in zip(moves, spans)) / (2 * step)
        return a, (f_p - f_m) / (2 * step), f_p, f_m, 2 * step
    return quote


def _complex_rows(f, params, grads, name, coords, tol, rng, h=1e-20):
    """Complex step: Im f(x + i h e_i) / h, no subtractive cancellation, so any h works."""
    x = params[name]
    row = TensorResult(name, 0.0, 0, tol=tol)
    for i in _indices(x, coords, rng):
        xc = x.astype(complex)
        xc.flat[i] += 1j * h
        n = float(np.imag(f({**params, name: xc}))) / h
        a = float(grads[name].flat[i])
        err = float(relative_error(a, n, 1e-300))
        row.checked += 1
        row.max_error = max(row.max_error, err)
        row.failed += err >= tol
        row.record(np.unravel_index(i, x.shape), a, n, err, 0.0)
    return row
