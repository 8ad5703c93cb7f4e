"""``vae-np verify``: every claim of the derivation, verified numerically, as one table."""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

from ..derivations import CLAIMS, check_claim_names, run_claims
from .args import WIDTH, fit_lines

COLUMNS = ("claim", "lhs", "rel", "rhs", "error", "tolerance", "unit", "status")
RELATION_SYMBOLS = {"=": "=", "<=": "<=", ">=": ">=", "ratio": "ratio="}
"""How the table shows each relation: ``ratio=`` means lhs is a measured ratio, rhs the claimed
one."""


def register(subparsers):
    p = subparsers.add_parser(
        "verify", help="verify every identity of the VAE derivation numerically",
        description="Run the claims of vae_np.derivations: each computes both sides of one "
                    "identity of the derivation by independent numerical routes (quadrature, exact "
                    "sums, Monte Carlo with standard errors, finite differences, a training run) "
                    "and compares them within a tolerance that comes from the numerics. Prints one "
                    "table; exits 1 if any claim fails.")
    p.add_argument("--claim", action="append", metavar="NAME",
                   help=f"run only this claim (repeatable): one of {', '.join(CLAIMS)}, or a "
                        "record name such as kl_gradient.library")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the results as JSON to FILE (without FILE: print the JSON "
                        "instead of the table)")
    p.add_argument("--markdown", metavar="FILE",
                   help="write the table with the equations and tolerance reasons as Markdown")
    p.add_argument("--wide", action="store_true",
                   help=f"one row per record with every column, however wide (default: two "
                        f"lines per record, the sides below the claim, within {WIDTH} columns)")
    p.add_argument("--figures", metavar="DIR",
                   help="also draw the claims as pictures into DIR (needs the plot extra): the "
                        "Monte Carlo KL, the KL and its gradient, the ELBO gap, the estimators' "
                        "spreads, the Gaussian decoder as sigma -> 0")
    p.set_defaults(func=run_verify)


# --------------------------------------------------------------------------- formatting
def format_value(value, digits=10) -> str:
    """A side of a claim: a float with ``digits`` significant digits, or a tuple of them."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(format_value(v, 6) for v in value) + ")"
    return f"{value:.{digits}g}"


def table_rows(records) -> list:
    return [(r.name, format_value(r.lhs), RELATION_SYMBOLS[r.relation], format_value(r.rhs),
             f"{r.error:.2e}", f"{r.tolerance:.2e}", r.unit or "-", r.status) for r in records]


SIDES_INDENT = 4


def format_table(records, wide=False) -> str:
    """The verify table: claim, lhs, relation, rhs, error, tolerance, their unit, status.

    The relation is "=" (equal within the tolerance), "<=" or ">=" (an inequality: the error is
    the amount by which it is violated, 0 when it holds) or "ratio=" (lhs is a measured ratio, rhs
    the claimed one, error the worst component's deviation); the unit is that of error and
    tolerance ("SE": standard errors of a Monte Carlo mean).

    By default each record takes two lines that fit ``WIDTH`` columns: the claim with its error,
    tolerance, unit and status, then, indented, ``lhs rel rhs`` (rhs on a third line if the two
    sides do not fit one). ``wide``: one row per record with every column, however wide."""
    if wide:
        return _format_wide(records)
    rows = table_rows(records)
    head = ("claim", "error", "tolerance", "unit", "status")
    widths = [max(len(row[i]) for row in [COLUMNS] + rows) for i in (0, 4, 5, 6, 7)]
    lhs_width, rhs_width = (max([len(row[i]) for row in rows if not row[i].startswith("(")]
                                + [3]) for i in (1, 3))     # scalars align; tuples go their way

    def first(cells):
        return "  ".join(f"{c:{'<' if i in (0, 3, 4) else '>'}{w}}"
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    indent = " " * SIDES_INDENT
    lines = [first(head), f"{indent}{'lhs':>{lhs_width}}  {'rel':^6}  {'rhs':>{rhs_width}}",
             "  ".join("-" * w for w in widths)]
    for name, lhs, rel, rhs, *rest in rows:
        lines.append(first((name, *rest)))
        sides = f"{indent}{lhs:>{lhs_width}}  {rel:^6}  {rhs:>{rhs_width}}".rstrip()
        if len(sides) <= WIDTH:
            lines.append(sides)
        else:                                   # long tuples: rhs under lhs, rel before it
            lines += [f"{indent}{lhs}", f"{rel:>{SIDES_INDENT - 1}} {rhs}"]
    return "\n".join(lines)


def _format_wide(records) -> str:
    rows = [COLUMNS] + table_rows(records)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    align = ["<", ">", "^", ">", ">", ">", "<", "<"]
    lines = ["  ".join(f"{cell:{'<' if row is COLUMNS and i == 0 else a}{w}}"
                       for i, (cell, a, w) in enumerate(zip(row, align, widths))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_notes(records, wide=False) -> str:
    """The notes some records carry (ratios, gaps, variances), wrapped to ``WIDTH`` columns
    (``wide``: one line each)."""
    notes = [f"  {r.name}: {r.details['note']}" for r in records if r.details.get("note")]
    if not wide:
        notes = [textwrap.fill(n, WIDTH, subsequent_indent="      ", break_long_words=False,
                               break_on_hyphens=False) for n in notes]
    return "\n".join(["notes:"] + notes) if notes else ""


def _md(text) -> str:
    return str(text).replace("|", "\\|")


def format_markdown(records, seed, seconds) -> str:
    """The table with the equations, then each claim's statement and tolerance reason (Markdown)."""
    passed = sum(r.passed for r in records)
    lines = ["# The VAE derivation, verified numerically", "",
             f"`python -m vae_np verify --seed {seed}`: {passed} of {len(records)} checks passed "
             f"in {seconds:.1f} s.", "",
             "| claim | equation | lhs | rel | rhs | error | tolerance | unit | status |",
             "|---|---|---:|:---:|---:|---:|---:|---|---|"]
    for r in records:
        lines.append(f"| `{r.name}` | {_md(r.equation)} | {_md(format_value(r.lhs))} | "
                     f"{RELATION_SYMBOLS[r.relation]} | {_md(format_value(r.rhs))} | "
                     f"{r.error:.2e} | {r.tolerance:.2e} | {r.unit or '-'} | {r.status} |")
    lines += ["", "## The claims", ""]
    for r in records:
        lines.append(f"- **`{r.name}`** — {r.statement.rstrip('.')}.  ")
        lines.append(f"  `{r.equation}`  ")
        lines.append(f"  Tolerance: {r.tolerance_reason.rstrip('.')}.")
        if r.details.get("note"):
            lines.append(f"  Note: {r.details['note'].rstrip('.')}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- commands
def _check_output(option, value):
    """Refuse an output path that cannot be written before any work is done."""
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{option} {value} is a directory; give a file path")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{option} {value}: directory {path.parent} does not exist")


def run_verify(args) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.json not in (None, "-"):
        _check_output("--json", args.json)
    if args.markdown:
        _check_output("--markdown", args.markdown)
    if args.figures and Path(args.figures).exists() and not Path(args.figures).is_dir():
        raise ValueError(f"--figures {args.figures}: not a directory")
    names = args.claim
    if names:
        check_claim_names(names)
    start = time.perf_counter()
    records = run_claims(names, seed=args.seed)
    seconds = time.perf_counter() - start
    passed = all(r.passed for r in records)
    result = dict(seed=args.seed, passed=passed, seconds=seconds, checks=len(records),
                  failed=[r.name for r in records if not r.passed],
                  claims=[r.to_dict() for r in records])
    if args.json is not None and args.json != "-":
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(records, args.seed, seconds))
    if args.json == "-":
        print(json.dumps(result))
    else:
        print(format_table(records, wide=args.wide))
        notes = format_notes(records, wide=args.wide)
        if notes:
            print("\n" + notes)
        summary = (f"{sum(r.passed for r in records)} of {len(records)} checks passed "
                   f"(seed {args.seed}, {seconds:.1f} s)")
        if not passed:
            summary += "; FAILED: " + ", ".join(result["failed"])
        if not args.wide:
            summary = textwrap.fill(summary, WIDTH, subsequent_indent="  ",
                                    break_long_words=False, break_on_hyphens=False)
        print("\n" + summary)
    if args.figures and _draw_claims(args.figures, args.seed) != 0:
        return 1
    return 0 if passed else 1


def _draw_claims(directory, seed) -> int:
    """Write the claim figures; without matplotlib, say which extra to install (status 1)."""
    from ..figures.claims import write_claim_figures
    from ..figures.runs import PlotUnavailable
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        paths = write_claim_figures(directory, seed=seed)
    except PlotUnavailable as exc:
        print(f"vae-np: {exc}", file=sys.stderr)
        return 1
    print(fit_lines("figures: " + ", ".join(str(p) for p in paths)))
    return 0
