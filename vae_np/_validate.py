"""Argument checks shared by every public entry point.

Each helper raises a ValueError whose message names the argument and the accepted form, so that bad
input never surfaces as a deep NumPy traceback or, worse, as a silently wrong number.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(name: str, dtype) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


def check_choice(name: str, value, choices) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """Raise ValueError unless ``value`` is an integer in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be an integer >= {minimum}{upper}, got {value}")
    return int(value)


def check_widths(name: str, value, example: str) -> tuple:
    """Layer widths as a tuple of ints >= 1: an int is one layer; anything but a sequence of
    them (a string such as "400,400" included) is a ValueError naming ``name`` and ``example``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of positive ints such as {example}, "
                         f"got {value!r}")
    return tuple(check_int(f"{name}[{i}]", w) for i, w in enumerate(value))


def check_positive(name: str, value, allow_zero: bool = False) -> float:
    """Raise ValueError unless ``value`` is a finite real number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_array(name: str, a, *, ndim: int | None = None, shape: tuple | None = None,
                finite: bool = True, allow_empty: bool = False) -> np.ndarray:
    """Return ``a`` as an ndarray after checking it is real, numeric, of the given shape and finite.

    ``shape`` may hold ``None`` for any size along an axis.
    """
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} must be an array of numbers: {exc}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ValueError(f"{name} must be real, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    if shape is not None:
        ok = len(shape) == a.ndim and all(s is None or s == d for s, d in zip(shape, a.shape))
        if not ok:
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if finite and np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return a


def check_rng(name: str, rng) -> np.random.Generator:
    """Raise ValueError unless ``rng`` is a ``numpy.random.Generator``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_op_shape(where, name, a, expected):
    """ValueError unless ``a`` has shape ``expected``: an op's elementwise products would
    broadcast a wrong shape silently into a wrong number."""
    if np.shape(a) != tuple(expected):
        raise ValueError(f"{where}: {name} must have shape {tuple(expected)}, got {np.shape(a)}")


def check_op_scalar(where, name, value, minimum=0.0, allow_equal=False):
    """ValueError unless ``value`` is one real number > minimum (>= with ``allow_equal``)."""
    ok = np.ndim(value) == 0 and np.isrealobj(value) and (value >= minimum if allow_equal
                                                          else value > minimum)
    if not ok:
        raise ValueError(f"{where}: {name} must be a number {'>=' if allow_equal else '>'} "
                         f"{minimum:g}, got {value!r}")
