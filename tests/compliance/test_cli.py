"""``clearance audit query|stats|verify|export`` through Typer's CliRunner, over the dataset."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.compliance.conftest import COUNT, Dataset, sectors_of


@pytest.fixture(scope="module")
def run(dataset: Dataset) -> Any:
    runner = CliRunner()
    env = {"CLEARANCE_DATABASE_URL": dataset.url, "CLEARANCE_HOME": str(dataset.home)}

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["audit", *args], env=env, catch_exceptions=False)

    return invoke


def test_query_json_page_and_all(run: Any, dataset: Dataset) -> None:
    result = run("query", "--outcome", "deny", "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    denies = dataset.seqs(lambda f, t: f["outcome"] == "deny")
    assert [i["seq"] for i in page["items"]] == sorted(denies, reverse=True)[:3] and page["next_cursor"]
    result = run("query", "--outcome", "deny", "--limit", "3", "--all", "--json")
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == sorted(denies, reverse=True)


def test_query_table_and_cursor(run: Any) -> None:
    result = run("query", "--limit", "2", "--app-id", "claims-summariser")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all("claims-summariser" in line for line in lines)
    assert "--cursor" in result.stderr


@pytest.mark.parametrize(("option", "value"), [("--from", "yesterday"), ("--outcome", "maybe"),
                                               ("--sector", "retail"), ("--cursor", "%%%")])
def test_query_refuses_bad_options_naming_them(run: Any, option: str, value: str) -> None:
    result = run("query", option, value)
    assert result.exit_code == 2 and option in result.stderr


def test_stats(run: Any, dataset: Dataset) -> None:
    result = run("stats", "--group-by", "outcome", "--json")
    body = json.loads(result.stdout)
    assert body["total"] == COUNT
    denies = len(dataset.seqs(lambda f, t: f["outcome"] == "deny"))
    assert {g["outcome"]: g["count"] for g in body["groups"]} == {"allow": COUNT - denies, "deny": denies}
    table = run("stats", "--group-by", "provenance", "--bucket", "day")
    assert table.exit_code == 0 and "provenance=open_chinese" in table.stdout


def test_verify_database_and_exit_codes(run: Any) -> None:
    result = run("verify", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True
    plain = run("verify", "--from-seq", "5", "--to-seq", "9", "--no-progress")
    assert plain.exit_code == 0 and "valid: 5 entries" in plain.stdout


def test_export_pack_then_verify_offline(run: Any, dataset: Dataset, tmp_path: Path) -> None:
    keys = run("export", "--format", "jsonl", "--decision-id", dataset.fields[0]["decision_id"])
    assert len(keys.stdout.splitlines()) == 1
    out = tmp_path / "pack"
    result = run("export", "--from", "2026-03-02T05:00:00Z", "--to", "2026-03-02T09:00:00Z", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "evidence pack" in result.stderr
    pinned = tmp_path / "trusted-keys"
    pinned.write_text(run("verifier-keys").stdout)
    # Offline: a database URL that does not exist proves no database is used.
    offline = CliRunner().invoke(app, ["audit", "verify", "--pack", str(out), "--trusted-keys", str(pinned), "--json"],
                                 env={"CLEARANCE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["valid"] is True
    entries = (out / "entries.jsonl").read_text().splitlines()
    first = json.loads(entries[0])
    tampered = json.loads(entries[2])
    tampered["entry"] = tampered["entry"].replace('"regorus"', '"opa"')
    entries[2] = json.dumps(tampered)
    (out / "entries.jsonl").write_text("\n".join(entries) + "\n")
    bad = CliRunner().invoke(app, ["audit", "verify", "--pack", str(out), "--trusted-keys", str(pinned)])
    assert bad.exit_code == 1
    assert f"INVALID at v2 seq {first['seq'] + 2}" in bad.stdout


def test_export_pack_refuses_narrowing_filters(run: Any, tmp_path: Path) -> None:
    result = run("export", "--out", str(tmp_path / "p"), "--app-id", "claims-summariser")
    assert result.exit_code == 2 and "--app-id" in result.stderr


def test_export_csv_to_stdout(run: Any, dataset: Dataset) -> None:
    result = run("export", "--format", "csv", "--sector", "healthcare")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["seq"]) for r in rows] == dataset.seqs(lambda f, t: "healthcare" in sectors_of(f))
