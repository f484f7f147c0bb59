"""The invariant search: the reference pack keeps every promise; broken copies are caught, each
with a minimal counterexample request that the real engine decides wrongly."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from policy import DecisionRequest, load_policy
from policy.review.invariants import CALLER, Checker, gate_errors, search
from tests.bundles import REGO

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def broken_copy(tmp_path: Path, file: str, old: str, new: str, *more: str) -> Path:
    """A copy of the reference pack with ``old`` replaced by ``new`` in ``file`` (and further
    (file, old, new) triples in ``more``)."""
    dest = tmp_path / "rego"
    shutil.copytree(REGO, dest)
    edits = [(file, old, new), *zip(more[0::3], more[1::3], more[2::3])]
    for name, before, after in edits:
        text = (dest / name).read_text()
        assert before in text, f"{before!r} not in {name}"
        (dest / name).write_text(text.replace(before, after, 1))
    return dest


def test_the_reference_pack_keeps_every_promise() -> None:
    report = search(load_policy(REGO), examples=100, quick=True)
    assert report.ok, report.format()
    assert {"restricted_origin_in_restricted_sector", "withheld_never_cleared", "gated_capability_outside_program",
            "dangerous_capability_not_approved", "restricted_data_without_zero_retention",
            "critical_without_human_review", "every_route_decided"} <= set(report.declared)
    assert report.evaluated > 1000 and report.refused == 0


# Gemma 4 31B withheld in the catalog: the reference catalog's withheld models are also denied
# for other reasons (gated, unsafe), which would hide the broken rule.
GEMMA_WITHHELD = ("data/models.yaml", "    provenance: open_western\n    status: available\n    licence:\n      name: Apache License 2.0",
                  "    provenance: open_western\n    status: withheld\n    licence:\n      name: Apache License 2.0")

BROKEN = [
    # (file, old, new, invariant, further edits)
    ("provenance.rego", "\tcount(banned) > 0\n", "\tcount(banned) > 99\n", "restricted_origin_in_restricted_sector"),
    ("availability.rego", 'm.status in {"withheld", "deprecated"}', 'm.status in {"withheld_"}', "withheld_never_cleared",
     *GEMMA_WITHHELD),
    ("capability.rego", "\t\tnot label[0] in programs\n", "\t\tlabel[0] in programs\n",
     "gated_capability_outside_program"),
    ("capability.rego", '\twanted != "none"\n', '\twanted == "nothing"\n', "dangerous_capability_not_approved"),
    ("residency.rego", "\t\td.mode != \"self_hosted\"\n\t\tin_region", "\t\td.mode == \"cloud\"\n\t\tin_region",
     "restricted_data_without_zero_retention"),
    ("regulatory.rego", 'input.workload.regulatory_tier == "critical"\n\tname := data.clearance.codes.HUMAN_REVIEW',
     'input.workload.regulatory_tier == "minimal"\n\tname := data.clearance.codes.HUMAN_REVIEW',
     "critical_without_human_review"),
    # Routes denied by their model's reasons alone drop out of `denied`.
    ("main.rego", "\treasons := object.get(own, did, model_level)\n", "\treasons := object.get(own, did, false)\n",
     "every_route_decided"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[b[3] for b in BROKEN])
def test_a_broken_pack_is_caught_with_a_minimal_counterexample(tmp_path: Path, case: tuple[str, ...]) -> None:
    file, old, new, invariant, *more = case
    broken = load_policy(broken_copy(tmp_path, file, old, new, *more))
    report = search(broken, examples=100, quick=True)
    found = {c.invariant: c for c in report.counterexamples}
    assert invariant in found, report.format()
    example = found[invariant]
    # The counterexample is a request the service accepts, that the broken engine decides in
    # violation of the promise, and that the reference pack decides soundly.
    request = DecisionRequest.model_validate_json(orjson.dumps(example.request))
    for policy, violated in ((broken, True), (load_policy(REGO), False)):
        policy_input = policy.input_for(request, CALLER)
        names = {v.invariant for v in Checker(policy).violations(policy_input, policy.engine.evaluate(policy_input))}
        assert (invariant in names) is violated


def test_the_counterexample_is_shrunk(tmp_path: Path) -> None:
    broken = load_policy(broken_copy(tmp_path, *BROKEN[0][:3]))
    (example,) = search(broken, examples=0, quick=True).counterexamples
    assert example.request == {"app_id": "citizen-services", "workload": {
        "task": "summarization", "quality_tier": "commodity", "regulatory_tier": "minimal",
        "data_classification": "public"}}
    assert example.phase == "enumerated"


def test_hypothesis_finds_what_the_enumeration_misses(tmp_path: Path) -> None:
    """A rule broken only for prices far above every route's (no enumerated boundary there):
    found by Hypothesis, and the counterexample keeps just what it needs."""
    broken = load_policy(broken_copy(
        tmp_path, "availability.rego",
        'deny := {"workload": {}, "model": data.clearance.catalog.tables.availability.withheld, "route": {}}',
        'default deny := {"workload": {}, "model": {}, "route": {}}\n\n'
        'deny := {"workload": {}, "model": data.clearance.catalog.tables.availability.withheld, "route": {}} if {\n'
        '\tnot input.workload.max_price_per_mtok > 1000\n}',
        *GEMMA_WITHHELD))
    # Enough examples to meet a high price on a workload that would clear Gemma: what Hypothesis
    # draws also depends on the modules the process has loaded (it mines their constants).
    report = search(broken, examples=1500, quick=True)
    (example,) = report.counterexamples
    assert example.invariant == "withheld_never_cleared" and example.phase == "hypothesis"
    workload = example.request["workload"]
    assert workload["max_price_per_mtok"] > 1000  # no route's price is near: no boundary there


def test_the_rvm_and_the_interpreter_agree_on_violations(tmp_path: Path) -> None:
    broken = load_policy(broken_copy(tmp_path, *BROKEN[5][:3]))
    checker = Checker(broken)
    request = DecisionRequest.model_validate({"app_id": "internal-helpdesk", "workload": {
        "task": "qa", "quality_tier": "commodity", "regulatory_tier": "critical", "data_classification": "restricted"}})
    policy_input = broken.input_for(request, CALLER)
    decision = broken.engine.evaluate(policy_input)
    lost = {**decision, "denied": decision["denied"][1:]}
    for pair in ((policy_input, decision), (policy_input, lost)):
        rvm, interpreter = checker.violations(*pair), checker.violations(*pair, interpreter=True)
        assert rvm == interpreter and rvm


def test_gate_errors_locate_the_invariant_and_the_failing_tests(tmp_path: Path) -> None:
    broken = load_policy(broken_copy(tmp_path, *BROKEN[0][:3]))
    errors, _ = gate_errors(broken, quick=True, examples=0)
    failing = {e.message.split(":")[0] for e in errors if e.code == "test_failed"}
    assert "clearance.provenance_test.test_restricted_origin_in_restricted_sector_is_denied" in failing
    (violated,) = [e for e in errors if e.code == "invariant_violated"]
    assert violated.file.endswith("rego/invariants.rego") and violated.line
    assert "minimal counterexample" in violated.message


def test_a_pack_without_invariants_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "rego"
    shutil.copytree(REGO, bundle)
    (bundle / "invariants.rego").unlink()
    (bundle / "invariants_test.rego").unlink()
    errors, report = gate_errors(load_policy(bundle), quick=True, examples=0)
    assert report is None and [e.code for e in errors] == ["invariants_missing"]


def test_policy_check_prints_each_violation_with_its_request_as_json(tmp_path: Path) -> None:
    bundle = broken_copy(tmp_path, *BROKEN[0][:3])
    result = CliRunner().invoke(cli, ["policy", "check", str(bundle), "--examples", "0"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "invariant violated: restricted_origin_in_restricted_sector — no model of a restricted origin" in result.stdout
    shown = next(line for line in lines if line.lstrip().startswith("minimal counterexample"))
    assert orjson.loads(shown.split(": ", 1)[1])["app_id"] == "citizen-services"
    assert "test_failed" in result.stdout
