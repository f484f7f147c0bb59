"""The figures the reliability suite proves, collected while it runs and printed at the end.

One :class:`Figures` per pytest session (kept in ``config.stash``, not a module global); tests
add to it through the ``figures`` fixture, and ``pytest_terminal_summary`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
