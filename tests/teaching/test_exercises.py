"""vae-np exercises: stubs that say what to compute, and a grader that says what is wrong.

The library's own backward functions pass every exercise, and assembled as a student would, the
last one, which is graded against the one-page lecture (vae_np.teaching.lecture); each common mistake,
written as a wrong solution, fails the right exercise with its hint and nothing else; stubs are
"not attempted"; a file with a syntax error or a missing function gives one line, not a traceback.
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vae_np import cli
from vae_np.teaching.exercises import (
    EXERCISE_NAMES, FILENAME, format_table, grade_file, vae_forward, write_stubs)

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}

# A student's answer: the library's ops for the pieces, and vae_backward assembled from whatever
# pieces the file defines (a wrong piece appended below replaces the library's in it too), reading
# the caches of vae_forward. It is not taken from vae_np.teaching.lecture, the grader's reference: a copy of
# the reference would pass by construction and leave vae_forward's caches unread.
LIBRARY_SOLUTION = '''
import numpy as np
from vae_np.ops import (bernoulli_nll_backward, dense_backward, gaussian_nll_backward,
                        kl_backward, relu_backward, reparameterize_backward, sigma_logvar_backward,
                        sigma_softplus_backward, sigmoid, sigmoid_backward, softplus_backward,
                        tanh_backward)


def vae_backward(params, t):
    K, B = t.nll.shape
    Z, D = t.mu.shape[1], t.x.shape[1]
    dlogits = bernoulli_nll_backward(np.full((K, B), 1 / (K * B)), t.nll_cache)
    dg, dW_out, db_out = dense_backward(dlogits.reshape(K * B, D), t.logits_cache)
    dc = tanh_backward(dg, t.g_cache)
    dz, dW_d0, db_d0 = dense_backward(dc, t.c_cache)
    dmu, dsigma = reparameterize_backward(dz.reshape(K, B, Z), t.z_cache)
    dmu_kl, dsigma_kl = kl_backward(np.full(B, 1 / B), t.kl_cache)
    ds = sigma_logvar_backward(dsigma + dsigma_kl, t.sigma_cache)
    dh_mu, dW_mu, db_mu = dense_backward(dmu + dmu_kl, t.mu_cache)
    dh_s, dW_s, db_s = dense_backward(ds, t.s_cache)
    da = tanh_backward(dh_mu + dh_s, t.h_cache)
    _, dW_0, db_0 = dense_backward(da, t.a_cache)
    return {"encoder.0.W": dW_0, "encoder.0.b": db_0, "encoder.mu.W": dW_mu,
            "encoder.mu.b": db_mu, "encoder.sigma.W": dW_s, "encoder.sigma.b": db_s,
            "decoder.0.W": dW_d0, "decoder.0.b": db_d0, "decoder.out.W": dW_out,
            "decoder.out.b": db_out}
'''

# exercise, the wrong function (appended to the library solution, so it replaces that one), and
# what its hint must say
MISTAKES = {
    "kl factor 2": ("kl_backward", '''
def kl_backward(dkl, cache):
    mu, sigma = cache
    return 2 * dkl[:, None] * mu, 2 * dkl[:, None] * (sigma - 1 / sigma)
''', ["2.000 x the true one", "the 1/2 of KL"]),
    "missing eps": ("reparameterize_backward", '''
def reparameterize_backward(dz, cache):
    return dz.sum(axis=0), dz.sum(axis=0)
''', ["missing eps in dsigma"]),
    "mean over k": ("reparameterize_backward", '''
def reparameterize_backward(dz, cache):
    sigma, eps = cache
    return dz.mean(axis=0), (dz * eps).mean(axis=0)
''', ["a sum over k written as a mean"]),
    "transposed dW": ("dense_backward", '''
def dense_backward(dy, cache):
    x, W = cache
    return dy @ W.T, dy.T @ x, dy.sum(axis=0)
''', ["dW: your gradient is the transpose of the true one", "dy^T x is its transpose"]),
    "mean for db": ("dense_backward", '''
def dense_backward(dy, cache):
    x, W = cache
    return dy @ W.T, x.T @ dy, dy.mean(axis=0)
''', ["db sums dy over the batch; a mean divides by B",
      "db: off by 1/B = 1/3: divided by the batch size B?"]),
    "sigmoid applied to its own output": ("sigmoid_backward", '''
def sigmoid_backward(dy, y):
    return dy * sigmoid(y) * (1 - sigmoid(y))
''', ["the cache is the output y = sigmoid(x), not x", "applying sigmoid to y again"]),
    "sigmoid derivative of the logits, on top": ("bernoulli_nll_backward", '''
def bernoulli_nll_backward(dnll, cache):
    logits, x = cache
    s = logits                              # meant: s = sigmoid(logits)
    return dnll[..., None] * (sigmoid(logits) - x) * s * (1 - s)
''', ["s (1 - s) taken with s = the logits l: it needs s = sigmoid(l)",
      "sigmoid(l) - x already contains it"]),
    "sigmoid derivative of the logits, via p": ("bernoulli_nll_backward", '''
def bernoulli_nll_backward(dnll, cache):
    logits, x = cache
    p = sigmoid(logits)
    dp = (p - x) / (p * (1 - p))            # d nll / dp
    return dnll[..., None] * dp * logits * (1 - logits)     # meant: dp * p * (1 - p)
''', ["s (1 - s) taken with s = the logits l: it needs s = sigmoid(l)",
      "dnll/dp = (p - x) / (p (1 - p)), times dp/dl = p (1 - p)"]),
    "sigmoid derivative once too often": ("bernoulli_nll_backward", '''
def bernoulli_nll_backward(dnll, cache):
    logits, x = cache
    p = sigmoid(logits)
    return dnll[..., None] * (p - x) * p * (1 - p)
''', ["a sigmoid derivative multiplied in once too often"]),
    "dense divided by B": ("dense_backward", '''
def dense_backward(dy, cache):
    x, W = cache
    B = dy.shape[0]
    return dy @ W.T, x.T @ dy / B, dy.sum(axis=0) / B
''', ["dW: off by 1/B = 1/3: divided by the batch size B?",
      "db: off by 1/B = 1/3: divided by the batch size B?"]),
}
# Words that name one mistake only: a row may carry them only if its mistake is that one
# (the KL's factor 2 and a batch of B = 2 read alike before issue 22).
DISTINCT = ["the 1/2 of KL", "off by B =", "off by 1/B =", "summed over the batch?",
            "taken with s = the logits", "once too often", "applying sigmoid to y again"]


def write(tmp_path, text, name="answers.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def statuses(results):
    return {r.exercise: r.status for r in results}


def blocks(out):
    """The printed table by exercise: its line and the indented lines under it, joined into one
    line (the hint is wrapped at spaces)."""
    found, name = {}, None
    for line in out.splitlines()[1:-1]:
        if line.startswith(" "):
            found[name] += " " + line.strip()
        else:
            name = line.split()[0]
            found[name] = line
    return found


def test_init_writes_stubs_with_the_library_signatures(tmp_path, capsys):
    assert cli.main(["exercises", "init", str(tmp_path / "ex")]) == 0
    path = tmp_path / "ex" / FILENAME
    assert str(path) in capsys.readouterr().out
    tree = ast.parse(path.read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert tuple(functions) == EXERCISE_NAMES
    from vae_np import ops
    import inspect
    for name in EXERCISE_NAMES[:-1]:
        ours = [a.arg for a in functions[name].args.args]
        theirs = list(inspect.signature(getattr(ops, name)).parameters)[:2]
        assert ours == theirs, name
        doc = ast.get_docstring(functions[name])
        assert "Forward" in doc and "cache" in doc and "Shapes" in doc, name
        body = functions[name].body[-1]
        assert isinstance(body, ast.Raise) and body.exc.id == "NotImplementedError", name
    # init refuses to overwrite a student's work
    assert cli.main(["exercises", "init", str(tmp_path / "ex")]) == 2
    assert "exists" in capsys.readouterr().err


def test_stubs_are_not_attempted(tmp_path):
    path = write_stubs(tmp_path)
    results = grade_file(path)
    assert set(statuses(results).values()) == {"not attempted"}
    assert format_table(results).splitlines()[-1] == "12 not attempted of 12"


def test_the_library_ops_pass_every_exercise(tmp_path, capsys):
    path = write(tmp_path, LIBRARY_SOLUTION)
    assert cli.main(["exercises", "check", str(path)]) == 0
    out = capsys.readouterr().out
    for name in EXERCISE_NAMES:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert line.split()[1] == "passed", line
    assert out.splitlines()[-1] == "12 passed of 12"


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_known_mistake_fails_its_exercise_with_its_hint(tmp_path, mistake):
    exercise, code, hints = MISTAKES[mistake]
    results = grade_file(write(tmp_path, LIBRARY_SOLUTION + code))
    failed = {r.exercise: r for r in results if r.status != "passed"}
    # the exercise itself, and the assembly if it calls it (it uses no sigmoid); nothing else
    in_assembly = exercise != "sigmoid_backward"
    assert set(failed) == {exercise} | ({"vae_backward"} if in_assembly else set()), \
        format_table(results)
    row = failed[exercise]
    assert row.status == "failed" and row.example, format_table(results)
    for hint in hints:
        assert hint in row.hint, (hint, row.hint)
    for words in DISTINCT:                  # nobody else's hint
        if not any(words in hint for hint in hints):
            assert words not in row.hint, (words, row.hint)
    if in_assembly:
        assert "fix them first" in failed["vae_backward"].hint


def test_vae_forward_gives_each_step_the_library_ops_output_and_cache():
    """The trace of the last exercise comes from vae_np.teaching.lecture; every field is the output and
    the cache of the vae_np.ops forward that the stub's docstring names, for that step's inputs."""
    from vae_np import ops
    from vae_np.teaching.exercises.assembly import initial_params
    params = initial_params(3, 2, 2, seed=0)
    rng = np.random.default_rng(1)
    x, eps = rng.random((4, 3)), rng.standard_normal((2, 4, 2))
    t = vae_forward(params, x, eps)
    P = params
    expected = {"a": ops.dense_forward(x, P["encoder.0.W"], P["encoder.0.b"]),
                "h": ops.tanh_forward(t.a),
                "mu": ops.dense_forward(t.h, P["encoder.mu.W"], P["encoder.mu.b"]),
                "s": ops.dense_forward(t.h, P["encoder.sigma.W"], P["encoder.sigma.b"]),
                "sigma": ops.sigma_logvar_forward(t.s),
                "z": ops.reparameterize_forward(t.mu, t.sigma, eps),
                "kl": ops.kl_forward(t.mu, t.sigma),
                "c": ops.dense_forward(t.z.reshape(8, 2), P["decoder.0.W"], P["decoder.0.b"]),
                "g": ops.tanh_forward(t.c),
                "logits": ops.dense_forward(t.g, P["decoder.out.W"], P["decoder.out.b"]),
                "nll": ops.bernoulli_nll_forward(t.logits.reshape(2, 4, 3), x)}
    # The same arithmetic but for the nll (softplus as logaddexp, not the ops' blocked loop),
    # which differs by a few roundings of its D terms: 1e-13 relative leaves a wide margin.
    for name, (value, cache) in expected.items():
        np.testing.assert_allclose(getattr(t, name), value, rtol=1e-13, atol=0, err_msg=name)
        mine = getattr(t, name + "_cache")
        assert type(mine) is type(cache), name
        for a, b in zip(*(c if isinstance(c, tuple) else (c,) for c in (mine, cache)), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=0, err_msg=name + "_cache")
    assert t.loss == pytest.approx(float(np.mean(t.nll.mean(axis=0) + t.kl)), rel=1e-15)


def test_the_assembly_is_graded_against_the_lecture(tmp_path, monkeypatch):
    """The reference of vae_backward is vae_np.teaching.lecture.backward: with the lecture's encoder.mu.W
    gradient planted 1 + 1e-6 times too large, the correct answer fails on that tensor."""
    from vae_np.teaching import lecture
    backward = lecture.backward

    def planted(*args, **kwargs):
        grads = backward(*args, **kwargs)
        grads["encoder.mu.W"] = grads["encoder.mu.W"] * (1 + 1e-6)
        return grads
    monkeypatch.setattr(lecture, "backward", planted)
    results = {r.exercise: r for r in grade_file(write(tmp_path, LIBRARY_SOLUTION))}
    row = results["vae_backward"]
    assert row.status == "failed" and row.hint.startswith("encoder.mu.W: "), row.hint
    assert "the lecture's" in row.hint
    assert all(r.status == "passed" for name, r in results.items() if name != "vae_backward")


def test_one_correct_function_and_the_kl_factor_2(tmp_path):
    """The issue's walk-through: stubs, one function filled in correctly, the KL with the factor
    2 that circulates in write-ups: "passed" and "2.000 x"; exit status 1."""
    path = write_stubs(tmp_path)
    text = path.read_text()
    text = text.replace('''    Return dx (B, n).
    """
    raise NotImplementedError


def sigmoid_backward''', '''    Return dx (B, n).
    """
    return dy * (1 - y * y)


def sigmoid_backward''')
    text = text.replace('''    Return (dmu, dsigma), each (B, Z).
    """
    raise NotImplementedError''', '''    Return (dmu, dsigma), each (B, Z).
    """
    mu, sigma = cache
    return 2 * dkl[:, None] * mu, 2 * dkl[:, None] * (sigma - 1 / sigma)''')
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "vae_np", "exercises", "check", str(path)],
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = blocks(proc.stdout)
    assert rows["tanh_backward"].split()[1] == "passed"
    assert rows["kl_backward"].split()[1] == "failed" and "2.000 x" in rows["kl_backward"]
    assert "the 1/2 of KL" in rows["kl_backward"] and "off by B" not in rows["kl_backward"]
    # the smallest failing example: shrunk to one example with one latent (without shrinking,
    # hypothesis reported mu=[[0.3,-2.919]] sigma=[[0.62,2.386]])
    assert re.search(r"mu=\[\[[^],]*\]\] sigma=\[\[[^],]*\]\] dkl=\[[^],]*\]",
                     rows["kl_backward"]), rows["kl_backward"]
    assert proc.stdout.splitlines()[-1] == "1 passed, 1 failed, 10 not attempted of 12"


def test_a_syntax_error_is_one_line(tmp_path):
    path = write(tmp_path, LIBRARY_SOLUTION + "\ndef kl_backward(dkl, cache)\n    return 0\n")
    proc = subprocess.run([sys.executable, "-m", "vae_np", "exercises", "check", str(path)],
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "syntax error" in proc.stderr
    assert f"line {LIBRARY_SOLUTION.count(chr(10)) + 2}" in proc.stderr


def test_a_missing_function_and_a_failing_import_are_one_line(tmp_path, capsys):
    text = LIBRARY_SOLUTION.replace("kl_backward, relu_backward", "relu_backward")
    assert cli.main(["exercises", "check", str(write(tmp_path, text))]) == 1
    out = capsys.readouterr().out
    line = blocks(out)["kl_backward"]
    assert "missing" in line and "the file defines no kl_backward" in line
    assert "Traceback" not in out
    broken = write(tmp_path, "import numpy as np\nnp.no_such_function()\n", "broken.py")
    assert cli.main(["exercises", "check", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fails on import: AttributeError" in err
    assert cli.main(["exercises", "check", str(tmp_path / "nowhere.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_check_without_hypothesis_names_the_extra(tmp_path):
    path = write(tmp_path, LIBRARY_SOLUTION)
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from vae_np import cli\n"
            f"raise SystemExit(cli.main(['exercises', 'check', {str(path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert proc.returncode == 2 and 'pip install "vae_np[test]"' in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_sys_exit_a_directory_and_an_unwritable_dir_are_one_line(tmp_path, capsys):
    """A student's sys.exit() ended the grading with the student's status and no table; a
    directory given as FILE was said not to exist; a DIR that cannot be created printed an
    OSError that named no argument."""
    text = LIBRARY_SOLUTION + "\n\ndef kl_backward(dkl, cache):\n    raise SystemExit(3)\n"
    assert cli.main(["exercises", "check", str(write(tmp_path, text))]) == 1
    out = capsys.readouterr().out
    line = blocks(out)["kl_backward"]
    assert line.split()[1] == "failed" and "called sys.exit(3)" in line
    assert out.splitlines()[-1] == "10 passed, 2 failed of 12"      # kl_backward, vae_backward
    exits = write(tmp_path, "import sys\nsys.exit(0)\n", "exits.py")
    assert cli.main(["exercises", "check", str(exits)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fails on import: SystemExit" in err
    assert cli.main(["exercises", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FILE must be an exercise file" in err and "directory" in err
    blocker = write(tmp_path, "", "blocker")
    assert cli.main(["exercises", "init", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"vae-np: error: DIR {blocker / 'sub'} ")


def test_an_assembly_off_by_1e_6_fails(tmp_path):
    """Two analytic gradients agree to rounding (RTOL 1e-10 of check_assembly): a vae_backward
    with one tensor 1 + 1e-6 times the library's fails, with the factor (a tolerance of 1e-3
    passed every other test)."""
    text = LIBRARY_SOLUTION.replace('"decoder.0.W": dW_d0,', '"decoder.0.W": dW_d0 * (1 + 1e-6),')
    assert text != LIBRARY_SOLUTION
    results = {r.exercise: r for r in grade_file(write(tmp_path, text))}
    assert results["vae_backward"].status == "failed"
    assert "decoder.0.W" in results["vae_backward"].hint
    assert "your gradient is 1.000001 x the true one" in results["vae_backward"].hint
    assert all(r.status == "passed" for name, r in results.items() if name != "vae_backward")


def test_a_loss_summed_over_the_batch_says_b_not_2(tmp_path):
    """vae_backward with the loss summed over the batch (dnll = 1/K, dkl = 1) was reported as
    "2.000 x the true one", the words of the KL erratum, at the shrunk batch of 2. Batches are
    1, 3, 4 now, and the factor is confirmed at B = 3 and 5: "off by B = 3: summed over the
    batch?"; divided by B once more, "off by 1/B"; neither says anything of the KL's 1/2."""
    summed = LIBRARY_SOLUTION.replace("np.full((K, B), 1 / (K * B))", "np.full((K, B), 1 / K)")
    summed = summed.replace("np.full(B, 1 / B)", "np.ones(B)")
    twice = LIBRARY_SOLUTION.replace("1 / (K * B))", "1 / (K * B * B))")
    twice = twice.replace("np.full(B, 1 / B)", "np.full(B, 1 / B ** 2)")
    assert LIBRARY_SOLUTION not in (summed, twice)
    for text, words in [(summed, "every tensor: off by B = 3: summed over the batch? (B x the "
                                 "true one at B = 3, 5)"),
                        (twice, "every tensor: off by 1/B = 1/3: divided by the batch size B? "
                                "(1/B x the true one at B = 3, 5)")]:
        results = {r.exercise: r for r in grade_file(write(tmp_path, text))}
        assert [r.status for r in results.values()].count("failed") == 1
        row = results["vae_backward"]
        assert row.status == "failed" and "batch=3" in row.example, row.example
        assert words in row.hint, row.hint
        assert "the 1/2 of KL" not in row.hint and "fix them first" not in row.hint
    # a factor that is not the batch size is not called one: the KL's 2 only on the KL term
    kl2 = LIBRARY_SOLUTION.replace("np.full(B, 1 / B)", "np.full(B, 2 / B)")
    row = {r.exercise: r for r in grade_file(write(tmp_path, kl2))}["vae_backward"]
    assert row.status == "failed" and "off by" not in row.hint, row.hint


def test_check_fits_100_columns_unless_wide(tmp_path, capsys):
    """exercises check printed 260 columns (example and hint on the exercise's line); by
    default every line fits 100 columns, hints wrapped under their exercise, and --wide
    restores one line per exercise."""
    text = LIBRARY_SOLUTION + MISTAKES["kl factor 2"][1] + MISTAKES["dense divided by B"][1]
    path = write(tmp_path, text)
    assert cli.main(["exercises", "check", str(path)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    rows = blocks(out)
    assert set(rows) == set(EXERCISE_NAMES)
    assert "2.000 x the true one" in rows["kl_backward"]
    assert "dW: off by 1/B = 1/3" in rows["dense_backward"]
    assert lines[-1] == "9 passed, 3 failed of 12"
    assert cli.main(["exercises", "check", "--wide", str(path)]) == 1
    wide = capsys.readouterr().out.splitlines()
    assert len(wide) == 14 and max(len(line) for line in wide) > 100
    kl = next(line for line in wide if line.startswith("kl_backward"))
    assert "failed" in kl and "mu=" in kl and "2.000 x the true one" in kl


def test_init_fits_100_columns(tmp_path, capsys, monkeypatch):
    """exercises init listed its twelve exercises on one line of 260 columns."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["exercises", "init", "ex"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert lines[0] == f"wrote {Path('ex') / FILENAME}: 12 exercises"
    assert " ".join(line.strip() for line in lines[1:-2]).split(", ") == list(EXERCISE_NAMES)
    assert lines[-1] == f"  python -m vae_np exercises check {Path('ex') / FILENAME}"
