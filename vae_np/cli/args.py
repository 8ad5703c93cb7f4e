"""Argument types shared by the commands: each turns bad text into one argparse error line that
names the accepted form (``argument --epochs: must be >= 1, got 0``). Also the width every
command's default output keeps to, and ``fit_lines`` to keep to it."""
from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

WIDTH = 100
"""Columns of every command's default output."""


def fit_lines(text, indent="  ") -> str:
    """``text`` with every line longer than ``WIDTH`` wrapped at spaces; a continuation line
    starts with the line's own indentation plus ``indent``. Words are never broken (a path
    longer than a line stays whole)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= WIDTH:
            out.append(line)
            continue
        lead = line[:len(line) - len(line.lstrip())]
        out.append(textwrap.fill(line, WIDTH, subsequent_indent=lead + indent,
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


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


def flow_length_default(args, default):
    """``explain`` and ``gradcheck``: --flow-length is ``default`` when --flow comes without it;
    --flow-length without --flow is a ValueError naming the options (the model's own message
    names its arguments flow= and flow_length=, which mean nothing on the command line)."""
    if args.flow is None and args.flow_length is not None:
        raise ValueError(f"--flow-length needs --flow planar or --flow radial, got "
                         f"--flow-length {args.flow_length} alone")
    if args.flow is not None and args.flow_length is None:
        args.flow_length = default
