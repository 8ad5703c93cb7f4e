"""vae_np.explain: the backprop lesson computes the model's own gradients, step by step."""
import json

import numpy as np
import pytest

from vae_np import explain as lesson
from vae_np import ops


@pytest.fixture(scope="module")
def result():
    return lesson.explain(seed=0)


def test_lesson_passes(result):
    assert result["passed"]
    assert all(r["passed"] for r in result["backward"])
    assert max(r["rel_error"] for r in result["backward"]) < lesson.FD_TOL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_by_step_gradients_equal_loss_and_grads(seed):
    result = lesson.explain(seed=seed)
    model = lesson.build_model(seed)
    loss, grads = model.loss_and_grads(lesson.X, k=1, eps=lesson.EPS_FIXED)
    rows = {r["name"]: np.asarray(r["value"]) for r in result["backward"]}
    for short, long in lesson.PARAM_NAMES.items():
        assert np.array_equal(rows["d" + short], grads[long]), short     # the same numbers
    assert result["model_check"]["equal"]
    assert result["model_check"]["loss_model"] == loss


def test_quantities_in_order_with_their_equations(result):
    forward = [r["name"] for r in result["forward"]]
    assert forward == ["a1", "h", "mu", "s", "sigma", "z", "kl", "a2", "g", "xt", "nll", "loss"]
    backward = [r["name"] for r in result["backward"]]
    for earlier, later in [("dxt", "dz"), ("dz", "dmu"), ("dmu", "dsigma"), ("dsigma", "ds"),
                           ("ds", "dh"), ("dh", "dW1")]:
        assert backward.index(earlier) < backward.index(later)
    equations = {r["name"]: r["equation"] for r in result["forward"] + result["backward"]}
    assert equations["z"].startswith("z = mu + sigma * eps")
    assert equations["dmu"].startswith("dmu = dz + dkl * mu")
    assert equations["dsigma"].startswith("dsigma = dz * eps + dkl * (sigma - 1/sigma)")


def test_the_derivation_numbers(result):
    v = {r["name"]: np.asarray(r["value"]) for r in result["forward"] + result["backward"]}
    eps = np.asarray(result["eps"])
    assert np.allclose(v["z"], v["mu"] + v["sigma"] * eps)
    assert np.allclose(v["sigma"], np.exp(v["s"] / 2))
    # batch 1, k 1: dkl = 1, so dmu = dz + mu and dsigma = dz eps + sigma - 1/sigma
    assert np.allclose(v["dmu"], v["dz"] + v["mu"])
    assert np.allclose(v["dsigma"], v["dz"] * eps + v["sigma"] - 1 / v["sigma"])
    assert np.allclose(v["ds"], v["dsigma"] * v["sigma"] / 2)


def test_sgd_step_lowers_the_loss(result):
    s = result["sgd_step"]
    assert s["loss_after"] < s["loss_before"]
    assert s["actual_change"] == pytest.approx(s["loss_after"] - s["loss_before"])
    assert s["first_order_change"] < 0


def test_json_and_text(result):
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    text = lesson.format_lesson(result)
    for piece in ("FORWARD", "BACKWARD", "z = mu + sigma * eps", "dmu = dz + dkl * mu",
                  "(identical)", "one SGD step", "PASSED"):
        assert piece in text


def test_a_wrong_chain_rule_factor_is_caught(monkeypatch):
    # drop the 1/2 of dsigma/ds = sigma/2: the FD check of ds (and everything upstream) must fail,
    # and the step-by-step gradients no longer equal the model's
    monkeypatch.setattr(lesson.ops, "sigma_logvar_backward", lambda dsigma, sigma: dsigma * sigma)
    result = lesson.explain(seed=0)
    failed = {r["name"] for r in result["backward"] if not r["passed"]}
    assert "ds" in failed and "dWs" in failed and "dbs" in failed
    assert "dmu" not in failed and "dz" not in failed
    assert not result["model_check"]["equal"]
    assert not result["passed"]
    assert "FAILED" in lesson.format_lesson(result)


def test_inputs_of_the_lesson_are_not_mutated():
    x, eps = lesson.X.copy(), lesson.EPS_FIXED.copy()
    lesson.explain(seed=0)
    assert np.array_equal(x, lesson.X) and np.array_equal(eps, lesson.EPS_FIXED)
    assert ops.sigma_logvar_backward(np.ones(1), np.ones(1))[0] == 0.5   # not patched here
