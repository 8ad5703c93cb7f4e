"""``vae-np lecture``: print the whole training step on one page, ``vae_np.teaching.lecture``."""
from __future__ import annotations

import inspect


def register(subparsers):
    p = subparsers.add_parser(
        "lecture", help="print the whole training step on one page (vae_np.teaching.lecture)",
        description="Print the module vae_np.teaching.lecture: one VAE training step in plain NumPy, "
                    "forward, backward and SGD, one chain-rule factor per line (at most 100 "
                    "columns). tests/teaching/test_lecture.py shows that it computes what "
                    "VAE.trace does.")
    p.set_defaults(func=run_lecture)


def run_lecture(args) -> int:
    from ..teaching import lecture
    print(inspect.getsource(lecture), end="")
    return 0
