"""policy/answer_text.py: the VM's JSON text handed to the decoders as ASCII bytes when the
pack's own characters past ASCII are all it holds, else as the str it is; either way the same
values, through msgspec and orjson alike."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest

from policy import load_policy
from policy.answer_text import decodable, escapes_for
from policy.engine import RegorusEngine
from tests.conftest import REPO
from tests.engines.workloads import policy_inputs

PACK_TEXTS = ['{"clause": "Licence §4", "name": "Ceci n\'est pas — une pipe"}', 'msg := "° and ×"']
ESCAPES = escapes_for(PACK_TEXTS)


def _same(text: str) -> Any:
    value = json.loads(text)
    form = decodable(text, ESCAPES)
    assert orjson.loads(form) == value
    assert msgspec.json.decode(form) == value
    return form


def test_the_pack_s_latin1_characters_are_the_escapes() -> None:
    # '—' is past U+00FF: a text holding it is never turned into Latin-1 bytes.
    assert [raw for raw, _ in ESCAPES] == ["§".encode("latin-1"), "°".encode("latin-1"), "×".encode("latin-1")]
    assert dict(ESCAPES)[b"\xa7"] == b"\\u00a7"
    assert escapes_for(['{"a": "plain"}', "package x"]) == ()


def test_ascii_text_is_handed_over_as_it_is() -> None:
    text = '{"a": ["b", 1, null]}'
    assert decodable(text, ESCAPES) is text


@pytest.mark.parametrize("text", [
    '{"reasons": {"LICENCE_TERRITORY": "Licence §4: excluded", "X": "§§ at 20° × 2"}}',
    '["§", "a\\"§\\\\", "\\u00a7 already escaped", "§"]',
])
def test_the_pack_s_characters_become_ascii_bytes(text: str) -> None:
    form = _same(text)
    assert isinstance(form, bytes) and form.isascii()


@pytest.mark.parametrize("text", [
    '{"m": "§ and é"}',  # é: Latin-1, but not a character of the pack (it came with the input)
    '{"m": "§ and — "}',  # past U+00FF
    '{"m": "€"}',
])
def test_other_characters_leave_the_text_a_str(text: str) -> None:
    assert _same(text) is text


def test_no_escapes_leave_every_text_a_str() -> None:
    assert decodable('{"m": "§"}', ()) == '{"m": "§"}'


def test_reference_answers_decode_alike_either_way() -> None:
    """The reference catalog's answers (its licence clauses cite §) through the engine as it
    runs, against the VM's str decoded as it is."""
    policy = load_policy(REPO / "rego")
    engine = policy.engine
    assert isinstance(engine, RegorusEngine)
    vm = engine._vm()
    seen_bytes = 0
    for policy_input in policy_inputs(policy.bundle, 60, seed=11):
        vm.set_input_json(orjson.dumps(policy_input).decode())
        text = vm.execute_entry_point("data.clearance.decision")
        form = decodable(text, engine._escapes)
        seen_bytes += isinstance(form, bytes)
        assert orjson.loads(form) == orjson.loads(text)
        assert engine.evaluate(policy_input) == orjson.loads(text)
    assert seen_bytes > 0  # the reference answers do carry §
