"""Hot reload over HTTP and by SIGHUP: accepted, refused (the running bundle keeps serving),
atomic, and every attempt recorded in the signed chain."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.reload import SIGHUP_REQUESTER, install_sighup, reload_on_signal, reload_policy
from api.services import Services
from tests.audit.helpers import verify_whole
from tests.api.conftest import Keys, bearer
from tests.bundles import HELPDESK_REQUEST, app_fixtures, break_rego, edit, entries, lower_llama_cap, set_org_mau


# regorus VMs are bound to the thread that made them: the test client's loop thread decides,
# pytest's main thread drops the services at teardown, and pyo3 reports that as unraisable.
# (The service itself releases retired policies on its loop thread: api/reload.py.)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def services(services_on_copy: Services) -> Services:
    """What the ``client`` and ``keys`` fixtures serve."""
    return services_on_copy


client, keys = app_fixtures()


def test_accepted_reload_swaps_the_policy_and_is_recorded(
    client: TestClient, keys: Keys, services_on_copy: Services, bundle_dir: Path,
) -> None:
    old = client.get("/v1/policy", headers=bearer(keys.admin)).json()["revision"]
    lower_llama_cap(bundle_dir)

    answer = client.post("/v1/policy/reload", headers=bearer(keys.admin))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "accepted" and body["changed"] is True
    assert body["previous_revision"] == old and body["revision"] != old
    assert body["requested_by"] == keys.admin.split("_")[1] and body["pid"] == os.getpid()
    assert client.get("/v1/policy", headers=bearer(keys.admin)).json()["revision"] == body["revision"]
    decision = client.post("/v1/decisions", json={**HELPDESK_REQUEST, "app_id": "internal-helpdesk"},
                           headers=bearer(keys.other_app)).json()
    assert decision["policy_revision"] == body["revision"]
    assert all(r["model"] not in ("llama-4-maverick", "llama-4-scout") for r in decision["allowed"])

    (entry,) = entries(services_on_copy.store, "policy_reload")
    assert entry["seq"] == body["audit"]["seq"]
    assert entry["reload"]["outcome"] == "accepted"
    assert entry["reload"]["old_revision"] == old and entry["reload"]["new_revision"] == body["revision"]
    assert entry["reload"]["requested_by"] == entry["caller_key_id"] == keys.admin.split("_")[1]
    assert entry["policy_revision"] == body["revision"] and entry["reload"]["errors"] == []
    assert entry["decision_id"] is None and entry["outcome"] is None
    assert verify_whole(services_on_copy.store).valid


def test_broken_bundle_is_refused_with_file_and_line_and_the_old_one_keeps_serving(
    client: TestClient, keys: Keys, services_on_copy: Services, bundle_dir: Path,
) -> None:
    old = services_on_copy.policy.current.revision
    line = break_rego(bundle_dir)

    answer = client.post("/v1/policy/reload", headers=bearer(keys.admin))

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "policy_refused" and old in error["message"]
    where = {f["field"] for f in error["fields"]}
    assert f"{(bundle_dir / 'licence.rego').as_posix()}:{line}" in where, where
    assert any(f["reason"].startswith("rego_parse_error: ") for f in error["fields"])
    # The running bundle keeps serving.
    assert services_on_copy.policy.current.revision == old
    assert client.get("/v1/policy", headers=bearer(keys.admin)).json()["revision"] == old
    decided = client.post("/v1/decisions", json=HELPDESK_REQUEST, headers=bearer(keys.other_app))
    assert decided.status_code == 200 and decided.json()["policy_revision"] == old
    # Recorded, signed, and the chain verifies.
    (entry,) = entries(services_on_copy.store, "policy_reload")
    assert entry["reload"]["outcome"] == "refused" and entry["policy_revision"] == old
    assert entry["reload"]["old_revision"] == old and entry["reload"]["new_revision"] != old
    assert any(e["file"].endswith("licence.rego") and e["line"] == line for e in entry["reload"]["errors"])
    assert verify_whole(services_on_copy.store).valid


def test_undocumented_reason_code_is_refused(services_on_copy: Services, bundle_dir: Path) -> None:
    edit(bundle_dir / "codes.rego", 'HUMAN_REVIEW := "human_review"',
         'HUMAN_REVIEW := "human_review"\n\nNEW_CODE := "NEW_CODE"')
    result = reload_policy(services_on_copy, requested_by="test")
    assert not result.accepted
    assert [e.code for e in result.errors] == ["reason_undocumented"]
    assert result.errors[0].file.endswith("codes.rego") and result.errors[0].line


def test_reload_needs_an_admin_key(client: TestClient, keys: Keys) -> None:
    assert client.post("/v1/policy/reload", headers=bearer(keys.auditor)).status_code == 403
    assert client.post("/v1/policy/reload").status_code == 401


def test_unchanged_bundle_reloads_as_accepted_without_change(services_on_copy: Services) -> None:
    before = services_on_copy.policy.current
    result = reload_policy(services_on_copy, requested_by="test")
    assert result.accepted and not result.changed and result.revision == before.revision
    assert services_on_copy.policy.current is not before  # rebuilt from disk all the same


def test_sighup_reload_is_recorded_as_asked_by_sighup(services_on_copy: Services, bundle_dir: Path) -> None:
    lower_llama_cap(bundle_dir)
    result = asyncio.run(reload_on_signal(services_on_copy))
    assert result is not None and result.accepted and result.requested_by == SIGHUP_REQUESTER
    (entry,) = entries(services_on_copy.store, "policy_reload")
    assert entry["reload"]["requested_by"] == "SIGHUP" and entry["caller_key_id"] is None


def test_a_real_sighup_reloads_through_the_installed_handler(services_on_copy: Services, bundle_dir: Path) -> None:
    old = services_on_copy.policy.current.revision
    lower_llama_cap(bundle_dir)

    async def main() -> None:
        uninstall = install_sighup(services_on_copy)
        assert uninstall is not None, "pytest runs tests in the main thread: the handler must install"
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(200):
                if services_on_copy.policy.current.revision != old:
                    return
                await asyncio.sleep(0.05)
        finally:
            uninstall()

    asyncio.run(main())
    assert services_on_copy.policy.current.revision != old
    assert entries(services_on_copy.store, "policy_reload")[-1]["reload"]["requested_by"] == "SIGHUP"


def test_requests_during_reloads_see_one_whole_bundle(services_on_copy: Services, bundle_dir: Path) -> None:
    """Decisions made while reloads alternate two bundles: each decision's revision is one of
    the two and its routes are exactly that bundle's answer (never half of each)."""
    import threading
    import time

    from policy import DecisionRequest, decide

    request = DecisionRequest.model_validate(HELPDESK_REQUEST)
    original = services_on_copy.policy.current
    expected = {original.revision: decide(original, request)[1].allowed}
    stop = threading.Event()
    seen: list[tuple[str, list[object]]] = []

    def decide_loop() -> None:
        while not stop.is_set():
            policy = services_on_copy.policy.current
            _, decision = decide(policy, request)
            seen.append((decision.policy_revision, decision.allowed))
            time.sleep(0.002)  # leave the reloads some of the GIL

    worker = threading.Thread(target=decide_loop)
    worker.start()
    try:
        models = bundle_dir / "data" / "models.yaml"
        text = models.read_text()
        for i in range(3):
            models.write_text(text if i % 2 else text.replace("threshold: 700000000", "threshold: 1000000"))
            result = reload_policy(services_on_copy, requested_by="test")
            assert result.accepted
            current = services_on_copy.policy.current
            expected.setdefault(current.revision, decide(current, request)[1].allowed)
    finally:
        stop.set()
        worker.join()
    assert len(expected) == 2 and seen
    for revision, allowed in seen:
        assert allowed == expected[revision]


def test_no_durable_record_no_swap(services_on_copy: Services, bundle_dir: Path) -> None:
    """The reload's entry cannot be committed (here: the writer has shut down): the attempt
    fails with AuditUnavailable and the running bundle keeps serving."""
    from audit import AuditUnavailable

    old = services_on_copy.policy.current
    lower_llama_cap(bundle_dir)
    services_on_copy.writer.close()
    with pytest.raises(AuditUnavailable):
        reload_policy(services_on_copy, requested_by="test")
    assert services_on_copy.policy.current is old


def test_a_bundle_whose_own_rego_test_fails_is_refused_naming_the_test(
    client: TestClient, keys: Keys, services_on_copy: Services, bundle_dir: Path,
) -> None:
    """A fail-open edit that compiles: the pack's own tests catch it, and the reload is refused."""
    old = services_on_copy.policy.current.revision
    edit(bundle_dir / "provenance.rego", "\tcount(banned) > 0\n", "\tcount(banned) > 99\n")

    answer = client.post("/v1/policy/reload", headers=bearer(keys.admin))

    assert answer.status_code == 422, answer.text
    reasons = [f["reason"] for f in answer.json()["error"]["fields"]]
    assert any(r.startswith("test_failed: clearance.provenance_test.test_restricted_origin_in_restricted_sector_is_denied")
               for r in reasons), reasons
    assert any(r.startswith("invariant_violated: restricted_origin_in_restricted_sector") for r in reasons), reasons
    assert services_on_copy.policy.current.revision == old
    (entry,) = entries(services_on_copy.store, "policy_reload")
    assert entry["reload"]["outcome"] == "refused" and entry["policy_revision"] == old
    codes = {e["code"] for e in entry["reload"]["errors"]}
    assert codes == {"test_failed", "invariant_violated"}
    assert verify_whole(services_on_copy.store).valid


def test_a_revision_that_passed_the_gate_is_not_searched_again_a_refused_one_is(
    services_on_copy: Services, bundle_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from policy.review import invariants

    searched: list[str] = []
    real = invariants.gate_errors
    monkeypatch.setattr(invariants, "gate_errors",
                        lambda policy, **kw: (searched.append(policy.revision), real(policy, **kw))[1])
    monkeypatch.setattr(invariants, "PASSED", invariants.PassedRevisions())
    lower_llama_cap(bundle_dir)
    first = reload_policy(services_on_copy, requested_by="test")
    again = reload_policy(services_on_copy, requested_by="test")
    assert first.accepted and again.accepted and searched == [first.revision]
    edit(bundle_dir / "provenance.rego", "\tcount(banned) > 0\n", "\tcount(banned) > 99\n")
    for _ in range(2):
        assert not reload_policy(services_on_copy, requested_by="test").accepted
    assert len(searched) == 3 and searched[1] == searched[2] != first.revision


def test_an_invariant_alone_refuses_a_reload(services_on_copy: Services, bundle_dir: Path) -> None:
    """The provenance rule disabled *and* its tests deleted: the invariant still refuses it."""
    old = services_on_copy.policy.current.revision
    edit(bundle_dir / "provenance.rego", "\tcount(banned) > 0\n", "\tcount(banned) > 99\n")
    for test in ("provenance_test.rego", "main_test.rego", "invariants_test.rego"):
        (bundle_dir / test).unlink()
    result = reload_policy(services_on_copy, requested_by="test")
    assert not result.accepted and services_on_copy.policy.current.revision == old
    (error,) = result.errors
    assert error.code == "invariant_violated" and error.file.endswith("invariants.rego") and error.line
    assert '"app_id":"citizen-services"' in error.message


def test_a_follower_swaps_in_only_the_announced_revision_and_records_nothing(
    services_on_copy: Services, bundle_dir: Path,
) -> None:
    """What the other workers do on a reload's announcement (api/reload_broadcast.py)."""
    from api.reload_broadcast import Announcement, follow

    old = services_on_copy.policy.current.revision
    lower_llama_cap(bundle_dir)
    services = services_on_copy
    announced = reload_policy(services, requested_by="test")  # stands in for the leader's
    base = Announcement(process="another", pid=1, seq=announced.receipt.seq, directory=str(bundle_dir),
                        revision=announced.revision)

    # A follower still on the old bundle. An announcement the chain does not back is not followed.
    services.policy.current = announced.retired[0]
    assert services.policy.current.revision == old
    for unrecorded in (base.model_copy(update={"seq": base.seq + 1000}),
                       base.model_copy(update={"revision": "sha256:" + "0" * 64})):
        assert not follow(services, unrecorded).swapped and services.policy.current.revision == old
    # The announced one: builds from disk, finds the announced revision, swaps.
    followed = follow(services, base)
    assert followed.swapped and services.policy.current.revision == announced.revision

    # The files changed again since the reload: the follower keeps what it serves.
    services.policy.current = announced.retired[0]
    set_org_mau(bundle_dir, "2025-03", 1_000)
    followed = follow(services, base)
    assert not followed.swapped and services.policy.current.revision == old
    assert len(entries(services.store, "policy_reload")) == 1  # the leader's, none of the follower's
