"""Walk the tables gathered by tests/cli/entry_points.py: every public entry point rejects every bad
value tried on it with a clear error, and every command-line option with one line on stderr and
status 2.

Library: the call raises the row's exception type (ValueError, or FileNotFoundError for a
missing file), not a TypeError / IndexError / AttributeError escaping from NumPy, and the message
contains the row's word (the argument's name; for a file's content, the file).

Command line: ``vae_np.cli.main(argv)`` in-process (argparse's exits caught), plus a few runs of
``python -m vae_np`` as a subprocess to show the real entry point behaves the same: exit status
2, exactly one non-empty line on stderr, no "Traceback".
"""
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import entry_points
from entry_points import CASES, CLI_CASES
from robustness_doc import markdown
from vae_np import cli, data, ops
from vae_np.derivations import score_reparam as estimators
from vae_np import gradcheck
from vae_np.core.model import VAE

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "robustness.md"
NUMPY_LEAKS = (TypeError, IndexError, AttributeError, KeyError, ZeroDivisionError)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh directory; the data cache points into it and the MNIST mirrors at a closed port,
    so no case can see a real data set or reach the network."""
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_NP_MNIST_MIRRORS", entry_points.CLOSED_PORT)
    return tmp_path


def _case_id(case):
    return f"{case.entry}-{case.kind}-{case.what}"[:90]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_value_is_rejected_clearly(case, sandbox):
    with pytest.raises(Exception) as info:
        case.call(sandbox)
    exc = info.value
    assert isinstance(exc, case.expect) and not isinstance(exc, NUMPY_LEAKS), (
        f"{case.entry} with {case.what}: {type(exc).__name__}: {exc}")
    assert case.word in str(exc), (case.word, str(exc))


def test_table_rows_are_well_formed():
    assert len({_case_id(c) for c in CASES}) == len(CASES), "duplicate rows"
    for c in CASES:
        assert c.kind in entry_points.KINDS, c
        assert c.expect in (ValueError, FileNotFoundError), c
    for c in CLI_CASES:
        assert c.kind in entry_points.KINDS, c


# --------------------------------------------------------------------------- coverage of the table
def _public_functions(module, suffixes=None):
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = set()
    for n in names:
        obj = getattr(module, n)
        if inspect.isfunction(obj) and (suffixes is None or n.endswith(suffixes)):
            out.add(n)
    return out


# Public callables with nothing a caller could pass wrong, or outside this table by design.
NOT_IN_TABLE = {
    "ops.relu_forward", "ops.leaky_relu_forward", "ops.tanh_forward", "ops.sigmoid_forward",
    "ops.softplus_forward", "ops.identity_forward", "ops.identity_backward",
    "ops.sigma_logvar_forward",          # elementwise, one input: NaN in, NaN out is the maths
    "VAE.grad_equations",                # takes nothing
    "VAE.replica",                       # takes nothing
}


def test_every_public_entry_point_has_rows():
    entries = {c.entry for c in CASES}
    expected = {"VAE(...)", "fit", "SGD(...)", "Momentum(...)", "Adagrad(...)", "Adam(...)"}
    expected |= {f"VAE.{n}" for n, _ in inspect.getmembers(VAE, inspect.isfunction)
                 if not n.startswith("_") and n != "config"}            # config() takes nothing
    expected |= {f"{o}.step" for o in ("SGD", "Momentum", "Adagrad", "Adam")}
    expected |= {f"{o}.load_state_dict" for o in ("SGD", "Momentum", "Adagrad", "Adam")}
    expected |= {"gradcheck.check_gradients", "gradcheck.check_model"}
    expected |= {f"estimators.{n}" for n in _public_functions(estimators, ("_gradient",))}
    expected |= {"derivations.run_claims", "derivations.check_claim_names",
                 "explain.explain", "explain.build_model"}
    expected |= {f"data.{n}" for n in ("load_dataset", "make_sprites", "read_idx", "load_mnist",
                                       "load_binarized_mnist", "load_frey", "read_frey",
                                       "download_file", "write_idx")}
    expected |= {f"ops.{n}" for n in _public_functions(ops, ("_forward", "_backward"))}
    expected -= NOT_IN_TABLE
    assert {"VAE.loss_and_grads", "VAE.sample", "VAE.reconstruct"} <= expected
    missing = expected - entries
    assert not missing, f"entry points without rows in tests/*/table_*.py: {sorted(missing)}"
    assert gradcheck.check_model and data.load_dataset          # the modules walked above


# --------------------------------------------------------------------------- the command line
def _cli_id(case):
    return " ".join(case.argv)[:80]


def _argv(case, tmp):
    return [a.replace("{tmp}", str(tmp)) for a in case.argv]


@pytest.mark.parametrize("case", CLI_CASES, ids=[_cli_id(c) for c in CLI_CASES])
def test_cli_bad_option_one_line_status_2(case, sandbox, capsys):
    try:
        status = cli.main(_argv(case, sandbox))
    except SystemExit as exc:           # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, (status, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert case.word in lines[0], (case.word, lines[0])
    assert lines[0].startswith("vae-np"), lines[0]


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}

SUBPROCESS_ARGV = [
    (["gradcheck", "--x-dim", "ten"], "--x-dim"),                  # argparse: a type error
    (["train", "--dataset", "cifar"], "--dataset"),                # argparse: a choice
    (["verify", "--claim", "nope"], "nope"),                       # the library's ValueError
    (["gradcheck", "--x-dim", "100000000", "--hidden", "100000000"], "memory"),  # MemoryError
]


@pytest.mark.parametrize("argv, word", SUBPROCESS_ARGV, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_python_m_vae_np_bad_option(argv, word, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vae_np", *argv], capture_output=True, text=True,
                          timeout=120, env={**ENV, "VAE_NP_DATA": str(tmp_path)}, cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and word in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# --------------------------------------------------------------------------- the document
def test_robustness_document_is_generated_from_the_table():
    expected = markdown()
    assert DOC.is_file(), "run: python tests/cli/robustness_doc.py > docs/robustness.md"
    assert DOC.read_text() == expected, (
        "docs/robustness.md is out of date; run: python tests/cli/robustness_doc.py > "
        "docs/robustness.md")


def test_numpy_leaks_are_not_value_errors():
    """The check above is meaningful: NumPy's AxisError is both a ValueError and an IndexError,
    and would be refused."""
    with pytest.raises(Exception) as info:
        np.sum(np.zeros(2), axis=3)
    assert isinstance(info.value, ValueError) and isinstance(info.value, NUMPY_LEAKS)
