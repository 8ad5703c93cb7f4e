"""The relative precision of the chain's planar logdet near the identity (vae_np.ops.flows.
planar_forward with one_plus_wuh), against a 50-digit reference built with the decimal module.

planar_forward computes logdet = log1p(x), x = tanh'(a) (p - 1), where |x| < 0.5, and ln(det),
det = tanh(a)^2 + tanh'(a) p, elsewhere. Its docstring promises full accuracy near det = 1: ln(det)
there keeps det's absolute rounding (eps det), a relative error of eps / |x| in a logdet of size
|x| (1e-4 at x = 1e-12), which no absolute tolerance (test_planar_float32's) sees. Taking ln(det)
everywhere, or switching to it below |x| = 0.01 instead of 0.5, passed every other test.

Also here: where both terms of det underflow (a = 0, softplus(w.u) = 0 below w.u = -745 in float64,
-104 in float32) the step is singular and must say so (SingularStepError, which training reports
as a divergence); without the check, ln(0) = -inf went on silently and no test noticed.
"""
from decimal import Decimal, getcontext

import numpy as np
import pytest

from vae_np.flows import chain as flow_chain
from vae_np.ops import flows

EPS = np.finfo(np.float64).eps


def logdet_reference(a, p):
    """ln(tanh(a)^2 + sech(a)^2 p) for float64 a, p, in 50 digits: with e = exp(-2|a|),
    tanh^2 = ((1 - e) / (1 + e))^2 and sech^2 = 4 e / (1 + e)^2 (independent of vae_np)."""
    getcontext().prec = 50
    out = []
    for a_i, p_i in zip(a, p):
        e = (Decimal(-2) * abs(Decimal(float(a_i)))).exp()
        det = ((1 - e) / (1 + e)) ** 2 + 4 * e / (1 + e) ** 2 * Decimal(float(p_i))
        out.append(float(det.ln()))
    return np.array(out)


def near_identity_rows():
    """(a, p): a in {0, 1e-3, 0.3, -1, 2.5}, and p in [0.5, 2] (so p - 1 is exact) with
    x = tanh'(a) (p - 1) = +-10^-12 .. +-0.45, 40 magnitudes a sign."""
    a_values, p_values = [], []
    for a in (0.0, 1e-3, 0.3, -1.0, 2.5):
        s = 1 / np.cosh(a) ** 2
        for x in np.concatenate([np.geomspace(1e-12, 0.45, 40), -np.geomspace(1e-12, 0.45, 40)]):
            p = 1 + x / s
            if 0.5 <= p <= 2:
                a_values.append(a)
                p_values.append(p)
    return np.array(a_values), np.array(p_values)


def relative_errors(a, p, forward=flows.planar_forward):
    """|logdet - reference| / |reference| for one D = 1 step per row with w = 1, z = 0, b = a."""
    n = len(a)
    _, logdet, _ = forward(np.zeros((n, 1)), np.zeros((n, 1)), np.ones((n, 1)), a, p)
    ref = logdet_reference(a, p)
    return np.abs(logdet - ref) / np.abs(ref)


def test_logdet_near_the_identity_has_full_relative_precision():
    """Rounding of tanh'(a) (4 eps), of x (0.5 eps) and of log1p (1 ulp), the first two amplified
    by x / ((1 + x) ln(1 + x)) <= 1.5 for |x| <= 0.45: under 8 eps; 16 eps allowed."""
    a, p = near_identity_rows()
    assert len(a) > 300
    assert np.max(relative_errors(a, p)) <= 16 * EPS


def ln_everywhere(z, u_hat, w, b, one_plus_wuh):
    """Planted bug: logdet = ln(det) on every row (no log1p near det = 1)."""
    f, _, cache = flows.planar_forward(z, u_hat, w, b, one_plus_wuh)
    return f, np.log(cache[6]), cache


def ln_above(limit):
    """Planted bug: the log1p / ln switch at |x| = limit instead of 0.5."""
    def forward(z, u_hat, w, b, one_plus_wuh):
        f, logdet, cache = flows.planar_forward(z, u_hat, w, b, one_plus_wuh)
        x = cache[4] * cache[5]
        return f, np.where(np.abs(x) < limit, logdet, np.log(cache[6])), cache
    return forward


@pytest.mark.parametrize("forward", [ln_everywhere, ln_above(0.01)], ids=["ln", "switch@0.01"])
def test_the_precision_check_fails_with_ln_where_log1p_is_due(forward):
    a, p = near_identity_rows()
    assert np.max(relative_errors(a, p, forward)) > 16 * EPS


# --------------------------------------------------------------------------- det underflowing to 0
@pytest.mark.parametrize("dtype, wu", [(np.float64, -800.0), (np.float32, -120.0)])
def test_a_step_whose_det_underflows_is_singular_not_minus_infinity(dtype, wu):
    """w = (1, 0, 0), u = (wu, 0, 0), z0 = 0, b = 0: a = 0 (tanh^2 = 0) and softplus(w.u) = 0."""
    raw = np.array([[wu, 0, 0, 1, 0, 0, 0]], dtype=dtype)
    assert np.logaddexp(dtype(0), dtype(wu)) == 0                   # softplus(w.u) underflows
    with pytest.raises(flows.SingularStepError, match="both terms underflow"):
        flow_chain.chain_forward("planar", np.zeros((1, 3), dtype), [raw])
    with pytest.raises(flows.SingularStepError, match="must be > 0"):
        flows.planar_forward(np.zeros((2, 1), dtype), np.zeros((2, 1), dtype),
                             np.ones((2, 1), dtype), np.zeros(2, dtype), np.array([1, 0], dtype))


def test_one_plus_wuh_may_be_a_list_like_b():
    """b and one_plus_wuh are both (N,) numbers: a list for either is taken as an array (a list
    one_plus_wuh raised a TypeError from its sign check)."""
    z, w = np.ones((2, 1)), np.ones((2, 1))
    as_list = flows.planar_forward(z, w, w, [0.5, -1.0], [0.25, 3.0])
    as_array = flows.planar_forward(z, w, w, np.array([0.5, -1.0]), np.array([0.25, 3.0]))
    for a, b in zip(as_list[:2], as_array[:2]):
        assert np.array_equal(a, b)
