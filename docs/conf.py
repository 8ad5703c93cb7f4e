"""Sphinx configuration of the vae_np documentation site.

Build it (the ``docs`` extra: ``pip install -e ".[docs]"``) from the repository's root with

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Warnings are errors (``-W``) and cross-references are nitpicky: a renamed function breaks the
build, not the reader. What runs at build time: every claim shown on a derivation page
(``docs/_ext/vae_docs.py``), every code cell of the executed pages and of docs/tutorial.ipynb
(myst-nb, which stops the build on an error), every ``>>>`` example in the docstrings that the API
reference documents, and the results tables (rendered from results/ by results/tables.py).
"""
from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # the executed pages run small models
os.environ.setdefault("MPLBACKEND", "Agg")

project = "vae_np"
author = "the vae_np authors"
copyright = "the vae_np authors"
release = version = __import__("vae_np").__version__

extensions = [
    "myst_nb",                       # Markdown pages (myst-parser) and executed notebooks
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
    "vae_docs",                      # docs/_ext: claims, claim figures, results tables, doctests
]

# .rst first: autosummary writes its stubs with the first suffix, and they are rst
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# --------------------------------------------------------------------------- theme
html_theme = "furo"
html_title = f"vae_np {release}"
html_static_path: list = []
pygments_style = "sphinx"
smartquotes = False                     # --flow stays two hyphens, quotes stay as written

# --------------------------------------------------------------------------- MyST and myst-nb
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"             # every executed page runs on every build
nb_execution_raise_on_error = False     # a failing cell is a warning (an error under -W),
                                        # with its traceback (show_tb); the others still run
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_merge_streams = True

# --------------------------------------------------------------------------- API reference
shutil.rmtree(DOCS / "api", ignore_errors=True)   # autosummary's stubs, regenerated every build
# numpydoc also parses third-party docstrings that autosummary scans (hypothesis's, imported by
# vae_np.testing.strategies) and complains about their sections: not ours to fix, not shown
warnings.filterwarnings("ignore", message=r"Unknown section .* in .*site-packages",
                        module="numpydoc")
autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"              # the numpydoc sections carry the types, with the shapes
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False        # the types are prose ("(B, D) float64"), not classes

# --------------------------------------------------------------------------- cross-references
nitpicky = True
nitpick_ignore: list = []               # every reference resolves: keep it empty

# --------------------------------------------------------------------------- vae_docs extension
vae_docs_results_dir = str(ROOT / "results")
vae_docs_results_strict = True          # a missing results file is a warning (an error under -W)
                                        # (every table the pages show has its files)
vae_docs_claim_seed = 0
