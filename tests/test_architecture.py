"""The dependency rule and the absence of import cycles, checked on the real import graph.

The graph comes from ``grimp`` (every ``import`` statement of the packages, those inside
functions included). Each module belongs to one component; a direct import from one component
to another must be in ``ALLOWED``, and no set of modules may import each other in a circle.
docs/architecture.md states the same rule in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

PACKAGES = ("api", "policy", "audit", "migrations", "clearance")

# component -> the components it may import directly (besides itself).
ALLOWED: Mapping[str, frozenset[str]] = {
    "api": frozenset({"policy", "policy.review", "audit", "clearance"}),
    "policy.review": frozenset({"policy", "clearance"}),
    "policy": frozenset({"clearance"}),  # the decision core
    "audit": frozenset({"migrations", "clearance"}),  # audit applies the migrations
    "migrations": frozenset(),
    "clearance": frozenset(),
}

Graph = Mapping[str, Iterable[str]]  # module -> the modules it imports directly


def component(module: str) -> str:
    """``policy.review.check`` -> ``policy.review``; ``policy.engine`` -> ``policy``."""
    if module == "policy.review" or module.startswith("policy.review."):
        return "policy.review"
    return module.split(".", 1)[0]


def violations(graph: Graph) -> list[str]:
    """Every direct import that crosses components against ``ALLOWED``.

    Direct imports suffice: any chain of imports from one component into another crosses the
    boundary somewhere with a direct import, which is judged here.
    """
    found = []
    for importer, imported_modules in sorted(graph.items()):
        source = component(importer)
        for imported in sorted(imported_modules):
            target = component(imported)
            if target != source and target not in ALLOWED[source]:
                found.append(f"{importer} -> {imported} ({source} may not import {target})")
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    imports = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {m: set(imports.find_modules_directly_imported_by(m)) for m in imports.modules}


def test_every_module_is_in_a_known_component(graph: dict[str, set[str]]) -> None:
    assert {component(m) for m in graph} <= set(ALLOWED)
    assert {"policy.review.check", "policy.decision", "audit.entry", "api.decider"} <= set(graph)


def test_imports_follow_the_dependency_rule(graph: dict[str, set[str]]) -> None:
    found = violations(graph)
    assert not found, "imports against the dependency rule (docs/architecture.md):\n" + "\n".join(found)


def test_there_are_no_import_cycles(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "modules importing each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cli_does_not_import_routers(graph: dict[str, set[str]]) -> None:
    cli = [m for m in graph if m == "api.cli" or m.startswith("api.cli_")]
    assert cli
    found = [f"{m} -> {i}" for m in cli for i in graph[m] if i.startswith("api.routers")]
    assert not found, found


# -- the checks themselves catch what they must ---------------------------------------------------


def test_the_rule_catches_a_forbidden_import() -> None:
    graph = {
        "audit.store": {"policy.decision"},  # audit may not import policy
        "policy.decision": {"policy.review.diff"},  # the core may not import review
        "policy.review.diff": {"policy.decision", "clearance.errors"},  # allowed
        "api.cli": {"audit.store", "policy.review.check"},  # allowed
        "migrations.env": {"audit._db"},  # the migrations may not import audit
    }
    assert violations(graph) == [
        "audit.store -> policy.decision (audit may not import policy)",
        "migrations.env -> audit._db (migrations may not import audit)",
        "policy.decision -> policy.review.diff (policy may not import policy.review)",
    ]


def test_the_cycle_check_catches_a_cycle() -> None:
    graph = {
        "api.cli": {"api.cli_audit"},
        "api.cli_audit": {"api.cli"},
        "policy.engine": {"policy.opa"},
        "policy.opa": {"policy.review.testing"},
        "policy.review.testing": {"policy.opa", "policy.bundle"},
        "policy.bundle": set(),
    }
    assert cycles(graph) == [["api.cli", "api.cli_audit"], ["policy.opa", "policy.review.testing"]]
