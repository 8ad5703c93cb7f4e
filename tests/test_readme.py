"""The ```python blocks of README.md run in order in one namespace (skipped if there is no README).

Blocks run in a temporary working directory (so files they write do not land in the repository)
with a non-interactive matplotlib backend. A block fenced as ```python no-test is shown to readers
but not run here.
"""
import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
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


@pytest.mark.skipif(not README.is_file(), reason="README.md does not exist yet")
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip("README.md has no ```python blocks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__readme__"}
    for line, code in blocks:
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception:
            pytest.fail(f"README.md block at line {line} failed:\n{code}\n{traceback.format_exc()}")
