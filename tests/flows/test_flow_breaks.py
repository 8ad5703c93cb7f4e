"""Breaks of the flow-posterior VAE that no other test caught (adversarial review of issue 14).

- ``explain`` and ``gradcheck`` take a flow: ``explain(flow=...)`` silently built the plain model
  (it ignored every key it did not know), and neither command had --flow.
- ``elbo``'s Monte Carlo KL of a flow is averaged over sample chunks with weights count / k: a
  chunked run equals the unchunked one (keeping only the last chunk's KL, or weighting it by
  1 + 1e-3, passed every test, since the plain model's KL is the same in every chunk).
- ``pair_bytes`` counts a flow's work arrays (with them dropped, a long flow's chunks could
  exceed ``max_bytes`` and no test noticed).
"""
import json

import numpy as np
import pytest

from vae_np import VAE, cli
from vae_np.teaching import explain as lesson
from vae_np.evaluate import elbo, pair_bytes, plan_chunks


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_explain_teaches_the_flow_model_and_checks_its_names(kind):
    result = lesson.explain(flow=kind, flow_length=2, z_dim=2, k=2, batch=2)
    assert f"{kind} flow x 2" in result["model"]
    names = [row["name"] for row in result["backward"]]
    for name in ("z_0", "z_1", "logdet_1", "logdet_2", "flow", "log_q0"):
        assert name in names or "d" + name in names, name
    assert result["passed"]


def test_explain_refuses_an_argument_it_does_not_know():
    with pytest.raises(ValueError, match=r"arch accepts only .*got \['flow_lenght'\]"):
        lesson.explain(flow="planar", flow_lenght=2)


def test_explain_fails_on_a_wrong_log_determinant_gradient(monkeypatch):
    """The lesson's per-name check must see a flow bug: dlogdet doubled in the chain backward."""
    from vae_np.flows import chain as flow_chain
    original = flow_chain.chain_backward
    monkeypatch.setattr(flow_chain, "chain_backward",
                        lambda dz, dlogdet, caches: original(dz, 2 * dlogdet, caches))
    assert not lesson.explain(flow="planar", flow_length=1, z_dim=2)["passed"]


@pytest.mark.parametrize("command", [
    ["explain", "--z-dim", "2", "--json"],
    ["gradcheck", "--x-dim", "5", "--hidden", "4", "--z-dim", "2", "--batch", "3", "--json"]])
def test_explain_and_gradcheck_take_a_flow(command, capsys):
    assert cli.main(command + ["--flow", "radial", "--flow-length", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "radial flow x 2" in out["model"] and out["passed"]


def test_elbo_of_a_flow_does_not_depend_on_the_chunks():
    model = VAE(6, (5,), 3, "tanh", flow="planar", flow_length=2, seed=5)
    X = (np.random.default_rng(0).random((5, 6)) > 0.5).astype(np.uint8) * 255
    whole = elbo(model, X, k=20, seed=3)
    small = 3 * pair_bytes(model)               # 1 example and 3 of its 20 samples a pass
    assert plan_chunks(model, len(X), 20, small) == (1, 3)
    chunked = elbo(model, X, k=20, seed=3, max_bytes=small)
    np.testing.assert_allclose(chunked.per_example, whole.per_example, rtol=1e-12)
    np.testing.assert_allclose(chunked.kl, whole.kl, rtol=1e-12)


def test_pair_bytes_counts_the_flow_steps():
    """L steps of a planar flow in Z = 3 (P = 2Z + 1 = 7 raw numbers) add L (3P + 4Z + 4) = 37 L
    float64 numbers a pair, written out here."""
    plain = pair_bytes(VAE(6, (5,), 3))
    for L in (1, 10):
        assert pair_bytes(VAE(6, (5,), 3, flow="planar", flow_length=L)) - plain == 37 * L * 8


def singular_planar_model():
    """A planar flow whose one step is singular: the raw parameters are constant over examples
    (encoder.flow.W = 0) and w = 0, so u_hat = u + (m(w.u) - w.u) w / |w|^2 divides by 0.
    (This test used w = (1e-9, 0), w.u = -40, where w.u_hat rounds to -1 and 1 + tanh'(a) w.u_hat
    to 0; the chain now takes det = tanh(a)^2 + tanh'(a) softplus(w.u) > 0 there, and
    tests/flows/test_planar_float32.py trains that model.)"""
    model = VAE(4, (3,), 2, "tanh", flow="planar", flow_length=1, seed=0)
    model.params["encoder.flow.W"][:] = 0
    model.params["encoder.flow.b"][:] = [1, 0, 0, 0, 0]             # [u | w | b]: w = 0
    return model


def test_a_singular_flow_step_in_training_is_a_divergence_not_a_value_error():
    """The step's ValueError reached the user as an op's message about u_hat, not as the
    training divergence (with where it happened and what to do); the parameters are kept."""
    from vae_np import SGD, fit
    from vae_np.training.fit import TrainingDivergedError
    model = singular_planar_model()
    before = model.flat.copy()
    with pytest.raises(TrainingDivergedError, match="flow step became singular at epoch 1, step 1"):
        fit(model, np.zeros((4, 4)), SGD(lr=0.1), epochs=1, batch_size=4,
            rng=np.random.default_rng(0))
    np.testing.assert_array_equal(model.flat, before)


def test_the_trace_docstring_names_every_flow_quantity():
    """Every name a flow model's trace records beyond the plain model's is in vae_np.core.trace's
    table (z_l and logdet_l stand for z_1..z_L and logdet_1..logdet_L)."""
    import re

    from vae_np.core import trace as trace_module
    table = {name.strip() for line in trace_module.__doc__.splitlines()
             if line.startswith("    ") and not line.startswith("     ")
             for name in line.strip().split("  ")[0].split(",")}
    x = np.random.default_rng(0).random((2, 4))
    plain = set(VAE(4, (3,), 2).trace(x, k=2).values)
    flow = set(VAE(4, (3,), 2, flow="radial", flow_length=3).trace(x, k=2).values)
    extra = {re.sub(r"^(z|logdet)_[1-9]\d*$", r"\1_l", name) for name in flow - plain}
    assert extra == {"z_0", "flow", "z_l", "logdet_l", "log_q0", "log_q", "log_pz"}
    assert extra <= table, extra - table


def test_the_readme_flow_commands_make_the_run_they_evaluate_with_the_stated_model():
    """The README's flow train command wrote to runs/dynamic-mnist-<time> (no --out) while the
    next line evaluated runs/planar10, and its defaults (784-256, batch 128) were not the
    784-400-40, batch 100 of the table beside it."""
    import shlex
    from pathlib import Path

    from vae_np import cli
    from vae_np.cli.args import flatten_widths
    text = (Path(__file__).resolve().parents[2] / "docs/guide/flows.md").read_text(encoding="utf-8")
    lines = [shlex.split(line.split("  #")[0])[3:] for line in text.splitlines()
             if line.startswith("    python -m vae_np ")]
    i = next(i for i, words in enumerate(lines) if words[0] == "train" and "--flow" in words)
    train = cli.build_parser().parse_args(lines[i])
    hidden = list(flatten_widths(train.hidden) or [])
    assert (hidden, train.z_dim, train.batch_size) == ([400], 40, 100)
    assert lines[i + 1][:2] == ["evaluate", train.out]
