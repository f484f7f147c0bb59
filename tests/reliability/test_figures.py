"""The figures of two pytest-xdist workers add up to what one process would have printed."""

from __future__ import annotations

from .figures import Figures


def _worker(seed: int) -> Figures:
    figures = Figures(requests_under_fault=seed, decisions_200=10 * seed, fuzz_cases=seed, matrix_cells=3 * seed)
    figures.tamper_cases[f"case-{seed}"] = True
    figures.fuzz_statuses["4xx"] = seed
    figures.fuzz_operations.update({"GET /a", f"GET /{seed}"})
    figures.matrix_endpoints.add(f"GET /{seed}")
    figures.notes.append(f"note {seed}")
    return figures


def test_workers_figures_add_up() -> None:
    controller = Figures()
    assert controller.empty()
    for seed in (1, 2):
        controller.add(_worker(seed).to_wire())

    assert (controller.requests_under_fault, controller.decisions_200, controller.fuzz_cases) == (3, 30, 3)
    assert controller.tamper_cases == {"case-1": True, "case-2": True}
    assert controller.fuzz_statuses == {"4xx": 3}
    assert controller.fuzz_operations == {"GET /a", "GET /1", "GET /2"}
    assert controller.matrix_endpoints == {"GET /1", "GET /2"} and controller.matrix_cells == 9
    assert controller.notes == ["note 1", "note 2"]
    assert "tamper cases caught       2/2" in controller.lines()
