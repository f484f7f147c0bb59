"""Forged but well-formed cursors: 422 naming ``cursor`` over HTTP, a one-paragraph error from
``clearance audit query --cursor`` (exit 2), never a 500 or a traceback."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from audit.queries import CursorError, decode_cursor, encode_cursor
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import Dataset
from tests.conftest import REPO


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED = {
    "time-a-number": b64(b"[5,123]"),
    "time-a-number-padded": base64.b64encode(b"[5,123]").decode(),
    "time-null": b64(b"[5,null]"),
    "time-a-list": b64(b'[5,["2026-03-02T00:00:00Z"]]'),
    "time-an-object": b64(b'[5,{"t":1}]'),
    "time-overflows-after-utc": b64(b'[5,"9999-12-31T23:59:59-14:00"]'),
    "time-underflows-after-utc": b64(b'[5,"0001-01-01T00:00:00+14:00"]'),
    "time-naive": b64(b'[5,"2026-03-02T00:00:00"]'),
    "time-with-nul": b64(b'[5,"2026-03-02T00:00:00Z\\u0000"]'),
    "seq-a-bool": b64(b'[true,"2026-03-02T00:00:00Z"]'),
    "seq-zero": b64(b'[0,"2026-03-02T00:00:00Z"]'),
    "seq-negative": b64(b'[-5,"2026-03-02T00:00:00Z"]'),
    "seq-a-float": b64(b'[5.0,"2026-03-02T00:00:00Z"]'),
    "seq-huge": b64(b'[99999999999999999999999,"2026-03-02T00:00:00Z"]'),
    "seq-nan": b64(b'[NaN,"2026-03-02T00:00:00Z"]'),
    "one-element": b64(b"[5]"),
    "three-elements": b64(b'[5,"2026-03-02T00:00:00Z",1]'),
    "an-object": b64(b'{"seq":5,"at":"2026-03-02T00:00:00Z"}'),
    "a-two-char-string": b64(b'"ab"'),
    "not-utf8": b64(b"\xff\xfe[5]"),
    "another-time-spelling": b64(b'[5,"2026-03-02T00:00:00+00:00"]'),
    "valid-then-junk": encode_cursor(7, datetime(2026, 3, 2, tzinfo=UTC)) + "AAAA",
    "not-base64": "%%%",
    "non-ascii": "é5",
}


@pytest.mark.parametrize("token", list(FORGED.values()), ids=list(FORGED))
def test_decode_refuses(token: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(token)


@pytest.mark.parametrize("token", list(FORGED.values()), ids=list(FORGED))
def test_api_answers_422_naming_cursor(client: TestClient, keys: Keys, dataset: Dataset, token: str) -> None:
    answer = client.get("/v1/audit/decisions", params={"cursor": token}, headers=bearer(keys.auditor))
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["error"]["fields"]] == ["cursor"]


def test_a_well_formed_cursor_for_any_position_is_a_page(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    """A cursor is a position, not a secret: one never handed out still names a valid page."""
    for token in (encode_cursor(5, datetime(2026, 3, 2, 3, tzinfo=UTC)), encode_cursor(1, datetime(1970, 1, 1, tzinfo=UTC)),
                  encode_cursor(2**63 - 1, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))):
        answer = client.get("/v1/audit/decisions", params={"cursor": token}, headers=bearer(keys.auditor))
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("name", ["time-a-number", "time-overflows-after-utc", "seq-huge"])
def test_cli_prints_one_paragraph(dataset: Dataset, name: str) -> None:
    env = {"CLEARANCE_DATABASE_URL": dataset.url, "CLEARANCE_HOME": str(dataset.home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "api", "audit", "query", "--cursor", FORGED[name]], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("clearance: invalid option: --cursor: the cursor is malformed")
    assert len(done.stderr.strip().splitlines()) == 1
