"""policy/input_paths.py: the VM is handed only the parts of the input the pack's rules can
reach, found in their syntax tree; anything it cannot bound keeps the input whole. Each way a
rule could reach the rest (the keyword alone, a variable index, an import, ``with``) is tried
against the cut, and the reference pack decides alike with the input whole and cut."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import regorus

from policy import load_policy
from policy.engine import RegorusEngine
from policy.input_paths import WHOLE, pruned, read_paths
from tests.conftest import REPO
from tests.engines.workloads import policy_inputs

INPUT = {
    "app": {"id": "a1", "owner": "o", "description": "long text", "programs": ["p"], "tags": {"x": 1}},
    "workload": {"task": "chat", "sectors": ["health"], "extra": {"deep": True}},
    "caller": {"key_id": "k", "role": "app"},
    "requested": {"workload": {"task": "chat"}},
}


def _module(body: str) -> list[tuple[str, str]]:
    return [("m.rego", f"package m\nimport rego.v1\n{body}\n")]


def _answers(body: str, policy_input: dict[str, Any]) -> Any:
    engine = regorus.Engine()
    for name, text in _module(body):
        engine.add_policy(name, text)
    engine.set_input_json(orjson.dumps(policy_input).decode())
    return orjson.loads(engine.eval_rule_as_json("data.m.out"))


@pytest.mark.parametrize("body, kept", [
    ('out := [input.app.id, input["workload"].task]', {"app": {"id": "a1"}, "workload": {"task": "chat"}}),
    # a list is kept whole below the path that reaches it, and so is a part read whole
    ("out := [count(input.app.programs), input.workload]",
     {"app": {"programs": ["p"]}, "workload": INPUT["workload"]}),
    # a path and a longer one through it: the shorter keeps all below it
    ("out := [input.app.tags.x, input.app.tags]", {"app": {"tags": {"x": 1}}}),
    # a variable index keeps everything below the part it indexes
    ("out := {k: v | some k, v in input.app}", {"app": INPUT["app"]}),
    ('out := [input.app[k] | some k in ["id", "owner"]]', {"app": INPUT["app"]}),
    # an index that is itself an input reference: both paths
    ("out := input.app.tags[input.workload.task]", {"app": {"tags": {"x": 1}}, "workload": {"task": "chat"}}),
    # an import of a part of the input
    ("import input.caller as who\nout := who.role", {"caller": INPUT["caller"]}),
    # a function reads through its argument
    ("f(x) := x.task\nout := f(input.workload)", {"workload": INPUT["workload"]}),
    ("out := input.workload.absent", {"workload": {}}),
])
def test_only_the_paths_read_are_handed_over(body: str, kept: dict[str, Any]) -> None:
    paths = read_paths(_module(body))
    assert paths is not None
    cut = pruned(INPUT, paths)
    assert cut == kept
    assert _answers(body, cut) == _answers(body, INPUT)


@pytest.mark.parametrize("body", [
    "out := input",
    "out := object.get(input, [\"caller\", \"role\"], null)",
    'out := input[k] if { some k in ["caller"] }',
    "out := json.marshal(input)",
    "out := [v | walk(input, [_, v])]",
    "import input\nout := input.caller",
    'out := x if { x := input.app.id with input.app.id as "other" }',
])
def test_what_cannot_be_bounded_keeps_the_input_whole(body: str) -> None:
    assert read_paths(_module(body)) is None
    assert pruned(INPUT, None) is INPUT


def test_a_pack_that_does_not_parse_keeps_the_input_whole() -> None:
    assert read_paths([("m.rego", "package m\nout := {")]) is None


def test_paths_trie() -> None:
    paths = read_paths(_module("out := [input.a.b.c, input.a.b, input.a.d.e, input.f]"))
    assert paths == {"a": {"b": WHOLE, "d": {"e": WHOLE}}, "f": WHOLE}
    assert paths is not None and paths["a"]["b"] is WHOLE


def test_the_reference_pack_reads_the_app_s_entitlements_and_the_workload() -> None:
    policy = load_policy(REPO / "rego")
    paths = read_paths(sorted(policy.bundle.modules.items()))
    assert paths is not None
    assert set(paths["app"]) == {"id", "programs", "capability_approvals", "attestations"}
    assert "caller" not in paths and "requested" not in paths


def test_the_reference_pack_decides_alike_on_the_whole_input_and_the_cut() -> None:
    """The engine as it runs (the input cut) against one whose cut is switched off."""
    policy = load_policy(REPO / "rego")
    cut = policy.engine
    whole = RegorusEngine(policy.bundle)
    whole._input_paths = None
    assert isinstance(cut, RegorusEngine) and cut._input_paths is not None
    for policy_input in policy_inputs(policy.bundle, 150, seed=3):
        assert cut.evaluate(policy_input) == whole.evaluate(policy_input)
