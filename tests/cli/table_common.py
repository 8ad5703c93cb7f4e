"""What the tables of bad input share: the row types, the kinds of bad value, and the small
models and arrays the rows call with.

The rows live in ``tests/core/table_model.py``, ``table_checks.py``, ``table_data.py``,
``table_ops.py`` and ``table_cli.py``; ``tests/cli/entry_points.py`` gathers them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from vae_np import VAE

class Case(NamedTuple):
    entry: str          # entry point, e.g. "VAE.decode"
    kind: str           # a key of KINDS
    word: str           # must appear in the error message
    what: str           # the bad value, in words (for the document)
    call: Callable      # call(tmp) invokes the entry point with that one bad value
    expect: type = ValueError


KINDS = {
    "shape": "wrong shape (including shapes NumPy would broadcast silently)",
    "dtype": "wrong dtype (int/complex/str/object arrays, values beyond float32)",
    "range": "value out of its range (<= 0, >= 1, outside [0, 1], beyond float32, ...)",
    "nan/inf": "NaN or infinity",
    "empty": "empty array, list or string",
    "unknown name": "a name that is not one of the accepted ones",
    "int range": "an integer out of range (0, negative, too large for memory)",
    "type": "wrong type (None, str for a number, float for an int, bool, class for instance)",
    "file": "missing, unreadable or malformed file / path",
}

# ------------------------------------------------------------------------------------ fixtures
X_DIM, Z_DIM, B = 4, 2, 3
M = VAE(X_DIM, (3,), Z_DIM, "tanh", "bernoulli", seed=0)                 # float64, Bernoulli
M32 = VAE(X_DIM, (3,), Z_DIM, "tanh", "gaussian", dtype=np.float32, seed=0)
X = np.full((B, X_DIM), 0.5)
EPS = np.zeros((B, Z_DIM))
HUGE = np.full((B, X_DIM), 1e39)            # finite in float64, inf once cast to float32
OK_SHA = "0" * 64
CLOSED_PORT = "http://127.0.0.1:9/"         # the discard port: nothing listens, refused at once

def nan_at(a, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[0] = value
    return a


def write(tmp, name, content: bytes) -> Path:
    path = Path(tmp) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path



class CliCase(NamedTuple):
    command: str
    kind: str
    argv: tuple         # "{tmp}" is replaced by a fresh directory
    word: str           # must appear in the one stderr line


def rows(cases: list):
    """The ``case(entry, kind, word, what, call, expect=ValueError)`` that appends one row to
    ``cases``: each table module keeps its own list, so no module changes another's."""
    def case(entry, kind, word, what, call, expect=ValueError):
        cases.append(Case(entry, kind, word, what, call, expect))
    return case
