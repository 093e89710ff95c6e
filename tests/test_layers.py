"""Which package may import which: the rules of docs/architecture.md, read from the source.

Every module under ``molehunt/`` is parsed with :mod:`ast`; every ``import`` counts, at
module level or inside a function (a lazy import is still a dependency), except those
under ``if TYPE_CHECKING:`` (they never run). The nodes of the package graph are the
first name under ``molehunt``: a package (``detect``, ``ingest``, ``pii``, ``store``,
``web`` ...) or a top-level module (``config``, ``errors``, ``score`` ...); the package's
own ``__init__`` is the node ``molehunt``. Imports inside one node are not edges.

An import that breaks a rule today because its fix belongs to another part of issue 15
is listed in ``KNOWN_EXCEPTIONS`` with its reason; a test fails once it is gone, so the
list only shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "molehunt"
DOCS = ROOT / "docs" / "architecture.md"

#: The faces: what users run. Nothing below them imports them.
FACES = frozenset({"cli", "web", "demo", "quality", "__main__"})
#: The base layer: settings, errors, the store, its keys and audit trail, times, digests,
#: made-up people and the compute engines. It imports only itself; every other node may import it.
BASE = frozenset(
    {
        "molehunt",
        "config",
        "errors",
        "store",
        "keys",
        "audit",
        "times",
        "digests",
        "synthetic",
        "compute",
    }
)
#: Pairs of nodes that must not depend on each other in this direction.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("detect", "ingest"): "detection reads the store, never the parsers",
    ("detect", "web"): "detection is below the faces",
    ("pii", "detect"): "the PII scanner serves detection, not the other way round",
    ("attribute", "detect"): "attribution and detection are siblings; who-is-who is shared",
}

#: (importing module, imported module) -> why it is allowed for now, and whose work removes it.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True, slots=True)
class Edge:
    """One import: ``importer`` (a module) imports ``imported`` (a module or package)."""

    importer: str
    imported: str
    line: int

    @property
    def nodes(self) -> tuple[str, str]:
        return node(self.importer), node(self.imported)


def node(module: str) -> str:
    """The package-graph node of a module: the first name under ``molehunt``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def imports_of(source: str, module: str, *, is_package: bool, known: frozenset[str]) -> list[Edge]:
    """The molehunt modules ``module`` imports, anywhere in ``source`` but under
    ``if TYPE_CHECKING:``. ``known`` names every module, so ``from molehunt import x``
    counts as importing ``molehunt.x`` when that is a module."""
    edges: list[Edge] = []
    here = module.split(".") if is_package else module.split(".")[:-1]
    stack: list[ast.AST] = [ast.parse(source)]
    while stack:
        for child in ast.iter_child_nodes(stack.pop()):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.append(ast.Module(body=child.orelse, type_ignores=[]))
                continue
            stack.append(child)
            if isinstance(child, ast.Import):
                edges += [
                    Edge(module, a.name, child.lineno)
                    for a in child.names
                    if a.name.split(".")[0] == "molehunt"
                ]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here[: len(here) - (child.level - 1)]
                    target = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    target = child.module or ""
                if target.split(".")[0] != "molehunt":
                    continue
                for a in child.names:
                    sub = f"{target}.{a.name}"
                    edges.append(Edge(module, sub if sub in known else target, child.lineno))
    return edges


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
EDGES = [
    edge
    for module, path in MODULES.items()
    for edge in imports_of(
        path.read_text(encoding="utf-8"),
        module,
        is_package=path.name == "__init__.py",
        known=frozenset(MODULES),
    )
]
NODES = sorted({node(m) for m in MODULES})


def _is_face(name: str) -> bool:
    return name in FACES or name.startswith("cli") or name.endswith("_cli")


def broken_rules(edge: Edge) -> list[str]:
    """The rules one import breaks (none when it stays inside its node)."""
    src, dst = edge.nodes
    if src == dst:
        return []
    rules: list[str] = []
    if (src, dst) in FORBIDDEN:
        rules.append(f"{src} must not import {dst}: {FORBIDDEN[src, dst]}")
    if _is_face(dst) and not _is_face(src):
        rules.append(f"{src} is below the faces and must not import the face {dst}")
    if src in BASE and dst not in BASE:
        rules.append(f"{src} is in the base layer and must not import {dst}")
    return rules


def _where(edge: Edge) -> str:
    path = MODULES[edge.importer].relative_to(ROOT)
    return f"{path}:{edge.line}: {edge.importer} imports {edge.imported}"


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph(edges: list[Edge], allowed: frozenset[tuple[str, str]]) -> dict[str, set[str]]:
    """Node -> the nodes it imports, leaving out the imports listed in ``allowed``."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        src, dst = edge.nodes
        if src != dst and (edge.importer, edge.imported) not in allowed:
            graph.setdefault(src, set()).add(dst)
    return graph


def _violations() -> Iterator[str]:
    for edge in EDGES:
        if (edge.importer, edge.imported) in KNOWN_EXCEPTIONS:
            continue
        for rule in broken_rules(edge):
            yield f"{_where(edge)} ({rule})"


def test_no_import_breaks_a_layer_rule() -> None:
    assert list(_violations()) == []


def test_the_package_graph_has_no_cycle() -> None:
    found = cycles(package_graph(EDGES, frozenset(KNOWN_EXCEPTIONS)))
    detail = [
        _where(e)
        for e in EDGES
        if any(set(e.nodes) <= set(c) and e.nodes[0] != e.nodes[1] for c in found)
    ]
    assert found == [], detail


@pytest.mark.parametrize(("importer", "imported"), sorted(KNOWN_EXCEPTIONS))
def test_every_known_exception_still_occurs(importer: str, imported: str) -> None:
    """Remove an exception here once the import it allows is gone, or breaks no rule and
    closes no cycle."""
    edges = [e for e in EDGES if (e.importer, e.imported) == (importer, imported)]
    assert edges, f"{importer} no longer imports {imported}: remove it from KNOWN_EXCEPTIONS"
    others = frozenset(KNOWN_EXCEPTIONS) - {(importer, imported)}
    closes_cycle = any(set(edges[0].nodes) <= set(c) for c in cycles(package_graph(EDGES, others)))
    assert closes_cycle or any(broken_rules(e) for e in edges), (
        f"{importer} -> {imported} breaks no rule and closes no cycle now"
    )


def test_the_scanner_counts_lazy_imports_and_skips_type_checking() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import molehunt.store\n"
        "from molehunt import config\n"
        "if TYPE_CHECKING:\n"
        "    from molehunt.web import app\n"
        "else:\n"
        "    import molehunt.times\n"
        "def late() -> None:\n"
        "    from molehunt.ingest.lake import ingest_to_lake\n"
        "    from .settings import DetectionSettings\n"
    )
    known = frozenset({"molehunt.config", "molehunt.detect.settings"})
    edges = imports_of(source, "molehunt.detect.base", is_package=False, known=known)
    assert sorted((e.imported, e.line) for e in edges) == [
        ("molehunt.config", 4),
        ("molehunt.detect.settings", 11),
        ("molehunt.ingest.lake", 10),
        ("molehunt.store", 3),
        ("molehunt.times", 8),
    ]
    assert broken_rules(Edge("molehunt.detect.base", "molehunt.ingest.lake", 10))
    assert not broken_rules(Edge("molehunt.detect.base", "molehunt.store", 3))


def test_the_rules_catch_what_they_forbid() -> None:
    assert broken_rules(Edge("molehunt.detect.runner", "molehunt.web.app", 1))
    assert broken_rules(Edge("molehunt.pii.scan", "molehunt.detect", 1))
    assert broken_rules(Edge("molehunt.score", "molehunt.cli", 1))
    assert broken_rules(Edge("molehunt.store.store", "molehunt.detect.base", 1))
    assert not broken_rules(Edge("molehunt.cli", "molehunt.web", 1))
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_scan_reads_the_real_tree() -> None:
    assert len(MODULES) > 100
    assert Edge("molehunt.detect.runner", "molehunt.detect.engines", 0).nodes == (
        "detect",
        "detect",
    )
    assert any(e.importer == "molehunt.detect.engines" for e in EDGES)
    assert {"detect", "ingest", "pii", "store", "web", "config"} <= set(NODES)


@pytest.mark.parametrize("name", NODES)
def test_every_node_is_in_the_architecture_doc(name: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Packages and the direction of their imports", 1)[1].split("\n## ")[0]
    assert f"`{name}`" in section, f"docs/architecture.md does not say what {name} holds"
