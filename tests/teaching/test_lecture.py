"""The one-page lecture (vae_np.teaching.lecture) is the library's step: every value, every gradient and
one SGD step equal ``VAE.trace`` and ``vae_np.SGD`` on drawn architectures (depth 0-2, tanh and
relu, Bernoulli and Gaussian, K and B from 1, float64); the page fits one page; ``vae-np
lecture`` prints it; and each classic mistake written into the page makes the comparison fail.

Tolerance: 1e-12 of the largest entry of each tensor. The page computes the library's formulas,
a few values in another order or an equivalent form (softplus as logaddexp where the library
runs a blocked loop, the Gaussian constant folded into one term), which moves them by a few
roundings: at most 6e-16 of the tensor's largest entry on 4000 drawn cases. The largest entry is
the scale because entries can cancel to 0 (dmu = sum_k dz + dkl mu). The gradients keep the
library's order of operations and come out bit for bit: with sigmoid written as e^-softplus(-l)
and the Gaussian's (x~ - x) / sd^2 divided first, dW = g^T dy, whose terms can cancel, moved by
up to 5e-14 of its largest entry, and a KL written with ln sigma^2 for 2 ln sigma by 3e-13 of a
KL of 1e-4 (the closed form cancels near mu = 0, sigma = 1). 1e-12 leaves a margin of 1000 over
the values and is far below any mistake: each break below moves a tensor by a quarter of its
largest entry or more.
"""
import ast
import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vae_np
import vae_np.teaching.exercises
from vae_np import cli
from vae_np.teaching import lecture

TOL = 1e-12
PAGE_LINES = 150
WIDTH = 100
LR = 0.1


@st.composite
def cases(draw):
    """A VAE the lecture covers, its data and its frozen noise, all float64."""
    depth = draw(st.integers(0, 2))
    kwargs = dict(x_dim=draw(st.integers(1, 6)),
                  hidden=tuple(draw(st.lists(st.integers(1, 5), min_size=depth, max_size=depth))),
                  z_dim=draw(st.integers(1, 4)),
                  activation=draw(st.sampled_from(["tanh", "relu"])),
                  likelihood=draw(st.sampled_from(["bernoulli", "gaussian"])),
                  decoder_sigma=draw(st.sampled_from([1.0, 0.5, 2.5])),
                  init_std=draw(st.sampled_from([None, 1.0])),     # default init, or larger values
                  seed=draw(st.integers(0, 1000)))
    return kwargs, draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(0, 1000))


def setup(kwargs, k, batch, data_seed):
    """(the library's model, a copy of its parameters, x, eps, the lecture's options)."""
    model = vae_np.VAE(dtype=np.float64, **kwargs)
    rng = np.random.default_rng(data_seed)
    shape = (batch, model.x_dim)
    x = rng.random(shape) if kwargs["likelihood"] == "bernoulli" else 2 * rng.standard_normal(shape)
    eps = rng.standard_normal((k, batch, model.z_dim))
    params = {name: p.copy() for name, p in model.params.items()}
    options = dict(activation=kwargs["activation"], likelihood=kwargs["likelihood"],
                   decoder_sigma=kwargs["decoder_sigma"])
    return model, params, x, eps, options


def mismatches(mine, theirs):
    """The names where ``mine`` differs from ``theirs``: another list of names (or order), a
    missing name, another shape, or an entry off by more than TOL of the tensor's largest."""
    bad = [] if list(mine) == list(theirs) else ["(names or order)"]
    for name, b in theirs.items():
        a, b = np.asarray(mine.get(name, np.nan)), np.asarray(b)
        if a.shape != b.shape or not np.max(np.abs(a - b), initial=0) <= TOL * np.max(
                np.abs(b), initial=0):
            bad.append(name)
    return bad


def lecture_vs_library(page, case):
    """The lecture module ``page`` against the library at ``case``: (wrong values, wrong
    gradients, wrong parameters after one SGD step)."""
    model, params, x, eps, options = setup(*case)
    trace = model.trace(x, k=eps.shape[0], eps=eps)
    values = page.forward(params, x, eps, **options)
    grads = page.backward(params, values, **options)
    stepped = page.sgd(params, grads, LR)
    vae_np.SGD(LR).step(model.flat, model.grad_flat)
    update = max(np.max(np.abs(stepped[n] - params[n])) for n in params)
    assert update > 1e-6 * max(np.max(np.abs(p)) for p in params.values())   # the step shows
    return (mismatches(values, trace.values), mismatches(grads, trace.grads),
            mismatches(stepped, model.params))


@settings(max_examples=80, deadline=None)
@given(cases())
def test_every_value_gradient_and_sgd_step_equals_the_library(case):
    assert lecture_vs_library(lecture, case) == ([], [], [])


def test_the_drawn_cases_cover_what_the_page_covers():
    """The strategy reaches depth 0 and 2, both activations and likelihoods, k and batch > 1."""
    seen = set()

    @settings(max_examples=80, deadline=None, database=None, derandomize=True)
    @given(cases())
    def collect(case):
        kwargs, k, batch, _ = case
        seen.update({("depth", len(kwargs["hidden"])), kwargs["activation"],
                     kwargs["likelihood"], ("k>1", k > 1), ("batch>1", batch > 1)})
    collect()
    assert seen >= {("depth", 0), ("depth", 2), "tanh", "relu", "bernoulli", "gaussian",
                    ("k>1", True), ("batch>1", True)}


# --------------------------------------------------------------------------- the page itself
SOURCE = Path(lecture.__file__).read_text()


def test_the_page_fits_a_page_and_imports_only_numpy():
    lines = SOURCE.splitlines()
    assert len(lines) <= PAGE_LINES, len(lines)
    assert max(len(line) for line in lines) <= WIDTH, max(lines, key=len)
    tree = ast.parse(SOURCE)
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names]
    assert imported == ["numpy"] and not any(isinstance(n, ast.ImportFrom)
                                             for n in ast.walk(tree))
    # no branch anywhere: the choice of activation and likelihood is a table lookup
    assert not any(isinstance(n, (ast.If, ast.IfExp, ast.Try, ast.Match)) for n in ast.walk(tree))


def test_python_m_vae_np_lecture_prints_the_page(capsys):
    assert cli.main(["lecture"]) == 0
    assert capsys.readouterr().out == SOURCE == inspect.getsource(lecture)
    proc = subprocess.run([sys.executable, "-m", "vae_np", "lecture"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == SOURCE and proc.stderr == ""


# --------------------------------------------------------------------------- mistakes caught
BREAKS = {   # name -> (a line of the page, the line with the mistake, what it must break)
    "KL gradient doubled (the erratum)": (
        "dsigma += dkl[:, None] * (v[\"sigma\"] - 1 / v[\"sigma\"])",
        "dsigma += 2 * dkl[:, None] * (v[\"sigma\"] - 1 / v[\"sigma\"])", "sigma"),
    "eps dropped from dsigma": (
        "dsigma = (dz * v[\"eps\"]).sum(axis=0)", "dsigma = dz.sum(axis=0)", "sigma"),
    "fan-out of h to the s head dropped": (
        "dh += ds @ params[\"encoder.sigma.W\"].T", "pass", "h2"),
    "fan-out of mu to the KL dropped": (
        "dmu += dkl[:, None] * v[\"mu\"]", "pass", "mu"),
    "a dW transposed": (
        "d[\"decoder.out.W\"] = gs[L].T @ dy", "d[\"decoder.out.W\"] = dy.T @ gs[L]",
        "decoder.out.W"),
    "the 1/2 of dsigma/ds dropped": (
        "ds = d[\"s\"] = dsigma * v[\"sigma\"] / 2", "ds = d[\"s\"] = dsigma * v[\"sigma\"]", "s"),
    "sigma = exp(s) in the forward pass": (
        "sigma = v[\"sigma\"] = np.exp(s / 2)", "sigma = v[\"sigma\"] = np.exp(s)", "sigma"),
    "SGD step of +lr g": (
        "theta - lr * grads[name]", "theta + lr * grads[name]", "encoder.0.W"),
}
# decoder.out.W is (4, 4): its transpose has its shape, so only the values can tell
BREAK_CASE = (dict(x_dim=4, hidden=(4, 2), z_dim=2, activation="tanh", likelihood="bernoulli",
                   decoder_sigma=1.0, init_std=None, seed=0), 2, 3, 0)


def broken(line, wrong):
    """The lecture with ``line`` replaced by ``wrong``, as a fresh module."""
    assert SOURCE.count(line) == 1, line
    page = types.ModuleType("broken_lecture")
    exec(compile(SOURCE.replace(line, wrong), "broken_lecture", "exec"), page.__dict__)
    return page


def test_the_unbroken_copy_passes():
    """The copy made by ``broken`` is the page itself when nothing is replaced."""
    assert lecture_vs_library(broken("def sgd(", "def sgd("), BREAK_CASE) == ([], [], [])


@pytest.mark.parametrize("mistake", BREAKS)
def test_a_mistake_in_the_page_fails_the_comparison(mistake):
    line, wrong, name = BREAKS[mistake]
    values, grads, stepped = lecture_vs_library(broken(line, wrong), BREAK_CASE)
    assert name in values + grads + stepped, (values, grads, stepped)


# --------------------------------------------------------------------------- who points to it
def test_explain_the_exercise_and_the_notebook_point_to_the_page(capsys, tmp_path):
    assert cli.main(["explain"]) == 0
    head = capsys.readouterr().out.split("\n\n")[0]
    assert "python -m vae_np lecture" in head, head
    stub = vae_np.teaching.exercises.write_stubs(tmp_path).read_text()
    assert "graded against vae_np.teaching.lecture" in stub and "python -m vae_np lecture" in stub
    notebook = json.loads((Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb")
                          .read_text())
    cells = [("".join(c["source"]), c["cell_type"]) for c in notebook["cells"]]
    start = next(i for i, (c, _) in enumerate(cells) if c.startswith("## 9. One training step"))
    end = next((i for i in range(start + 1, len(cells)) if cells[i][0].startswith("## ")),
               len(cells))
    assert any(kind == "markdown" and "`vae_np.teaching.lecture`" in c and "python -m vae_np lecture" in c
               and "inspect.getsource(lecture)" in c for c, kind in cells[start:end])
