"""Every ``python -m vae_np ...`` command the README and the pages of docs/ show parses with the
command line as it is now: an option renamed or removed in the code, or misspelt in the README or
a page, fails here (the commands are parsed, not run)."""
import re
import shlex
from pathlib import Path

import pytest

from vae_np import cli

README = Path(__file__).resolve().parents[2] / "README.md"
PAGES = [README] + sorted(p for p in (README.parent / "docs").rglob("*.md")
                          if not {"_build", "_generated"} & set(p.parts))
INLINE = re.compile(r"`(python -m vae_np [^`]*)`")            # may wrap across lines


def readme_commands():
    """Each command of the README: the indented code lines (without their # comments) and the
    inline `python -m vae_np ...` spans; the words after ``python -m vae_np``."""
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    lines = [line.split("  #")[0] for line in text.splitlines()
             if line.startswith("    python -m vae_np ")]
    lines += [" ".join(span.split()) for span in INLINE.findall(text)]
    commands = [shlex.split(line)[3:] for line in lines]
    return [words for words in commands if words and words[0] != "COMMAND"]


def test_the_readme_shows_the_commands():
    commands = readme_commands()
    assert len(commands) >= 15
    shown = {words[0] for words in commands}
    assert {"train", "evaluate", "sample", "reconstruct", "gradcheck", "verify", "explain",
            "exercises"} <= shown


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_a_readme_command_parses(argv, capsys):
    try:
        cli.build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and "-h" in argv:        # the help, printed
            return
        pytest.fail(f"README's `python -m vae_np {' '.join(argv)}` does not parse "
                    f"(exit {exc.code}): {capsys.readouterr().err.strip()}")


def test_every_claim_the_readme_runs_exists():
    """``verify --claim NAME`` is checked when it runs, not when it parses: check the names."""
    from vae_np.derivations import CLAIMS

    names = [argv[argv.index("--claim") + 1] for argv in readme_commands() if "--claim" in argv]
    assert len(names) >= 12
    assert not [n for n in names if n.split(".")[0] not in CLAIMS]
