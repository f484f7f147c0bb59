"""SIGHUP to a real `clearance serve` process: the bundle is reloaded, or refused and the old one
keeps serving; both are recorded in the chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role, create_key
from audit import AuditStore, init_key, verify_database
from tests.api.test_serve_embedded import free_port
from tests.conftest import REPO
from tests.bundles import break_rego, entries, lower_llama_cap

pytestmark = pytest.mark.slow


def wait_until(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} within {seconds} s")


def test_sighup_reloads_a_serving_process(migrated_database: str, bundle_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    init_key(key_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env |= {"CLEARANCE_DATABASE_URL": migrated_database, "CLEARANCE_SIGNING_KEY": str(key_file),
            "CLEARANCE_POLICY_DIR": str(bundle_dir), "CLEARANCE_HOME": str(tmp_path / "home")}
    store = AuditStore.from_url(migrated_database, pooled=False)
    admin, _ = create_key(store.engine, role=Role.admin, app_id=None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # One process: the SIGHUP goes to the worker itself (several workers: see docs/limits.md).
    server = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "1"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def revision() -> str | None:
        try:
            return httpx.get(f"{base}/v1/policy", headers={"Authorization": f"Bearer {admin}"}, timeout=5).json()["revision"]
        except httpx.HTTPError:
            return None

    try:
        wait_until(lambda: revision() is not None, 90, "the server did not answer")
        first = revision()

        lower_llama_cap(bundle_dir)
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: revision() not in (None, first), 60, "SIGHUP did not reload the policy")
        second = revision()

        break_rego(bundle_dir)
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: len(entries(store, "policy_reload")) == 2, 60, "the refusal was not recorded")
        assert server.poll() is None and revision() == second  # still serving the good bundle

        accepted, refused = entries(store, "policy_reload")
        assert accepted["reload"]["requested_by"] == refused["reload"]["requested_by"] == "SIGHUP"
        assert (accepted["reload"]["outcome"], accepted["reload"]["old_revision"]) == ("accepted", first)
        assert accepted["reload"]["new_revision"] == second
        assert refused["reload"]["outcome"] == "refused" and refused["policy_revision"] == second
        assert refused["reload"]["errors"][0]["file"].endswith("licence.rego")
        assert refused["reload"]["pid"] == accepted["reload"]["pid"] == server.pid
        assert verify_database(store).valid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        store.dispose()
