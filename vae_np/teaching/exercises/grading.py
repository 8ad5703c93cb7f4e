"""Grade a student's exercise file: property-based checks per exercise and a table of results.

Each exercise runs under hypothesis with a fixed seed (derandomized), at most ``MAX_EXAMPLES``
examples and no example database, so a grade is the same on every machine and takes a few
seconds in all. A backward is checked by ``vae_np.testing.assert_backward`` against central
differences and the complex step of the library's forward; the whole-VAE exercise against the
one-page lecture's backward pass (``vae_np.teaching.lecture``, whose gradient is ``VAE.trace``'s).
Needs hypothesis (the ``test`` extra).
"""
from __future__ import annotations

import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from ...gradcheck.report import constant_ratio, describe_ratio
from ...testing.backward import BackwardMismatch, assert_backward
from .assembly import NAMES, batch_factor, check_assembly
from .catalogue import EXERCISES, PROBE_BATCHES, assembly_cases

MAX_EXAMPLES = 30
SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                    verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.generate, Phase.shrink), print_blob=False,
                    report_multiple_bugs=False)
EXAMPLE_WIDTH = 60
WIDTH = 100                     # the default table's columns (format_table(wide=True): no limit)


@dataclass
class Result:
    exercise: str
    status: str                 # "passed", "failed", "not attempted" or "missing"
    example: str = ""           # the smallest failing example
    hint: str = ""


class StudentFileError(ValueError):
    """The student's file cannot be imported (syntax error, failing import, not a .py file)."""


def load_student_file(path):
    """Import the student's file as a module; StudentFileError in one line if it cannot be."""
    path = Path(path)
    if path.is_dir():
        raise StudentFileError(f"FILE must be an exercise file, {path} is a directory")
    if not path.is_file():
        raise StudentFileError(f"FILE must be an exercise file, {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"_vae_np_student_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise StudentFileError(f"FILE must be a Python file (.py), got {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise StudentFileError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:         # the student's module-level code failed
        raise StudentFileError(f"{path} fails on import: {type(exc).__name__}: {exc}") from None
    return module


def _guarded(fn):
    """The student's function with sys.exit() / exit() turned into an error of that exercise
    (SystemExit is no Exception: it would end the grading with no table)."""
    if not callable(fn):
        return fn

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SystemExit as exc:
            raise RuntimeError(f"called sys.exit({exc.code!r})") from None
    return call


class _WrongCount(AssertionError):
    pass


def _backward_of(exercise, fn):
    """The student's function, with the number of gradients it returns checked."""
    def backward(dout, cache):
        grads = fn(dout, cache)
        got = len(grads) if isinstance(grads, (tuple, list)) else 1
        if got != exercise.n_grads:
            wanted = ", ".join("d" + n for n in exercise.names[:exercise.n_grads])
            raise _WrongCount(f"return {exercise.n_grads} gradient(s) ({wanted}), got {got}")
        return grads
    return backward


def _run(exercise, fn, case):
    inputs, kwargs, dout = case
    assert_backward(exercise.forward, _backward_of(exercise, fn), *inputs, dout=dout,
                    kwargs=kwargs, names=exercise.names[:-1],
                    constants=exercise.names[exercise.n_grads:-1])


def _fixed_cases(strategy, count=3):
    """A few inputs drawn once from a strategy with a fixed seed (for the not-attempted probe and
    to confirm a known mistake away from the failing example)."""
    found = []

    @settings(SETTINGS, max_examples=count, phases=(Phase.generate,))
    @given(strategy)
    def collect(case):
        found.append(case)
    collect()
    return found[:count]


def _probes(exercise):
    """Three drawn cases, then one at each batch size of PROBE_BATCHES (3 and 5): a factor that
    follows B shows as such only across batch sizes. (The first draws of a derandomized search
    are zeros and constant arrays, which hide such a factor: the third is a generic one.)"""
    cases = _fixed_cases(exercise.cases)
    for B in PROBE_BATCHES:
        cases.append(_fixed_cases(exercise.cases_at(st.just(B)), 3)[-1])
    return cases


def grade_exercise(exercise, fn) -> Result:
    if fn is None:
        return Result(exercise.name, "missing", hint=f"the file defines no {exercise.name}")
    probes = _probes(exercise)
    try:
        _run(exercise, fn, probes[0])
    except NotImplementedError:
        return Result(exercise.name, "not attempted")
    except Exception:                      # noqa: BLE001 (graded below, with the shrunk example)
        pass
    last = []

    @SETTINGS
    @given(exercise.cases)
    def prop(case):
        last[:] = [case]
        _run(exercise, fn, case)
    try:
        prop()
    except Exception as exc:               # noqa: BLE001 (a student's error of any kind)
        return Result(exercise.name, "failed", _format_case(exercise, last[0]),
                      _hint(exercise, fn, exc, [last[0]] + probes))
    return Result(exercise.name, "passed")


def _format_case(exercise, case):
    inputs, kwargs, dout = case
    values = list(zip(exercise.names[:-1], inputs)) + list(kwargs.items())
    values.append((exercise.names[-1], dout))
    parts = []
    for name, v in values:
        text = np.array2string(np.asarray(v), precision=3, separator=",", suppress_small=True)
        parts.append(f"{name}={''.join(text.split())}")
    text = " ".join(parts)
    return text if len(text) <= EXAMPLE_WIDTH else text[:EXAMPLE_WIDTH - 3] + "..."


def _hint(exercise, fn, exc, cases):
    """What is known about the mistake: the constant factor or transpose (pooled over the failing
    example and the probes, since one coordinate alone always has a "constant" ratio), then a
    known mistake."""
    words = []
    if isinstance(exc, BackwardMismatch):
        words += _pooled_ratios(exercise, fn, cases)
        first = exc.problems[0]
        if not words:
            words.append(f"d{first['name']} at {first['index']}: yours {first['analytic']:.4g}, "
                         f"true {first['numerical']:.4g}" if "index" in first else
                         str(exc).splitlines()[0].replace("assert_backward: ", ""))
    elif isinstance(exc, _WrongCount):
        words.append(str(exc))
    else:
        words.append(f"raised {type(exc).__name__}: {' '.join(str(exc).split())}"[:120])
    for index, formula, hint in exercise.mistakes:
        if _matches(exercise, fn, index, formula, cases):
            words.append(hint)
            break
    return "; ".join(words)


def _pooled_ratios(exercise, fn, cases):
    """Per wrong input: "the transpose", the constant factor over all the cases' coordinates, or,
    when the factor is the batch size B of each case (or 1/B), that in words."""
    pooled, transposed = {}, set()
    for case in cases:
        try:
            _run(exercise, fn, case)
        except BackwardMismatch as exc:
            for p in exc.problems:
                if p.get("transposed"):
                    transposed.add(p["name"])
                elif "all_analytic" in p:
                    size = np.size(p["all_analytic"])
                    parts = pooled.setdefault(p["name"], ([], [], [], [], p["tol"]))
                    parts[0].append(np.ravel(p["all_analytic"]))
                    parts[1].append(np.ravel(p["all_numerical"]))
                    parts[2].append(np.ravel(np.broadcast_to(p["slack"],
                                                             np.shape(p["all_analytic"]))))
                    parts[3].append(np.full(size, float(exercise.batch_of(case))))
        except Exception:                  # noqa: BLE001 (this case fails some other way)
            continue
    words = [f"d{name}: your gradient is the transpose of the true one" for name in transposed]
    first = exercise.batch_of(cases[0])
    for name, (a, n, slack, sizes, tol) in sorted(pooled.items(),
                                                  key=lambda item: exercise.names.index(item[0])):
        if name in transposed:
            continue
        a, n, slack, sizes = (np.concatenate(v) for v in (a, n, slack, sizes))
        ratio = constant_ratio(a, n, tol, slack)
        if ratio is not None:
            words.append(f"d{name}: {describe_ratio(ratio)}")
        elif np.unique(sizes).size > 1:
            law = _batch_law(a, n, slack, sizes, tol)
            if law:
                words.append(f"d{name}: {_batch_words(law, first, np.unique(sizes))}")
    return words


def _batch_law(a, n, slack, sizes, tol):
    """"B" if a = B n at every coordinate (B the batch size of its case), "1/B" if a = n / B,
    else None."""
    for law, scale in (("B", sizes), ("1/B", 1 / sizes)):
        ratio = constant_ratio(a, n * scale, tol, slack * scale)
        if ratio is not None and abs(ratio - 1) < 1e-6:
            return law
    return None


def _batch_words(law, B, sizes):
    """The batch-size factor in words: "off by B = 3: summed over the batch?"."""
    at = ", ".join(str(int(v)) for v in sizes)
    if law == "B":
        return (f"off by B = {int(B)}: summed over the batch? (B x the true one at "
                f"B = {at})")
    return (f"off by 1/B = 1/{int(B)}: divided by the batch size B? (1/B x the true one at "
            f"B = {at})")


def _matches(exercise, fn, index, formula, cases):
    """Whether output ``index`` of the student's function equals the wrong formula at every case
    (the failing example and the fixed probes)."""
    for inputs, kwargs, dout in cases:
        inputs = tuple(np.array(v, dtype=float) for v in inputs)
        _, cache = exercise.forward(*inputs, **kwargs)
        try:
            got = fn(np.array(dout, dtype=float), cache)
        except Exception:                  # noqa: BLE001
            return False
        got = got if isinstance(got, (tuple, list)) else (got,)
        if len(got) <= index:
            return False
        try:
            wrong = formula(inputs, kwargs, dout)
        except ValueError:      # the formula needs other shapes (dy W, not dy W^T: a square W)
            return False
        mine = np.asarray(got[index], dtype=float)
        if mine.shape != np.shape(wrong):
            return False
        if not np.allclose(mine, wrong, rtol=1e-9, atol=1e-12):
            return False
    return True


def grade_assembly(fn) -> Result:
    name = "vae_backward"
    if fn is None:
        return Result(name, "missing", hint=f"the file defines no {name}")
    try:
        check_assembly(fn, 3, 2, 2, 2, 2, 0)
    except NotImplementedError:
        return Result(name, "not attempted")
    except Exception:                      # noqa: BLE001
        pass
    last = []

    @SETTINGS
    @given(assembly_cases())
    def prop(case):
        last[:] = [case]
        problem = check_assembly(fn, *case)
        if problem:
            raise AssertionError(problem)
    try:
        prop()
    except Exception as exc:               # noqa: BLE001
        x_dim, hidden, z_dim, k, batch, seed = last[0]
        example = f"x_dim={x_dim} hidden={hidden} z_dim={z_dim} k={k} batch={batch} seed={seed}"
        words = (str(exc) if isinstance(exc, AssertionError)
                 else f"raised {type(exc).__name__}: {' '.join(str(exc).split())}"[:120])
        if isinstance(exc, AssertionError):
            words += _assembly_batch_words(fn, last[0])
        return Result(name, "failed", example, words)
    return Result(name, "passed")


def _assembly_batch_words(fn, case):
    """"; off by B = 3: ..." when the wrong tensors are B (or 1/B) times the lecture's at the
    failing batch size and at PROBE_BATCHES, the rest of the case fixed; else ""."""
    batches = sorted({b for b in (case[4],) + PROBE_BATCHES if b > 1})
    try:
        found = batch_factor(fn, case, batches)
    except Exception:                      # noqa: BLE001 (it fails some other way there)
        return ""
    words, shown = "", case[4] if case[4] > 1 else batches[0]
    for law, names in found.items():
        if names:
            which = "every tensor" if len(names) == len(NAMES) else ", ".join(names)
            words += f"; {which}: {_batch_words(law, shown, batches)}"
    return words


def grade_file(path) -> list:
    """Results for every exercise of the student's file, in the order of the stubs."""
    module = load_student_file(path)
    results = [grade_exercise(ex, _guarded(getattr(module, ex.name, None))) for ex in EXERCISES]
    assembly = grade_assembly(_guarded(getattr(module, "vae_backward", None)))
    if assembly.status == "failed" and any(r.status != "passed" for r in results):
        assembly.hint += "; the pieces it calls do not all pass yet: fix them first"
    results.append(assembly)
    sys.modules.pop(module.__name__, None)
    return results


def format_table(results, wide=False, width=WIDTH) -> str:
    """The results as ``vae-np exercises check`` prints them.

    By default a line per exercise (its name and result) and, under a failed or missing one, its
    smallest failing example and its hint, wrapped to ``width`` columns; ``wide=True`` gives the
    older one-line-per-exercise table (example and hint on the exercise's line, any width)."""
    counts = {s: sum(r.status == s for r in results)
              for s in ("passed", "failed", "not attempted", "missing")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(results)}"
    name_width = max(len(r.exercise) for r in results)
    if wide:
        ex_width = max([len(r.example) for r in results] + [len("smallest failing example")])
        header = "smallest failing example"
        lines = [f"{'exercise':<{name_width}}  {'result':<13}  {header:<{ex_width}}  hint"]
        for r in results:
            lines.append(f"{r.exercise:<{name_width}}  {r.status:<13}  {r.example:<{ex_width}}  "
                         f"{r.hint}".rstrip())
        return "\n".join(lines + [summary])
    lines = [f"{'exercise':<{name_width}}  result"]
    for r in results:
        lines.append(f"{r.exercise:<{name_width}}  {r.status}")
        if r.example:
            lines += textwrap.wrap(r.example, width, initial_indent="    smallest failing "
                                   "example: ", subsequent_indent=" " * 6)
        if r.hint:
            lines += textwrap.wrap(r.hint, width, initial_indent="    hint: ",
                                   subsequent_indent=" " * 6)
    return "\n".join(lines + [summary])
