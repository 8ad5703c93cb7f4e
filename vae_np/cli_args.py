"""Argument types shared by the commands: each turns bad text into one argparse error line that
names the accepted form (``argument --epochs: must be >= 1, got 0``)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path


def _positive(kind, minimum=1, strict=False):
    """A parser of ``kind`` (int or float) values >= ``minimum`` (> with ``strict``; floats also
    finite)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if (not (value > minimum if strict else value >= minimum)
                or (kind is float and not math.isfinite(value))):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


INT, INT0, FLOAT = _positive(int), _positive(int, 0), _positive(float, 0)
POSITIVE = _positive(float, 0, strict=True)       # rates, scales, eps: 0 is no value for them


def WIDTHS(text):
    """Hidden widths: ``400`` or ``400,400`` (with ``nargs="*"``, ``400 400`` works as well).

    Returns a list of ints >= 1; ``--hidden`` may be given several of these, which are joined."""
    parts = [p for p in text.replace(",", " ").split()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected widths such as 400 or 400,400, got {text!r}")
    try:
        widths = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integer widths such as 400 or 400,400, got {text!r}") from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def flatten_widths(groups):
    """``--hidden 400,400 300`` gives [[400, 400], [300]]: join them into (400, 400, 300)."""
    return None if groups is None else tuple(w for group in groups for w in group)


def _no_file_above(path):
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is a file, not a directory")


def OUT_DIR(text):
    """A directory to create or fill: not an existing file, nor below one."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    _no_file_above(path)
    return text


def OUT_FILE(text):
    """A file to write: not an existing directory, nor below a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a directory; give the file's name, e.g. {path / 'grid.png'}")
    _no_file_above(path)
    return text
