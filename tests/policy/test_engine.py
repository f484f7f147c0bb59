"""The embedded engine: threads, large catalogs beyond the RVM's instruction limit, failures."""

from __future__ import annotations

import copy
import json
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from policy import ActivePolicy, DecisionRequest, EvaluationError, decide, evaluate_input, load_policy
from policy.decision import build_input
from policy.engine import decoded
from tests.conftest import REPO
from tests.engines.workloads import policy_inputs

HEAVY = {
    "app_id": "citizen-services",
    "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "critical",
                 "sector": "public_sector", "jurisdictions": ["EU"], "data_classification": "restricted"},
}


def _reasons(decision: Any) -> dict[tuple[str, str], list[str]]:
    return {(d.model, d.deployment): [r.code for r in d.reasons] for d in decision.denied}


def test_decisions_from_many_threads_agree(policy: ActivePolicy) -> None:
    request = DecisionRequest.model_validate(HEAVY)
    expected = decide(policy, request, decision_id="x")[1].model_dump_json()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: decide(policy, request, decision_id="x")[1].model_dump_json(), range(64)))
    assert set(results) == {expected}


def test_catalog_past_the_rvm_instruction_limit_still_decides(tmp_path: Path, policy: ActivePolicy) -> None:
    bundle_dir = tmp_path / "rego"
    shutil.copytree(REPO / "rego", bundle_dir)
    models_file = bundle_dir / "data" / "models.yaml"
    doc = yaml.safe_load(models_file.read_text())
    copies = [{**m, "id": f"{m['id']}-copy{i}"} for i in range(5) for m in doc["models"]]
    doc["models"] += copies
    models_file.write_text(yaml.safe_dump(doc))
    big = load_policy(bundle_dir)
    assert big.route_count() > 200

    request = DecisionRequest.model_validate(HEAVY)
    small_reasons = _reasons(decide(policy, request)[1])
    big_reasons = _reasons(decide(big, request)[1])
    for route, codes in small_reasons.items():
        assert big_reasons[route] == codes
        model, deployment = route
        assert big_reasons[(f"{model}-copy3", deployment)] == codes


@pytest.mark.parametrize(
    "damage",
    [
        lambda i: i.update(workload={}),
        lambda i: i.pop("app"),
        lambda i: i["workload"].pop("regulatory_tier"),
        lambda i: i.update(app={"programs": ["glasswing"]}),
    ],
)
def test_incomplete_input_fails_closed(policy: ActivePolicy, damage: Any) -> None:
    """A rule that reads a missing field is undefined in Rego: never let that clear a route."""
    policy_input = build_input(policy.bundle, DecisionRequest.model_validate(HEAVY), None)
    damage(policy_input)
    with pytest.raises(EvaluationError):
        evaluate_input(policy, policy_input, decision_id="x")


def test_engine_errors_fail_closed(policy: ActivePolicy) -> None:
    broken = load_policy(REPO / "rego")
    broken.engine._program_bytes = b"garbage"  # noqa: SLF001 - simulate an engine failure
    with pytest.raises(EvaluationError):
        decide(broken, DecisionRequest.model_validate(HEAVY))


def test_catalog_in_parts_decides_as_the_whole_catalog(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A catalog past PART_MODELS is judged in parts on the compiled VM; the merged decision is
    the one regorus' interpreter gives on the whole catalog at once, ranks and order included,
    and no part needs the interpreter."""
    import orjson
    import regorus

    from bench.synthetic import write_bundle
    from policy.engine import ENTRY_POINT, PART_MODELS, RegorusEngine
    from tests.engines.workloads import policy_inputs

    bundle = load_policy(write_bundle(PART_MODELS * 4 + 5, tmp_path / "big")).bundle
    engine = RegorusEngine(bundle, part_models=PART_MODELS)
    assert engine.parts == 5 and engine.assembles
    assert RegorusEngine(bundle).parts == 2  # ASSEMBLED_PART_MODELS
    whole = regorus.Engine()
    for name, text in sorted(bundle.modules.items()):
        whole.add_policy(name, text)
    whole.add_data_json(orjson.dumps(bundle.data_document()).decode())
    outcomes = set()
    with caplog.at_level("INFO", logger="clearance.policy"):
        for policy_input in policy_inputs(bundle, 40, seed=3):
            whole.set_input_json(orjson.dumps(policy_input).decode())
            expected = orjson.loads(whole.eval_rule_as_json(ENTRY_POINT))
            assert engine.evaluate(policy_input) == expected
            outcomes.add(expected["outcome"])
    assert outcomes == {"allow", "deny"}
    assert "instruction limit" not in caplog.text


class _Canned:
    """An engine that answers one fixed raw decision (to test the checks around the engine)."""

    name = "canned"
    blocking = False

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def evaluate(self, policy_input: dict[str, Any]) -> Any:
        return self.answer


def test_answers_are_checked_as_the_decision_schema(policy: ActivePolicy) -> None:
    import copy

    request = DecisionRequest.model_validate(HEAVY)
    policy_input = policy.input_for(request, None)
    good = policy.engine.evaluate(policy_input)
    assert good["allowed"], "the check below needs an allowed route"
    as_int = copy.deepcopy(good)
    as_int["allowed"][0]["price_per_mtok"] = 3
    checked = ActivePolicy(policy.bundle, _Canned(as_int)).evaluate(policy_input)  # type: ignore[arg-type]
    assert checked["allowed"][0]["price_per_mtok"] == 3.0 and isinstance(checked["allowed"][0]["price_per_mtok"], float)
    assert checked == evaluate_input(ActivePolicy(policy.bundle, _Canned(as_int)), policy_input,  # type: ignore[arg-type]
                                     decision_id="x").model_dump(mode="json", exclude={"decision_id", "policy_revision"})
    for damage in (lambda d: d.update(extra=1), lambda d: d["denied"][0].update(rank=1),
                   lambda d: d.update(outcome="maybe"), lambda d: d["allowed"].pop()):
        bad = copy.deepcopy(good)
        damage(bad)
        with pytest.raises(EvaluationError):
            ActivePolicy(policy.bundle, _Canned(bad)).evaluate(policy_input)  # type: ignore[arg-type]


class _CannedText(_Canned):
    """An engine that answers one fixed JSON text, as ``RegorusEngine.evaluate_raw`` does."""

    def evaluate_raw(self, policy_input: dict[str, Any]) -> Any:
        return self.answer

    def evaluate(self, policy_input: dict[str, Any]) -> Any:
        return decoded(self.answer)


def _outcome(policy: ActivePolicy, engine: Any, policy_input: dict[str, Any]) -> tuple[str, Any]:
    """What ActivePolicy.evaluate gives with this engine: the answer (its repr, so that 1 and
    1.0 differ) or the exception's type and message."""
    try:
        return "answer", repr(ActivePolicy(policy.bundle, engine).evaluate(policy_input))
    except Exception as exc:  # noqa: BLE001 - any difference counts
        return type(exc).__name__, str(exc)


_ODD_VALUES: list[Any] = [1, 1.0, 2.5, -0.0, 3, True, None, "2", "x", [], {}, ["a"], 2**63 - 1, 2**63, 2**64,
                          -(2**63) - 1, 10**23, 1e308, "<undefined>", "allow", "deny"]


def _mutants(good: dict[str, Any], rng: random.Random, n: int) -> list[str]:
    """JSON texts of the answer with one value replaced, a key added or removed, and a few
    texts no JSON decoder treats alike (duplicate keys, NaN, a lone surrogate, trailing text)."""
    texts = []
    for _ in range(n):
        answer = copy.deepcopy(good)
        node: Any = answer
        while True:  # walk down to a random container and damage one of its entries
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = rng.choice(keys)
            if isinstance(node[key], (dict, list)) and node[key] and rng.random() < 0.75:
                node = node[key]
                continue
            roll = rng.random()
            if roll < 0.7:
                node[key] = rng.choice(_ODD_VALUES)
            elif roll < 0.85 and isinstance(node, dict):
                node["extra"] = 1
            else:
                del node[key]
            break
        texts.append(json.dumps(answer, separators=(",", ":")))  # big integers too
    base = json.dumps(good, separators=(",", ":"))
    texts += [base, " " + base + "\n", base + " x", '"<undefined>"', "null", "[]",
              base.replace('"outcome":', '"outcome":"deny","outcome":', 1),
              base.replace('"outcome":', '"outcome":"maybe","outcome":', 1),
              base.replace('"rank":1', '"rank":1.0', 1), base.replace('"rank":1', '"rank":NaN', 1),
              base.replace('"rank":1', '"rank":9223372036854775808', 1),
              base.replace('"rank":1', '"rank":99999999999999999999999', 1),
              base.replace('"model":"', '"model":"\\ud800', 1), base.replace('"model":"', '"model":"\\u0000', 1)]
    return texts


def test_the_engines_text_is_checked_as_its_decoded_answer(policy: ActivePolicy) -> None:
    """The one-pass check of the VM's JSON text (msgspec) gives what orjson.loads + the
    TypedDict check gives, answers and refusals alike, on real answers damaged at random."""
    rng = random.Random(16)
    inputs = [policy.input_for(DecisionRequest.model_validate(HEAVY), None),
              *policy_inputs(policy.bundle, 6, seed=16)]
    compared = refused = 0
    for policy_input in inputs:
        good = policy.engine.evaluate(policy_input)
        for text in _mutants(good, rng, 150):
            fast = _outcome(policy, _CannedText(text), policy_input)
            try:
                slow = _outcome(policy, _Canned(decoded(text)), policy_input)
            except Exception as exc:  # noqa: BLE001 - a text the engine's decoding refuses
                slow = type(exc).__name__, str(exc)
            assert fast == slow, text[:400]
            compared += 1
            refused += fast[0] != "answer"
    assert compared > 1000 and 0 < refused < compared


def test_the_engines_text_is_decoded_and_checked_in_one_pass(policy: ActivePolicy,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A well-formed answer of the VM never goes through orjson.loads + the TypedDict check."""
    policy_input = policy.input_for(DecisionRequest.model_validate(HEAVY), None)
    expected = ActivePolicy(policy.bundle, policy.engine).evaluate(policy_input)

    def refuse(*_: Any) -> Any:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr("policy.decision._BODY.validate_python", refuse)
    monkeypatch.setattr("policy.engine.orjson.loads", refuse)
    assert ActivePolicy(policy.bundle, policy.engine).evaluate(policy_input) == expected
