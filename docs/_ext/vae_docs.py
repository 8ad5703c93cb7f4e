"""What the vae_np site computes while it builds, so that no number on it is typed by hand.

Directives (usable from MyST pages as ``{name}`` fences):

``claim NAME [NAME ...]``
    Runs ``vae_np.derivations.run_claims`` for each claim or record name (``all``: every claim) and
    renders its records: both sides, the relation, the error against the tolerance with its unit
    and the status, then each record's statement, equation, the reason for its tolerance and its
    note. A record that fails is a build warning (an error under ``-W``). Option ``:seed:``
    (default ``vae_docs_claim_seed``). Every claim of ``CLAIMS`` must be named on some page.
``claim-figure NAME``
    Draws ``vae_np.figures.claims.NAME(path)`` into ``docs/_generated/NAME.png`` and shows it.
``results-table NAME``
    Renders ``TABLES[NAME]()`` of results/tables.py, the function that fills the README's
    ``<!-- results: NAME -->`` blocks, from the files in results/. A table whose files do not exist
    yet is replaced by a note naming the missing file; with ``vae_docs_results_strict = True`` it
    is a warning instead.

Docstrings are plain text with ASCII maths (|x| is an absolute value): every ``|`` outside
literals is escaped before numpydoc reads it, so that rST does not take |x| for a substitution.

Docstring examples: every ``>>>`` example in a docstring that autodoc renders is run with the
globals of its module (``doctest``, ELLIPSIS and NORMALIZE_WHITESPACE); a failing example is a build
warning naming the object.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import io
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOG = logging.getLogger(__name__)
_CLAIM_CACHE: dict = {}


# --------------------------------------------------------------------------- helpers
def _text_table(header, rows, aligns) -> nodes.table:
    """A docutils table of plain-text cells; ``aligns`` per column ("left", "right", "center")."""
    table = nodes.table(classes=["vae-claims"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    for target, cells in [(head, header)] + [(body, row) for row in rows]:
        row_node = nodes.row()
        for cell, align in zip(cells, aligns):
            entry = nodes.entry(classes=[f"text-{align}"])
            entry += nodes.paragraph(text=str(cell))
            row_node += entry
        target += row_node
    return table


def _literal_paragraph(label, text):
    para = nodes.paragraph()
    para += nodes.strong(text=label)
    para += nodes.Text(" ")
    para += nodes.literal(text=text)
    return para


def _text_paragraph(label, text):
    para = nodes.paragraph()
    para += nodes.strong(text=label)
    para += nodes.Text(" " + text)
    return para


# --------------------------------------------------------------------------- claims
def run_claim(name, seed):
    """The records of one claim or record name (``all``: every claim), computed once per build."""
    from vae_np.derivations import run_claims

    key = (name, seed)
    if key not in _CLAIM_CACHE:
        _CLAIM_CACHE[key] = run_claims(None if name == "all" else name, seed=seed)
    return _CLAIM_CACHE[key]


class ClaimDirective(SphinxDirective):
    """Run claims of vae_np.derivations at build time and render their records."""

    required_arguments = 1
    optional_arguments = 20
    option_spec = {"seed": directives.nonnegative_int, "brief": directives.flag}

    def run(self):
        from vae_np.cli.verify import RELATION_SYMBOLS, format_value

        seed = self.options.get("seed", self.config.vae_docs_claim_seed)
        shown = getattr(self.env, "vae_docs_claims", {})
        shown.setdefault(self.env.docname, set()).update(
            n.split(".")[0] for n in self.arguments if n != "all")
        self.env.vae_docs_claims = shown
        records = []
        for name in self.arguments:
            try:
                records.extend(run_claim(name, seed))
            except ValueError as exc:
                LOG.warning(f"claim {name!r}: {exc}", location=self.get_location())
                return []
        failed = [r.name for r in records if not r.passed]
        if failed:
            LOG.warning(f"claims failed at seed {seed}: {', '.join(failed)}",
                        location=self.get_location())
        names = " ".join(f"--claim {n}" for n in self.arguments if n != "all")
        rows = [(r.name, format_value(r.lhs), RELATION_SYMBOLS[r.relation], format_value(r.rhs),
                 f"{r.error:.2e}", f"{r.tolerance:.2e}", r.unit or "-", r.status)
                for r in records]
        container = nodes.container(classes=["vae-claim"])
        intro = nodes.paragraph()
        intro += nodes.Text(f"Computed while this page was built ({len(records)} records, seed "
                            f"{seed}, {len(records) - len(failed)} passed); the same records: ")
        intro += nodes.literal(text=f"python -m vae_np verify {names}".rstrip())
        container += intro
        container += _text_table(
            ("record", "lhs", "rel", "rhs", "error", "tolerance", "unit", "status"), rows,
            ("left", "right", "center", "right", "right", "right", "left", "left"))
        if "brief" in self.options:
            return [container]
        items = nodes.bullet_list()
        for r in records:
            item = nodes.list_item()
            head = nodes.paragraph()
            head += nodes.literal(text=r.name)
            head += nodes.Text(": " + r.statement)
            item += head
            item += _literal_paragraph("equation", r.equation)
            item += _text_paragraph("tolerance:", r.tolerance_reason)
            if r.details.get("note"):
                item += _text_paragraph("note:", r.details["note"])
            items += item
        container += items
        return [container]


def purge_claims(app, env, docname):
    getattr(env, "vae_docs_claims", {}).pop(docname, None)


def check_every_claim_shown(app, env):
    """Every claim of vae_np.derivations.CLAIMS has a page that shows it (by name, not only in
    the table of all of them): a new claim without its step of the derivation is a warning."""
    from vae_np.derivations import CLAIMS

    shown = set().union(*getattr(env, "vae_docs_claims", {}).values())
    missing = [name for name in CLAIMS if name not in shown]
    if missing:
        LOG.warning(f"claims shown on no page of the derivation: {', '.join(missing)} (add a "
                    f"claim directive naming each to its step's page, docs/derivation/)")


# --------------------------------------------------------------------------- claim figures
class ClaimFigureDirective(SphinxDirective):
    """Draw one of vae_np.figures.claims' pictures at build time."""

    required_arguments = 1
    option_spec = {"alt": directives.unchanged}

    def run(self):
        from vae_np.figures import claims

        name = self.arguments[0]
        draw = getattr(claims, name, None)
        if not callable(draw):
            LOG.warning(f"vae_np.figures.claims has no figure {name!r}",
                        location=self.get_location())
            return []
        out = Path(self.env.srcdir) / "_generated"
        out.mkdir(exist_ok=True)
        path = out / f"{name}.png"
        kwargs = {"seed": self.config.vae_docs_claim_seed} \
            if "seed" in inspect.signature(draw).parameters else {}
        draw(path, **kwargs)
        figure = nodes.figure()
        figure += nodes.image(uri=f"/_generated/{name}.png", alt=self.options.get("alt", name))
        caption = nodes.caption()
        caption += nodes.Text("Drawn while this page was built by ")
        caption += nodes.literal(text=f"vae_np.figures.claims.{name}")
        caption += nodes.Text(" (python -m vae_np verify --figures DIR draws them all).")
        figure += caption
        return [figure]


# --------------------------------------------------------------------------- results tables
def load_tables(results_dir):
    spec = importlib.util.spec_from_file_location("results_tables", Path(results_dir) / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ResultsTableDirective(SphinxDirective):
    """One table of results/tables.py, rendered from the files in results/."""

    required_arguments = 1

    def run(self):
        results_dir = Path(self.config.vae_docs_results_dir)
        tables = load_tables(results_dir)
        name = self.arguments[0]
        if name not in tables.TABLES:
            LOG.warning(f"unknown results table {name!r}; results/tables.py has "
                        f"{', '.join(tables.TABLES)}", location=self.get_location())
            return []
        try:
            text = tables.TABLES[name]()
        except FileNotFoundError as exc:
            missing = Path(exc.filename or "?")
            try:
                missing = missing.resolve().relative_to(results_dir.parent)
            except ValueError:
                pass
            # regenerate.sh's table names; the benchmark tables come from benchmarks/bench_fit.py
            script = "vq" if name.startswith("vq_") else name.split("_stages")[0]
            command = (f"bash results/regenerate.sh {script}" if not name.startswith("bench_")
                       else "python benchmarks/bench_fit.py --json (docs/benchmarks.md)")
            message = (f"results table {name!r} is not rendered: {missing} does not exist yet "
                       f"({command} writes it)")
            if self.config.vae_docs_results_strict:
                LOG.warning(message, location=self.get_location())
            else:
                LOG.info(message)
            note = nodes.note()
            para = nodes.paragraph()
            para += nodes.Text("Not yet measured: this table is rendered from ")
            para += nodes.literal(text=str(missing))
            para += nodes.Text(", which does not exist yet; ")
            para += nodes.literal(text=command)
            para += nodes.Text(" writes it.")
            note += para
            return [note]
        container = nodes.container(classes=["vae-results"])
        self.state.nested_parse(StringList(text.split("\n"), source=f"results/tables.py:{name}"),
                                self.content_offset, container)
        return [container]


# --------------------------------------------------------------------------- plain-text maths
_LITERAL_SPAN = re.compile(r"(``.+?``)")
_BULLET = re.compile(r"^(\s*)([-*+]|\d+\.)\s+")
_ENTRY_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises",
                   "Warns", "Attributes", "Methods", "See Also"}


def _indent(line):
    return len(line) - len(line.lstrip())


def preformat_equation_blocks(app, what, name, obj, options, lines):
    """Keep the docstrings' equation blocks as laid out: a block indented deeper than the
    paragraph before it (after a blank line), and a paragraph whose lines hang (a line indented
    deeper than the one it continues) or line up columns, is preformatted text, the way
    ``help()`` shows it, so it becomes a literal block (a ``::`` line is put before it) instead
    of an rST block quote or paragraph, which would run its lines together. Blocks already
    literal (after ``::``), doctest blocks, tables, list items' own paragraphs and the entries of
    numpydoc's Parameters-like sections (where an indented line is the description) are left
    alone."""
    out, section, previous, i = [], None, None, 0     # previous: the last non-blank line
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if i + 1 < len(lines) and stripped and set(lines[i + 1].strip()) == {"-"} \
                and len(lines[i + 1].strip()) >= 3:
            section = stripped
        if stripped and previous is not None and i > 0 and not lines[i - 1].strip() \
                and not previous.rstrip().endswith("::") and not stripped.startswith(">>>"):
            base = _indent(previous)
            bullet = _BULLET.match(previous)
            if bullet:
                base = len(bullet.group(0))
            entry_line = section in _ENTRY_SECTIONS and _indent(previous) == 0
            if _indent(line) > base and not entry_line:
                out += [" " * base + "::", ""]
                while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                    out.append(lines[i])
                    i += 1
                if i < len(lines) and out[-1].strip():
                    out.append("")             # the text after the block starts a paragraph
                previous = out[-1] if out[-1].strip() else next(
                    l for l in reversed(out) if l.strip())
                continue
        starts_paragraph = stripped and i > 0 and not lines[i - 1].strip()
        if starts_paragraph and previous is not None and not previous.rstrip().endswith("::") \
                and not stripped.startswith(">>>") \
                and not (section in _ENTRY_SECTIONS and _indent(line) == 0):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            paragraph = lines[i:end]
            if (_hanging(paragraph) or _aligned(paragraph)) \
                    and not any(set(l.strip()) <= {"-", "=", " "} for l in paragraph):
                base = " " * _indent(line)
                out += [base + "::", ""] + ["    " + l for l in paragraph]
                previous = out[-1]
                i = end
                continue
        out.append(line)
        if stripped:
            previous = line
        i += 1
    lines[:] = out


def _aligned(paragraph):
    """Whether a paragraph of several lines lines up columns (a run of three spaces inside a
    line): equations written one per line, which prose would run together."""
    return len(paragraph) >= 2 and any(re.search(r"\S {3,}\S", line) for line in paragraph)


def _hanging(paragraph):
    """Whether a paragraph has a line indented deeper than the line that governs it (its first
    line, or the text of the list item it continues): text laid out by hand."""
    base = _indent(paragraph[0])
    for line in paragraph:
        bullet = _BULLET.match(line)
        if bullet and _indent(line) <= base:
            base = len(bullet.group(0))
            continue
        if _indent(line) > base:
            return True
        base = min(base, _indent(line)) if not bullet else base
    return False


_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)(?=[^\s*])(?:.+?)(?<=[^\s*\\])\1(?![\w*])")


def _escape_text(text):
    """``|`` and every ``*`` that is not part of an *emphasis* or **strong** span, escaped."""
    out, last = [], 0
    for match in _EMPHASIS.finditer(text):
        out.append(text[last:match.start()].replace("|", r"\|").replace("*", r"\*"))
        out.append(match.group(0).replace("|", r"\|"))
        last = match.end()
    out.append(text[last:].replace("|", r"\|").replace("*", r"\*"))
    return "".join(out)


def escape_plain_maths(app, what, name, obj, options, lines):
    """Keep the docstrings' plain-text maths as written: |x| is an absolute value, not an rST
    substitution reference, and a * in callable(*inputs, **kwargs) or 2*x*y is not emphasis, so
    every ``|``, and every ``*`` outside an *emphasis* or **strong** span, is escaped outside
    inline literals, literal blocks (after ``::``) and doctest blocks, before numpydoc reads the
    docstring."""
    literal_indent = None        # the indentation of the line that opened a literal block
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            in_doctest = False
            continue
        if literal_indent is not None:
            if indent > literal_indent:
                continue
            literal_indent = None
        if in_doctest or stripped.startswith(">>>"):
            in_doctest = True
            continue
        if "|" in line or "*" in line:
            bullet = _BULLET.match(line)
            head = bullet.group(0) if bullet else ""        # a list item's "* " stays a bullet
            parts = _LITERAL_SPAN.split(line[len(head):])
            lines[i] = head + "".join(part if k % 2 else _escape_text(part)
                                      for k, part in enumerate(parts))
        if stripped.endswith("::"):
            literal_indent = indent


# --------------------------------------------------------------------------- docstring examples
_RAN: set = set()
_COUNTS = {"objects": 0, "examples": 0}


def run_docstring_examples(app, what, name, obj, options, lines):
    """Run the ``>>>`` examples of each docstring autodoc renders; a failure is a warning."""
    doc = obj.__doc__ if what == "module" else inspect.getdoc(obj)
    if not isinstance(doc, str) or ">>>" not in doc:
        return
    home = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None) or ""
    if home.split(".")[0] != "vae_np":        # an imported object (scipy's minimize, ...)
        return
    if not inspect.ismodule(obj):             # once, under the name where it is defined
        name = f"{home}.{getattr(obj, '__qualname__', name.rsplit('.', 1)[-1])}"
    if name in _RAN:
        return
    _RAN.add(name)
    module = obj if inspect.ismodule(obj) else inspect.getmodule(obj)
    globs = dict(vars(module)) if module is not None else {}
    test = doctest.DocTestParser().get_doctest(doc, globs, name, getattr(module, "__file__", None),
                                               0)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=out.write)
    _COUNTS["objects"] += 1
    _COUNTS["examples"] += result.attempted
    if result.failed:
        report = re.sub(r"\*{20,}\n", "", out.getvalue()).strip()
        LOG.warning(f"docstring example of {name} failed:\n{report}")


# --------------------------------------------------------------------------- re-exported names
def _lookup(dotted):
    """The object a dotted name imports to, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def resolve_reexports(app, env, node, contnode):
    """Resolve a Python cross-reference to a name that a package re-exports (``:class:`Dataset```
    in vae_np.data) to the place where the API reference documents it (where it is defined:
    vae_np.data.dataset.Dataset). Data (a tuple, a dict) has no __module__: its name is looked
    up among the documented objects of the modules below the reference's own."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    context = node.get("py:module") or ""
    domain = env.get_domain("py")
    candidates = [target]
    if context:
        candidates += [f"{context}.{target}", f"{context.rsplit('.', 1)[0]}.{target}"]
    for name in candidates:
        obj = _lookup(name)
        if obj is None:
            continue
        if inspect.ismodule(obj):
            canonical = obj.__name__
        elif getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
            canonical = f"{obj.__module__}.{obj.__qualname__}"
        else:
            short, package = name.rsplit(".", 1)[-1], name.rsplit(".", 1)[0]
            found = [key for key in domain.objects
                     if key.startswith(package + ".") and key.rsplit(".", 1)[-1] == short]
            canonical = found[0] if len(found) == 1 else None
        if canonical and canonical in domain.objects and canonical != target:
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                       canonical, node, contnode)
    # out of its module's context (an autosummary table shows a summary line elsewhere): the one
    # documented object of that name, if there is exactly one
    found = [key for key in domain.objects if key.split(".")[0] == "vae_np"
             and key.endswith("." + target)]
    if len(found) == 1:
        return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], found[0],
                                   node, contnode)
    return None


# --------------------------------------------------------------------------- CLI help text
def plain_help(items, markdown_help=False, settings=None):
    """sphinx-argparse's ``render_list`` for help text that is plain text, as argparse prints it:
    each paragraph verbatim (|x|, * and _ are not markup), a paragraph with indented lines as a
    literal block. sphinx-argparse would parse each help string as rST in a document of its own,
    whose complaints go to stderr, past ``-W``."""
    out = []
    for item in items:
        if isinstance(item, nodes.definition):
            out += item
            continue
        if not isinstance(item, str):
            continue
        for block in re.split(r"\n\s*\n", item.strip("\n")):
            lines = block.split("\n")
            if any(line[:1].isspace() for line in lines[1:]):
                out.append(nodes.literal_block(block, block))
            elif block.strip():
                out.append(nodes.paragraph(text=" ".join(block.split())))
    return out


def report_counts(app, exception):
    if exception is None and _COUNTS["objects"]:
        LOG.info(f"vae_docs: ran {_COUNTS['examples']} docstring examples of "
                 f"{_COUNTS['objects']} objects")


def setup(app):
    import sphinxarg.ext
    sphinxarg.ext.render_list = plain_help
    app.add_config_value("vae_docs_results_dir", "results", "env")
    app.add_config_value("vae_docs_results_strict", False, "env")
    app.add_config_value("vae_docs_claim_seed", 0, "env")
    app.add_directive("claim", ClaimDirective)
    app.add_directive("claim-figure", ClaimFigureDirective)
    app.add_directive("results-table", ResultsTableDirective)
    app.connect("autodoc-process-docstring", preformat_equation_blocks, priority=300)
    app.connect("autodoc-process-docstring", escape_plain_maths, priority=400)   # before numpydoc
    app.connect("autodoc-process-docstring", run_docstring_examples)
    app.connect("env-purge-doc", purge_claims)
    app.connect("env-check-consistency", check_every_claim_shown)
    app.connect("missing-reference", resolve_reexports)
    app.connect("build-finished", report_counts)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
