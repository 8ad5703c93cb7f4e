"""The record every claim returns, and the numerical tools that compute both sides of a claim.

A claim is an identity of the derivation computed twice, by two independent routes (closed form and
quadrature, closed form and Monte Carlo, analytic gradient and finite differences, ...). Its record
holds both numbers, their difference, the tolerance, and *why* that tolerance: every tolerance comes
from the numerics (a quadrature error estimate, k standard errors of a Monte Carlo mean, the
rounding bound of a floating-point sum, the truncation of a difference quotient), never from the
result.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate

EPS = float(np.finfo(np.float64).eps)
"""Machine epsilon of float64, 2.2e-16."""

MC_SIGMAS = 4.0
"""A Monte Carlo mean passes when it lies within 4 standard errors of the exact value: a correct
estimator fails with probability 6e-5 per comparison (two-sided normal tail)."""


@dataclass(frozen=True)
class Claim:
    """One numerically verified identity.

    Attributes
    ----------
    name : str            dotted name, ``group.sub_claim``
    statement : str       the claim in words
    equation : str        the identity, left side = right side
    lhs, rhs : float or tuple of floats   the two sides as computed
    error : float         the discrepancy that is compared with ``tolerance``
    tolerance : float     the largest discrepancy the numerics allow
    tolerance_reason : str  where the tolerance comes from
    passed : bool         error <= tolerance (and everything finite)
    details : dict        supporting numbers (JSON-serialisable); ``details["note"]``, if present,
                          is a one-line summary shown under the table
    relation : str        how lhs and rhs are compared: "=" (equal within the tolerance), "<="
                          (an inequality: error = the excess of lhs over rhs), "ratio" (lhs is a
                          measured ratio, rhs the claimed one)
    unit : str            the unit of error and tolerance ("nats", "SE" for standard errors, ...)
    """
    name: str
    statement: str
    equation: str
    lhs: object
    rhs: object
    error: float
    tolerance: float
    tolerance_reason: str
    passed: bool
    details: dict = field(default_factory=dict)
    relation: str = "="
    unit: str = ""

    @property
    def status(self) -> str:
        return "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of every field (NumPy values become Python floats/lists)."""
        return {"name": self.name, "statement": self.statement, "equation": self.equation,
                "lhs": to_jsonable(self.lhs), "rhs": to_jsonable(self.rhs),
                "error": to_jsonable(self.error), "tolerance": to_jsonable(self.tolerance),
                "tolerance_reason": self.tolerance_reason, "passed": bool(self.passed),
                "status": self.status, "relation": self.relation, "unit": self.unit,
                "details": to_jsonable(self.details)}


def to_jsonable(value):
    """Convert NumPy scalars/arrays (and containers of them) into plain Python for json.dumps.
    Non-finite floats become the strings "inf", "-inf", "nan" so the output is strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


RELATIONS = ("=", "<=", ">=", "ratio")


def make_claim(name, statement, equation, lhs, rhs, error, tolerance, tolerance_reason,
               details=None, passed=None, relation="=", unit="") -> Claim:
    """Build a record; ``passed`` defaults to ``error <= tolerance`` with both finite.

    ``relation`` is one of RELATIONS and ``unit`` names the unit of error and tolerance."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {', '.join(RELATIONS)}, got {relation!r}")
    lhs, rhs = _plain(lhs), _plain(rhs)
    error, tolerance = float(error), float(tolerance)
    if passed is None:
        passed = bool(math.isfinite(error) and math.isfinite(tolerance) and error <= tolerance)
    return Claim(name, statement, equation, lhs, rhs, error, tolerance, tolerance_reason,
                 bool(passed), to_jsonable(details or {}), relation, str(unit))


def _plain(value):
    if isinstance(value, (tuple, list, np.ndarray)):
        return tuple(float(v) for v in np.ravel(value))
    return float(value)


# --------------------------------------------------------------------------- numerical tools
def sum_rounding(terms) -> float:
    """Worst-case rounding error of evaluating a sum of ``terms`` on each side of an identity.

    Recursive summation of n terms errs by at most (n - 1) eps sum|t_i| (Higham, Accuracy and
    Stability, 4.2); each term itself carries a few ulps. Two sides, each with n + 4 ulps of slack:
    2 (n + 4) eps sum|t_i|.
    """
    terms = np.abs(np.asarray(terms, dtype=float))
    return 2 * (terms.size + 4) * EPS * float(np.sum(terms))


def quad(f, a, b, points=None):
    """Adaptive Gauss-Kronrod quadrature of a scalar function on [a, b] (scipy.integrate.quad).

    Returns (value, error bound): QUADPACK's own error estimate plus the rounding of the result,
    64 ulps of the integral of |f| (which QUADPACK's estimate does not include). The requested
    accuracy is 1e-13 relative or 16 ulps of int |f|, whichever is larger. When QUADPACK reports
    that rounding stopped it (typical of an integral that cancels to ~0, where no relative accuracy
    exists), its estimate is not trusted: the integral is recomputed on a different subdivision
    and the difference of the two results is added to the bound.
    """
    points = list(points or [])

    def run(pts):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", integrate.IntegrationWarning)
            value, abserr = integrate.quad(f, a, b, points=pts or None, epsabs=16 * EPS * magnitude,
                                           epsrel=1e-13, limit=400)
        return value, abserr, any(issubclass(w.category, integrate.IntegrationWarning)
                                  for w in caught)

    magnitude, _ = integrate.quad(lambda t: abs(f(t)), a, b, points=points or None, epsabs=0.0,
                                  epsrel=1e-6, limit=400)
    value, abserr, warned = run(points)
    if warned:
        other, other_err, _ = run(points + [a + 0.3 * (b - a), a + 0.6 * (b - a)])
        abserr = max(abserr, other_err) + abs(value - other)
    return float(value), float(abserr + 64 * EPS * magnitude)


def monte_carlo(samples):
    """Mean of i.i.d. samples and its standard error std / sqrt(n) (ddof = 1)."""
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[0]
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(n)
