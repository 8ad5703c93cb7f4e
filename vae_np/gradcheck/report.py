"""The report of a gradient check: per tensor, how many coordinates passed, failed, straddled a
kink or could not be resolved, the worst coordinate, and the ratio analytic / numerical when it is
one constant (so that a gradient twice, half or minus the true one says so in words).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np


WIDTH = 100
"""Columns of the printed report: a failing row's explanation wraps onto indented lines."""


def _fit(line) -> str:
    """A failing row's explanation in ``WIDTH`` columns: as it is if it fits, else where it is
    worst on one line and what the ratio says on the next, indented (each wrapped if need be)."""
    if len(line) <= WIDTH:
        return line
    where, sep, words = line.partition("; ")
    parts = [where + sep.rstrip()] + (["    " + words] if words else [])
    return "\n".join(textwrap.fill(part, WIDTH, subsequent_indent="    ",
                                   break_long_words=False, break_on_hyphens=False)
                     for part in parts)


# --------------------------------------------------------------------------- how it is wrong
def constant_ratio(analytic, numeric, tol, slack=0.0, min_count=2):
    """The ratio r with analytic = r * numeric at every coordinate, or None if there is none.

    r is the least-squares fit sum(a n) / sum(n n); it counts as a constant when every coordinate
    satisfies |a - r n| <= tol (|a| + |r n|) + (1 + |r|) slack, i.e. when the analytic gradient
    divided by r would pass a check of tolerance ``tol`` (``slack``: the absolute error the
    numerical values may carry, a scalar or one per coordinate). None also when fewer than
    ``min_count`` numerical values are nonzero: one coordinate has a ratio but says nothing about
    whether it is constant.
    """
    a = np.ravel(np.asarray(analytic, dtype=np.float64))
    n = np.ravel(np.asarray(numeric, dtype=np.float64))
    nn = float(n @ n)
    if a.shape != n.shape or np.count_nonzero(n) < min_count or nn == 0.0:
        return None
    r = float(a @ n) / nn
    bound = tol * (np.abs(a) + np.abs(r * n)) + (1 + abs(r)) * np.ravel(slack)
    return r if bool(np.all(np.abs(a - r * n) <= bound)) else None


def describe_ratio(r) -> str:
    """The ratio analytic / true in words: "your gradient is 2.000 x the true one"."""
    if r is None:
        return "analytic / numerical is not one constant"
    if abs(r) < 5e-4:
        return "your gradient is 0 where the true one is not"
    factor = f"{r:.3f}"
    if r != 1 and round(r, 3) == 1:     # enough digits that 1.000001 does not read as 1.000
        factor = f"{r:.15f}".rstrip("0")
    words = f"your gradient is {factor} x the true one"
    if abs(r + 1) < 5e-4:
        words += " (the sign is flipped)"
    return words


@dataclass
class TensorResult:
    """One row of a report: how one parameter tensor fared.

    ``worst_index``, ``worst_analytic`` and ``worst_numerical`` describe the coordinate (or the
    direction) with the largest error among the conclusive ones; ``ratio`` is the constant
    analytic / numerical over them (None when it is not one constant or nothing was conclusive).
    """
    name: str
    max_error: float
    checked: int
    skipped_kink: int = 0
    inconclusive: int = 0
    failed: int = 0
    worst_index: object = None
    worst_analytic: float = float("nan")
    worst_numerical: float = float("nan")
    tol: float = 1e-6
    _pairs: list = field(default_factory=list, repr=False)

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        return "pass" if self.checked > self.skipped_kink + self.inconclusive else "inconclusive"

    @property
    def ratio(self):
        """analytic / numerical over the conclusive comparisons, if it is one constant."""
        if not self._pairs:
            return None
        a, n, slack = (np.array(v, dtype=np.float64) for v in zip(*self._pairs))
        return constant_ratio(a, n, self.tol, slack)

    def record(self, index, a, n, err, slack):
        """Fold one conclusive comparison into the worst coordinate and the ratio fit."""
        self._pairs.append((a, n, slack))
        if self.worst_index is None or err > self._worst_error:
            if isinstance(index, tuple):
                index = tuple(int(i) for i in index)
            self.worst_index, self.worst_analytic, self.worst_numerical = index, a, n
            self._worst_error = err

    def explain(self) -> str:
        """One line: the worst coordinate and what the ratio says."""
        where = (self.worst_index if isinstance(self.worst_index, str)
                 else f"coordinate {self.worst_index}")
        ratio = self.ratio
        words = describe_ratio(ratio) if len(self._pairs) > 1 else "one comparison only"
        if ratio is None and len(self._pairs) > 1:
            a, n = (np.array(v, dtype=np.float64) for v in list(zip(*self._pairs))[:2])
            q = a[n != 0] / n[n != 0]
            if q.size:
                words += f" (from {q.min():.4g} to {q.max():.4g})"
        return (f"{self.name}: worst at {where}: analytic {self.worst_analytic:.6g}, numerical "
                f"{self.worst_numerical:.6g}; {words}")

    def to_dict(self) -> dict:
        index = self.worst_index
        return dict(name=self.name, max_error=self.max_error, checked=self.checked,
                    skipped_kink=self.skipped_kink, inconclusive=self.inconclusive,
                    failed=self.failed, status=self.status,
                    worst_index=list(index) if isinstance(index, tuple) else index,
                    worst_analytic=self.worst_analytic, worst_numerical=self.worst_numerical,
                    ratio=self.ratio)


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
    def verdict(self) -> str:
        """"PASSED", "FAILED", or "INCONCLUSIVE" when nothing failed but nothing could be
        confirmed either (e.g. a float32 check whose rounding noise hides the tolerance)."""
        if self.passed:
            return "PASSED"
        return "FAILED" if any(r.failed for r in self.rows) else "INCONCLUSIVE"

    @property
    def max_error(self) -> float:
        return max((r.max_error for r in self.rows), default=float("nan"))

    def to_dict(self) -> dict:
        return dict(method=self.method, tol=self.tol, passed=self.passed, verdict=self.verdict,
                    rows=[r.to_dict() for r in self.rows])

    def __str__(self):
        width = max([len(r.name) for r in self.rows] + [9])
        lines = [f"gradient check ({self.method}, pass if error < {self.tol:g})",
                 f"{'parameter':<{width}}  {'max error':>10}  {'checked':>7}  {'kink':>5}  "
                 f"{'inconcl.':>8}  {'a/n':>8}  status"]
        for r in self.rows:
            ratio = r.ratio
            ratio = "-" if len(r._pairs) < 2 else "varies" if ratio is None else f"{ratio:.4f}"
            lines.append(f"{r.name:<{width}}  {r.max_error:10.2e}  {r.checked:7d}  "
                         f"{r.skipped_kink:5d}  {r.inconclusive:8d}  {ratio:>8}  {r.status}")
        lines += [_fit(r.explain()) for r in self.rows if r.failed]
        lines.append(self.verdict)
        return "\n".join(lines)
