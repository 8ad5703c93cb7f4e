"""The table of vae_np's public entry points and the bad values tried on each.

Every row is one call with exactly one bad argument. ``tests/cli/test_entry_points.py`` walks the
table: the call must raise ``expect`` (ValueError, or FileNotFoundError for a missing file), never
a NumPy TypeError/IndexError/AttributeError from deep inside, and the message must contain
``word`` (the argument's name, or for file contents the file's name). ``CLI_CASES`` does the same
for ``python -m vae_np``: exit status 2, one line on stderr, no traceback.

The rows are written in one module per part of the package (``tests/*/table_*.py``); the bad-x /
k / eps / rng / constructor cases of ``tests/core/table_bad_input.py`` are not repeated here.
``docs/robustness.md`` is generated from these tables by ``tests/cli/robustness_doc.py``.

Calls take one argument, ``tmp``: a fresh directory (``VAE_NP_DATA`` points into it, so no loader
ever sees a real cache, and the MNIST mirrors point at a closed local port, so nothing reaches the
network).
"""
from __future__ import annotations

import table_checks
import table_data
import table_model
import table_ops
from table_cli import CLI_CASES
from table_common import CLOSED_PORT, KINDS, Case, CliCase

CASES: list[Case] = table_model.CASES + table_checks.CASES + table_data.CASES + table_ops.CASES

__all__ = ["CASES", "CLI_CASES", "CLOSED_PORT", "KINDS", "Case", "CliCase"]
