"""The web page end to end: a real server (uvicorn on 127.0.0.1, free port) over a migrated
database with recorded decisions, driven by Debian's headless Chromium through Playwright.

Chromium comes from ``scripts/install-browser.sh`` (apt); the tests skip, saying why, only when
it cannot be installed. Each test saves a screenshot under ``tests/artifacts/``.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.apikeys import Role, create_key
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit import AuditStore, AuditWriter, CheckpointPolicy, load_signing_key, upgrade
from tests.api.conftest import make_settings
from tests.compliance.conftest import T0, dataset_fields
from tests.conftest import REPO, create_database, drop_database

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAST_ENTRIES = 40


@dataclass(frozen=True)
class Site:
    url: str
    auditor_key: str
    app_key: str
    database_url: str
    real_decisions: list[str]  # decision ids made through POST /v1/decisions (newest last)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        script = REPO / "scripts" / "install-browser.sh"
        done = subprocess.run([str(script)], capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"Debian's chromium is not installed and {script.name} could not install it: "
                        f"{(done.stderr or done.stdout).strip()[-300:]}")
    return CHROMIUM


class SevenHourClock:
    """recorded_at of the past entries: every 7 hours from T0, so the chart spans ~12 days."""

    def __init__(self) -> None:
        self.now = T0 - timedelta(hours=7)

    def __call__(self) -> Any:
        self.now += timedelta(hours=7)
        return self.now


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    name = f"clearance_ui_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    home = tmp_path_factory.mktemp("home")
    settings = make_settings(home, url)
    store = AuditStore.from_url(url, clock=SevenHourClock())
    with AuditWriter(store, key=load_signing_key(home / "signing.key"), max_batch=1,
                     checkpoints=CheckpointPolicy(every_entries=10, every_seconds=10**9)) as writer:
        for i in range(PAST_ENTRIES):
            writer.append(dataset_fields(i))
    store.dispose()
    services = Services.start(settings)
    auditor, _ = create_key(services.db, role=Role.auditor, app_id=None)
    app_key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
    try:
        with serving(services) as base:
            decisions = []
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {app_key}"}) as client:
                for tier, price in (("standard", 5.0), ("regulated", 50.0), ("critical", 0.5)):
                    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
                    body["workload"].update(regulatory_tier=tier, max_price_per_mtok=price)
                    answer = client.post("/v1/decisions", json=body)
                    assert answer.status_code == 200, answer.text
                    decisions.append(answer.json()["decision_id"])
            yield Site(url=base, auditor_key=auditor, app_key=app_key, database_url=url,
                       real_decisions=decisions)
    finally:
        services.close()
        drop_database(pg_server_url, name)


@contextmanager
def serving(services: Services) -> Iterator[str]:
    """uvicorn on a free port of 127.0.0.1 over ``services``, in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services=services), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Nothing may be fetched from the internet: the page is served from 127.0.0.1 only.
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS,
                                              headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(15_000)
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/ui")
    page.fill("#api-key", site.auditor_key)
    page.click("#signin-button")
    page.wait_for_selector("#results-table tbody tr[data-seq]")
