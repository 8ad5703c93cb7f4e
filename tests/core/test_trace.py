"""The trace: every intermediate under its derivation name, and d loss / d <name> for each.

The gradient of every named quantity is checked on its own: the quantity is nudged by +-h where
the forward pass computes it, so that the central difference of the loss is d loss / d <name>
through everything downstream of it (``Trace(nudges)``). A test also breaks an op on purpose and
watches that check fail.
"""
import numpy as np
import pytest
from hypothesis import example, given, settings

from vae_np import VAE, Adam, fit, ops
from vae_np.testing import central_difference
from vae_np.testing.strategies import architectures, make_data

SMOOTH = ["tanh", "softplus", "sigmoid", "identity"]     # no kink within reach of the step
INPUTS = ("x", "eps")


H_REL = 1e-5          # central_difference's default step; a nudge starts at 0, so h = H_REL


def nudge_violations(model, x, eps):
    """{name: (analytic, numerical)} for every traced quantity whose d<name> disagrees with the
    central difference of the loss beyond its error bound (truncation + rounding, doubled).

    The loss rounds like the terms it sums, not like their sum: a continuous Bernoulli nll can be
    negative and cancel the KL to a loss near 0, where central_difference's rounding estimate
    (8 eps |loss| / 2h) is too small. Its ``terms`` adds mean_b(mean_k |nll| + |kl|).
    """
    trace = model.trace(x, k=eps.shape[0], eps=eps)
    terms = np.mean(np.abs(trace.values["nll"]).mean(axis=0) + np.abs(trace.values["kl"]))
    bad = {}
    for name, value in trace.values.items():
        if name in INPUTS or name == "loss":
            continue
        fd, bound = central_difference(
            lambda d, name=name: model.forward(x, eps, {name: d.reshape(np.shape(value))}).loss,
            np.zeros(np.size(value)), H_REL, terms=terms)
        analytic = np.ravel(trace.grads[name])
        if np.any(np.abs(analytic - fd) > 2 * bound + 1e-12 * np.abs(fd)):
            bad[name] = (analytic, fd)
    return bad


@settings(max_examples=40, deadline=None)
@given(architectures(activations=SMOOTH))
@example(({"x_dim": 4, "hidden": (), "z_dim": 1, "activation": "tanh",     # loss -0.008
           "likelihood": "continuous-bernoulli", "sigma_param": "logvar", "dtype": np.float64,
           "seed": 0, "decoder_mean": "identity", "init_std": None},
          {"batch": 3, "k": 1, "data_seed": 1}))
def test_every_named_gradient_equals_central_differences_of_the_loss(arch):
    kwargs, run = arch
    model = VAE(**kwargs)
    x, eps = make_data(model, run["batch"], run["k"], run["data_seed"])
    assert nudge_violations(model, x, eps) == {}


def test_the_nudge_check_fails_on_a_broken_op(monkeypatch):
    """Break the KL gradient (the doubled expression): the check must point at mu and sigma."""
    model = VAE(3, (4,), 2, "tanh", "gaussian", dtype=np.float64, seed=1)
    x, eps = make_data(model, 2, 2, 0)
    assert nudge_violations(model, x, eps) == {}
    kl_backward = ops.kl_backward
    monkeypatch.setattr(ops, "kl_backward", lambda d, c: tuple(2 * g for g in kl_backward(d, c)))
    bad = nudge_violations(model, x, eps)
    assert {"mu", "sigma", "s", "h1", "a1"} <= set(bad) and "z" not in bad and "kl" not in bad


@pytest.mark.parametrize("likelihood, decoder_mean, outputs", [
    ("bernoulli", "identity", ["logits"]),
    ("gaussian", "identity", ["x~"]),
    ("gaussian", "sigmoid", ["m", "x~"]),
    ("gaussian-learned", "identity", ["x~", "r"]),
])
def test_names_follow_the_derivation(likelihood, decoder_mean, outputs):
    model = VAE(4, (3, 2), 2, "relu", likelihood, decoder_mean=decoder_mean)
    trace = model.trace(np.full((5, 4), 0.5), k=3)
    assert list(trace.values) == ["x", "a1", "h1", "a2", "h2", "mu", "s", "sigma", "eps", "z",
                                  "kl", "c1", "g1", "c2", "g2", *outputs, "nll", "loss"]
    shapes = {n: np.shape(v) for n, v in trace.values.items()}
    assert shapes["z"] == shapes["eps"] == (3, 5, 2) and shapes["kl"] == (5,)
    assert shapes["g2"] == (15, 3) and shapes[outputs[0]] == (3, 5, 4) and shapes["nll"] == (3, 5)
    assert set(trace.grads) == (set(trace.values) - {"x", "eps"}) | set(model.params)
    for name in model.params:       # parameter gradients are the model's flat gradient views
        assert np.shares_memory(trace.grads[name], model.grad_flat)
    assert set(model.grad_equations()) == set(trace.grads)        # explain can name every one


def test_trace_matches_loss_and_grads_and_the_public_terms():
    model = VAE(6, (5,), 3, "tanh", "bernoulli", seed=4)
    x, eps = make_data(model, 4, 2, 1)
    trace = model.trace(x, k=2, eps=eps)
    grads = {n: g.copy() for n, g in trace.grads.items() if n in model.params}
    loss, again = model.loss_and_grads(x, k=2, eps=eps)
    assert loss == trace.loss and all(np.array_equal(grads[n], again[n]) for n in grads)
    recon, kl = model.elbo_terms(x, k=2, eps=eps)
    assert np.array_equal(recon, trace.values["nll"].mean(axis=0))
    assert np.array_equal(kl, trace.values["kl"])


def test_a_zero_nudge_changes_nothing_and_a_nudge_reaches_every_later_step():
    model = VAE(3, (4,), 2, "tanh", "gaussian", seed=2)
    x, eps = make_data(model, 2, 1, 0)
    plain = model.forward(x, eps)
    zero = model.forward(x, eps, {"z": np.zeros((1, 2, 2))})
    assert all(np.array_equal(plain.values[n], zero.values[n]) for n in plain.values)
    moved = model.forward(x, eps, {"z": np.full((1, 2, 2), 0.1)})
    assert np.allclose(moved.values["z"], plain.values["z"] + 0.1)
    assert not np.allclose(moved.values["x~"], plain.values["x~"])      # downstream moved
    assert np.array_equal(moved.values["mu"], plain.values["mu"])       # upstream did not
    assert np.array_equal(moved.values["kl"], plain.values["kl"])       # nor the other branch


def test_fit_trains_through_the_public_forward_and_backward(monkeypatch):
    calls = []
    forward, backward = VAE.forward, VAE.backward
    monkeypatch.setattr(VAE, "forward", lambda self, *a, **k: calls.append("f") or forward(
        self, *a, **k))
    monkeypatch.setattr(VAE, "backward", lambda self, t: calls.append("b") or backward(self, t))
    model = VAE(5, (3,), 2, dtype=np.float32)
    fit(model, np.random.default_rng(0).random((20, 5)), Adam(), epochs=1, batch_size=10,
        threads=1)      # two threads run each shard's forward and backward (test_threads.py)
    assert calls == ["f", "b", "f", "b"]


def test_forward_refuses_wrong_shapes():
    model = VAE(3, (2,), 1)
    with pytest.raises(ValueError, match=r"forward needs x \(B, 3\) and eps \(K, B, 1\)"):
        model.forward(np.zeros((2, 3)), np.zeros((2, 1)))


def test_a_users_own_activation_plugs_into_the_model():
    """VAE(activation=(forward, backward)) uses the pair; a wrong backward is caught."""
    def cube_forward(a):
        return a ** 3, a

    def cube_backward(dh, a):
        return dh * 3 * a * a
    model = VAE(3, (4,), 2, (cube_forward, cube_backward), "gaussian", seed=0, init_std=0.5)
    x, eps = make_data(model, 2, 1, 3)
    assert nudge_violations(model, x, eps) == {}
    assert "h1 = cube(a1)" in model.trace(x, eps=eps).equations.values()
    wrong = VAE(3, (4,), 2, (cube_forward, lambda dh, a: dh * a * a), "gaussian", seed=0,
                init_std=0.5)
    assert "a1" in nudge_violations(wrong, x, eps)
    with pytest.raises(ValueError, match="activation must be one of"):
        VAE(3, (4,), 2, (cube_forward,))


def test_a_nudge_must_name_a_quantity_and_keep_its_shape():
    """A misspelt name nudged nothing and a wrongly shaped nudge silently broadcast kl to (5, 2):
    both gave a wrong central difference with no error."""
    model = VAE(3, (2,), 1, "tanh", "gaussian", seed=0)
    x, eps = make_data(model, 2, 1, 0)
    with pytest.raises(ValueError, match=r"nudges must name quantities of the trace .*'sigmaa'"):
        model.forward(x, eps, {"sigmaa": np.ones((2, 1))})
    with pytest.raises(ValueError, match=r"the nudge of 'kl' must have the shape of kl, \(2,\)"):
        model.forward(x, eps, {"kl": np.ones((5, 2))})
    plain = model.forward(x, eps)
    assert model.forward(x, eps, {"kl": 0.5}).loss == pytest.approx(plain.loss + 0.5, abs=1e-12)
