"""tests/ mirrors vae_np/: each folder of tests/ is named after a subpackage (or a top-level module)
of vae_np, except project/, whose tests read the repository itself (README.md, docs/, the layering
of the package). Only conftest.py stays at the top. Test files import their shared helpers
(strategies, _fault_helpers, _flow_helpers, the bad-input tables table_*.py) by plain name, so every
folder holding one is listed in setup.cfg's [tool:pytest] pythonpath, and no two modules of tests/
share a name (one would hide the other on that path)."""
import configparser
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
    folders = [p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders, TESTS
    strays = sorted(set(folders) - parts - {"project"})
    assert not strays, f"tests/ folders that name no part of vae_np: {strays}"


def test_only_conftest_stays_at_the_top():
    assert sorted(p.name for p in TESTS.glob("*.py")) == ["conftest.py"]


def test_no_two_modules_share_a_name():
    counts = Counter(p.stem for p in modules())
    assert not [name for name, n in counts.items() if n > 1], counts.most_common(3)


def test_every_folder_holding_a_helper_is_on_the_pytest_pythonpath():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    listed = config["tool:pytest"]["pythonpath"].split()
    holders = {p.parent.relative_to(ROOT).as_posix() for p in modules()
               if not p.name.startswith("test_")}
    assert holders <= set(listed), f"not in setup.cfg's pythonpath: {sorted(holders - set(listed))}"
    assert all((ROOT / folder).is_dir() for folder in listed), listed
