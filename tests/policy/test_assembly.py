"""The decision assembled in Python from main.rego's tables (policy/assembly.py) is the VM's
``data.clearance.decision``, byte for byte, and only packs whose main.rego is the pinned one
are assembled that way."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.inprocess import WORKLOADS
from policy import ActivePolicy, Caller, DecisionRequest, assembly, load_policy
from policy.decision import _fast_checked
from policy.engine import ENTRY_POINT, PART_MODELS, RegorusEngine
from tests.conftest import REPO
from tests.engines.workloads import policy_inputs


def _inputs(policy: ActivePolicy, random_inputs: int, seed: int) -> list[dict[str, Any]]:
    caller = Caller(key_id="k_assembly", role="app")
    realistic = [policy.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS]
    return realistic + policy_inputs(policy.bundle, random_inputs, seed=seed)


def _by_the_vm(policy: ActivePolicy) -> ActivePolicy:
    """The same bundle with every decision (or part) evaluated by the VM as ``decision`` (``part``),
    in parts of PART_MODELS as a pack that is not assembled is judged."""
    engine = RegorusEngine(policy.bundle, part_models=PART_MODELS)
    engine._assembles = False
    return ActivePolicy(policy.bundle, engine)


def _assert_same_answers(policy: ActivePolicy, inputs: list[dict[str, Any]]) -> set[str]:
    assert isinstance(policy.engine, RegorusEngine) and policy.engine.assembles
    whole = _by_the_vm(policy)
    outcomes = set()
    for policy_input in inputs:
        answer = policy.evaluate(policy_input)
        assert orjson.dumps(answer) == orjson.dumps(whole.evaluate(policy_input)), policy_input["workload"]
        outcomes.add(answer["outcome"])
    return outcomes


def test_the_vms_decision_is_what_the_comparison_sees(policy: ActivePolicy) -> None:
    """The baseline above is the VM's own ``data.clearance.decision``, checked as answers are."""
    engine = _by_the_vm(policy).engine
    assert isinstance(engine, RegorusEngine)
    policy_input = _inputs(policy, 0, seed=0)[0]
    text = engine._run(engine._vm(), ENTRY_POINT, orjson.dumps(policy_input).decode(), None)
    assert orjson.dumps(_by_the_vm(policy).evaluate(policy_input)) == orjson.dumps(_fast_checked(text))


def test_the_pinned_digest_is_rego_main(policy: ActivePolicy) -> None:
    digest = hashlib.sha256((REPO / "rego" / "main.rego").read_bytes()).hexdigest()
    assert digest == assembly.PINNED_MAIN, (
        "rego/main.rego changed: make policy/assembly.assembled build what its `decision` builds, "
        f"run this file's tests, then pin {digest}")
    assert isinstance(policy.engine, RegorusEngine) and policy.engine.assembles


def test_assembled_decisions_are_the_vms_on_the_reference_catalog(policy: ActivePolicy) -> None:
    outcomes = _assert_same_answers(policy, _inputs(policy, 300, seed=21))
    assert outcomes == {"allow", "deny"}


@pytest.mark.parametrize(("models", "part_models", "parts"),
                         [(3, None, 1), (17, None, 1), (53, None, 1), (53, PART_MODELS, 3), (130, None, 2)])
def test_assembled_decisions_are_the_vms_on_synthetic_catalogs(
        tmp_path: Path, models: int, part_models: int | None, parts: int) -> None:
    """Against the VM's decisions in parts of PART_MODELS: whole catalogs and parts assembled from
    their own tables (ASSEMBLED_PART_MODELS by default) decide alike."""
    from bench.synthetic import write_bundle

    loaded = load_policy(write_bundle(models, tmp_path / "bundle", seed=2))
    policy = ActivePolicy(loaded.bundle, RegorusEngine(loaded.bundle, part_models=part_models))
    assert isinstance(policy.engine, RegorusEngine) and policy.engine.parts == parts
    inputs = policy_inputs(policy.bundle, 200 if models > 24 else 60, seed=2)
    _assert_same_answers(policy, inputs)
    if models > 24:  # rankings were merged where strength leads
        strength_led = [len(policy.evaluate(i)["allowed"]) for i in inputs if i["workload"]["quality_tier"] == "frontier"]
        assert sum(n >= 2 for n in strength_led) >= 5


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "rego"
    shutil.copytree(REPO / "rego", pack, ignore=shutil.ignore_patterns("*_test.rego"))
    return pack


def test_an_edited_main_rego_is_decided_whole_by_the_vm(tmp_path: Path, policy: ActivePolicy) -> None:
    """Even a comment makes main.rego another text: its decision is the VM's, the same answers."""
    pack = _pack(tmp_path)
    main = pack / "main.rego"
    main.write_text(main.read_text() + "\n# reviewed\n")
    edited = load_policy(pack)
    assert isinstance(edited.engine, RegorusEngine) and not edited.engine.assembles
    assert (edited.engine.assembly_refusal or "").startswith("main.rego is not the text")
    for policy_input in _inputs(policy, 20, seed=4):
        assert orjson.dumps(edited.evaluate(policy_input)) == orjson.dumps(policy.evaluate(policy_input))


def test_a_second_module_of_package_clearance_turns_the_assembly_off(tmp_path: Path) -> None:
    pack = _pack(tmp_path)
    (pack / "extra.rego").write_text("package clearance\n\nimport rego.v1\n\nnote := \"extra\"\n")
    assert not RegorusEngine(load_policy(pack).bundle).assembles


def test_what_the_guard_refuses() -> None:
    main = (REPO / "rego" / "main.rego").read_text()
    other = ("ranking.rego", "# rank\npackage clearance.ranking\n\nimport rego.v1\n")
    assert assembly.applies([("main.rego", main), other], {"models": []})
    assert not assembly.applies([("main.rego", main), other], {"models": [], "clearance": {"allowed": []}})
    assert not assembly.applies([("main.rego", main.replace("sort(", "sort( "))], {})
    assert not assembly.applies([("main.rego", main), ("b.rego", "package data.clearance\n")], {})
    for rule in ("allowed", "denied", "decision", "assembly"):
        assert not assembly.applies([("main.rego", main), ("x.rego", f"package clearance.{rule}\n")], {}), rule
    assert not assembly.applies([("x.rego", "package clearance.ranking\n")], {})


def test_the_refusal_names_its_reason() -> None:
    """``clearance policy check`` prints it: what a policy author changes to get the speed back."""
    main = (REPO / "rego" / "main.rego").read_text()
    assert assembly.refusal([("main.rego", main)], {}) is None
    assert "clearance root" in (assembly.refusal([("main.rego", main)], {"clearance": {}}) or "")
    edited = assembly.refusal([("main.rego", main + "\n# a comment\n")], {}) or ""
    assert edited.startswith("main.rego is not the text policy/assembly.py pins") and assembly.PINNED_MAIN[:12] in edited
    assert "2 modules of package clearance" in (assembly.refusal([("main.rego", main), ("b.rego", "package clearance\n")], {}) or "")
    assert "0 modules" in (assembly.refusal([], {}) or "")
    assert "x.rego (package clearance.denied)" in (assembly.refusal([("main.rego", main), ("x.rego", "package clearance.denied\n")], {}) or "")


def test_tables_of_other_types_are_refused(policy: ActivePolicy) -> None:
    """Tables main.rego's rules do not expect go back to the VM (``None``), never half-assembled."""
    engine = policy.engine
    assert isinstance(engine, RegorusEngine)
    policy_input = _inputs(policy, 0, seed=0)[0]
    text = engine._run(engine._vm(), assembly.ASSEMBLY_RULE, orjson.dumps(policy_input).decode(), None)
    tables = orjson.loads(text)
    model_ids = [m["id"] for m in policy.bundle.data_document()["models"]]
    assert assembly.assembled(text, model_ids) is not None
    assert tables["ordered"] and tables["denials"]["model"], "the damage below needs both"

    def damaged(change: Any) -> str:
        copy = orjson.loads(text)
        change(copy)
        return orjson.dumps(copy).decode()

    first_model = next(iter(tables["denials"]["model"]))
    for change in (
        lambda t: t["ordered"][0].append("x"),  # a key of another shape
        lambda t: t["ordered"][0].pop(),
        lambda t: t["ordered"][0].__setitem__(1, "2"),  # a price as text
        lambda t: t["denials"]["model"][first_model].update(CODE=1),  # a message that is no text
        lambda t: t["denials"].pop("route"),
        lambda t: t["obligations"].update(extra={}),
        lambda t: t.pop("deployments"),
        lambda t: t.update(more=1),
    ):
        assert assembly.assembled(damaged(change), model_ids) is None
    assert assembly.assembled('"<undefined>"', model_ids) is None
    assert assembly.assembled("{", model_ids) is None


def test_refused_tables_leave_the_decision_to_the_vm(tmp_path: Path, policy: ActivePolicy) -> None:
    """A ranking.rego whose keys carry one more element: main.rego (pinned) still assembles from
    them, so its tables are refused and every decision is the VM's whole one, as before."""
    pack = _pack(tmp_path)
    ranking = pack / "ranking.rego"
    text = ranking.read_text()
    assert "order(keys) := sort(keys)" in text
    ranking.write_text(text.replace("order(keys) := sort(keys)",
                                    'order(keys) := [array.concat(k, ["extra"]) | some k in sort(keys)]'))
    longer = load_policy(pack)
    engine = longer.engine
    assert isinstance(engine, RegorusEngine) and engine.assembles
    model_ids = [m["id"] for m in longer.bundle.data_document()["models"]]
    for policy_input in _inputs(policy, 20, seed=8):
        tables = engine._run(engine._vm(), assembly.ASSEMBLY_RULE, orjson.dumps(policy_input).decode(), None)
        assert orjson.loads(tables)["ordered"] == [] or assembly.assembled(tables, model_ids) is None
        assert orjson.dumps(longer.evaluate(policy_input)) == orjson.dumps(policy.evaluate(policy_input))
