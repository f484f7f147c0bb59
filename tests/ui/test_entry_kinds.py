"""Every kind of entry on the page, in a real headless Chromium: decisions, served-route reports
(cleared and not), accepted and refused policy reloads — all made through the API of a running
server. (The chain has no other kinds: signing keys are registered in their own table.)"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from api.apikeys import Role, create_key
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from tests.api.conftest import api_database, make_settings  # noqa: F401 (fixture)
from tests.bundles import break_rego, copy_bundle, lower_llama_cap
from tests.ui.conftest import Site, serving, sign_in

# regorus VMs are bound to the thread that made them (the server thread decides; pytest drops the
# services at teardown), as in tests/api/test_reload.py.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@dataclass(frozen=True)
class Trail:
    site: Site
    kinds: dict[int, str]  # seq -> what it records


@pytest.fixture(scope="module")
def trail(api_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    home = tmp_path_factory.mktemp("home")
    bundle = copy_bundle(tmp_path_factory.mktemp("policy") / "rego")
    services = Services.start(make_settings(home, api_database).model_copy(update={"policy_dir": bundle}))
    auditor, _ = create_key(services.db, role=Role.auditor, app_id=None)
    admin, _ = create_key(services.db, role=Role.admin, app_id=None)
    app_key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
    kinds: dict[int, str] = {}
    try:
        with serving(services) as base, httpx.Client(base_url=base, timeout=120) as client:
            as_app = {"Authorization": f"Bearer {app_key}"}
            decided = client.post("/v1/decisions", json=copy.deepcopy(DECISION_REQUEST_EXAMPLE), headers=as_app)
            assert decided.status_code == 200, decided.text
            decision = decided.json()
            kinds[decision["audit"]["seq"]] = "decision"
            for route, what in ((decision["allowed"][0], "served cleared"), (decision["denied"][0], "served uncleared")):
                served = client.post(f"/v1/decisions/{decision['decision_id']}/served", headers=as_app,
                                     json={"model": route["model"], "deployment": route["deployment"]})
                assert served.status_code == 200, served.text
                kinds[served.json()["audit"]["seq"]] = what
            as_admin = {"Authorization": f"Bearer {admin}"}
            lower_llama_cap(bundle)
            accepted = client.post("/v1/policy/reload", headers=as_admin)
            assert accepted.status_code == 200, accepted.text
            kinds[accepted.json()["audit"]["seq"]] = "reload accepted"
            break_rego(bundle)
            refused = client.post("/v1/policy/reload", headers=as_admin)
            assert refused.status_code == 422, refused.text
            kinds[max(kinds) + 1] = "reload refused"
            yield Trail(Site(url=base, auditor_key=auditor, app_key=app_key, database_url=api_database,
                             real_decisions=[decision["decision_id"]]), kinds)
    finally:
        services.close()


def _rows(page: Any) -> dict[int, list[str]]:
    cells = page.eval_on_selector_all(
        "#results-table tbody tr[data-seq]",
        "rows => rows.map(r => [r.dataset.seq, ...[...r.cells].map(c => c.textContent)])")
    return {int(seq): rest for seq, *rest in cells}


def test_every_kind_of_entry_is_listed(page: Any, trail: Trail) -> None:
    sign_in(page, trail.site)
    expect(page.locator("#results-table tbody tr[data-seq]")).to_have_count(len(trail.kinds))
    rows = _rows(page)
    assert sorted(rows) == sorted(trail.kinds)
    for seq, what in trail.kinds.items():
        seq_cell, _, reference, app, outcome, *_ = rows[seq]
        assert seq_cell == str(seq)
        if what == "decision":
            assert reference.startswith(trail.site.real_decisions[0][:18]) and app == "claims-summariser"
            assert outcome in ("allow", "deny")
        elif what.startswith("served"):
            assert reference == "served" and app == "claims-summariser"
        else:
            assert reference == "policy_reload" and app == "–"
    assert page.locator("#results-table a.decision-link").count() == 1  # only the decision opens


@pytest.mark.parametrize(("kind", "served", "expected"), [
    ("policy_reload", "", ("reload accepted", "reload refused")),
    ("served", "", ("served cleared", "served uncleared")),
    ("", "uncleared", ("served uncleared",)),
    ("decision", "", ("decision",)),
])
def test_filter_by_kind(page: Any, trail: Trail, kind: str, served: str, expected: tuple[str, ...]) -> None:
    sign_in(page, trail.site)
    page.select_option("select[name=kind]", kind)
    page.select_option("select[name=served]", served)
    page.click("#search-button")
    want = sorted(seq for seq, what in trail.kinds.items() if what in expected)
    expect(page.locator("#results-table tbody tr[data-seq]")).to_have_count(len(want))
    assert sorted(_rows(page)) == want
