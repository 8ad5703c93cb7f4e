"""The ``notebook`` extra (``pip install -e ".[notebook]"``) installs what opening
docs/tutorial.ipynb needs: a front end that opens notebooks, a Python kernel, and every package the
notebook imports that the library itself does not require. No extra installed a front end before.
"""
import configparser
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONT_ENDS = {"notebook", "jupyterlab"}
PROVIDED_BY = {"IPython": "ipykernel"}     # ipykernel depends on IPython, the module imported
"""A module the notebook imports -> the distribution of the extra that brings it, where the two
names differ."""


def _requirements(text):
    return {re.split(r"[<>=!~ \[;]", line.strip())[0].lower()
            for line in text.strip().splitlines() if line.strip()}


def _setup():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return (_requirements(config["options"]["install_requires"]),
            {name: _requirements(text) for name, text in config["options.extras_require"].items()})


def _tutorial_imports():
    cells = json.loads((ROOT / "docs" / "tutorial.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return {m.split(".")[0] for m in re.findall(r"^\s*(?:import|from)\s+([\w.]+)", code, re.M)}


def test_the_notebook_extra_has_a_front_end_and_a_kernel():
    _, extras = _setup()
    assert "notebook" in extras
    assert extras["notebook"] & FRONT_ENDS and "ipykernel" in extras["notebook"]


def test_the_notebook_extra_installs_every_package_the_tutorial_imports():
    required, extras = _setup()
    imports = _tutorial_imports() - set(sys.stdlib_module_names) - {"vae_np"}
    assert {"matplotlib", "numpy", "IPython"} <= imports      # what the tutorial uses today
    missing = {m for m in imports
               if PROVIDED_BY.get(m, m).lower() not in required | extras["notebook"]}
    assert not missing, f"the tutorial imports {sorted(missing)}: add them to the notebook extra"
