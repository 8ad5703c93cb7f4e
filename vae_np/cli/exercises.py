"""``vae-np exercises init DIR`` writes backprop exercise stubs; ``vae-np exercises check FILE``
grades them (property-based checks per exercise; exit 0 only when every exercise passes)."""
from __future__ import annotations

import sys


def register(subparsers):
    p = subparsers.add_parser(
        "exercises", help="backprop exercises that grade themselves",
        description="Write stubs of every backward pass of the VAE (init), then grade your "
                    "answers with property-based checks against numerical derivatives (check).")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="write DIR/backprop_exercises.py with one stub per "
                                       "backward pass")
    init.add_argument("dir", metavar="DIR")
    init.set_defaults(func=run_init)
    check = sub.add_parser("check", help="grade an exercise file; exit 0 only if all pass")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--wide", action="store_true",
                       help="one line per exercise with its example and hint, however wide "
                            "(default: hints wrapped to 100 columns under their exercise)")
    check.set_defaults(func=run_check)


def run_init(args) -> int:
    import textwrap

    from ..teaching.exercises import EXERCISE_NAMES, write_stubs
    path = write_stubs(args.dir)
    print(f"wrote {path}: {len(EXERCISE_NAMES)} exercises")
    print(textwrap.fill(", ".join(EXERCISE_NAMES), 100, initial_indent="  ",
                        subsequent_indent="  "))
    print("fill them in, then check them with")
    print(f"  python -m vae_np exercises check {path}")
    return 0


def run_check(args) -> int:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print('vae-np: error: exercises check needs hypothesis, from the test extra: '
              'pip install "vae_np[test]"', file=sys.stderr)
        return 2
    from ..teaching.exercises import format_table, grade_file
    results = grade_file(args.file)          # a file that cannot be imported: one-line ValueError
    print(format_table(results, wide=args.wide))
    return 0 if all(r.status == "passed" for r in results) else 1
