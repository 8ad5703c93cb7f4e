"""The package's imports point one way: docs/design.md's map, checked on the code itself.

Every module of vae_np has a layer (the table below, by the longest matching prefix); a module
may import from its own layer or a lower one, never from a higher one; the extensions of the
model (objectives, flows, priors, the VQ model) do not know one another. Imports inside functions count: a lazy import is still a dependency. No two
modules import each other, directly or through others.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vae_np"

# layer: the parts of the package it holds, lowest first (docs/design.md, "The map")
LAYERS = [
    ("helpers", ["_validate", "numerics"]),
    ("ops and data", ["ops", "data", "optim", "gradcheck"]),
    ("the model", ["core"]),
    ("extensions", ["objectives", "flows", "priors", "vq.model", "vq.made"]),
    ("training", ["training", "vq.train", "evaluate"]),
    ("runs", ["runs", "vq.runs", "vq.prior", "vq"]),
    ("checks", ["derivations", "testing"]),
    ("lessons and pictures", ["teaching", "figures"]),
    ("command line", ["cli"]),
    ("the package's face", ["__init__", "__main__"]),
]
SIBLINGS = {"objectives", "flows", "priors", "vq.model", "vq.made"}
"""Extensions of the model that must not know one another (each builds on core alone)."""
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def module_name(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts == ["__init__"]:
        return "__init__"
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def place(name):
    """(rank, the prefix that decides it) of a module name relative to vae_np."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANK:
            return RANK[prefix], prefix
    raise AssertionError(f"vae_np.{name} is in no layer of docs/design.md's map: add it to "
                         f"LAYERS in {__file__}")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name, path):
    """The vae_np modules that module ``name`` imports (relative imports, resolved)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    if name == "__init__":
        package = ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            if node.level > 1:
                base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}" if target else alias.name
                found.add(full if full in MODULES else target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            for n in names:
                if n.startswith("vae_np."):
                    found.add(n[len("vae_np."):])
    return {f for f in found if f in MODULES and f != name}


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def upward_or_sideways(graph):
    bad = []
    for name, targets in graph.items():
        rank, prefix = place(name)
        for target in sorted(targets):
            t_rank, t_prefix = place(target)
            if t_rank > rank:
                bad.append(f"{name} -> {target}: up from '{LAYERS[rank][0]}' to "
                           f"'{LAYERS[t_rank][0]}'")
            elif t_prefix != prefix and {prefix, t_prefix} <= SIBLINGS:
                bad.append(f"{name} -> {target}: across '{LAYERS[rank][0]}'")
    return bad


def cycles(graph):
    """Every import cycle, each as a list of modules (Tarjan's strongly connected components)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    for name in MODULES:
        place(name)


def test_no_import_runs_up_a_layer_or_across_one():
    assert upward_or_sideways(GRAPH) == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_top_level_keeps_its_face_and_four_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    others = [n for n in top if n not in ("__init__.py", "__main__.py")]
    assert len(others) <= 4, others


@pytest.mark.parametrize("break_", ["up", "across", "cycle"])
def test_the_checks_find_a_planted_import(break_):
    """Plant one import into a copy of the graph: each kind is found, naming the modules."""
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    if break_ == "up":
        graph["core.model"].add("flows.posterior")              # the model naming flows
        assert any(b.startswith("core.model -> flows.posterior") for b in
                   upward_or_sideways(graph))
    elif break_ == "across":
        graph["objectives.iwae"].add("flows.chain")            # one extension knowing another
        assert any("objectives.iwae -> flows.chain: across" in b for b in
                   upward_or_sideways(graph))
    else:
        graph["figures.canvas"].add("figures.runs")            # the old figures cycle
        assert ["figures.canvas", "figures.latent", "figures.runs"] in cycles(graph) or \
            ["figures.canvas", "figures.runs"] in cycles(graph)
