"""The ```python blocks of README.md and of every Markdown page of docs/ run, each page's in order
in one namespace of its own.

Blocks run in a temporary working directory (so files they write do not land in the repository)
with a non-interactive matplotlib backend. A block fenced as ```python no-test is shown to readers
but not run here.
"""
import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
DOCS = README.parent / "docs"
# the README and every page of the site (its build output aside): an example moved to a new page
# is run without naming the page here
PAGES = [README] + sorted(p for p in DOCS.rglob("*.md")
                          if not {"_build", "_generated"} & set(p.parts))
# the README held 6 examples when they moved into docs/ (issue 25): none may be lost on the way
EXAMPLES_AT_LEAST = 6
FENCE = re.compile(r"^```python[ \t]*(?P<info>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(text):
    """(line number, code) of every ```python block not marked no-test, in order."""
    blocks = []
    for m in FENCE.finditer(text):
        if "no-test" in m.group("info"):
            continue
        blocks.append((text.count("\n", 0, m.start()) + 1, m.group("code")))
    return blocks


def test_fence_parser():
    text = "intro\n```python\na = 1\n```\ntext\n```bash\nls\n```\n```python no-test\nboom\n```\n" \
           "```python\nb = a + 1\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n"), (12, "b = a + 1\n")]


def pages_with_examples():
    return [p for p in PAGES if python_blocks(p.read_text(encoding="utf-8"))]


def test_no_example_is_lost():
    count = sum(len(python_blocks(p.read_text(encoding="utf-8"))) for p in PAGES)
    assert count >= EXAMPLES_AT_LEAST, (count, [p.name for p in pages_with_examples()])


@pytest.mark.parametrize("page", pages_with_examples(),
                         ids=lambda p: str(p.relative_to(README.parent)))
def test_readme_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    name = page.relative_to(README.parent)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__readme__"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{name}:{line}", "exec"), namespace)
        except Exception:
            pytest.fail(f"{name} block at line {line} failed:\n{code}\n{traceback.format_exc()}")


def _normalise(command):
    """A shell line with the spelling differences CI may use removed: ``python3`` and
    ``python -m pip`` for ``pip``/``python``, and the quiet / no-cache flags."""
    command = re.sub(r"\bpython3\b", "python", command)
    command = re.sub(r"\bpython -m pip\b", "pip", command)
    return " ".join(w for w in command.split() if w not in ("-q", "-p", "no:cacheprovider"))


def test_quickstart_has_two_commands_and_ci_runs_the_test_one():
    """The Quickstart's two one-line commands (main job; tests), and .ci/run runs the second."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines() if line.startswith("    ")]
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert main_job.startswith("pip install") and "python -m vae_np train" in main_job
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [_normalise(line) for line in ci.splitlines() if not line.startswith("#")]
    assert _normalise(tests) in ci_commands, (tests, ci_commands)
