"""The exact bytes that are hashed and signed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit.canonical import (
    CHECKPOINT_DOMAIN,
    ENTRY_DOMAIN,
    GENESIS_PREV_HASH,
    canonical_bytes,
    entry_hash,
    entry_signing_input,
    format_time,
    parse_time,
)
from audit.errors import AuditEntryInvalid


def test_canonical_bytes_follow_rfc8785() -> None:
    # Keys sorted by UTF-16 code units, no whitespace, ECMAScript number forms.
    assert canonical_bytes({"b": 1, "a": [True, None, 1.0, 1e21, "é"]}) == (
        '{"a":[true,null,1,1e+21,"é"],"b":1}'.encode()
    )


@pytest.mark.parametrize("value", [float("nan"), 2**60, {1: "x"}, object()])
def test_values_that_are_not_json_are_refused(value: object) -> None:
    with pytest.raises(AuditEntryInvalid):
        canonical_bytes({"v": value})


def test_entry_hash_is_sha256_of_prev_hash_then_body() -> None:
    body = b'{"seq":1}'
    assert entry_hash(GENESIS_PREV_HASH, body) == hashlib.sha256(bytes(32) + body).digest()
    with pytest.raises(ValueError):
        entry_hash(b"short", body)


def test_domain_prefixes_are_distinct_and_fixed() -> None:
    assert ENTRY_DOMAIN == b"clearance.audit.v1\n"
    assert CHECKPOINT_DOMAIN == b"clearance.checkpoint.v1\n"
    assert entry_signing_input(b"h" * 32) == b"clearance.audit.v1\n" + b"h" * 32


def test_time_format_is_utc_with_microseconds() -> None:
    moment = datetime(2025, 11, 21, 2, 34, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    text = format_time(moment)
    assert text == "2025-11-21T01:34:00.000005Z"
    assert parse_time(text) == moment
    assert parse_time(text).tzinfo == UTC
    with pytest.raises(ValueError):
        format_time(datetime(2025, 1, 1))  # naive
