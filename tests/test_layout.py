"""The package's layout as docs/architecture.md states it: imports run from early phases to late ones only, there
are no import circles, the runtime never imports the generators, and the doc names every sub-package."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from conftest import REPO

PACKAGE = REPO / "netspec"
# A module may import modules of its own rank or below, never above.
RANKS = {"errors": 0, "ir": 0, "ops": 0, "frontend": 1, "passes": 2, "backends": 3, "pipeline": 4, "train": 5,
         "cli": 6, "generators": 6, "__init__": 6, "__main__": 6, "schema": 0, "specs": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def netspec_imports(path: Path) -> set[str]:
    """Every netspec module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "netspec"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "netspec":
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from netspec.x import module`
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    parts = module.split(".")
    return RANKS["__init__"] if len(parts) == 1 else RANKS[parts[1]]


def import_graph() -> nx.DiGraph:
    modules = all_modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in netspec_imports(path):
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph


def test_every_module_of_the_package_has_a_rank():
    assert {m.split(".")[1] for m in all_modules() if "." in m} <= set(RANKS)


def test_no_module_imports_a_later_phase():
    # The package itself (`from netspec import __version__`) is the public facade, not a phase.
    wrong = [(a, b) for a, b in import_graph().edges
             if rank(b) > rank(a) and not b.startswith(a + ".") and b != "netspec"]
    assert wrong == []


def test_there_are_no_import_circles():
    graph = import_graph()
    # A package's __init__ importing its own modules is how a package assembles itself, not a circle.
    graph.remove_edges_from([(a, b) for a, b in list(graph.edges) if b.startswith(a + ".")])
    assert list(nx.simple_cycles(graph)) == []


def test_the_runtime_never_imports_the_generators():
    graph = import_graph()
    runtime = [m for m in graph if not m.startswith("netspec.generators")]
    assert [(m, t) for m in runtime for t in graph.successors(m) if t.startswith("netspec.generators")] == []


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir()
                                           if p.is_dir() and (p / "__init__.py").exists()))
def test_docs_architecture_names_every_sub_package(package):
    assert f"`netspec/{package}/`" in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_the_checker_sees_an_import_that_runs_the_wrong_way(tmp_path):
    """The rule can fail: an early-phase module importing a backend is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from netspec.backends.fx import to_graph_module\n")
    assert "netspec.backends.fx" in netspec_imports(bad)
    assert rank("netspec.backends.fx") > rank("netspec.frontend.imports")
