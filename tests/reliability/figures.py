"""The figures the reliability suite proves, collected while it runs and printed at the end.

One :class:`Figures` per pytest session (kept in ``config.stash``, not a module global); tests
add to it through the ``figures`` fixture, and ``pytest_terminal_summary`` prints it. This module
is a plugin of the root conftest, not of ``tests/reliability/conftest.py``: under pytest-xdist the
controller collects nothing, so only a plugin it loads at start-up can gather the workers'
figures (each worker sends its own at the end) and print them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pytest

LONG = os.environ.get("CLEARANCE_LONG", "") not in ("", "0")
_FIGURES = pytest.StashKey["Figures"]()
_WORKER_OUTPUT = "clearance_reliability_figures"


@dataclass
class Figures:
    requests_under_fault: int = 0  # answered (or refused) while PostgreSQL or the server was down
    decisions_200: int = 0  # decisions answered 200 during fault and concurrency runs
    decisions_lost: int = 0  # of those, not found in the trail: must stay 0
    tamper_cases: dict[str, bool] = field(default_factory=dict)  # case -> caught as expected
    fuzz_cases: int = 0
    fuzz_statuses: dict[str, int] = field(default_factory=dict)  # "2xx" / "4xx" / "5xx" -> count
    fuzz_operations: set[str] = field(default_factory=set)
    # query strings, cursors, headers and path values sent to every endpoint (test_fuzz.py)
    probe_cases: int = 0
    probe_statuses: dict[str, int] = field(default_factory=dict)
    matrix_cells: int = 0
    matrix_endpoints: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.decisions_200 or self.tamper_cases or self.fuzz_cases or self.matrix_cells
                    or self.probe_cases)

    def lines(self) -> list[str]:
        caught = sum(self.tamper_cases.values())
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.fuzz_statuses.items()))
        probes = ", ".join(f"{k}: {v}" for k, v in sorted(self.probe_statuses.items()))
        figures = [
            ("requests under fault", self.requests_under_fault, f"{self.requests_under_fault}"),
            ("decisions answered 200", self.decisions_200, f"{self.decisions_200} (under fault and load)"),
            ("decisions lost", self.decisions_200, f"{self.decisions_lost} (must be 0)"),
            ("tamper cases caught", len(self.tamper_cases), f"{caught}/{len(self.tamper_cases)}"),
            ("fuzz cases run", self.fuzz_cases,
             f"{self.fuzz_cases} over {len(self.fuzz_operations)} operations ({statuses})"),
            ("query/cursor/header cases", self.probe_cases, f"{self.probe_cases} over every endpoint ({probes})"),
            ("authorization matrix", self.matrix_cells,
             f"{self.matrix_cells} cells ({len(self.matrix_endpoints)} endpoints x "
             f"{self.matrix_cells // max(1, len(self.matrix_endpoints))} callers)"),
        ]
        lines = [f"{name:<26}{text if ran else 'not run'}" for name, ran, text in figures]
        missed = sorted(name for name, ok in self.tamper_cases.items() if not ok)
        if missed:
            lines.append(f"tamper cases NOT caught   {', '.join(missed)}")
        return lines + self.notes

    def to_wire(self) -> dict[str, Any]:
        """These figures in plain types, as a pytest-xdist worker sends them (no sets)."""
        wire = asdict(self)
        wire["fuzz_operations"] = sorted(self.fuzz_operations)
        wire["matrix_endpoints"] = sorted(self.matrix_endpoints)
        return wire

    def add(self, wire: dict[str, Any]) -> None:
        """Adds another process's figures (:meth:`to_wire`) to these."""
        for name in (f.name for f in fields(self)):
            mine, theirs = getattr(self, name), wire[name]
            if isinstance(mine, int):
                setattr(self, name, mine + theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            elif isinstance(mine, set) or name == "tamper_cases":
                mine.update(theirs)
            else:  # status counts
                for key, count in theirs.items():
                    mine[key] = mine.get(key, 0) + count


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES] = Figures()
    config.addinivalue_line("markers", "reliability: the reliability and security proof (tests/reliability)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set on a pytest-xdist worker only
    if output is not None:
        output[_WORKER_OUTPUT] = session.config.stash[_FIGURES].to_wire()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without the plugin
def pytest_testnodedown(node: Any, error: object) -> None:
    wire = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if wire is not None:
        node.config.stash[_FIGURES].add(wire)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, None)
    if figures is None or figures.empty():
        return
    mode = "long mode (CLEARANCE_LONG=1)" if LONG else "default mode"
    terminalreporter.section(f"Clearance reliability figures, {mode}")
    for line in figures.lines():
        terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return request.config.stash[_FIGURES]
