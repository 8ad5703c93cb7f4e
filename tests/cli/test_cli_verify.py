"""The ``verify`` and ``explain`` commands."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from vae_np.cli import main
from vae_np.derivations import CLAIMS, make_claim


def test_verify_one_claim(capsys):
    assert main(["verify", "--claim", "kl_integrals"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["claim", "error", "tolerance", "unit", "status"]
    assert lines[1].split() == ["lhs", "rel", "rhs"]            # each record's second line
    for name in ("kl_integrals.log_var", "kl_integrals.second_moment", "kl_integrals.standardized"):
        assert name in out
    assert "3 of 3 checks passed (seed 0" in out


def test_verify_json_to_stdout(capsys):
    assert main(["verify", "--claim", "ml_kl", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and result["seed"] == 3 and result["checks"] == 2
    names = [c["name"] for c in result["claims"]]
    assert names == ["ml_kl.same_optimum", "ml_kl.entropy_gap"]
    for c in result["claims"]:
        assert {"statement", "equation", "lhs", "rhs", "error", "tolerance", "tolerance_reason",
                "passed", "details"} <= set(c)


def test_verify_json_and_markdown_files(tmp_path, capsys):
    js, md = tmp_path / "out.json", tmp_path / "out.md"
    code = main(["verify", "--claim", "kl_gradient", "--claim", "elbo_mixture",
                 "--json", str(js), "--markdown", str(md)])
    assert code == 0
    out = capsys.readouterr().out
    assert "kl_gradient.doubled_expression" in out and "notes:" in out     # table still printed
    result = json.loads(js.read_text())
    assert [c["name"].split(".")[0] for c in result["claims"]][:4] == ["kl_gradient"] * 4
    text = md.read_text()
    assert "| claim | equation | lhs | rel | rhs | error | tolerance | unit | status |" in text
    assert "2(1/sigma - sigma) grad sigma - 2 mu grad mu" in text
    assert "ln(q_k / p(k\\|x)) |" in text          # pipes escaped inside the table
    assert "Tolerance:" in text


def test_unknown_claim_is_a_one_line_error(capsys):
    assert main(["verify", "--claim", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown claim 'nope'" in err and "kl_integrals" in err and "linear_vae" in err


def test_verify_one_record(capsys):
    assert main(["verify", "--claim", "kl_gradient.doubled_expression"]) == 0
    out = capsys.readouterr().out
    assert "kl_gradient.doubled_expression" in out and "kl_gradient.library " not in out
    assert main(["verify", "--claim", "kl_gradient.typo"]) == 2
    assert "kl_gradient.library" in capsys.readouterr().err


def test_negative_seed_is_an_error(capsys):
    assert main(["verify", "--claim", "ml_kl", "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err


def test_a_failing_claim_exits_1(monkeypatch, capsys):
    def always_fails(seed=0):
        """Claim: 1 = 2."""
        return [make_claim("always_fails.one", "one is two", "1 = 2", 1.0, 2.0, 1.0, 0.0, "exact")]

    monkeypatch.setitem(CLAIMS, "always_fails", always_fails)
    assert main(["verify", "--claim", "always_fails"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "FAILED: always_fails.one" in out


def test_explain_text_and_json(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "z = mu + sigma * eps" in out and "PASSED" in out
    assert main(["explain", "--json", "--seed", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and result["first_failure"] is None


def test_module_entry_point_runs_verify():
    proc = subprocess.run([sys.executable, "-m", "vae_np", "verify", "--claim", "kl_closed_form"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "kl_closed_form.reparameterized" in proc.stdout


@pytest.mark.slow
def test_full_verify_passes(capsys):
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    for name in CLAIMS:
        assert f"\n{name}." in out
    assert "FAIL" not in out


@pytest.mark.parametrize("wide", [False, True])
def test_table_shows_the_relation_and_the_unit(wide, capsys):
    """--wide: one row per record; default: the claim's row, then its sides on the next line."""
    assert main(["verify", "--claim", "elbo_mixture.bound", "--claim", "estimators.sin",
                 "--claim", "kl_gradient.library"] + ["--wide"] * wide) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {}
    for i, line in enumerate(lines):
        if line.startswith(("elbo_mixture.", "estimators.", "kl_gradient.")):
            rows[line.split()[0]] = (line.split() if wide else
                                     [line.split()[0]] + lines[i + 1].split() + line.split()[1:])
    assert rows["elbo_mixture.bound"][2] == "<=" and rows["elbo_mixture.bound"][-2] == "nats"
    assert rows["estimators.sin.score"][-2] == "SE"
    assert rows["kl_gradient.library"][2] == "ratio="


def test_kl_gradient_json_details_hold_the_values(capsys):
    assert main(["verify", "--claim", "kl_gradient.library", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["claims"][0]
    details = record["details"]
    mu = np.array(details["mu"]).ravel()
    sigma = np.array(details["sigma"]).ravel()
    analytic = np.array(details["analytic"])
    # the analytic values are (mu, sigma - 1/sigma) at the listed mu and sigma
    np.testing.assert_allclose(analytic, np.concatenate([mu, sigma - 1 / sigma]), rtol=1e-14)
    fd = np.array(details["finite_difference"])
    assert np.all(np.abs(analytic - fd) <= np.array(details["finite_difference_bound"]))
    assert record["relation"] == "ratio" and record["unit"] == "abs"


def test_verify_draws_the_claim_figures(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["verify", "--claim", "kl_closed_form", "--figures", str(out)]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["decoder_sigma.png", "elbo_gap.png", "estimators.png", "kl_curve.png",
                     "kl_monte_carlo.png"]
    assert all((out / n).stat().st_size > 10_000 for n in names)
    assert "figures: " in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main(["verify", "--claim", "kl_closed_form", "--figures",
                 str(tmp_path / "file")]) == 2
    assert "--figures" in capsys.readouterr().err


# --------------------------------------------------------------------------- 100 columns
WIDE_CLAIMS = ["posterior_collapse", "flows", "kl_gradient", "loss_scaling", "continuous_bernoulli"]
"""Claims with the widest rows of the full table (5-tuples, 36-character names) and the longest
notes: the one-row table was 189 columns wide."""


def test_the_default_table_fits_100_columns_and_shows_every_side(capsys):
    argv = ["verify"] + [a for name in WIDE_CLAIMS for a in ("--claim", name)]
    assert main(argv + ["--json"]) == 0
    claims = json.loads(capsys.readouterr().out)["claims"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100, max(out.splitlines(), key=len)
    lines = out.splitlines()
    for c in claims:             # each side as printed, compared with the JSON's numbers
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [c["name"]])
        assert lines[at].split()[-1] == c["status"]
        sides = lines[at + 1]
        if lines[at + 2].startswith(" "):       # rhs on a third line, under lhs
            sides += " " + lines[at + 2]
        numbers = [float(t) for t in re.findall(r"-?\d[\d.e+-]*", sides)]
        expected = np.concatenate([np.ravel(c["lhs"]), np.ravel(c["rhs"])])
        # 10 significant digits for a scalar side, 6 for a tuple's entries (printed rounding)
        np.testing.assert_allclose(numbers, expected, rtol=1e-5, atol=1e-300, err_msg=c["name"])
    notes = out[out.index("notes:"):]
    for c in claims:             # every note in full, wrapped: the same words in the same order
        if c["details"].get("note"):
            assert " ".join(c["details"]["note"].split()) in " ".join(notes.split())


def test_wide_restores_one_row_per_record(capsys):
    assert main(["verify", "--claim", "posterior_collapse", "--wide"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("posterior_collapse.")]
    assert len(rows) == 5 and all(line.split()[-1] == "pass" for line in rows)
    assert max(len(line) for line in rows) > 100          # what the default now splits


def test_a_long_failure_summary_wraps_within_100_columns(monkeypatch, capsys):
    def many_fail(seed=0):
        """Claim: 1 = 2, twelve times."""
        return [make_claim(f"many_fail.a_rather_long_record_name_{i}", "one is two", "1 = 2",
                           1.0, 2.0, 1.0, 0.0, "exact") for i in range(12)]

    monkeypatch.setitem(CLAIMS, "many_fail", many_fail)
    assert main(["verify", "--claim", "many_fail"]) == 1
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    summary = " ".join(out[out.index("0 of 12 checks passed"):].split())
    assert summary.endswith("FAILED: " + ", ".join(
        f"many_fail.a_rather_long_record_name_{i}" for i in range(12)))
