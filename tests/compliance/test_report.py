"""``clearance audit report`` and ``GET /v1/audit/report`` over a real PostgreSQL holding a known
period: decisions (some asking for dangerous capabilities, some denied as gated), accepted and
refused reloads, served-route reports (one flagged). Every count the report shows is compared with
``GET /v1/audit/stats`` for the same filters; the PDF's first page is read with poppler-utils."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app
from audit import AuditStore, AuditWriter, CheckpointPolicy, load_signing_key, upgrade
from audit.canonical import parse_time
from audit.entry import reload_fields, served_fields
from audit.logverify import verify_log
from audit.pack import verify_pack, write_pack
from audit.report.verification import BackgroundVerification, verify_section
from audit.trust import log_verifier
from tests.audit.helpers import superuser, triggers_disabled
from audit.report import find_browser
from tests.api.conftest import Keys, bearer, make_settings
from tests.compliance.conftest import REV_A, REV_B, StepClock, dataset_fields
from tests.conftest import REPO, create_database, drop_database

# Entries are one hour apart from T0; the period holds seq 1..40, and the two entries after it
# bring the checkpoint (every 10 entries: seq 1, 11, 21, 31, 41) that seals it.
FROM, TO = "2026-03-02T00:00:00Z", "2026-03-03T16:00:00Z"
GIT_A, GIT_B = "a" * 40, "b" * 40


@dataclass
class Period:
    url: str
    home: Path
    fields: list[dict[str, Any]]


def _period_fields() -> list[dict[str, Any]]:
    """36 decisions with a reload (accepted) after the 18th, a refused reload, two served reports;
    then two decisions after the period."""
    out: list[dict[str, Any]] = []
    for i in range(38):
        fields = copy.deepcopy(dataset_fields(i))
        revision, git = (REV_A, GIT_A) if i < 18 else (REV_B, GIT_B)
        fields["policy_revision"] = fields["result"]["policy_revision"] = revision
        fields["policy_git"] = {"commit": git, "dirty": False, "path": "rego"}
        if i % 6 == 2:
            fields["input"]["workload"]["dangerous_capability"] = "cyber_defense"
            fields["result"]["denied"].append({"model": "frontier-x", "deployment": "vendor-api", "reasons": [
                {"code": "CAPABILITY_GATED", "message": "behind an access program"}]})
        out.append(fields)
        if i == 17:
            out.append(reload_fields(caller_key_id=None, policy_revision=REV_B, engine="regorus",
                                     policy_git={"commit": GIT_B, "dirty": False, "path": "rego"},
                                     reload={"outcome": "accepted", "requested_by": "SIGHUP",
                                             "old_revision": REV_A, "new_revision": REV_B,
                                             "old_git": {"commit": GIT_A}, "new_git": {"commit": GIT_B},
                                             "errors": []}))
        if i == 25:
            out.append(reload_fields(caller_key_id="0123456789abcdef", policy_revision=REV_B, engine="regorus",
                                     policy_git={"commit": GIT_B, "dirty": False, "path": "rego"},
                                     reload={"outcome": "refused", "requested_by": "admin-key",
                                             "old_revision": REV_B, "new_revision": None,
                                             "old_git": {"commit": GIT_B}, "new_git": None,
                                             "errors": [{"message": "rego parse error in clearance.rego"}]}))
        if i in (10, 20):
            decision = out[-1] if out[-1]["kind"] == "decision" else out[-2]
            flagged = i == 20
            out.append(served_fields(
                app_id=decision["app_id"], caller_key_id="0123456789abcdef", policy_revision=revision,
                engine="regorus", context={"gateway": {"name": "litellm"}},
                served={"decision_id": decision["decision_id"], "decision_seq": len(out),
                        "model": "gpt-5.4" if flagged else "gemma-4-31b",
                        "deployment": "openai-api" if flagged else "self-hosted",
                        "cleared": not flagged, "rank": None if flagged else 1,
                        "reasons": [{"code": "UNSUITABLE_PRICE"}] if flagged else [],
                        "flag": "route_not_cleared" if flagged else None}))
    return out


@pytest.fixture(scope="module")
def period(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Period]:
    name = f"clearance_rpt_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    home = tmp_path_factory.mktemp("home")
    settings = make_settings(home, url)
    key = load_signing_key(home / "signing.key")
    store = AuditStore.from_url(url, clock=StepClock())
    fields = _period_fields()
    with AuditWriter(store, key=key, max_batch=1,
                     checkpoints=CheckpointPolicy(every_entries=10, every_seconds=10**9)) as writer:
        for f in fields:
            writer.append(f)
    store.dispose()
    yield Period(url=url, home=settings.home, fields=fields)
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def api_database(period: Period) -> str:
    return period.url


@pytest.fixture(scope="module")
def api_home(period: Period) -> Path:
    """The service signs with the period's key: the only key it trusts (nothing else is pinned)."""
    return period.home


@pytest.fixture(scope="module")
def run(period: Period) -> Any:
    runner = CliRunner()
    env = {"CLEARANCE_DATABASE_URL": period.url, "CLEARANCE_HOME": str(period.home)}

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["audit", *args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def browser() -> Path:
    found = find_browser()
    if found is None:
        subprocess.run([str(REPO / "scripts" / "install-browser.sh")], capture_output=True, timeout=900)
        found = find_browser()
    if found is None:
        pytest.skip("no headless Chromium and scripts/install-browser.sh could not install it")
    return found


@pytest.fixture(scope="session")
def poppler() -> None:
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        subprocess.run([str(REPO / "scripts" / "install-tools.sh")], capture_output=True, timeout=900)
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftotext, pdftoppm) is missing and scripts/install-tools.sh "
                    "could not install it")


@pytest.fixture(scope="module")
def built(run: Any, browser: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "march"
    result = run("report", "--from", FROM, "--to", TO, "--out", str(out))  # with the progress bars
    assert result.exit_code == 0, result.output
    assert "valid (40 entries verified)" in result.stderr
    return out


def _stats(client: TestClient, keys: Keys, query: str) -> dict[str, Any]:
    response = client.get(f"/v1/audit/stats?{query}", headers=bearer(keys.auditor))
    assert response.status_code == 200, response.text
    return response.json()


def test_every_count_matches_the_stats_endpoint(built: Path, client: TestClient, keys: Keys,
                                                 period: Period) -> None:
    data = json.loads((built / "report.json").read_text())
    q = data["queries"]
    total = _stats(client, keys, q["entries_total"])
    assert data["entries_total"] == total["total"] == len(period.fields) - 2
    by_kind = _stats(client, keys, q["by_kind"])
    assert data["by_kind"] == {g["kind"]: g["count"] for g in by_kind["groups"]} == {
        "decision": 36, "policy_reload": 2, "served": 2}
    outcomes = _stats(client, keys, q["decisions_by_outcome"])
    summed: dict[str, int] = {}
    for g in outcomes["groups"]:
        summed[g["outcome"]] = summed.get(g["outcome"], 0) + g["count"]
    assert data["decisions_by_outcome"] == summed
    per_day = {(d["day"], k): v for d in data["days_by_outcome"] for k, v in d["counts"].items()}
    assert per_day == {(g["bucket"], g["outcome"]): g["count"] for g in outcomes["groups"]}
    assert [d["day"] for d in data["days_by_outcome"]] == ["2026-03-02T00:00:00.000000Z",
                                                           "2026-03-03T00:00:00.000000Z"]
    provenances = _stats(client, keys, q["cleared_by_provenance"])
    assert sum(data["cleared_by_provenance"].values()) == sum(g["count"] for g in provenances["groups"])
    reasons = _stats(client, keys, q["denial_reasons_by_app"])
    counts = {(g["app"], g["reason_code"]): g["count"] for g in reasons["groups"]}
    for app_id, codes in data["denial_reasons_by_app"].items():
        for code, count in codes:
            assert counts[(app_id, code)] == count
    gated = {(app_id, n) for app_id, n in data["gated"]["CAPABILITY_GATED"].items()}
    assert gated == {(g["app"], g["count"]) for g in reasons["groups"] if g["reason_code"] == "CAPABILITY_GATED"}
    assert sum(n for _, n in gated) == 6
    dangerous = _stats(client, keys, q["dangerous_capability"])
    assert data["dangerous_capability"] == {"cyber_defense": {
        g["outcome"]: g["count"] for g in dangerous["groups"] if g["dangerous_capability"] == "cyber_defense"}}
    assert sum(data["dangerous_capability"]["cyber_defense"].values()) == 6
    revisions = _stats(client, keys, q["revisions"])
    assert {r["revision"]: r["entries"] for r in data["revisions"]} == {
        g["policy_revision"]: g["count"] for g in revisions["groups"]}
    assert [(r["revision"], r["git_commit"]) for r in data["revisions"]] == [(REV_A, GIT_A), (REV_B, GIT_B)]
    assert len(data["reloads"]) == _stats(client, keys, q["reloads"])["total"] == 2
    assert [r["outcome"] for r in data["reloads"]] == ["accepted", "refused"]
    assert data["served_flagged_total"] == _stats(client, keys, q["served_flagged"])["total"] == 1
    assert data["served_flagged"][0]["model"] == "gpt-5.4"


def _trusted(period: Period) -> list[Any]:
    """The period's signing key, pinned (what the report and `verify --pack` trust)."""
    return [log_verifier(load_signing_key(period.home / "signing.key").public, "clearance/audit")]


def test_report_names_its_pack_and_checkpoint_and_the_pack_verifies(built: Path, period: Period) -> None:
    html = (built / "report.html").read_text()
    digest = hashlib.sha256((built / "evidence" / "manifest.json").read_bytes()).hexdigest()
    assert digest in html
    verdict = verify_pack(built / "evidence", trusted=_trusted(period))
    assert verdict.valid
    manifest = json.loads((built / "evidence" / "manifest.json").read_text())
    data = json.loads((built / "report.json").read_text())
    checkpoint = data["verification"]["checkpoint"]
    # The pack is written against the newest checkpoint (every batch signs one): it covers the
    # period's 40 entries and the two after it.
    assert checkpoint["seq"] == manifest["checkpoint_size"] == 42 and checkpoint["seals_end"]
    assert "sealed by signed checkpoint seq 42" in html
    assert "clearance audit verify --pack evidence --trusted-keys PINNED_KEYS" in html


def test_html_is_self_contained(built: Path) -> None:
    html = (built / "report.html").read_text()
    assert "<svg" in html and "<rect" in html
    # No script, stylesheet, image or font fetched from anywhere: the only URL is SVG's namespace.
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_pdf_first_page_says_whether_intact_and_what_changed(built: Path, poppler: None, tmp_path: Path) -> None:
    pdf = built / "report.pdf"
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "RECORD INTACT" in text
    assert "What changed in the period" in text
    assert re.search(r"2 policy revision\(s\) active; 1 reload\(s\) accepted, 1 refused", " ".join(text.split()))
    assert "1 served route(s) flagged" in " ".join(text.split())
    assert "2026-03-02" in text
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-png", "-r", "60", str(pdf), str(tmp_path / "page")],
                   check=True, capture_output=True)
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(png, artifacts / "report-first-page.png")


def test_a_period_without_entries_is_a_report_saying_so(run: Any, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    result = run("report", "--from", "2025-01-01T00:00:00Z", "--to", "2025-02-01T00:00:00Z",
                 "--out", str(out), "--no-pdf", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "no entries" in result.stderr
    html = (out / "report.html").read_text()
    assert "No entries were recorded in this period" in html
    assert not (out / "evidence").exists()
    assert json.loads((out / "report.json").read_text())["entries_total"] == 0


def test_an_inverted_range_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("report", "--from", TO, "--to", FROM, "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "--to" in result.stderr and "after" in result.stderr
    assert not (tmp_path / "x").exists()


def test_the_endpoint_needs_an_auditor_key(client: TestClient, keys: Keys) -> None:
    url = f"/v1/audit/report?from={FROM}&to={TO}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(keys.own_app)).status_code == 403
    page = client.get(url, headers=bearer(keys.auditor))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "RECORD INTACT" in page.text
    widest = client.get("/v1/audit/report?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
                        headers=bearer(keys.auditor))
    assert widest.status_code == 200 and "Decisions per day" in widest.text  # the entries' days only
    future = client.get("/v1/audit/report?from=9000-01-01T00:00:00Z&to=9001-01-01T00:00:00Z",
                        headers=bearer(keys.auditor))
    assert future.status_code == 200 and "No entries were recorded in this period" in future.text
    inverted = client.get(f"/v1/audit/report?from={TO}&to={FROM}", headers=bearer(keys.auditor))
    assert inverted.status_code == 422 and inverted.json()["error"]["fields"][0]["field"] == "to"


def test_the_endpoint_zip_holds_page_data_and_pack(client: TestClient, keys: Keys) -> None:
    response = client.get(f"/v1/audit/report?from={FROM}&to={TO}&format=zip", headers=bearer(keys.auditor))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert {"report.html", "report.json", "evidence/manifest.json", "evidence/entries.jsonl"} <= names


def test_an_edited_column_makes_the_report_say_not_intact(pg_server_url: str, tmp_path: Path, browser: Path,
                                                          poppler: None) -> None:
    """The counts come from the queryable columns: verification covers them, not only the signed
    bytes the pack holds (which an edited column leaves untouched)."""
    name = f"clearance_rpt_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        home = tmp_path / "home"
        home.mkdir()
        settings = make_settings(home, url)
        store = AuditStore.from_url(url, clock=StepClock())
        with AuditWriter(store, key=load_signing_key(home / "signing.key"), max_batch=1,
                         checkpoints=CheckpointPolicy(every_entries=10, every_seconds=10**9)) as writer:
            for i in range(12):
                writer.append(dataset_fields(i))
        store.dispose()
        with superuser(url) as conn, triggers_disabled(conn):
            conn.execute("UPDATE audit_leaves SET outcome = CASE outcome WHEN 'allow' THEN 'deny' "
                         "ELSE 'allow' END WHERE seq = 5")
        out = tmp_path / "report"
        result = CliRunner().invoke(app, ["audit", "report", "--from", FROM, "--to", TO, "--out", str(out),
                                          "--no-progress"],
                                    env={"CLEARANCE_DATABASE_URL": url, "CLEARANCE_HOME": str(settings.home)},
                                    catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert "INVALID at seq 5" in result.stderr
        text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(out / "report.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        flat = " ".join(text.split())
        assert "RECORD NOT INTACT" in flat and "seq 5" in flat and "outcome" in flat
        pinned = [log_verifier(load_signing_key(home / "signing.key").public, "clearance/audit")]
        assert verify_pack(out / "evidence", trusted=pinned).valid  # the hashed bytes were not touched
    finally:
        drop_database(pg_server_url, name)


def test_verification_in_a_child_process_is_used_only_for_the_packs_range(period: Period, tmp_path: Path) -> None:
    """The CLI verifies in a child process while the pack is written: the same verdict as in
    this one, used only when the pack holds exactly the range it verified."""
    store = AuditStore.from_url(period.url)
    try:
        trusted = _trusted(period)
        child = BackgroundVerification(store, trusted=trusted, from_seq=1, to_seq=40)
        assert child.result() == verify_log(store, trusted=trusted, from_seq=1, to_seq=40)
        pack = tmp_path / "pack"
        manifest = write_pack(store, pack, start=parse_time(FROM), end=parse_time(TO))
        assert (manifest["first_seq"], manifest["last_seq"]) == (1, 40)
        narrower = BackgroundVerification(store, trusted=trusted, from_seq=2, to_seq=40)
        section = verify_section(store, pack, pack_name="pack", trusted=trusted, started=narrower)
        assert (section.valid, section.from_seq, section.to_seq, section.checked) == (True, 1, 40, 40)
    finally:
        store.dispose()
