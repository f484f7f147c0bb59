"""The comparison impact replay runs (``compare_answers`` on the raw answers, one profile
resolution for an app unchanged on both sides) gives exactly what the reference comparison
gives (``compare(Summary.of(base), Summary.of(head))``, each side resolved and decided alone)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from policy import ActivePolicy, DecisionRequest, decide, load_policy
from policy.errors import EvaluationError, UnknownApp
from policy.profile import ProfileViolation
from policy.review.diff import Change, Summary, compare, compare_answers, well_formed
from policy.review.impact import Judge, analyse
from policy.review.replay import Replay, read_jsonl
from tests.bundles import copy_bundle, edit, lower_llama_cap
from tests.conftest import REPO

SAMPLE = Path(__file__).parent / "data" / "decisions-sample.jsonl"


def reference_summary(policy: ActivePolicy, replay: Replay) -> Summary:
    """How impact replay judged a side before: resolve and decide alone, then summarise."""
    try:
        policy_input = policy.input_for_recorded(replay.app_id, replay.requested, replay.caller)
        return Summary.of(policy.evaluate(policy_input))
    except (UnknownApp, EvaluationError, ProfileViolation) as exc:
        return Summary.failed(str(exc))


def reference_change(base: ActivePolicy, head: ActivePolicy, replay: Replay) -> Change:
    recorded = None
    if replay.recorded_result is not None:
        try:
            recorded = Summary.of(replay.recorded_result)
        except (KeyError, TypeError):
            recorded = None
    return compare(recorded or reference_summary(base, replay), reference_summary(head, replay))


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> tuple[ActivePolicy, ActivePolicy]:
    """The reference pack, and a head that lowers the Llama cap (routes newly denied, codes
    appearing) and narrows one app's profile (its insurance requests refused: head errors)."""
    head = copy_bundle(tmp_path_factory.mktemp("head") / "rego")
    lower_llama_cap(head)
    edit(head / "data" / "apps.yaml", "sectors: [financial_services, insurance]", "sectors: [financial_services]")
    return load_policy(REPO / "rego"), load_policy(head)


def sample() -> list[Replay]:
    replays = [r for r in read_jsonl(SAMPLE) if isinstance(r, Replay)]
    assert len(replays) == 400
    return replays


def recorded_lines(base: ActivePolicy, tmp_path: Path) -> list[Replay]:
    """The sample as audit export lines decided by the base (the recorded answer reused)."""
    lines = []
    for i, raw in enumerate(SAMPLE.read_bytes().splitlines()[:150]):
        policy_input, decision = decide(base, DecisionRequest.model_validate(orjson.loads(raw)))
        result = decision.model_dump(mode="json")
        lines.append(orjson.dumps({"decision_id": result["decision_id"], "input": policy_input, "result": result}))
        if i % 50 == 0:  # a recording the base would not accept as one of its answers
            del result["denied"][0]["reasons"][0]["code"]
            lines.append(orjson.dumps({"decision_id": f"bad-{i}", "input": policy_input, "result": result}))
    path = tmp_path / "recorded.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replays = [r for r in read_jsonl(path) if isinstance(r, Replay)]
    assert sum(r.recorded_result is not None for r in replays) == len(replays)
    return replays


def test_judge_matches_the_reference_comparison_replay_by_replay(sides: tuple[ActivePolicy, ActivePolicy],
                                                                 tmp_path: Path) -> None:
    base, head = sides
    judge = Judge(base, head)
    assert "claims-summariser" not in judge._shared_input and "internal-helpdesk" in judge._shared_input
    replays = sample() + recorded_lines(base, tmp_path)
    kinds: set[str] = set()
    for replay in replays:
        expected = reference_change(base, head, replay)
        assert judge.judge(replay) == expected, replay.label
        kinds.add("error" if expected.head_error else "changed" if expected.differs else "same")
        kinds.update(name for name in ("codes_appeared", "newly_denied") if getattr(expected, name))
    unchanged = Judge(base, base)  # the same bundle on both sides: nothing differs
    for replay in replays[::5]:
        expected = reference_change(base, base, replay)
        assert unchanged.judge(replay) == expected, replay.label
        kinds.add("error" if expected.head_error else "changed" if expected.differs else "same")
        kinds.update(name for name in ("codes_appeared", "newly_denied") if getattr(expected, name))
    assert kinds == {"error", "changed", "same", "codes_appeared", "newly_denied"}  # every path was taken


def test_the_report_is_the_same_in_one_process_and_in_the_pool(sides: tuple[ActivePolicy, ActivePolicy]) -> None:
    """Batches of 64 with repeats 30-100 replays apart: a workload is often still being judged
    by the pool (its batch in flight) when the next batch is read; it is judged once."""
    head_dir = Path(sides[1].bundle.root)
    replays = sample()
    repeated: list[Replay] = []
    for i, replay in enumerate(replays):
        repeated.append(replay)
        repeated.extend(replays[i - back] for back in (30, 70, 100) if i >= back and i % back == 0)
    distinct = len({r.key() for r in replays})
    reports = [analyse(REPO / "rego", head_dir, iter(repeated), base_ref="b", head_ref="h", workers=w,
                       batch=64).to_dict() for w in (1, 2)]
    assert reports[1]["timing"]["workers"] == 2
    for report in reports:
        del report["timing"]
    assert reports[0] == reports[1]
    assert reports[0]["replayed"] == len(repeated) > len(replays) and reports[0]["distinct_workloads"] == distinct
    assert reports[0]["changed"] > 0 and reports[0]["head_errors"]


def mutations(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Variants of an answer touching each part the comparison reads."""
    out = []
    allowed, denied = answer["allowed"], answer["denied"]
    if allowed:
        moved = copy.deepcopy(answer)
        route = moved["allowed"].pop(0)
        moved["denied"].append({"model": route["model"], "deployment": route["deployment"],
                                "reasons": [{"code": "X_NEW", "message": "new"}]})
        out.append(moved)
        for obligations in (["zero_data_retention", "extra"], [], ["extra"]):
            changed = copy.deepcopy(answer)
            changed["allowed"][0]["obligations"] = obligations
            out.append(changed)
        reordered = copy.deepcopy(answer)
        reordered["allowed"][0]["obligations"] = list(reversed(reordered["allowed"][0].get("obligations") or []))
        reordered["allowed"].reverse()
        out.append(reordered)
        doubled = copy.deepcopy(answer)
        doubled["allowed"].append({**doubled["allowed"][0], "obligations": ["twice"]})
        out.append(doubled)
    if denied:
        cleared = copy.deepcopy(answer)
        route = cleared["denied"].pop()
        cleared["allowed"].append({"model": route["model"], "deployment": route["deployment"], "obligations": ["o"]})
        cleared["outcome"] = "allow"
        out.append(cleared)
        message = copy.deepcopy(answer)
        message["denied"][0]["reasons"][0]["message"] += " (reworded)"
        out.append(message)
        code = copy.deepcopy(answer)
        code["denied"][-1]["reasons"] = [{"code": "OTHER", "message": "m"}, *code["denied"][-1]["reasons"]]
        out.append(code)
        doubled = copy.deepcopy(answer)
        doubled["denied"].append({**doubled["denied"][0], "reasons": []})
        out.append(doubled)
    return out


def test_compare_answers_is_compare_of_the_summaries(policy: ActivePolicy) -> None:
    answers: list[Any] = ["the app is not in apps.yaml", "another error"]
    for raw in SAMPLE.read_bytes().splitlines()[:40]:
        answer = policy.evaluate(policy.input_for(DecisionRequest.model_validate(orjson.loads(raw)), None))
        answers.append(answer)
        answers.extend(mutations(answer))
    assert len(answers) > 300
    pairs = 0
    for i, base in enumerate(answers):
        for head in answers[max(0, i - 12):i + 12]:  # neighbours: mostly the same workload
            summaries = [Summary.failed(a) if isinstance(a, str) else Summary.of(a) for a in (base, head)]
            assert compare_answers(base, head) == compare(*summaries), (i, base, head)
            pairs += 1
    assert pairs > 5000


def test_well_formed_refuses_what_the_comparison_cannot_read(policy: ActivePolicy) -> None:
    raw = SAMPLE.read_bytes().splitlines()[0]
    answer = policy.evaluate(policy.input_for(DecisionRequest.model_validate(orjson.loads(raw)), None))
    assert well_formed(answer) and well_formed({**answer, "decision_id": "x", "policy_revision": "r"})
    broken = []
    for path, value in ((("outcome",), None), (("allowed",), {}), (("denied", 0, "reasons"), None),
                        (("denied", 0, "reasons", 0, "code"), 3), (("denied", 0, "model"), ["m"])):
        bad = copy.deepcopy(answer)
        target = bad
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        broken.append(bad)
    assert not any(well_formed(b) for b in broken) and not well_formed([]) and not well_formed(None)



def test_profiles_expand_jurisdictions_as_the_groups_do_and_never_share_a_list(policy: ActivePolicy) -> None:
    groups = policy.bundle.catalog.jurisdictions
    requested = {"workload_profile": None, "workload": {
        "task": "summarization", "quality_tier": "commodity", "regulatory_tier": "standard",
        "data_classification": "internal", "dangerous_capability": "none", "jurisdictions": ["DE", "US"]}}
    first = policy.input_for_recorded("internal-helpdesk", requested, {})["workload"]["jurisdictions"]
    assert first == groups.expand(["DE", "US"]) and "EU" in first
    first.append("mutated by a caller")
    again = policy.input_for_recorded("internal-helpdesk", requested, {})["workload"]["jurisdictions"]
    assert again == groups.expand(["DE", "US"])
