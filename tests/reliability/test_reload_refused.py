"""A policy reload with a broken Rego module or an invalid catalog is refused: the old revision
keeps serving, and the error names the file and the line. Through ``POST /v1/policy/reload``
and through SIGHUP to a real server; then a good bundle is accepted, so the refusals above were
not just a reload that never happens.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.settings import Settings
from tests.audit.helpers import verify_whole
from tests.api.conftest import bearer
from tests.audit.helpers import libpq
from tests.conftest import REPO

from .conftest import make_api_key, running_services
from .endpoints import app_routes
from .server import ServerProcess

HAS_RELOAD = ("POST", "/v1/policy/reload") in app_routes(create_app(Settings(database_url="postgresql://unused/x")))
pytestmark = [pytest.mark.skipif(not HAS_RELOAD, reason="POST /v1/policy/reload is not in the app yet"),
              pytest.mark.slow]  # every reload rebuilds the whole bundle


@dataclass(frozen=True)
class Breakage:
    """A way to break the bundle: which file, the lines an error must point into, how."""

    file: str
    break_it: Callable[[Path], range]  # edits the bundle copy, returns the acceptable lines


def _append_bad_rego(root: Path) -> range:
    path = root / "licence.rego"
    n = len(path.read_text().splitlines())
    with path.open("a") as handle:
        handle.write("broken_rule if {\n  input.x ==\n}\n")
    return range(n + 1, n + 4)


def _line_of(path: Path, pattern: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in {path}")


def _edit_line(path: Path, pattern: str, old: str, new: str) -> range:
    """Replace ``old`` by ``new`` on the first line matching ``pattern``; returns that line."""
    line = _line_of(path, pattern)
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1].replace(old, new)
    path.write_text("\n".join(lines) + "\n")
    return range(line, line + 1)


def _bad_catalog_value(root: Path) -> range:
    return _edit_line(root / "data" / "models.yaml", r"mau_cap: null", "mau_cap: null", "mau_cap: lots")


def _bad_catalog_enum(root: Path) -> range:
    return _edit_line(root / "data" / "models.yaml", r"^\s+provenance: open_western", "open_western", "open_martian")


def _unparsable_apps(root: Path) -> range:
    path = root / "data" / "apps.yaml"
    n = len(path.read_text().splitlines())
    with path.open("a") as handle:
        handle.write("  - id: [unclosed\n")
    return range(n + 1, n + 3)


BREAKAGES = {
    "rego-syntax": Breakage("licence.rego", _append_bad_rego),
    "catalog-type": Breakage("models.yaml", _bad_catalog_value),
    "catalog-enum": Breakage("models.yaml", _bad_catalog_enum),
    "apps-yaml": Breakage("apps.yaml", _unparsable_apps),
}


def _bundle_copy(tmp: Path) -> Path:
    root = tmp / "rego"
    shutil.copytree(REPO / "rego", root)
    return root


def _restore(root: Path) -> None:
    shutil.rmtree(root)
    shutil.copytree(REPO / "rego", root)


def _decide(client: httpx.Client | TestClient, key: str) -> str:
    response = client.post("/v1/decisions", json=copy.deepcopy(DECISION_REQUEST_EXAMPLE), headers=bearer(key))
    assert response.status_code == 200, response.text
    return str(response.json()["policy_revision"])


# -- over HTTP --------------------------------------------------------------------------------


@dataclass
class Reloading:
    client: TestClient
    root: Path
    admin: str
    app: str
    url: str


@pytest.fixture(scope="module")
def reloading(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reloading]:
    tmp = tmp_path_factory.mktemp("reload")
    root = _bundle_copy(tmp)
    with running_services(pg_server_url, tmp, "reload", policy_dir=root) as services:
        admin, _ = create_key(services.db, role=Role.admin, app_id=None)
        app, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            yield Reloading(client, root, admin, app, services.store.engine.url.render_as_string(hide_password=False))


@pytest.mark.parametrize("how", list(BREAKAGES))
def test_a_broken_bundle_is_refused_and_the_old_revision_keeps_serving(reloading: Reloading, how: str) -> None:
    r = reloading
    breakage = BREAKAGES[how]
    before = r.client.get("/v1/policy", headers=bearer(r.admin)).json()["revision"]
    assert _decide(r.client, r.app) == before
    lines = breakage.break_it(r.root)
    try:
        refused = r.client.post("/v1/policy/reload", headers=bearer(r.admin))
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "policy_refused"
        assert before in error["message"]  # says which revision keeps serving
        located = [f for f in error["fields"] if re.search(rf"{re.escape(breakage.file)}:(\d+)$", f["field"])]
        assert located, error["fields"]
        line = int(located[0]["field"].rsplit(":", 1)[1])
        assert line in lines, f"{located[0]} should point into lines {lines.start}..{lines.stop - 1}"
        assert located[0]["reason"]
        # The old revision keeps serving, decisions included.
        assert r.client.get("/v1/policy", headers=bearer(r.admin)).json()["revision"] == before
        assert _decide(r.client, r.app) == before
    finally:
        _restore(r.root)
    accepted = r.client.post("/v1/policy/reload", headers=bearer(r.admin))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["revision"] == before


def test_refused_reloads_are_recorded_in_a_valid_log(reloading: Reloading) -> None:
    """Runs after the refusals above: each attempt is a leaf of the signed log."""
    with psycopg.connect(libpq(reloading.url)) as conn:
        outcomes = [row[0] for row in conn.execute(
            "SELECT body_json->'reload'->>'outcome' FROM audit_log WHERE kind = 'policy_reload' ORDER BY seq")]
    assert outcomes.count("refused") >= len(BREAKAGES), outcomes
    from audit import AuditStore

    store = AuditStore.from_url(reloading.url, pooled=False)
    try:
        assert verify_whole(store).valid
    finally:
        store.dispose()


# -- SIGHUP to a real server ------------------------------------------------------------------


def _wait_for(server: ServerProcess, text: str, *, after: int, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_text()[after:]
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{server.log_tail()}")


@pytest.mark.slow
def test_sighup_with_a_broken_bundle_is_refused_then_a_good_one_is_taken(
    migrated_database: str, tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    root = _bundle_copy(tmp_path)
    server = start_server(migrated_database, CLEARANCE_POLICY_DIR=str(root))
    assert server.process is not None
    admin = make_api_key(migrated_database, Role.admin)
    app = make_api_key(migrated_database, Role.app, "claims-summariser")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = client.get("/v1/policy", headers=bearer(admin)).json()["revision"]
        lines = _append_bad_rego(root)
        mark = len(server.log_text())
        os.kill(server.process.pid, signal.SIGHUP)
        log = _wait_for(server, "policy reload refused", after=mark)
        located = re.search(r"licence\.rego:(\d+): ", log)
        assert located and int(located.group(1)) in lines, log
        assert client.get("/v1/policy", headers=bearer(admin)).json()["revision"] == before
        assert _decide(client, app) == before
        assert server.process.poll() is None  # a refused reload never takes the server down

        _restore(root)
        with (root / "licence.rego").open("a") as handle:
            handle.write("\n# reviewed again\n")  # a new revision, same rules
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while (after := client.get("/v1/policy", headers=bearer(admin)).json()["revision"]) == before:
            assert time.monotonic() < deadline, f"SIGHUP did not reload the good bundle:\n{server.log_tail()}"
            time.sleep(0.1)
        assert _decide(client, app) == after
