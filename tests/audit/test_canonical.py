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


@pytest.mark.parametrize("year", [1, 99, 999, 1000, 9999])
def test_time_format_keeps_four_digit_years(year: int) -> None:
    moment = datetime(year, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = format_time(moment)
    assert text == f"{year:04d}-01-02T03:04:05.000000Z"
    assert parse_time(text) == moment


# --- precomputed members (audit.canonical.Canonical) ------------------------------------------

import random as _random  # noqa: E402

import rfc8785 as _rfc8785  # noqa: E402

from audit.canonical import Canonical, canonical, canonical_bytes, plain  # noqa: E402


def _random_json(rng: _random.Random, depth: int = 0) -> object:
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == "float":
        return rng.choice([0.1, 4.5, 1e21, 1e-7, -0.0, 123.456, 30.0, rng.uniform(-1e6, 1e6)])
    if kind == "str":
        return "".join(rng.choice(["a", "Z", "é", "€", "😀", "\n", '"', "\\", "\u2028", "\x01"]) for _ in range(rng.randint(0, 8)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_random_key(rng): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _random_key(rng: _random.Random) -> str:
    return "".join(rng.choice(["a", "b", "B", "_", "é", "€", "😀", "ﬀ", "1"]) for _ in range(rng.randint(1, 4)))


def test_spliced_members_equal_rfc8785_of_the_whole_object() -> None:
    rng = _random.Random(8785)
    for _ in range(2000):
        whole = {_random_key(rng): _random_json(rng) for _ in range(rng.randint(1, 8))}
        spliced = {k: (canonical(v) if rng.random() < 0.5 else v) for k, v in whole.items()}
        assert canonical_bytes(spliced) == _rfc8785.dumps(whole)
        assert plain(spliced) == whole


def test_canonical_member_is_used_as_given() -> None:
    member = Canonical({"b": 1, "a": 2}, b'{"a":2,"b":1}')
    assert canonical_bytes({"z": 1, "input": member}) == b'{"input":{"a":2,"b":1},"z":1}'


def test_memoised_scalars_keep_their_json_type() -> None:
    # True == 1 == 1.0 in Python; the memo must not hand one's bytes to another.
    assert [canonical_bytes(v) for v in (1, True, 1, False, 0, None, "1")] == [
        b"1", b"true", b"1", b"false", b"0", b"null", b'"1"']
    assert canonical_bytes({"b": True, "a": 1}) == b'{"a":1,"b":true}'


# --- orjson where it writes RFC 8785 (audit.canonical._by_orjson) ------------------------------

import math  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from audit.canonical import _by_orjson  # noqa: E402

# Strings of every kind: control characters, quotes, backslashes, U+2028, characters from
# U+E000 up and beyond the BMP, and lone surrogates (which orjson refuses).
_ANY_TEXT = st.text(st.one_of(st.characters(codec=None, exclude_categories=()),
                              st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "\u2028", "\ue000", "\uffff",
                                               "\U0001f600", "\ud800", "\udfff"])), max_size=12)
_ANY_NUMBER = st.one_of(st.integers(), st.floats(), st.floats(min_value=-1e16, max_value=1e16),
                        st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e15, 999999999999999.9,
                                         2.0**53, 2.0**53 - 1, -(2.0**53 - 1), 2**53 - 1, 2**53, 5e-324]))
_ANY_JSON = st.recursive(st.one_of(st.none(), st.booleans(), _ANY_NUMBER, _ANY_TEXT),
                         lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                 st.dictionaries(_ANY_TEXT, inner, max_size=4)), max_leaves=20)


def _rfc8785_or_none(value: object) -> bytes | None:
    try:
        return _rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - whatever rfc8785 refuses
        return None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY_JSON)
def test_orjson_writes_rfc8785_or_declines(value: object) -> None:
    """Whatever orjson writes is rfc8785's bytes; what rfc8785 refuses, orjson declines."""
    fast = _by_orjson(value)
    if fast is not None:
        assert fast == _rfc8785.dumps(value)
    assert canonical_bytes(value) == _rfc8785.dumps(value) if _rfc8785_or_none(value) is not None else True


_SUBSET_KEY = st.text(st.characters(codec="utf-8", max_codepoint=0xDFFF), max_size=8)
_SUBSET_NUMBER = st.one_of(st.integers(-(2**53) + 1, 2**53 - 1),
                           st.floats(min_value=1e-4, max_value=1e15, exclude_max=True),
                           st.floats(min_value=-1e15, max_value=-1e-4, exclude_min=True),
                           st.integers(-(2**53) + 1, 2**53 - 1).map(float))
_SUBSET_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), _SUBSET_NUMBER, st.text(st.characters(codec="utf-8"), max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_SUBSET_KEY, inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SUBSET_JSON)
def test_orjson_writes_the_subset(value: object) -> None:
    """In the subset (keys below U+E000, safe integers, floats integral or in [1e-4, 1e15)),
    orjson writes every value, and rfc8785's bytes."""
    assert _by_orjson(value) == _rfc8785.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=1e-4, max_value=1e15, exclude_max=True))
def test_orjson_writes_floats_as_ecmascript_does(x: float) -> None:
    assert _by_orjson([x, -x]) == _rfc8785.dumps([x, -x])


def test_the_edges_of_the_subset() -> None:
    below = math.nextafter(1e-4, 0.0)
    for outside in (below, 1e15 + 0.5, 1e21, 5e-324, float("nan"), float("inf"), 2**53, 2.0**53, -(2**53),
                    {"\ue000": 1}, {"\U0001f600": 1}, {1: 2}, ("tuple",), "\ud800", {"k": "\udfff"}):
        assert _by_orjson(outside) is None, outside
    for inside in (1e-4, math.nextafter(1e15, 0.0), 2**53 - 1, 2.0**53 - 1, -0.0, 30.0, {"\ud7ff": 1}, {"é": "\ue000"},
                   "\x00\x1f\x7f\u2028\"\\"):
        assert _by_orjson(inside) == _rfc8785.dumps(inside), inside
    assert _by_orjson({"price": 30.0, "zero": -0.0}) == b'{"price":30,"zero":0}'


def test_decisions_are_written_by_orjson() -> None:
    """A decision's route lists and its input are in the subset, written as rfc8785 writes them
    (the reference catalog: six realistic workloads and 100 random inputs)."""
    from bench.inprocess import WORKLOADS
    from policy import Caller, DecisionRequest, load_policy
    from tests.conftest import REPO
    from tests.engines.workloads import policy_inputs

    policy = load_policy(REPO / "rego")
    caller = Caller(key_id="k_canonical", role="app")
    inputs = [policy.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS]
    for policy_input in inputs + policy_inputs(policy.bundle, 100, seed=85):
        answer = policy.evaluate(policy_input)
        for value in (policy_input, answer["allowed"], answer["denied"]):
            assert _by_orjson(value) == _rfc8785.dumps(value)
