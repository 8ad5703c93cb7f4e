"""tests/ mirrors vae_np/: each folder of tests/ is named after a subpackage (or a top-level module)
of vae_np, except project/, whose tests read the repository itself (README.md, docs/, the layering
of the package). Only conftest.py stays at the top. Test files import their shared helpers
(strategies, _fault_helpers, _flow_helpers, the bad-input tables table_*.py), and a few another
folder's test module, by plain name, so every folder imported from is listed in setup.cfg's
[tool:pytest] pythonpath, and no two modules of tests/ share a name (one would hide the other on
that path)."""
import ast
import configparser
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "vae_np"


def modules():
    return sorted(TESTS.rglob("*.py"))


def test_module_files():
    """The walk below sees the suite: this file, the top conftest and the folders' helpers."""
    names = {p.relative_to(TESTS).as_posix() for p in modules()}
    assert {"conftest.py", "project/test_tests_layout.py", "runs/_fault_helpers.py"} <= names


def test_every_folder_of_tests_names_a_part_of_the_package():
    parts = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    # caches (__pycache__, a .hypothesis database of a run started in tests/) are not folders of
    # the suite
    folders = [p.name for p in TESTS.iterdir()
               if p.is_dir() and not p.name.startswith((".", "__"))]
    assert folders, TESTS
    strays = sorted(set(folders) - parts - {"project"})
    assert not strays, f"tests/ folders that name no part of vae_np: {strays}"


def test_only_conftest_stays_at_the_top():
    assert sorted(p.name for p in TESTS.glob("*.py")) == ["conftest.py"]


def test_no_two_modules_share_a_name():
    counts = Counter(p.stem for p in modules())
    assert not [name for name, n in counts.items() if n > 1], counts.most_common(3)


def plain_imports(path):
    """The top-level names ``path`` imports absolutely (lazy imports inside functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_folder_imported_from_another_is_on_the_pytest_pythonpath():
    """pytest puts a test file's own folder on the path; any other folder a module imports from by
    plain name (a helper, a table, another folder's test module, conftest) must be listed."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    listed = config["tool:pytest"]["pythonpath"].split()
    where = {p.stem: p.parent for p in modules()}
    needed = {where[name].relative_to(ROOT).as_posix(): f"{p.relative_to(TESTS)} imports {name}"
              for p in modules() for name in plain_imports(p)
              if name in where and where[name] != p.parent}
    missing = {folder: why for folder, why in needed.items() if folder not in listed}
    assert not missing, f"not in setup.cfg's pythonpath: {missing}"
    assert all((ROOT / folder).is_dir() for folder in listed), listed

MENTION = re.compile(r"tests/[\w/*]+\.py")


def test_every_test_file_a_text_names_exists():
    """``tests/<folder>/<file>.py`` in README.md, docs/ (pages and notebook), the package and the
    tests themselves names a file that exists (``*`` as a glob), so a move cannot leave them
    stale."""
    docs = [p for p in sorted((ROOT / "docs").rglob("*")) if p.suffix in (".md", ".ipynb")
            and not {"_build", "_generated"} & set(p.parts)]      # the site's build output aside
    texts = [ROOT / "README.md", *docs, *sorted(PACKAGE.rglob("*.py")), *modules()]
    stale = sorted({(p.relative_to(ROOT).as_posix(), name)
                    for p in texts for name in MENTION.findall(p.read_text(encoding="utf-8"))
                    if not list(ROOT.glob(name))})
    assert not stale, "\n".join(f"{where}: {name}" for where, name in stale)
