"""Every command's default output fits 100 columns: each subcommand of ``python -m vae_np``, its
``-h`` help (argparse wraps to $COLUMNS: checked with COLUMNS unset, which gives 80 on a pipe, and
with COLUMNS=100), and what it prints on stdout and stderr when it runs, on small, fast settings.

Measured before this file: ``verify`` printed 189 columns, ``exercises check`` 260, ``explain
--flow planar --flow-length 2`` 102, ``flows`` 342 (the Markdown paragraph above its table),
``train --model vqvae`` 143 (its epoch line), ``fit-prior`` 141, ``evaluate`` of a VQ-VAE run 105,
and a failing ``gradcheck`` row's explanation 143. Options such as ``--wide`` may restore the
long lines; they are not the default.
"""
import json
import os
import subprocess
import sys

import pytest

from vae_np import cli, ops

WIDTH = 100
COMMANDS = ["gradcheck", "train", "evaluate", "sample", "reconstruct", "verify", "explain",
            "lecture", "exercises", "flows", "fit-prior"]
HELP = [[], *([c] for c in COMMANDS), ["exercises", "init"], ["exercises", "check"]]


def assert_fits(text, what):
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not wide, f"{what}: {len(wide)} lines over {WIDTH} columns, e.g. ({len(wide[0])}) " \
                     f"{wide[0]!r}"


def run(capsys, argv, status=0):
    """cli.main(argv) in this process; its stdout and stderr together, after checking status."""
    assert cli.main(argv) == status, capsys.readouterr()
    captured = capsys.readouterr()
    return captured.out + captured.err


# --------------------------------------------------------------------------- help
def test_the_command_list_is_complete(capsys):
    """Every subcommand `vae-np -h` lists is in COMMANDS (so a new one is width-checked too)."""
    with pytest.raises(SystemExit):
        cli.main(["-h"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()
              if line.startswith("    ") and not line.startswith("     ")]
    assert listed == COMMANDS


@pytest.mark.parametrize("argv", HELP, ids=lambda argv: " ".join(argv) or "vae-np")
def test_help_fits_at_100_columns(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "-h"])
    assert exit_.value.code == 0
    assert_fits(capsys.readouterr().out, " ".join(argv) + " -h")


def test_help_fits_with_columns_unset():
    """One Python process prints every help with COLUMNS removed and stdout on a pipe, as in
    `python -m vae_np train -h | less`: argparse then wraps to its 80-column fallback."""
    code = ("import sys\nfrom vae_np.cli import main\n"
            f"for argv in {HELP!r}:\n"
            "    try:\n        main([*argv, '-h'])\n    except SystemExit:\n        pass\n")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.count("usage: vae-np") == len(HELP)
    assert_fits(proc.stdout, "help with COLUMNS unset")


# --------------------------------------------------------------------------- the lesson, verify
@pytest.mark.parametrize("argv", [
    [], ["--flow", "planar"], ["--flow", "radial", "--flow-length", "2", "--z-dim", "2"],
    ["--hidden", "5", "4", "--batch", "3"], ["--objective", "iwae", "--k", "3"],
    ["--likelihood", "gaussian-learned", "--batch", "2", "--k", "2"],
    ["--likelihood", "continuous-bernoulli", "--sigma-param", "softplus"],
    ["--z2-dim", "1"], ["--prior", "vamp"],
    ["--z2-dim", "2", "--hidden2", "3", "--prior", "vamp", "--objective", "iwae", "--k", "2"],
], ids=lambda argv: " ".join(argv) or "default")
def test_explain(argv, capsys):
    assert_fits(run(capsys, ["explain", *argv]), "explain " + " ".join(argv))


@pytest.mark.parametrize("mistake", ["kl-gradient-doubled", "eps-dropped", "db-as-mean"])
def test_explain_with_a_planted_mistake(mistake, capsys):
    out = run(capsys, ["explain", "--plant", mistake, "--batch", "2", "--hidden", "5", "4"],
              status=1)
    assert "FAILED: the first wrong gradient" in out
    assert_fits(out, "explain --plant " + mistake)


def test_verify(capsys):
    """The claims with the widest rows and the longest notes (the whole table in
    tests/cli/test_cli_verify.py, marked slow there only because it trains)."""
    argv = ["verify"]
    for name in ("posterior_collapse", "flows", "kl_gradient", "loss_scaling",
                 "continuous_bernoulli", "estimators", "iwae_bound"):
        argv += ["--claim", name]
    assert_fits(run(capsys, argv), "verify")


# --------------------------------------------------------------------------- gradcheck
SMALL = ["--x-dim", "12", "--hidden", "6", "--z-dim", "3", "--batch", "4"]


def test_gradcheck(capsys):
    out = run(capsys, ["gradcheck", *SMALL])
    assert out.count("PASSED") == 2
    assert_fits(out, "gradcheck")


def test_gradcheck_of_a_model_with_a_long_name(capsys):
    out = run(capsys, ["gradcheck", "--x-dim", "12", "--hidden", "6,6,6,6,6,6", "--z-dim", "3",
                       "--batch", "2", "--likelihood", "gaussian-learned", "--sigma-param",
                       "softplus", "--flow", "planar", "--flow-length", "12"])
    assert_fits(out, "gradcheck, long model name")


def test_gradcheck_with_a_flow_takes_the_default_length(capsys):
    """--flow alone stopped with "flow_length must be an integer >= 0 ... got None", as in
    explain; the default L = 2 is the one -h documents."""
    out = run(capsys, ["gradcheck", *SMALL, "--flow", "radial"])
    assert "radial flow x 2" in out and "encoder.flow.W" in out
    assert_fits(out, "gradcheck --flow radial")
    with pytest.raises(SystemExit):
        cli.main(["gradcheck", "-h"])
    assert "(with --flow; default 2)" in " ".join(capsys.readouterr().out.split())


def test_a_failing_gradcheck_explains_itself_within_100_columns(monkeypatch, capsys):
    """A doubled KL gradient: each failing row's explanation (where it is worst, and the ratio
    in words) was one line of up to 143 columns; it is now split after the place, and no words
    are lost."""
    kl_backward = ops.kl_backward
    monkeypatch.setattr(ops, "kl_backward", lambda dkl, c: tuple(2 * g for g in kl_backward(dkl, c)))
    out = run(capsys, ["gradcheck", "--x-dim", "12", "--hidden", "6", "--z-dim", "3", "--batch",
                       "1", "--k", "1", "--coords", "30", "--likelihood", "gaussian"], status=1)
    assert_fits(out, "gradcheck, failing")
    joined = " ".join(out.split())
    assert "encoder.sigma.b: worst at coordinate" in joined
    assert "; analytic / numerical is not one constant" in joined or "x the true one" in joined


@pytest.mark.parametrize("extra", [["--z2-dim", "2", "--hidden2", "3"],
                                   ["--prior", "vamp", "--pseudo-inputs", "3"],
                                   ["--z2-dim", "2", "--prior", "vamp"]], ids=" ".join)
def test_gradcheck_of_the_richer_models(extra, capsys):
    out = run(capsys, ["gradcheck", *SMALL, *extra])
    assert out.count("PASSED") == 2
    assert_fits(out, "gradcheck " + " ".join(extra))


def test_gradcheck_json_is_one_line(capsys):
    """--json is for machines: one line, however long (not a default output)."""
    out = run(capsys, ["gradcheck", *SMALL, "--json"])
    assert len(out.splitlines()) == 1 and json.loads(out)["passed"]


# --------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE run and a VQ-VAE run with its prior (sprites, 200 images, one epoch), in a
    directory with a short name so that printed paths stay short; the commands' outputs."""
    base = tmp_path_factory.mktemp("w")
    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        for key, argv in [
                ("train", ["train", "--epochs", "1", "--limit", "200", "--out", "vae"]),
                ("train iwae", ["train", "--epochs", "1", "--limit", "200", "--objective",
                                "iwae", "--k", "3", "--z-dim", "2", "--out", "iwae"]),
                ("train flow", ["train", "--epochs", "1", "--limit", "100", "--hidden", "400,400",
                                "--z-dim", "40", "--flow", "planar", "--flow-length", "10",
                                "--likelihood", "gaussian-learned", "--sigma-param", "softplus",
                                "--no-figures", "--out", "flow"]),
                ("train vqvae", ["train", "--model", "vqvae", "--epochs", "1", "--limit", "200",
                                 "--out", "vq"]),
                ("train two-layer", ["train", "--preset", "iwae-2layer", "--dataset", "sprites",
                                     "--epochs", "1", "--limit", "100", "--hidden", "16",
                                     "--z-dim", "3", "--z2-dim", "2", "--hidden2", "8",
                                     "--out", "two"]),
                ("train vamp warm-up free bits",       # the warning; the longest epoch line
                 ["train", "--epochs", "2", "--limit", "100", "--z-dim", "2", "--prior", "vamp",
                  "--pseudo-inputs", "5", "--warmup-epochs", "3", "--free-bits", "0.5",
                  "--out", "vamp"]),
                ("evaluate vqvae --no-bound", ["evaluate", "vq", "--limit", "50", "--no-bound"]),
                ("fit-prior", ["fit-prior", "vq", "--epochs", "1"])]:
            outputs[key] = _capture(argv)
    return base, outputs


def _capture(argv):
    """cli.main(argv) with stdout and stderr captured at the file level (a module fixture cannot
    use capsys); returns (status, text)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("key", ["train", "train iwae", "train flow", "train vqvae",
                                 "train two-layer", "train vamp warm-up free bits",
                                 "evaluate vqvae --no-bound", "fit-prior"])
def test_training_commands(runs, key):
    status, text = runs[1][key]
    assert status == 0, text
    assert_fits(text, key)


@pytest.mark.parametrize("argv", [
    ["evaluate", "vae", "--limit", "50", "--iwae-k", "20", "--elbo-k", "5"],
    ["evaluate", "iwae", "--limit", "50", "--iwae-k", "20", "--elbo-k", "5"],
    ["evaluate", "flow", "--limit", "20", "--iwae-k", "5", "--elbo-k", "2"],
    ["evaluate", "vq", "--limit", "50"],
    ["evaluate", "two", "--limit", "50", "--iwae-k", "20", "--elbo-k", "5"],
    ["evaluate", "vamp", "--limit", "50", "--iwae-k", "20", "--elbo-k", "5"],
    ["sample", "two"], ["reconstruct", "vamp"],
    ["sample", "vae"], ["reconstruct", "vae"], ["sample", "vq"], ["reconstruct", "vq"],
], ids=" ".join)
def test_commands_on_a_run(runs, argv, capsys, monkeypatch):
    monkeypatch.chdir(runs[0])
    assert_fits(run(capsys, argv), " ".join(argv))


# --------------------------------------------------------------------------- flows, exercises
@pytest.mark.parametrize("lengths", [["2", "4"], ["1", "2", "3", "4", "5", "6"]],
                         ids=["2 lengths", "6 lengths"])
def test_flows(lengths, tmp_path, capsys, monkeypatch):
    """A short run; six lengths make the KL table's rows 120 columns wide: the terminal then
    says where the table is instead of printing it."""
    monkeypatch.chdir(tmp_path)
    out = run(capsys, ["flows", "--out", "f", "--targets", "1", "--lengths", *lengths,
                       "--iterations", "20", "--samples", "200"])
    assert_fits(out, "flows")
    assert ("| U1 | " in out) == (len(lengths) == 2)
    assert "| U1 | " in (tmp_path / "f" / "kl_table.md").read_text()     # the file keeps it


STUDENT = {     # a tiny student's file: one right answer, two wrong ones, the rest not attempted
    "dense_backward": "    x, W = cache\n    return dy @ W.T, x.T @ dy, dy.mean(axis=0)\n",
    "tanh_backward": "    return dy * (1 - y ** 2)\n",
    "sigmoid_backward": "    s = sigmoid(y)\n    return dy * s * (1 - s)\n",
}


def test_exercises(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)         # init prints the check command with the file's path
    out = run(capsys, ["exercises", "init", "ex"])
    assert_fits(out, "exercises init")
    path = tmp_path / "ex" / "backprop_exercises.py"
    text = path.read_text()
    for name, body in STUDENT.items():
        start = text.index(f"def {name}(")
        stub = text.index("    raise NotImplementedError\n", start)
        text = text[:stub] + body + text[stub + len("    raise NotImplementedError\n"):]
    path.write_text(text)
    out = run(capsys, ["exercises", "check", "ex/backprop_exercises.py"], status=1)
    assert "1 passed, 2 failed" in out
    assert_fits(out, "exercises check")
