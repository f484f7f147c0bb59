"""Exports a consumer cannot misread: one JSONL line per entry whatever the text recorded, and
no CSV cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from fastapi.testclient import TestClient

from api.services import Services
from audit.tlog.merkle import leaf_hash
from tests.api.conftest import Keys, bearer
from tests.bundles import HELPDESK_REQUEST
from tests.compliance.conftest import dataset_fields

BREAKS = "one\u2028two\u2029three\u0085four"
FORMULAS = ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd")


def _lines_seen_by_splitlines(data: bytes) -> int:
    """How many lines Python's str.splitlines sees, in a process of its own (as a consumer)."""
    counted = subprocess.run([sys.executable, "-c", "import sys; print(len(sys.stdin.read().splitlines()))"],
                             input=data, capture_output=True, check=True, env={"PYTHONIOENCODING": "utf-8"})
    return int(counted.stdout)


def test_jsonl_keeps_one_line_per_entry_whatever_the_recorded_text(
    client: TestClient, keys: Keys, services: Services,
) -> None:
    decided = client.post("/v1/decisions", headers=bearer(keys.other_app),
                          json={**HELPDESK_REQUEST, "context": {"request_id": BREAKS, "trace_id": "\u2028"}})
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]

    answer = client.get("/v1/audit/export", params={"format": "jsonl"}, headers=bearer(keys.auditor))
    assert answer.status_code == 200
    head = services.store.log_head().size
    assert answer.content.count(b"\n") == head
    assert _lines_seen_by_splitlines(answer.content) == head  # the raw characters would split lines
    for escaped in (b"\\u2028", b"\\u2029", b"\\u0085"):
        assert escaped in answer.content
    lines = [json.loads(line) for line in answer.text.split("\n") if line]
    (mine,) = [line for line in lines if json.loads(line["entry"]).get("decision_id") == decision_id]
    assert json.loads(mine["entry"])["context"] == {"request_id": BREAKS, "trace_id": "\u2028"}  # round-trips
    # the hashed leaf bytes are untouched: every line's entry still hashes to its leaf_hash
    assert all(leaf_hash(line["entry"].encode()).hex() == line["leaf_hash"] for line in lines)


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(
    client: TestClient, keys: Keys, services: Services,
) -> None:
    # Recorded by the service's own writer, as entries of an app whose id or codes a policy
    # of another time may have allowed (today's apps.yaml ids cannot start with these).
    for i, text in enumerate(FORMULAS):
        fields = dataset_fields(i)
        fields["app_id"] = fields["input"]["app"]["id"] = text
        fields["result"]["denied"][0]["reasons"][0]["code"] = text
        services.writer.append(fields)
    decided = client.post("/v1/decisions", headers=bearer(keys.other_app), json=HELPDESK_REQUEST)
    assert decided.status_code == 200

    answer = client.get("/v1/audit/export", params={"format": "csv"}, headers=bearer(keys.auditor))
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    crafted = [r for r in rows if r["app_id"].startswith("'")]
    assert [r["app_id"] for r in crafted] == ["'" + t for t in FORMULAS]
    assert all(("'" + t) in r["reason_codes"].split(" ") for r, t in zip(crafted, FORMULAS, strict=True))
    for row in rows:  # no cell of any row starts a formula
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    (real,) = [r for r in rows if r["decision_id"] == decided.json()["decision_id"]]
    assert real["app_id"] == "internal-helpdesk"  # ordinary cells are left alone
