"""The gradient checker: it passes correct gradients, fails wrong ones, and handles kinks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import vae_np
import pytest

from strategies import assert_unchanged, snapshot
from vae_np import VAE, cli
from vae_np.gradcheck import model as model_gradcheck
from vae_np import ops
from vae_np.gradcheck import check_gradients, check_model, constant_ratio, relative_error


def smooth_problem():
    """f(a, b) = sum(tanh(a) * b) + sum(b^2) with its true gradient."""
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(3, 4))}

    def f(p):
        return np.sum(np.tanh(p["a"]) * p["b"]) + np.sum(p["b"] ** 2)
    grads = {"a": (1 - np.tanh(params["a"]) ** 2) * params["b"],
             "b": np.tanh(params["a"]) + 2 * params["b"]}
    return f, params, grads


@pytest.mark.parametrize("method", ["coordinates", "directional", "complex"])
def test_correct_gradient_passes(method):
    f, params, grads = smooth_problem()
    before = snapshot(*params.values(), *grads.values())
    report = check_gradients(f, params, grads, method=method)
    assert report.passed, str(report)
    assert all(r.status == "pass" and r.failed == 0 for r in report.rows)
    assert report.max_error < 1e-6
    assert_unchanged(before, *params.values(), *grads.values())   # perturbations are undone
    if method == "complex":
        assert report.max_error < 1e-13                           # exact to rounding
    if method == "directional":
        assert report.rows[-1].name == "(all at once)"


@pytest.mark.parametrize("method", ["coordinates", "directional", "complex"])
@pytest.mark.parametrize("mistake", ["twice", "sign of one coordinate", "one coordinate off"])
def test_wrong_gradient_fails(method, mistake):
    f, params, grads = smooth_problem()
    wrong = {n: g.copy() for n, g in grads.items()}
    if mistake == "twice":
        wrong["a"] *= 2
    elif mistake == "sign of one coordinate":
        wrong["b"][1, 2] *= -1
    else:
        wrong["b"][0, 0] += 1e-3
    report = check_gradients(f, params, wrong, method=method, directions=5)
    assert not report.passed
    assert "FAIL" in str(report) and "FAILED" in str(report)
    bad_row = next(r for r in report.rows if r.name == ("a" if mistake == "twice" else "b"))
    assert bad_row.status == "FAIL"
    if method != "directional":
        good_row = next(r for r in report.rows if r.name == ("b" if mistake == "twice" else "a"))
        assert good_row.status == "pass"


@pytest.mark.parametrize("method", ["coordinates", "complex"])
def test_one_coordinate_ten_times_the_tolerance_off_fails(method):
    """1e-5 relative at one coordinate is ten times tol = 1e-6 and 600 times sqrt(eps), the
    largest discrepancy float64 rounding may explain: FAIL, not inconclusive (a rounding
    threshold raised from sqrt(eps) to 1e-4 made it inconclusive and the report PASSED)."""
    f, params, grads = smooth_problem()
    wrong = {n: g.copy() for n, g in grads.items()}
    wrong["b"][0, 0] *= 1 + 1e-5
    report = check_gradients(f, params, wrong, method=method)
    row = report.rows[1]
    assert report.verdict == "FAILED" and row.failed == 1 and row.inconclusive == 0, str(report)
    assert row.worst_index == (0, 0)


def test_report_table_and_dict():
    f, params, grads = smooth_problem()
    report = check_gradients(f, params, grads, method="coordinates")
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("gradient check (coordinates, pass if error < 1e-06)")
    assert "parameter" in lines[1] and "max error" in lines[1] and "status" in lines[1]
    assert lines[2].split()[0] == "a" and lines[2].split()[-1] == "pass"
    assert lines[-1] == "PASSED"
    d = report.to_dict()
    json.dumps(d)
    assert d["passed"] is True and d["method"] == "coordinates"
    assert [r["name"] for r in d["rows"]] == ["a", "b"]
    assert all(r["checked"] == 12 and r["status"] == "pass" for r in d["rows"])


def test_coordinate_sampling():
    f, params, grads = smooth_problem()
    report = check_gradients(f, params, grads, coords=5, rng=np.random.default_rng(3))
    assert [r.checked for r in report.rows] == [5, 5]
    report = check_gradients(f, params, grads, coords=100)         # more than there are: all
    assert [r.checked for r in report.rows] == [12, 12]
    # sampled coordinates still catch an error when they include it
    wrong = {n: g.copy() for n, g in grads.items()}
    wrong["a"] += 0.5
    assert not check_gradients(f, params, wrong, coords=3).passed


def test_array_inputs_and_relative_error():
    x = np.array([0.3, -1.2, 2.0])
    report = check_gradients(lambda v: np.sum(v ** 3), x, 3 * x ** 2)
    assert report.passed and report.rows[0].name == "x"
    assert relative_error(1.0, 1.0) == 0
    assert relative_error(1.0, -1.0) == 1
    assert relative_error(0.0, 2.0) == 1
    assert relative_error(2.0, 1.0) == pytest.approx(1 / 3)


def test_relu_kink_is_skipped_not_failed():
    """sum(relu(x)) with one coordinate within h = 1e-6 of the kink: its difference quotient is
    ~1/2 while the analytic derivative is 0 or 1; the checker counts it as a kink."""
    x = np.array([0.7, -0.4, 3e-7, -2e-7, 1.5])
    grad = (x > 0).astype(float)
    report = check_gradients(lambda v: np.sum(np.maximum(v, 0)), x, grad)
    row = report.rows[0]
    assert row.checked == 5 and row.skipped_kink == 2 and row.failed == 0
    assert report.passed, str(report)
    assert " 2 " in str(report).splitlines()[2]              # the kink column of the table
    # away from the kink a wrong derivative is still caught
    wrong = grad.copy()
    wrong[0] = 0.0
    report = check_gradients(lambda v: np.sum(np.maximum(v, 0)), x, wrong)
    assert report.rows[0].failed == 1 and not report.passed


def test_only_kinks_is_inconclusive_not_passed():
    x = np.array([1e-8, -1e-8])
    report = check_gradients(lambda v: np.sum(np.maximum(v, 0)), x, (x > 0).astype(float))
    assert report.rows[0].status == "inconclusive"
    assert not report.passed


def test_complex_method_gets_a_complex_array():
    seen = []

    def f(p):
        seen.append(p["x"].dtype)
        return np.sum(np.exp(p["x"]))
    x = np.array([0.1, 0.2])
    report = check_gradients(f, {"x": x}, {"x": np.exp(x)}, method="complex")
    assert report.passed and report.max_error < 1e-14
    assert all(np.issubdtype(d, np.complexfloating) for d in seen)
    assert x.dtype == np.float64


def test_bad_arguments():
    f, params, grads = smooth_problem()
    with pytest.raises(ValueError, match="method"):
        check_gradients(f, params, grads, method="forward")
    with pytest.raises(ValueError, match="keys"):
        check_gradients(f, params, {"a": grads["a"]})
    with pytest.raises(ValueError, match="shape"):
        check_gradients(f, params, {"a": grads["a"], "b": grads["b"][:2]})
    with pytest.raises(ValueError, match="tol"):
        check_gradients(f, params, grads, tol=0)
    with pytest.raises(ValueError, match="coords"):
        check_gradients(f, params, grads, coords=0)
    with pytest.raises(ValueError, match="rng"):
        check_gradients(f, params, grads, coords=2, rng=42)


def test_check_model_catches_a_broken_backward(monkeypatch):
    """A model whose KL gradient uses the quoted (twice too large) expression fails the check."""
    model = VAE(5, (4,), 2, "tanh", "gaussian", seed=0)
    x = np.random.default_rng(0).normal(size=(3, 5))
    assert check_model(model, x, k=2, method="coordinates").passed
    monkeypatch.setattr(ops, "kl_backward", _twice_kl)
    report = check_model(model, x, k=2, method="coordinates")
    assert not report.passed
    failing = {r.name for r in report.rows if r.status == "FAIL"}
    assert failing and all(n.startswith("encoder.") for n in failing)


def _twice_kl(dkl, cache):
    """The KL gradient from the quoted expression: 2 mu, 2 (sigma - 1/sigma)."""
    mu, sigma = cache
    return 2 * dkl[:, None] * mu, 2 * dkl[:, None] * (sigma - 1 / sigma)


# --------------------------------------------------------------------------- how it is wrong
@pytest.mark.parametrize("method", ["coordinates", "directional", "complex"])
@pytest.mark.parametrize("factor, words", [(2.0, "your gradient is 2.000 x the true one"),
                                           (0.5, "your gradient is 0.500 x the true one"),
                                           (-1.0, "-1.000 x the true one (the sign is flipped)")])
def test_report_says_the_constant_factor(method, factor, words):
    """Before, the error capped at 1.00e+00 whether a gradient was doubled, halved or negated."""
    f, params, grads = smooth_problem()
    report = check_gradients(f, params, {"a": factor * grads["a"], "b": grads["b"]},
                             method=method)
    row_a, row_b = report.rows[0], report.rows[1]
    assert row_a.status == "FAIL" and abs(row_a.ratio - factor) < 1e-6, str(report)
    assert "a: worst at " in str(report) and words in str(report)
    if method != "directional":                   # a direction across a and b mixes them
        assert row_b.status == "pass" and abs(row_b.ratio - 1) < 1e-6
        assert "b: worst" not in str(report)      # only failing tensors are explained


def test_report_names_the_worst_coordinate_and_its_values():
    f, params, grads = smooth_problem()
    wrong = {n: g.copy() for n, g in grads.items()}
    wrong["b"][1, 2] += 0.25
    report = check_gradients(f, params, wrong)
    row = report.rows[1]
    assert row.worst_index == (1, 2)
    assert row.worst_analytic == wrong["b"][1, 2]
    assert abs(row.worst_numerical - grads["b"][1, 2]) < 1e-8
    assert row.ratio is None                          # one coordinate off: no constant factor
    text = str(report)
    assert "b: worst at coordinate (1, 2)" in text and "is not one constant" in text
    d = report.to_dict()["rows"][1]
    assert d["worst_index"] == [1, 2] and d["ratio"] is None
    json.dumps(report.to_dict())


@pytest.mark.parametrize("method", ["coordinates", "complex"])
def test_a_small_error_at_one_coordinate_is_no_constant_factor(method):
    """One coordinate 1e-4 off fails, and the report must not call it a constant factor (a slack
    of the ratio fit inflated a millionfold said 'your gradient is 1.00001 x the true one')."""
    f, params, grads = smooth_problem()
    wrong = {n: g.copy() for n, g in grads.items()}
    wrong["b"][2, 1] += 1e-4
    report = check_gradients(f, params, wrong, method=method)
    row = report.rows[1]
    assert row.status == "FAIL" and row.worst_index == (2, 1) and row.ratio is None, str(report)
    assert "b: worst at coordinate (2, 1)" in str(report) and "not one constant" in str(report)


def test_constant_ratio():
    n = np.array([1.0, -2.0, 0.5, 0.0])
    assert constant_ratio(2 * n, n, 1e-6) == pytest.approx(2.0)
    assert constant_ratio(-n, n, 1e-6) == pytest.approx(-1.0)
    assert constant_ratio(n + [0, 0, 0, 1e-3], n, 1e-6) is None       # not one constant
    assert constant_ratio(2 * n * (1 + 1e-9), n, 1e-6) == pytest.approx(2.0)   # within tol
    assert constant_ratio(n, np.zeros(4), 1e-6) is None


def test_the_generic_checker_imports_nothing_of_the_model():
    """check_model lives in vae_np.gradcheck.model; the generic checker (any f(params) -> scalar)
    must not depend on the model, and ``vae_np.gradcheck`` offers both."""
    import ast
    import vae_np.gradcheck.generic as gc
    tree = ast.parse(Path(gc.__file__).read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    modules = [getattr(node, "module", None) or "" for node in imports]
    assert not any("model" in m or "core" in m for m in modules), modules
    assert check_model is model_gradcheck.check_model is vae_np.gradcheck.check_model
    assert not hasattr(gc, "check_model")


# --------------------------------------------------------------------------- your own activation
def swish_forward(a):
    """h = a sigmoid(a); the cache is a."""
    return a * ops.sigmoid(a), a


def swish_backward(dh, a):
    """da = dh (s + a s (1 - s)), s = sigmoid(a)."""
    s = ops.sigmoid(a)
    return dh * (s + a * s * (1 - s))


def swish_backward_bug(dh, a):
    """The derivative of a sigmoid(a) without the product rule's first term."""
    s = ops.sigmoid(a)
    return dh * a * s * (1 - s)


@pytest.mark.parametrize("method", ["coordinates", "directional"])
def test_check_model_with_your_own_activation(method):
    """The supported way to check your own op inside the model: VAE(activation=(forward,
    backward)) and check_model. The correct swish passes, a swish without the product rule's
    first term fails in the layers before and after the activation only."""
    x = np.random.default_rng(0).normal(size=(4, 5))
    model = VAE(5, (4, 3), 2, (swish_forward, swish_backward), "gaussian", seed=0)
    assert check_model(model, x, k=2, method=method).passed
    buggy = VAE(5, (4, 3), 2, (swish_forward, swish_backward_bug), "gaussian", seed=0)
    report = check_model(buggy, x, k=2, method=method)
    assert report.verdict == "FAILED", str(report)
    if method == "coordinates":                 # decoder.out only sees the forward activation
        failing = {r.name for r in report.rows if r.failed}
        assert "encoder.0.W" in failing and "decoder.out.W" not in failing, str(report)


# --------------------------------------------------------------------------- command line
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def test_cli_gradcheck_in_process(capsys):
    status = cli.main(["gradcheck", "--hidden", "8", "--x-dim", "10", "--z-dim", "2"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASSED" in out and "FAILED" not in out


def test_cli_gradcheck_json(capsys):
    status = cli.main(["gradcheck", "--hidden", "3", "--x-dim", "4", "--z-dim", "2", "--json",
                       "--likelihood", "gaussian-learned", "--activation", "tanh", "--k", "2"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and result["passed"] is True
    assert [c["method"] for c in result["checks"]] == ["directional", "coordinates"]


def test_cli_gradcheck_float32_against_a_float64_copy(capsys):
    """--dtype float32 gives a verdict (PASSED) instead of INCONCLUSIVE, at sqrt(eps32)."""
    status = cli.main(["gradcheck", "--hidden", "6", "--x-dim", "8", "--z-dim", "2", "--dtype",
                       "float32", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and result["passed"] is True and "float32" in result["model"]
    assert all(c["verdict"] == "PASSED" and c["tol"] == pytest.approx(3.4527e-4, rel=1e-4)
               for c in result["checks"])


def test_cli_gradcheck_subprocess():
    proc = subprocess.run([sys.executable, "-m", "vae_np", "gradcheck", "--hidden", "8",
                           "--x-dim", "10", "--z-dim", "2"], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout


@pytest.mark.parametrize("argv, word", [
    (["gradcheck", "--activation", "swish"], "activation"),
    (["gradcheck", "--x-dim", "0"], "x_dim"),
    (["gradcheck", "--batch", "0", "--x-dim", "3", "--hidden", "2"], "batch"),
    (["gradcheck", "--tol", "-1", "--x-dim", "3", "--hidden", "2"], "tol"),
    (["gradcheck", "--x-dim", "ten"], "x-dim"),
])
def test_cli_bad_argument_exits_2(argv, word, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exc:                       # argparse's own errors
        status = exc.code
    assert status == 2
    assert word in capsys.readouterr().err


def test_cli_bad_argument_subprocess():
    proc = subprocess.run([sys.executable, "-m", "vae_np", "gradcheck", "--z-dim", "-1"],
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 2
    assert "z_dim" in proc.stderr and "Traceback" not in proc.stderr
