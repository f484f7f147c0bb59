"""SIGHUP to a real `clearance serve` process: the bundle is reloaded, or refused and the old one
keeps serving; both are recorded in the chain."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from api.apikeys import Role, create_key
from audit import AuditStore
from tests.api.servers import serve_env, serving, wait_until
from tests.audit.helpers import verify_whole
from tests.bundles import break_rego, entries, lower_llama_cap

pytestmark = pytest.mark.slow


def test_sighup_reloads_a_serving_process(migrated_database: str, bundle_dir: Path, tmp_path: Path) -> None:
    env = serve_env(migrated_database, tmp_path, policy_dir=str(bundle_dir))
    store = AuditStore.from_url(migrated_database, pooled=False)
    admin, _ = create_key(store.engine, role=Role.admin, app_id=None)

    with serving(env, "--workers", "1") as (server, base):  # one process: the SIGHUP reaches the worker itself

        def revision() -> str | None:
            try:
                return httpx.get(f"{base}/v1/policy", headers={"Authorization": f"Bearer {admin}"},
                                 timeout=5).json()["revision"]
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
            assert verify_whole(store).valid
        finally:
            store.dispose()
