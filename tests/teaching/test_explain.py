"""vae_np.teaching.explain: the backprop lesson is the model's own trace, checked quantity by quantity."""
import decimal
import json
import re

import numpy as np
import pytest

from vae_np import cli, ops
from vae_np.teaching import explain as lesson

LESSON_FORWARD = ["x", "a1", "h1", "mu", "s", "sigma", "eps", "z", "kl", "c1", "g1", "x~", "nll",
                  "loss"]
LESSON_BACKWARD = ["nll", "kl", "x~", "g1", "c1", "z", "mu", "sigma", "s", "h1", "a1"]
"""The backward walk of docs/design.md: the objective (dnll, dkl), the likelihood, the decoder
from its last layer down, the posterior (dmu, dsigma together, then ds), the encoder."""
LESSON_PARAMETERS = ["decoder.out.W", "decoder.out.b", "decoder.0.W", "decoder.0.b",
                     "encoder.mu.W", "encoder.mu.b", "encoder.sigma.W", "encoder.sigma.b",
                     "encoder.0.W", "encoder.0.b"]


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
    assert [r["name"] for r in result["backward"]] == LESSON_BACKWARD
    assert [r["name"] for r in result["parameters"]] == LESSON_PARAMETERS
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
    ("kl-gradient-doubled", "mu", {}),         # dmu and dsigma both wrong; dmu is computed first
    ("eps-dropped", "sigma", {}),
    ("half-dropped-in-ds", "s", {}),
    ("db-as-mean", "decoder.out.b", {"batch": 2}),     # every db wrong: the decoder's come first
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
    assert planted["first_failure"] == "mu"


# --------------------------------------------------------------------------- backward order
def _wrong_biases(monkeypatch, wrong_layers):
    """Replace vae_np.ops.dense_backward by one that records the order of its calls (each call is
    one layer, known by its dW's shape (n_in, n_out)) and adds 0.5 to db for the layers whose
    shape is in ``wrong_layers``. Returns the list of recorded shapes."""
    dense_backward, calls = ops.dense_backward, []

    def recording(dy, cache, **kw):
        dx, dW, db = dense_backward(dy, cache, **kw)
        calls.append(dW.shape)
        if dW.shape in wrong_layers:
            db += 0.5                   # in place: db is the model's own gradient view
        return dx, dW, db
    monkeypatch.setattr(ops, "dense_backward", recording)
    return calls


def test_a_wrong_decoder_bias_is_named_first_in_backward_order(monkeypatch, capsys):
    """Wrong db in decoder.0 and in encoder.0 (the first bias of the parameter list): the
    message named encoder.0.b 'the first wrong gradient in backward order' although the backward
    pass computes decoder.0.b first. The order claimed is the one observed here: the calls of
    dense_backward, one per layer, as the backward pass makes them. Model 5-4-2 (hidden 4, z 2)
    so that decoder.0 (dW 2x4) and encoder.0 (dW 5x4) are told apart by their shapes."""
    decoder_0, encoder_0 = (2, 4), (5, 4)
    calls = _wrong_biases(monkeypatch, {decoder_0, encoder_0})
    assert cli.main(["explain", "--x-dim", "5", "--hidden", "4", "--z-dim", "2"]) == 1
    out = capsys.readouterr().out
    assert calls.index(decoder_0) < calls.index(encoder_0)     # the claim's truth, observed
    assert out.rstrip().endswith("the first wrong gradient in backward order is decoder.0.b")
    failed = [line.split()[0] for line in out.splitlines() if line.endswith("  FAIL")]
    assert failed == ["decoder.0.b", "encoder.0.b"]            # listed in that order too


def test_the_parameters_are_listed_in_the_order_the_backward_pass_computes_them(monkeypatch,
                                                                              capsys):
    """The PARAMETERS rows follow the observed order of the layers' backward calls: decoder.out
    (dW 4x6), decoder.0 (3x4), the two heads (4x3), encoder.0 (6x4)."""
    calls = _wrong_biases(monkeypatch, set())
    assert cli.main(["explain", "--x-dim", "6", "--hidden", "4", "--z-dim", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("PARAMETERS"))
    names = [line.split()[0] for line in lines[at + 1:at + 11]]
    layers = {(4, 6): "decoder.out", (3, 4): "decoder.0", (4, 3): "encoder.head",
              (6, 4): "encoder.0"}
    observed = [layers[shape] for shape in calls]
    assert observed == ["decoder.out", "decoder.0", "encoder.head", "encoder.head", "encoder.0"]
    printed = [n.rsplit(".", 1)[0].replace("encoder.mu", "encoder.head")
               .replace("encoder.sigma", "encoder.head") for n in names[::2]]
    assert printed == observed and all(n.endswith(".W") for n in names[::2])
    assert [n[:-2] for n in names[::2]] == [n[:-2] for n in names[1::2]]    # W, then b


# --------------------------------------------------------------------------- printed digits
_NUMBER = r"-?\d[\d.e+-]*"
_VALUE = re.compile(rf"(\[{_NUMBER}(?:, {_NUMBER})*\]|{_NUMBER}\.\.{_NUMBER}, mean {_NUMBER}"
                    rf"|mean {_NUMBER})")


def _printed_value(text, section, row):
    """The value text printed in the ``section`` (FORWARD, BACKWARD) row that starts with ``row``
    (or on the continuation line below it, where a long equation pushes it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section))
    at = next(i for i in range(start + 1, len(lines)) if lines[i].split()[:1] == [row])
    return (_VALUE.search(lines[at]) or _VALUE.search(lines[at + 1])).group(1)


def _within_printed_digits(token, value):
    """|token - value| <= half a unit in the token's last printed digit (a rounded number)."""
    exponent = decimal.Decimal(token).as_tuple().exponent
    return abs(float(token) - value) <= 0.5 * 10.0 ** exponent * (1 + 1e-9)


def test_printed_means_carry_three_significant_digits(capsys):
    """A row too long for its column was cut at 26 characters, which printed means of -0.0136
    and 0.0073 as "mean -0.0" and "mean 0.0". Every printed number now rounds the true one
    (recomputed here from the JSON values with NumPy): a mean to 3 significant digits, list
    entries and the range's ends to the digits they show."""
    argv = ["explain", "--hidden", "5", "4", "--batch", "3"]
    assert cli.main(argv + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    rows = [(r["name"], r["value"], "FORWARD", r["name"]) for r in result["forward"]]
    rows += [(r["name"], r["value"], "BACKWARD", "d" + r["name"]) for r in result["backward"]]
    checked_means = 0
    for name, value, section, row in rows:
        printed = _printed_value(text, section, row)
        a = np.ravel(np.asarray(value, dtype=float))
        if printed.startswith("["):
            tokens = printed.strip("[]").split(", ")
            assert all(_within_printed_digits(t, v) for t, v in zip(tokens, a)), (name, printed)
            continue
        mean = float(printed.split("mean ")[1])
        assert abs(mean - a.mean()) <= 0.5 * 10.0 ** (np.floor(np.log10(abs(a.mean()))) - 2) * (
            1 + 1e-9), (name, printed, a.mean())
        checked_means += 1
        if ".." in printed:
            low, high = printed.split(",")[0].split("..")
            assert _within_printed_digits(low, a.min()) and _within_printed_digits(high, a.max())
    assert checked_means >= 10            # most rows of this model print a range and a mean


# --------------------------------------------------------------------------- --flow alone
@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_flow_without_a_length_takes_the_documented_default(kind, capsys):
    """explain --flow KIND alone stopped with "flow_length must be an integer >= 0 ... got
    None"; it now runs the default L = 2 that -h documents: z_0, z_1, z_2, no z_3."""
    with pytest.raises(SystemExit):
        cli.main(["explain", "-h"])
    assert "(with --flow; default 2)" in " ".join(capsys.readouterr().out.split())
    assert cli.main(["explain", "--flow", kind]) == 0
    out = capsys.readouterr().out
    assert f"{kind} flow x 2" in out
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"z_0", "z_1", "z_2", "logdet_2", "dz_2"} <= names and "z_3" not in names
    assert cli.main(["explain", "--flow", kind, "--flow-length", "3"]) == 0     # still settable
    assert f"{kind} flow x 3" in capsys.readouterr().out
