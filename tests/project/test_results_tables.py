"""The README's results tables are rendered from the files in results/, never typed by hand.

Each table sits between ``<!-- results: NAME -->`` and ``<!-- /results: NAME -->`` and must equal
what ``results/tables.py`` renders from the evaluate reports, run histories and KL tables that
``results/regenerate.sh`` writes. A number edited in the README, or a report edited without
rendering the table again, fails here; so does a table measured on other images than its rows.
"""
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_tables(results_dir=ROOT / "results"):
    spec = importlib.util.spec_from_file_location("results_tables", results_dir / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = load_tables()
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"<!-- results: (\w+) -->", README)


def test_every_results_table_in_the_readme_is_rendered_from_its_files():
    assert BLOCKS, "the README has no results blocks"
    assert set(BLOCKS) <= set(tables.TABLES), BLOCKS
    assert tables.fill(README) == README, (
        "a results table in README.md differs from results/: run "
        "python results/tables.py --write README.md")


def test_a_number_typed_into_a_table_is_found(tmp_path):
    """Change one digit inside a rendered table and --check must fail."""
    first = re.search(r"<!-- results: \w+ -->\n(.*?)<!-- /results", README, re.S)
    body = first.group(1)
    digit = re.search(r"\d\.(\d)", body)
    changed = body[:digit.start(1)] + str((int(digit.group(1)) + 1) % 10) + body[digit.end(1):]
    readme = tmp_path / "README.md"
    readme.write_text(README.replace(body, changed, 1))
    assert tables.main(["--check", str(readme)]) == 1
    readme.write_text(README)
    assert tables.main(["--check", str(readme)]) == 0


@pytest.mark.parametrize("name, change", [
    ("burda/vae_k1.json", lambda d: d.update(iwae_nll=d["iwae_nll"] + 0.5)),
    ("benchmarks/bench_fit.json",
     lambda d: [r.update(vae_np_ms=r["vae_np_ms"] + 0.5) for r in d["rows"]
                if r["threads"] == "default"]),
], ids=["evaluate report", "benchmark"])
def test_a_report_changed_without_rendering_again_is_found(name, change, tmp_path):
    """Edit one file behind a README table: the README no longer matches its files."""
    copy = tmp_path / "results"
    shutil.copytree(ROOT / "results", copy)
    report = copy / name
    data = json.loads(report.read_text())
    change(data)
    report.write_text(json.dumps(data))
    assert load_tables(copy).fill(README) != README


def test_rows_measured_on_other_images_are_refused(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(ROOT / "results", copy)
    report = copy / "burda" / "vae_k5.json"
    data = json.loads(report.read_text())
    data.update(n_examples=1000, subset="random", subset_seed=0)
    report.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="different images"):
        load_tables(copy).burda()


def test_a_paired_difference_is_the_mean_and_standard_error_of_the_differences(tmp_path):
    rows = np.arange(5)
    a, b = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([1.5, 2.0, 3.5, 4.0, 6.0])
    np.savez(tmp_path / "a.npz", rows=rows, iwae_nll=a)
    np.savez(tmp_path / "b.npz", rows=rows, iwae_nll=b)
    d = tables.pair(tmp_path / "a.npz", tmp_path / "b.npz", "iwae_nll")
    diff = [0.5, 0.0, 0.5, 0.0, 1.0]                       # written out: b - a
    assert d["mean"] == pytest.approx(0.4)
    assert d["se"] == pytest.approx(np.std(diff, ddof=1) / np.sqrt(5))
    np.savez(tmp_path / "c.npz", rows=rows[::-1], iwae_nll=b)
    with pytest.raises(ValueError, match="different images"):
        tables.pair(tmp_path / "a.npz", tmp_path / "c.npz", "iwae_nll")
