"""vae_np.testing: assert_backward passes right gradients and says how wrong ones are wrong, and
its noise options widen only what they say; central_difference steps, bounds and Jacobians as
documented, and complex_step is exact; the strategies' examples run; the README's testing
example catches its planted bug; importing vae_np needs no hypothesis."""
import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import strategies as test_strategies
from vae_np import ops
from vae_np.testing import BackwardMismatch, assert_backward, central_difference, complex_step
from vae_np.testing import strategies

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
RNG = np.random.default_rng(0)
MU, SIGMA = RNG.normal(size=(3, 2)), RNG.uniform(0.3, 2.0, size=(3, 2))
X, W, B = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)), RNG.normal(size=2)


def raises(forward, backward, *inputs, **options):
    with pytest.raises(BackwardMismatch) as info:
        assert_backward(forward, backward, *inputs, **options)
    return str(info.value), info.value.problems


# --------------------------------------------------------------------------- assert_backward
def test_right_gradients_pass_with_small_errors():
    errors = assert_backward(ops.kl_forward, ops.kl_backward, MU, SIGMA)
    assert set(errors) == {"mu", "sigma"} and max(errors.values()) < 1e-8
    assert assert_backward(ops.dense_forward, ops.dense_backward, X, W, B).keys() == {"x", "W", "b"}


@pytest.mark.parametrize("factor, words", [(2.0, "your gradient is 2.000 x the true one"),
                                           (0.5, "your gradient is 0.500 x the true one"),
                                           (-1.0, "-1.000 x the true one (the sign is flipped)")])
def test_a_constant_factor_is_said_in_words(factor, words):
    def scaled(dkl, cache):
        dmu, dsigma = ops.kl_backward(dkl, cache)
        return factor * dmu, factor * dsigma
    message, problems = raises(ops.kl_forward, scaled, MU, SIGMA)
    assert [p["name"] for p in problems] == ["mu", "sigma"]
    assert message.count(words) == 2
    assert "input 'mu' (input 0 of kl_forward, shape (3, 2))" in message
    p = problems[0]
    assert p["analytic"] == pytest.approx(factor * p["numerical"], rel=1e-6)
    assert f"worst coordinate {p['index']}: analytic" in message
    message, _ = raises(ops.kl_forward, scaled, MU, SIGMA, complex_step=False)
    assert message.count(words) == 2 and "central differences" in message    # on their own


def test_a_wrong_term_has_no_constant_factor():
    def no_log_term(dkl, cache):          # d/dsigma of -ln sigma dropped: sigma, not
        # sigma - 1/sigma
        mu, sigma = cache
        return dkl[:, None] * mu, dkl[:, None] * sigma
    message, problems = raises(ops.kl_forward, no_log_term, MU, SIGMA)
    assert [p["name"] for p in problems] == ["sigma"]           # dmu is right
    assert problems[0]["ratio"] is None and "x the true one" not in message
    assert "6 of 6 coordinates off" in message


def test_a_transpose_is_recognised_square_or_not():
    def transposed(dy, cache):
        dx, dW, db = ops.dense_backward(dy, cache)
        return dx, dW.T, db
    message, problems = raises(ops.dense_forward, transposed, X, W, B)
    assert "has shape (2, 3): your gradient is the transpose of the true one" in message
    square = RNG.normal(size=(3, 3))
    message, problems = raises(ops.dense_forward, transposed, X, square, B[:1].repeat(3))
    assert problems[0]["transposed"] and "your gradient is the transpose" in message
    message, _ = raises(ops.dense_forward, lambda dy, c: (*ops.dense_backward(dy, c)[:2], B[:1]),
                        X, W, B)
    assert "has shape (1,), expected (2,)" in message


def test_the_complex_step_catches_what_central_differences_cannot():
    """An error of 1e-8 relative is below the central differences' tolerance 1e-6 but far above
    the complex step's rounding: it fails, by the complex step; with complex_step=False it
    passes (this is what the complex step adds)."""
    def slightly_off(dy, y):
        return ops.tanh_backward(dy, y) * (1 + 1e-8)
    message, problems = raises(ops.tanh_forward, slightly_off, X)
    assert "disagrees with the complex step" in message
    assert problems[0]["method"] == "the complex step"
    assert assert_backward(ops.tanh_forward, slightly_off, X, complex_step=False)


def test_each_method_fails_an_error_ten_times_its_tolerance():
    """Central differences alone (complex_step=False, as for a forward that is not analytic)
    fail a gradient off by 1e-5 relative, ten times their tolerance 1e-6 and far above their
    rounding noise (~1e-8 here); the complex step fails one off by 1e-9, ten times its 1e-10.
    A central tolerance loosened to 1e-2, a rounding bound inflated 1e5-fold, and a complex-step
    absolute slack raised from 1e-13 to 1e-9 each passed every other test."""
    def off(factor):
        return lambda dy, y: ops.tanh_backward(dy, y) * factor
    _, problems = raises(ops.tanh_forward, off(1 + 1e-5), X, complex_step=False)
    assert problems[0]["method"] == "central differences"
    assert problems[0]["ratio"] == pytest.approx(1 + 1e-5, rel=1e-6)
    _, problems = raises(ops.tanh_forward, off(1 + 1e-9), X)
    assert problems[0]["method"] == "the complex step"
    assert assert_backward(ops.tanh_forward, off(1 + 1e-9), X, complex_step=False)


def test_a_forward_that_is_not_complex_analytic():
    """abs() is not analytic: in "auto" mode its complex step is recognised (it disagrees with the
    central differences too) and ignored; complex_step=True insists and fails."""
    def abs_forward(x):
        return np.abs(x), x

    def abs_backward(dy, x):
        return dy * np.sign(x)
    x = np.array([[0.5, -1.5, 2.0]])
    assert assert_backward(abs_forward, abs_backward, x)
    message, _ = raises(abs_forward, abs_backward, x, complex_step=True)
    assert "does not map a complex input to a complex output" in message


def test_mutation_count_and_missing_gradients_are_reported():
    def mutating_dout(dy, y):
        dy *= 1 - y * y
        return dy
    message, _ = raises(ops.tanh_forward, mutating_dout, X)
    assert "modified dout in place" in message

    def mutating_cache(dy, x):              # relu's cache is its input itself
        x[x < 0] = 0
        return dy * (x > 0)
    message, _ = raises(ops.relu_forward, mutating_cache, X)
    assert "modified input 'x' in place" in message
    message, _ = raises(ops.kl_forward, lambda d, c: (*ops.kl_backward(d, c), d), MU, SIGMA)
    assert "returned 3 gradients for 2 inputs" in message
    message, _ = raises(ops.dense_forward, lambda dy, c: ops.dense_backward(dy, c, need_dx=False),
                        X, W, B)
    assert "input 'x'" in message and "is None" in message
    message, _ = raises(ops.tanh_forward, lambda dy, y: dy * np.nan, X)
    assert "not a finite numeric array" in message


def scale_forward(x, gamma, beta):
    """A batch-norm-like affine step y = x * gamma + beta (gamma, beta per column)."""
    return x * gamma + beta, (x, gamma)


def scale_backward(dy, cache):
    x, gamma = cache
    return dy * gamma, (dy * x).sum(axis=0), dy.sum(axis=0)


GAMMA, BETA = RNG.normal(size=3), RNG.normal(size=3)


@pytest.mark.parametrize("returned, missing", [
    (lambda dy, c: scale_backward(dy, c)[:2], ["beta"]),          # dbeta forgotten
    (lambda dy, c: scale_backward(dy, c)[0], ["gamma", "beta"]),  # only dx, as one array
    (lambda dy, c: (), ["x", "gamma", "beta"])])
def test_a_forgotten_gradient_fails_naming_its_input(returned, missing):
    """A backward with fewer gradients than inputs passed when the ones it returned were right:
    the input without a gradient is named (by the forward's parameter name), once each."""
    message, problems = raises(scale_forward, returned, X, GAMMA, BETA)
    assert [p["name"] for p in problems if p["kind"] == "missing"] == missing
    for name in missing:
        assert message.count(f"input '{name}'") == 1
    got, shape = 3 - len(missing), {"x": X.shape, "gamma": (3,), "beta": (3,)}[missing[0]]
    assert (f"the gradient of input '{missing[0]}' (input {got} of scale_forward, shape {shape}) "
            f"is missing: backward returned {got} gradient") in message
    assert f"for 3 inputs (if '{missing[0]}' is data" in message


def test_constants_are_inputs_without_a_gradient():
    """constants= names the inputs that get no gradient (data, noise), by name or position,
    anywhere in the list: the gradients go to the other inputs in order, and each of those is
    still checked."""
    def no_dgamma(dy, cache):
        dx, _, dbeta = scale_backward(dy, cache)
        return dx, dbeta
    assert assert_backward(scale_forward, no_dgamma, X, GAMMA, BETA,
                           constants=["gamma"]).keys() == {"x", "beta"}
    assert assert_backward(scale_forward, no_dgamma, X, GAMMA, BETA, constants=1).keys() == {
        "x", "beta"}
    message, problems = raises(scale_forward, lambda dy, c: no_dgamma(dy, c)[::-1], X, GAMMA,
                               BETA, constants=["gamma"])          # dbeta where dx belongs
    assert {p["name"] for p in problems} == {"x", "beta"}
    assert assert_backward(ops.bernoulli_nll_forward, ops.bernoulli_nll_backward,
                           RNG.normal(size=(2, 3)), RNG.uniform(size=(2, 3)), constants=["x"])
    for wrong in (["y"], [3], ["x", 5]):
        with pytest.raises(ValueError,
                           match=r"constants must name inputs \(one of 'x', 'gamma', 'beta'\)"):
            assert_backward(scale_forward, scale_backward, X, GAMMA, BETA, constants=wrong)


def test_extra_none_and_misshapen_gradients_name_the_input():
    """More gradients than inputs, None for an input and an array of the wrong shape: each an
    AssertionError (BackwardMismatch) that names the input or says which gradient has none."""
    message, _ = raises(scale_forward, lambda dy, c: (*scale_backward(dy, c), dy), X, GAMMA,
                        BETA)
    assert message == ("assert_backward: backward returned 4 gradients for 3 inputs of "
                       "scale_forward ('x', 'gamma', 'beta'): gradient 3 belongs to no input")
    message, _ = raises(scale_forward, lambda dy, c: scale_backward(dy, c), X, GAMMA, BETA,
                        constants=["beta"])
    assert ("returned 3 gradients for 2 inputs of scale_forward ('x', 'gamma'); 'beta' is "
            "constant: gradient 2 belongs to no input") in message
    message, problems = raises(scale_forward, lambda dy, c: (scale_backward(dy, c)[0], None,
                                                             scale_backward(dy, c)[2]),
                               X, GAMMA, BETA)
    assert message == ("assert_backward: the gradient of input 'gamma' (input 1 of "
                       "scale_forward, shape (3,)) is None")
    assert [p["kind"] for p in problems] == ["none"]
    message, problems = raises(scale_forward, lambda dy, c: (scale_backward(dy, c)[0],
                                                             scale_backward(dy, c)[1][:2],
                                                             scale_backward(dy, c)[2]),
                               X, GAMMA, BETA)
    assert message == ("assert_backward: the gradient of input 'gamma' (input 1 of "
                       "scale_forward, shape (3,)) has shape (2,), expected (3,)")
    with pytest.raises(AssertionError, match="input 'beta'"):     # an AssertionError, for pytest
        assert_backward(scale_forward, lambda dy, c: scale_backward(dy, c)[:2], X, GAMMA, BETA)


def test_an_infinite_rounding_scale_is_refused():
    """assert_fd_close(a, n, f_terms=inf) accepted any gradient (its bound was infinite)."""
    from vae_np.testing.numerical import assert_fd_close
    with pytest.raises(ValueError, match="f_terms"):
        assert_fd_close(np.ones(2), -np.ones(2), np.inf)


def test_caller_arrays_are_never_touched_and_bad_options_are_value_errors():
    x = X.copy()
    assert_backward(ops.relu_forward, ops.relu_backward, x, complex_step=False)
    np.testing.assert_array_equal(x, X)
    with pytest.raises(ValueError, match="complex_step"):
        assert_backward(ops.tanh_forward, ops.tanh_backward, X, complex_step="yes")
    with pytest.raises(ValueError, match="dout"):
        assert_backward(ops.tanh_forward, ops.tanh_backward, X, dout=np.ones(3))


# --------------------------------------------------------------------------- strategies
def test_every_strategy_has_a_runnable_example():
    result = doctest.testmod(strategies, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    documented = [name for name in strategies.__all__
                  if callable(getattr(strategies, name)) and ">>>" in
                  (getattr(strategies, name).__doc__ or "")]
    assert set(documented) >= {"floats", "away_from_zero", "arrays", "matrix_shapes",
                               "dense_shapes", "architectures", "make_data"}
    assert result.attempted >= 2 * len(documented)


def test_tests_strategies_is_a_re_export():
    for name in ("arrays", "architectures", "make_data", "matrix_shapes", "floats"):
        assert getattr(test_strategies, name) is getattr(strategies, name)


def test_importing_vae_np_needs_no_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import vae_np, vae_np.testing, vae_np.gradcheck.generic, vae_np.teaching.exercises\n"
            "import vae_np.cli\n"
            "from vae_np.testing import assert_backward, central_difference, complex_step\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# --------------------------------------------------------------------------- the README example
def readme_example():
    text = (REPO / "docs" / "testing.md").read_text(encoding="utf-8")
    section = text.split("## A test file to paste", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_pytest(tmp_path, code):
    (tmp_path / "test_square.py").write_text(code)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_square.py"], capture_output=True, text=True, timeout=120,
                          env=ENV, cwd=tmp_path)


def test_the_readme_example_passes_and_catches_its_planted_bug(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 20
    proc = run_pytest(tmp_path, code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planted = code.replace("return dy * 2 * x ", "return dy * x     ")
    assert planted != code
    proc = run_pytest(tmp_path, planted)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "your gradient is 0.500 x the true one" in proc.stdout
    assert "input 'x' (input 0 of square_forward" in proc.stdout


# --------------------------------------------------------------------------- central_difference
def test_the_helper_is_the_package_implementation_everywhere():
    """One implementation: vae_np.testing, vae_np.testing.numerical and the tests' strategies
    hand out numerics' functions themselves."""
    from vae_np import numerics, testing
    from vae_np.testing import numerical
    for name in ("central_difference", "complex_step"):
        assert (getattr(testing, name) is getattr(numerical, name)
                is getattr(test_strategies, name) is getattr(numerics, name))


def test_central_difference_steps_by_the_documented_rule():
    """f is evaluated at x_i +- h and x_i +- 2h, h = h_rel * max(1, |x_i|), one coordinate at a
    time; the caller's x is not moved."""
    x = np.array([0.25, -3.0, 40.0])
    seen = []
    central_difference(lambda v: seen.append(v.copy()) or float(np.sum(v)), x, h_rel=1e-3)
    assert len(seen) == 4 * x.size
    for i in range(x.size):
        h = 1e-3 * max(1.0, abs(x[i]))
        moved = [v[i] - x[i] for v in seen[4 * i:4 * i + 4]]
        assert moved == pytest.approx([h, -h, 2 * h, -2 * h], rel=1e-9)
        for v in seen[4 * i:4 * i + 4]:
            assert np.array_equal(np.delete(v, i), np.delete(x, i))
    np.testing.assert_array_equal(x, [0.25, -3.0, 40.0])


@pytest.mark.parametrize("f, df", [(np.sin, np.cos), (np.exp, np.exp),
                                   (lambda v: v ** 3 - 2 * v, lambda v: 3 * v ** 2 - 2)])
def test_central_difference_is_second_order_and_its_bound_holds(f, df):
    """Against exact derivatives: error within the bound, and below 1e-9 relative at the default
    step (a central difference's truncation is h^2 |f'''| / 6 ~ 1e-10 here; a one-sided step has
    h |f''| / 2 ~ 1e-5)."""
    x = np.array([-1.3, -0.2, 0.0, 0.7, 2.1])
    grad, bound = central_difference(lambda v: float(np.sum(f(v))), x)
    err = np.abs(grad - df(x))
    assert np.all(err <= bound)
    assert np.all(err <= 1e-9 * np.maximum(1.0, np.abs(df(x))))
    assert np.all(bound < 1e-8)


def test_central_difference_bound_is_the_documented_formula():
    """bound = |n(2h) - n(h)| + 8 eps (max |f| + terms) / span, checked where each part is known
    exactly: f = x^3 has n(h) = 3 x^2 + h^2, so the truncation part is 3 h^2 (three times the
    true error h^2: the bound is not loose either); f = x at 0 has exact quotients 1 and values
    +-h, +-2h, so the bound is the rounding part alone."""
    eps, h_rel = np.finfo(float).eps, 1e-3         # truncation (3e-6) far above rounding
    x = np.array([0.5, -2.0])
    grad, bound = central_difference(lambda v: float(np.sum(v ** 3)), x, h_rel)
    h = h_rel * np.maximum(1.0, np.abs(x))
    rounding = 8 * eps * abs(0.5 ** 3 - 8) / (2 * h)   # max |f| is |f(x)| to 1e-3 relative
    # rel=1e-5: the quotients themselves round by ~eps |f| / h = 2e-12 (7e-7 of 3 h^2)
    assert bound == pytest.approx(3 * h ** 2 + rounding, rel=1e-5)
    assert np.abs(grad - 3 * x ** 2) == pytest.approx(h ** 2, rel=1e-5)
    h = 1e-5
    grad, bound = central_difference(lambda v: float(v[0]), np.zeros(1), terms=1.0)
    assert grad[0] == 1.0
    assert bound[0] == pytest.approx(8 * eps * (2 * h + 1.0) / (2 * h), rel=1e-12)
    _, bound_without = central_difference(lambda v: float(v[0]), np.zeros(1))
    assert bound_without[0] == pytest.approx(8 * eps * 2 * h / (2 * h), rel=1e-12)


def test_central_difference_of_an_array_valued_f_is_its_jacobian():
    x = np.array([0.3, -1.1])

    def f(v):
        return np.array([[np.sin(v[0]) * v[1], v[1] ** 2, np.exp(v[0])]])
    exact = np.array([[[np.cos(0.3) * -1.1, np.sin(0.3)], [0.0, -2.2], [np.exp(0.3), 0.0]]])
    jac, bound = central_difference(f, x)
    assert jac.shape == bound.shape == (1, 3, 2)
    assert np.all(np.abs(jac - exact) <= bound) and np.all(bound < 1e-8)


def test_central_difference_row_by_row():
    """rows=True: one Jacobian per row of a row-wise map, from 4 evaluations per coordinate of a
    row (every row moved at once), each row with its own step and its own bound."""
    X = np.array([[0.3, -1.1], [2.0, 5.0], [-7.0, 0.0]])
    calls = []

    def f(V):
        calls.append(1)
        return np.stack([np.sin(V[:, 0]) * V[:, 1], V[:, 1] ** 2, np.exp(V[:, 0])], 1)
    jac, bound = central_difference(f, X, rows=True)
    exact = np.zeros((3, 3, 2))
    exact[:, 0, 0], exact[:, 0, 1] = np.cos(X[:, 0]) * X[:, 1], np.sin(X[:, 0])
    exact[:, 1, 1], exact[:, 2, 0] = 2 * X[:, 1], np.exp(X[:, 0])
    assert jac.shape == bound.shape == (3, 3, 2) and len(calls) == 4 * 2
    assert np.all(np.abs(jac - exact) <= bound)
    assert np.all(np.abs(jac - exact) <= 1e-9 * np.maximum(1, np.abs(exact)))
    assert bound[1].max() > 10 * bound[0].max()        # row 1's values (e^2, 25) round coarser
    grad, _ = central_difference(lambda V: np.sum(V ** 2, 1), X, rows=True, terms=np.ones(3))
    assert grad.shape == X.shape and np.allclose(grad, 2 * X, rtol=1e-9, atol=1e-9)
    # each row's bound is the documented formula, as in the scalar test above: truncation 3 h^2
    # for x^3, and for f = x at 0 (exact quotients) the rounding part with that row's terms
    x3, h_rel, eps = np.array([[0.5], [-2.0]]), 1e-3, np.finfo(float).eps
    _, bound = central_difference(lambda V: V ** 3, x3, h_rel, rows=True)
    h = h_rel * np.maximum(1.0, np.abs(x3[:, 0]))
    rounding = 8 * eps * np.abs(x3[:, 0]) ** 3 / (2 * h)
    assert bound[:, 0, 0] == pytest.approx(3 * h ** 2 + rounding, rel=1e-5)
    _, bound = central_difference(lambda V: V, np.zeros((2, 1)), rows=True, terms=np.array([0, 9]))
    h = 1e-5
    assert bound[:, 0, 0] == pytest.approx(8 * eps * (2 * h + np.array([0, 9])) / (2 * h),
                                           rel=1e-12)


def test_central_difference_bad_input():
    f = lambda v: float(np.sum(v))                    # noqa: E731
    for terms in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="terms must be finite and >= 0"):
            central_difference(f, np.ones(2), terms=terms)
    with pytest.raises(ValueError, match=r"terms must be a number \(an \(N,\) array needs rows"):
        central_difference(f, np.ones(2), terms=np.ones(2))
    with pytest.raises(ValueError, match=r"terms must be a number or an \(N,\) = \(2,\) array"):
        central_difference(lambda V: V, np.ones((2, 2)), rows=True, terms=np.ones(3))
    with pytest.raises(ValueError, match="rows=True needs x with at least one row"):
        central_difference(f, np.float64(1.0), rows=True)
    with pytest.raises(ValueError, match="a row-wise f must return one row per moved coordinate"):
        central_difference(lambda V: float(np.sum(V)), np.ones((2, 2)), rows=True)


def test_complex_step_is_exact_and_refuses_a_real_f():
    x = np.array([0.3, -1.1])
    jac = complex_step(lambda v: np.stack([np.sin(v[0]) * v[1], np.exp(v[1])]), x)
    exact = np.array([[np.cos(0.3) * -1.1, np.sin(0.3)], [0.0, np.exp(-1.1)]])
    np.testing.assert_allclose(jac, exact, rtol=4 * np.finfo(float).eps, atol=0)
    assert complex_step(lambda v: np.sum(v ** 2), x) == pytest.approx(2 * x, rel=1e-15)
    with pytest.raises(ValueError, match="complex_step: f must map a complex x to a complex"):
        complex_step(lambda v: np.abs(v), x)
    with pytest.raises(ValueError, match="complex_step: f is not finite"):
        with np.errstate(divide="ignore"):
            complex_step(lambda v: np.log(v - v.real), x)


# --------------------------------------------------------------------------- noise options
def cancelling_forward(x):
    """y = (x + 1e6) - 1e6 + x^2: the sum rounds to an ulp of 1e6 (1.2e-10), which the output
    y (of size |x|) and so the floor 16 eps sum|y dout| do not show."""
    return (x + 1e6) - 1e6 + x ** 2, x


def cancelling_backward(dy, x):
    return dy * (1 + 2 * x)


def test_exposure_and_measured_noise_widen_only_the_central_bound():
    """The rounding of an intermediate of size 1e6 (up to 6e-5 in a quotient) fails a correct
    backward; exposure= (the caller's sum |dL/dv| |v| = sum |dout| 1e6 per row: 4 eps exposure /
    2h <= 1.6e-3) passes it, and so does measure_noise=True (the rounding differs between five
    steps 0.1 % apart). Neither hides an error of 1e-2, and the complex step is not widened: 1e-8
    off still fails through it."""
    x, dout = np.array([[0.3, -0.7], [0.1, 0.2]]), np.array([[1.0, -2.0], [0.5, 1.5]])

    def exposure(x, dout):
        return np.sum(np.abs(dout), 1) * 1e6
    message, problems = raises(cancelling_forward, cancelling_backward, x, dout=dout)
    assert problems[0]["method"] == "central differences"
    for options in (dict(exposure=exposure), dict(measure_noise=True)):
        assert assert_backward(cancelling_forward, cancelling_backward, x, dout=dout, **options)
        for factor, method in ((1 + 1e-2, "central differences"), (1 + 1e-8, "the complex step")):
            _, problems = raises(cancelling_forward,
                                 lambda dy, c, factor=factor: cancelling_backward(dy, c) * factor,
                                 x, dout=dout, **options)
            assert problems[0]["method"] == method


def test_exposure_must_be_one_number_per_row():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"exposure must return a number or an \(N,\) array, N "
                                         r"the first axis of every differentiated input \('x' "
                                         r"\(2, 3\)\); got shape \(3,\)"):
        assert_backward(ops.tanh_forward, ops.tanh_backward, x,
                        exposure=lambda x, dout: np.ones(3))
    with pytest.raises(ValueError, match="exposure must return finite values >= 0"):
        assert_backward(ops.tanh_forward, ops.tanh_backward, x, exposure=lambda x, d: -1.0)
