"""vae_np.explain: the backprop lesson is the model's own trace, checked quantity by quantity."""
import json

import numpy as np
import pytest

from vae_np import cli, ops
from vae_np import explain as lesson

LESSON_FORWARD = ["x", "a1", "h1", "mu", "s", "sigma", "eps", "z", "kl", "c1", "g1", "x~", "nll",
                  "loss"]


@pytest.fixture(scope="module")
def result():
    return lesson.explain(seed=0)


def test_lesson_passes(result):
    assert result["passed"] and result["first_failure"] is None
    assert all(r["passed"] for r in result["backward"] + result["parameters"])
    assert max(r["rel_error"] for r in result["backward"]) < lesson.FD_TOL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_lesson_shows_the_models_own_trace(seed):
    """No second implementation: the lesson's numbers are those of VAE.trace on the same x, eps."""
    result = lesson.explain(seed=seed)
    model = lesson.build_model(seed)
    trace = model.trace(np.array(result["x"]), k=1, eps=np.array(result["eps"]))
    for r in result["forward"]:
        assert np.array_equal(np.asarray(r["value"]), trace.values[r["name"]]), r["name"]
    for r in result["backward"]:
        assert np.array_equal(np.asarray(r["value"]), trace.grads[r["name"]]), r["name"]
    assert result["sgd_step"]["loss_before"] == trace.loss


def test_quantities_in_derivation_order_with_their_equations(result):
    assert [r["name"] for r in result["forward"]] == LESSON_FORWARD
    backward = [r["name"] for r in result["backward"]]
    assert backward == [n for n in reversed(LESSON_FORWARD) if n not in ("x", "eps", "loss")]
    eq = {r["name"]: r["equation"] for r in result["forward"]}
    assert eq["z"] == "z = mu + sigma * eps" and eq["sigma"] == "sigma = exp(s / 2)"
    deq = {r["name"]: r["equation"] for r in result["backward"] + result["parameters"]}
    assert deq["mu"].startswith("dmu = sum_k dz + dkl * mu")
    assert deq["sigma"].startswith("dsigma = sum_k dz * eps + dkl * (sigma - 1/sigma)")
    assert deq["encoder.0.W"] == "dW = x^T da1" and deq["decoder.out.b"] == "db = sum_b dx~"


def test_the_derivation_numbers(result):
    """Batch 1, k 1: dkl = 1, so dmu = dz + mu, dsigma = dz eps + sigma - 1/sigma, ds = dsigma
    sigma / 2 -- recomputed here from the printed values, not by the library."""
    v = {r["name"]: np.asarray(r["value"]) for r in result["forward"]}
    d = {r["name"]: np.asarray(r["value"]) for r in result["backward"]}
    eps = v["eps"][0]
    assert np.allclose(v["z"][0], v["mu"] + v["sigma"] * eps)
    assert np.allclose(v["sigma"], np.exp(v["s"] / 2))
    assert np.allclose(d["mu"], d["z"][0] + v["mu"])
    assert np.allclose(d["sigma"], d["z"][0] * eps + v["sigma"] - 1 / v["sigma"])
    assert np.allclose(d["s"], d["sigma"] * v["sigma"] / 2)


@pytest.mark.parametrize("mistake, first, kw", [
    ("kl-gradient-doubled", "sigma", {}),
    ("eps-dropped", "sigma", {}),
    ("half-dropped-in-ds", "s", {}),
    ("db-as-mean", "encoder.0.b", {"batch": 2}),
])
def test_a_planted_mistake_turns_the_check_red_where_it_is(mistake, first, kw):
    result = lesson.explain(seed=0, mistake=mistake, **kw)
    assert not result["passed"] and result["first_failure"] == first
    failed = {r["name"] for r in result["backward"] + result["parameters"] if not r["passed"]}
    if mistake == "eps-dropped":
        assert "mu" not in failed and "encoder.mu.W" not in failed     # dmu is still right
    if mistake == "db-as-mean":
        assert not any(n.endswith(".W") for n in failed)               # dW is still right
    text = lesson.format_lesson(result)
    assert "PLANTED MISTAKE " + mistake in text and "FAILED" in text
    assert ops.kl_backward is lesson.ops.kl_backward and ops.dense_backward.__module__.startswith(
        "vae_np.ops")                                                 # restored afterwards


def test_a_broken_op_makes_explain_exit_1_naming_the_first_wrong_gradient(monkeypatch, capsys):
    backward = ops.gaussian_nll_backward
    monkeypatch.setattr(ops, "gaussian_nll_backward", lambda d, c: 1.5 * backward(d, c))
    assert cli.main(["explain"]) == 1
    out = capsys.readouterr().out
    assert out.rstrip().endswith("the first wrong gradient in backward order is dx~")


@pytest.mark.parametrize("argv", [["--hidden", "5", "4"], ["--hidden", "5,4"]])
def test_any_architecture_from_the_command_line(argv, capsys):
    assert cli.main(["explain", *argv, "--z-dim", "3", "--likelihood", "bernoulli"]) == 0
    text = capsys.readouterr().out
    assert "VAE(3-5-4-3, tanh, bernoulli" in text
    assert "dlogits = dnll * (sigmoid(logits) - x)" in text
    assert max(len(line) for line in text.splitlines()) <= 100      # fits a projector


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
@pytest.mark.parametrize("sigma_param", ["logvar", "softplus"])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid"])
def test_every_component_passes_the_lesson(likelihood, sigma_param, activation):
    result = lesson.explain(seed=3, batch=2, k=2, hidden=(4, 3), z_dim=2, likelihood=likelihood,
                            sigma_param=sigma_param, activation=activation)
    assert result["passed"], result["first_failure"]


def test_json(capsys):
    assert cli.main(["explain", "--json", "--k", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["k"] == 2 and np.shape(data["eps"]) == (2, 1, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(mistake="nope"), "mistake must be one of"),
    (dict(batch=0), "batch must be an integer >= 1"),
    (dict(hidden="5,4"), "hidden must be a sequence of positive ints"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lesson.explain(**kwargs)


def test_a_gradient_one_part_in_ten_thousand_off_fails(monkeypatch):
    """The lesson checks to 1e-6 as a float64 check should: a dx~ 1.0001 times the true one
    fails (a tolerance loosened to 1e-2 lets every planted factor of 2 through but not this)."""
    backward = ops.gaussian_nll_backward
    monkeypatch.setattr(ops, "gaussian_nll_backward", lambda d, c: (1 + 1e-4) * backward(d, c))
    result = lesson.explain(seed=0)
    assert not result["passed"] and result["first_failure"] == "x~"


def test_the_reported_error_is_that_of_the_printed_columns(result):
    """Where d<v> is well above the rounding floor, rel_error is at least |a - fd| / (|a| + |fd|)
    of the printed d<v> and fd values: a floor inflated to hide disagreement would show here."""
    plain = []
    for r in result["backward"]:
        a, fd = np.ravel(r["value"]), np.ravel(np.array(r["fd"], dtype=float))
        big = np.isfinite(fd) & (np.abs(fd) > 0.01)
        if big.any():
            errors = np.abs(a[big] - fd[big]) / (np.abs(a[big]) + np.abs(fd[big]))
            assert r["rel_error"] >= errors.max(), r["name"]
            plain.append(errors.max())
    assert len(plain) >= 5 and max(plain) > 0          # the comparison had something to compare


def test_every_failed_row_reads_fail_on_the_projector():
    result = lesson.explain(seed=0, mistake="kl-gradient-doubled")
    failed = [r for r in result["backward"] + result["parameters"] if not r["passed"]]
    lines = lesson.format_lesson(result).splitlines()
    assert len(failed) >= 3
    assert sum(line.endswith("  FAIL") for line in lines) == len(failed)
    assert sum(line.endswith("  ok") for line in lines) == (
        len(result["backward"]) + len(result["parameters"]) - len(failed))


def test_the_continuous_bernoulli_lesson_prints_its_own_equations():
    """Its dlogits has the normaliser's term; the Bernoulli's equation would be wrong here."""
    result = lesson.explain(seed=0, likelihood="continuous-bernoulli", batch=2)
    assert result["passed"]
    deq = {r["name"]: r["equation"] for r in result["backward"]}
    assert deq["logits"] == "dlogits = dnll * (sigmoid(logits) - x - (1/logits - 1/sinh(logits)))"
    feq = {r["name"]: r["equation"] for r in result["forward"]}
    assert feq["nll"].endswith("- ln C(logits)")


def test_a_step_that_raises_the_loss_is_not_blamed_on_a_gradient(capsys):
    """Right gradients and too large a step: exit 1 saying so (it said 'the first wrong gradient
    in backward order is None'); --lr sets the step."""
    assert cli.main(["explain", "--lr", "100"]) == 1
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last == "FAILED: the SGD step with lr 100 raised the loss (every gradient agrees): " \
                   "try a smaller --lr" and len(last) <= 100
    assert cli.main(["explain", "--lr", "0.01"]) == 0
    assert "one SGD step, lr 0.01:" in capsys.readouterr().out


def test_json_is_strict_json_with_null_for_the_coordinates_not_checked(capsys):
    """More coordinates than MAX_COORDS: the unchecked ones are null, not NaN (no JSON)."""
    assert cli.main(["explain", "--json", "--hidden", "8", "--batch", "3"]) == 0

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    data = json.loads(capsys.readouterr().out, parse_constant=refuse)
    fd = {r["name"]: np.ravel(np.array(r["fd"], dtype=float)) for r in data["backward"]}
    assert fd["a1"].size == 24 and np.isnan(fd["a1"]).sum() == 24 - lesson.MAX_COORDS


@pytest.mark.parametrize("kwargs", [dict(mistake="kl-gradient-doubled"),
                                    dict(likelihood="gaussian-learned", batch=2, k=2),
                                    dict(mistake="eps-dropped", loss_scale=1000)])
def test_the_lesson_fits_a_projector_also_when_it_fails(kwargs):
    """The planted lesson is the one a class sees: its FAIL rows were 102 columns wide, the
    mistake's line 111 and decoder.logsigma's rows 103; a loss of 1000s widens the SGD line."""
    scale = kwargs.pop("loss_scale", None)
    result = lesson.explain(seed=0, **kwargs)
    if scale:
        result["sgd_step"] = {key: value * scale if key != "lr" else value
                              for key, value in result["sgd_step"].items()}
    text = lesson.format_lesson(result)
    assert max(len(line) for line in text.splitlines()) <= 100, max(text.splitlines(), key=len)
    assert ("  FAIL" in text) == ("mistake" in kwargs)


def test_a_planted_mistake_that_changes_nothing_says_so():
    """db-as-mean divides db by the batch size: at batch 1 every gradient is right."""
    result = lesson.explain(seed=0, mistake="db-as-mean")
    assert result["passed"]
    assert lesson.format_lesson(result).endswith(
        "\n  the planted mistake changes no gradient of this model and batch")


CB_784 = dict(lr=1e-3, x_dim=784, hidden=(64,), z_dim=8, batch=8, k=2,
              likelihood="continuous-bernoulli", sigma_param="softplus")


@pytest.mark.parametrize("seed, activation", [(1, "relu"), (10, "tanh")])
def test_a_loss_that_cancels_its_terms_is_no_false_failure(seed, activation):
    """784 continuous Bernoulli pixel terms of about 1 sum to a loss of about 2, and the loss
    rounds like its terms: with the noise floor sized by |loss| both models failed the lesson (at
    dz, encoder.0.b) with correct gradients. A planted mistake still fails where it is."""
    assert lesson.explain(seed=seed, activation=activation, **CB_784)["passed"]
    planted = lesson.explain(seed=seed, activation=activation, mistake="kl-gradient-doubled",
                             **CB_784)
    assert planted["first_failure"] == "sigma"
