"""The `clearance` CLI against a real database (in-process via Typer's runner)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.apikeys import KEY_PATTERN
from api.cli import app
from api.schemas import DECISION_REQUEST_EXAMPLE
from tests.conftest import REPO


@pytest.fixture
def env(migrated_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CLEARANCE_DATABASE_URL": migrated_database,
        "CLEARANCE_HOME": str(tmp_path / "home"),
        "CLEARANCE_POLICY_DIR": str(REPO / "rego"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLEARANCE_SIGNING_KEY", raising=False)
    return values


def run(*args: str, stdin: str | None = None) -> object:
    return CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)


def test_help_everywhere() -> None:
    for args in ([], ["db"], ["keys"], ["apikeys"], ["serve"], ["decide"], ["keys", "init"], ["apikeys", "create"]):
        result = run(*args, "--help")
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_apikeys_create_prints_the_key_alone(env: dict[str, str]) -> None:
    result = run("apikeys", "create", "--app", "claims-summariser", "--role", "app")
    assert result.exit_code == 0, result.stderr
    assert KEY_PATTERN.match(result.stdout.strip()), result.stdout
    assert result.stdout.count("\n") == 1
    auditor = run("apikeys", "create", "--role", "auditor")
    assert auditor.exit_code == 0 and KEY_PATTERN.match(auditor.stdout.strip())
    listing = run("apikeys", "list").stdout
    key_id = result.stdout.split("_")[1]
    assert key_id in listing and result.stdout.strip() not in listing  # secret never listed
    assert run("apikeys", "revoke", key_id).exit_code == 0
    assert "revoked=" in run("apikeys", "list").stdout and run("apikeys", "revoke", key_id).exit_code == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--role", "app"], "needs --app"),
        (["--role", "auditor", "--app", "claims-summariser"], "not tied to an app"),
        (["--role", "root"], "--role must be"),
        (["--role", "app", "--app", "no-such-app"], "not in apps.yaml"),
    ],
)
def test_apikeys_create_refuses_bad_combinations(env: dict[str, str], args: list[str], needle: str) -> None:
    result = run("apikeys", "create", *args)
    assert result.exit_code == 2 and needle in result.stderr and result.stdout == ""


def test_keys_init_list_export_rotate(env: dict[str, str], tmp_path: Path) -> None:
    key_file = tmp_path / "k" / "signing.key"
    first = run("keys", "init", str(key_file))
    assert first.exit_code == 0, first.stderr
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key_id = first.stdout.split()[0]
    assert run("keys", "init", str(key_file)).exit_code == 1  # never overwrites
    rotated = run("keys", "rotate", str(key_file))
    assert rotated.exit_code == 0, rotated.stderr
    new_id = rotated.stdout.split()[0]
    listing = run("keys", "list").stdout
    assert key_id in listing and new_id in listing and new_id != key_id
    exported = json.loads(run("keys", "export").stdout)
    assert {k["key_id"] for k in exported["keys"]} >= {key_id, new_id}


def test_decide_records_like_any_decision(env: dict[str, str], tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(DECISION_REQUEST_EXAMPLE))
    from_file = run("decide", str(request))
    assert from_file.exit_code == 0, from_file.stderr
    decision = json.loads(from_file.stdout)
    # seq 1 records the signing key created on first use; the decision follows
    assert decision["audit"]["seq"] == 2 and decision["outcome"] in ("allow", "deny")
    from_stdin = run("decide", stdin=json.dumps(DECISION_REQUEST_EXAMPLE))
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["audit"]["seq"] == 3
    assert (Path(env["CLEARANCE_HOME"]) / "signing.key").exists()  # created on first use


def test_decide_refuses_bad_input_with_the_field(env: dict[str, str]) -> None:
    bad = {**DECISION_REQUEST_EXAMPLE, "workload": {**DECISION_REQUEST_EXAMPLE["workload"], "task": "poetry"}}
    result = run("decide", "-", stdin=json.dumps(bad))
    assert result.exit_code == 2 and "workload.task" in result.stderr


def test_broken_policy_dir_is_reported_with_file_and_line(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    broken = tmp_path / "rego"
    shutil.copytree(REPO / "rego", broken)
    (broken / "data" / "org.yaml").write_text("org:\n  mau_warning_ratio: 7\n")
    monkeypatch.setenv("CLEARANCE_POLICY_DIR", str(broken))
    result = run("decide", stdin=json.dumps(DECISION_REQUEST_EXAMPLE))
    assert result.exit_code == 1
    assert "data/org.yaml:2: data_invalid: org.mau_warning_ratio" in result.stderr


def test_decide_refuses_duplicate_keys_and_coercion(env: dict[str, str]) -> None:
    """`clearance decide` reads the body as strictly as POST /v1/decisions."""
    raw = json.dumps(DECISION_REQUEST_EXAMPLE).replace('"data_classification": "confidential"',
                                                       '"data_classification": "restricted", "data_classification": "public"')
    duplicate = run("decide", "-", stdin=raw)
    assert duplicate.exit_code == 2 and "'data_classification' appears more than once in workload" in duplicate.stderr
    coerced = {**DECISION_REQUEST_EXAMPLE, "workload": {**DECISION_REQUEST_EXAMPLE["workload"], "commercial": "no"}}
    result = run("decide", "-", stdin=json.dumps(coerced))
    assert result.exit_code == 2 and "workload.commercial" in result.stderr
    outside = {**DECISION_REQUEST_EXAMPLE, "workload": {**DECISION_REQUEST_EXAMPLE["workload"], "sector": "defense"}}
    result = run("decide", "-", stdin=json.dumps(outside))
    assert result.exit_code == 2 and "workload.sector" in result.stderr
