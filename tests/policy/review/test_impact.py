"""Impact analysis on a real git repository made in a temporary directory: a base commit of the
reference pack and a change on top (a commit or the work tree), replayed through both."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from api.schemas import DECISION_REQUEST_EXAMPLE
from policy.review.impact import analyse, bundle_at
from policy.review.replay import Replay, Skipped, read_jsonl
from tests.bundles import (
    HELPDESK_REQUEST,
    LLAMA_MODELS,
    commit_all,
    copy_bundle,
    edit,
    git,
    lower_llama_cap,
    set_org_mau,
)

LLAMA_DEPLOYMENTS = ["bedrock", "self-hosted", "together-api"]


def policy_input(request: dict[str, Any]) -> dict[str, Any]:
    """A recorded policy input as the audit trail holds it (the app record is a stale stand-in:
    replay must re-derive it from each side's apps.yaml)."""
    from policy.workload import Workload

    return {"app": {"id": request["app_id"], "programs": ["stale"]},
            "workload": Workload.model_validate(request["workload"]).model_dump(mode="json"),
            "caller": {"key_id": "k1", "role": "app"}}


def write_inputs(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return path


def helpdesk_lines(n: int, mau: int = 5_000_000) -> list[dict[str, Any]]:
    request = copy.deepcopy(HELPDESK_REQUEST)
    request["workload"]["monthly_active_users"] = mau
    return [{"decision_id": f"0190f000-0000-7000-8000-{i:012d}", "input": policy_input(request)} for i in range(n)]


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "impact", *args])
    return result.exit_code, result.stdout


def impact_json(repo: Path, inputs: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out = run_cli("--base", "base", "--dir", str(repo / "rego"), "--inputs", str(inputs), "--format", "json",
                        *extra)
    assert out.startswith("{"), out
    return code, orjson.loads(out)


def test_lowering_a_licence_mau_cap_shows_the_routes_newly_denied(repo: Path, tmp_path: Path) -> None:
    lower_llama_cap(repo / "rego")  # 1M, below the org's 41.8M of 2025-03 (org.yaml)
    commit_all(repo, "Llama cap to 1M", "head")
    lines = helpdesk_lines(30) + helpdesk_lines(5, mau=500_000) + [dict(DECISION_REQUEST_EXAMPLE)]
    inputs = write_inputs(tmp_path / "inputs.jsonl", lines)

    code, report = impact_json(repo, inputs, "--head", "head", "--fail-on", "breaking")

    assert code == 0  # routes lost, but every app keeps a route: not breaking
    assert report["replayed"] == 36 and report["distinct_workloads"] == 3 and report["skipped"] == 0
    assert report["breaking"] == 0 and report["outcomes"] == {"allow->allow": 36}
    # The org's users decide, not the workload's: every replay changes, whatever MAU it sent
    # (the 1.2M claims workload gains a code on routes already denied).
    assert report["changed"] == 36
    denied = {(r["app_id"], r["model"]): r for r in report["newly_denied"]}
    assert set(denied) == {("internal-helpdesk", m) for m in LLAMA_MODELS}
    for row in denied.values():
        assert row["deployments"] == LLAMA_DEPLOYMENTS and row["decisions"] == 35
        assert row["reasons"] == {"LICENCE_MAU_CAP": 105}
    assert report["newly_cleared"] == []
    assert report["codes_appeared"] == [{"code": "LICENCE_MAU_CAP", "routes": 36 * 6, "decisions": 36}]
    assert report["codes_disappeared"] == []
    assert report["base"]["ref"] == "base" and report["head"]["ref"] == "head"
    assert report["base"]["commit"] == git(repo, "rev-parse", "base")
    assert report["head"]["revision"] != report["base"]["revision"]
    assert report["apps_yaml_changed"] is False
    # One example per distinct workload (identical inputs shown once).
    assert [e["decision_id"] for e in report["examples"]] == ["0190f000-0000-7000-8000-000000000000"] * 2 + [None]
    first = report["examples"][0]["diff"]["newly_denied"][0]
    assert first["reasons"] == [{
        "code": "LICENCE_MAU_CAP",
        "message": "Llama 4 Community License §2: licensee and affiliates MAU 41,800,000 in 2025-03, "
                   "before the 2025-04-05 release, exceeds 1M",
    }]
    assert report["timing"]["replays_per_second"] > 0


def test_a_changed_org_mau_figure_shows_like_any_policy_change(repo: Path, tmp_path: Path) -> None:
    """The org's MAU figures are part of the bundle: raising the figure of the month before the
    Llama 4 release past the cap is reported with the routes it denies and the clause."""
    set_org_mau(repo / "rego", "2025-03", 812_000_000)
    commit_all(repo, "licensee MAU for 2025-03 restated", "head")
    inputs = write_inputs(tmp_path / "inputs.jsonl", helpdesk_lines(4))

    code, report = impact_json(repo, inputs, "--head", "head", "--fail-on", "breaking")

    assert code == 0 and report["changed"] == 4 and report["breaking"] == 0
    assert report["head"]["revision"] != report["base"]["revision"]
    denied = {(r["app_id"], r["model"]): r for r in report["newly_denied"]}
    assert set(denied) == {("internal-helpdesk", m) for m in LLAMA_MODELS}
    assert all(r["deployments"] == LLAMA_DEPLOYMENTS and r["reasons"] == {"LICENCE_MAU_CAP": 12} for r in denied.values())
    route = report["examples"][0]["diff"]["newly_denied"][0]
    assert route["reasons"] == [{"code": "LICENCE_MAU_CAP", "message":
                                 "Llama 4 Community License §2: licensee and affiliates MAU 812M in 2025-03, "
                                 "before the 2025-04-05 release, exceeds 700M"}]

    # A figure of another month changes nothing a decision depends on but the near-cap warning.
    git(repo, "checkout", "-q", "base")
    set_org_mau(repo / "rego", "2025-04", 812_000_000)  # after the release: not the measured month
    code, same = impact_json(repo, inputs)  # head: the work tree
    assert code == 0 and same["newly_denied"] == [] and same["newly_cleared"] == []
    assert same["codes_appeared"] == [] and same["obligations_appeared"] == []
    set_org_mau(repo / "rego", "2026-03", 650_000_000)  # the newest figure: near the 700M cap
    code, near = impact_json(repo, inputs)
    assert near["newly_denied"] == []
    # The six Llama 4 routes (hunyuan-a13b's is denied: the workload names no jurisdiction).
    assert near["obligations_appeared"] == [{"obligation": "licence_mau_near_cap", "routes": 4 * 6, "decisions": 4}]


def test_an_added_model_is_newly_cleared_from_the_work_tree(repo: Path, tmp_path: Path) -> None:
    models = repo / "rego" / "data" / "models.yaml"
    text = models.read_text()
    start = text.index("  - id: gemma-4-31b")
    end = text.index("\n  - id: ", start + 1)
    models.write_text(text + text[start:end].replace("id: gemma-4-31b", "id: gemma-4-31b-it", 1) + "\n")
    inputs = write_inputs(tmp_path / "inputs.jsonl", [HELPDESK_REQUEST] * 3)

    code, report = impact_json(repo, inputs)  # head: the work tree, uncommitted

    assert code == 0
    cleared = {(r["app_id"], r["model"]): r["deployments"] for r in report["newly_cleared"]}
    assert cleared == {("internal-helpdesk", "gemma-4-31b-it"): ["self-hosted", "vertex-ai"]}
    assert report["newly_denied"] == [] and report["changed"] == 3
    assert report["head"]["ref"] == "work tree" and report["head"]["dirty"] is True
    assert report["head"]["commit"] == git(repo, "rev-parse", "HEAD")


def test_a_changed_app_entitlement_is_judged_with_each_sides_apps_yaml(repo: Path, tmp_path: Path) -> None:
    # claims-summariser gains the org's own attestation of gemma-4-31b for regulated workloads.
    apps = repo / "rego" / "data" / "apps.yaml"
    text = apps.read_text()
    start = text.index("  - id: claims-summariser")
    stop = text.index("    attestations: []", start)
    apps.write_text(text[:stop] + "    attestations:\n      - {model: gemma-4-31b, regulatory_tier: regulated}"
                    + text[stop + len("    attestations: []"):])
    commit_all(repo, "attest gemma for claims", "head")
    inputs = write_inputs(tmp_path / "inputs.jsonl", [{"input": policy_input(DECISION_REQUEST_EXAMPLE)}])

    code, report = impact_json(repo, inputs, "--head", "head")

    assert code == 0 and report["apps_yaml_changed"] is True
    cleared = {(r["app_id"], r["model"]): r["deployments"] for r in report["newly_cleared"]}
    assert cleared == {("claims-summariser", "gemma-4-31b"): ["self-hosted", "vertex-ai"]}
    assert report["codes_disappeared"] == [{"code": "SAFETY_POST_TRAINING", "routes": 2, "decisions": 1}]
    assert "each side's own apps.yaml" in report["semantics"]


def test_breaking_change_fails_the_gate_and_reads_well_as_markdown(repo: Path, tmp_path: Path) -> None:
    # The claims workload is cleared only through gemini-3.1-pro: withholding it leaves nothing.
    models = repo / "rego" / "data" / "models.yaml"
    text = models.read_text()
    start = text.index("  - id: gemini-3.1-pro")
    status = text.index("status: available", start)
    models.write_text(text[:status] + "status: withheld" + text[status + len("status: available"):])
    commit_all(repo, "withhold gemini", "head")
    inputs = write_inputs(tmp_path / "inputs.jsonl", [DECISION_REQUEST_EXAMPLE, HELPDESK_REQUEST, "not an object"])

    code, markdown = run_cli("--base", "base", "--head", "head", "--dir", str(repo / "rego"), "--inputs", str(inputs),
                             "--fail-on", "breaking", "--out", str(tmp_path / "comment.md"))

    assert code == 1
    assert markdown == (tmp_path / "comment.md").read_text()
    assert "Breaking: 1 decision would go from allow to deny" in markdown
    assert "| claims-summariser | gemini-3.1-pro | google-api, vertex-ai | 1 | MODEL_WITHHELD |" in markdown
    assert "inputs.jsonl:1`" in markdown and "**allow → deny** (breaking)" in markdown
    # The example shows the workload as the app sent it (what it left out came from its profile).
    assert ("— claims-summariser (summarization, commodity, regulated, financial_services, EU US): "
            "**allow → deny** (breaking)") in markdown
    assert "Skipped inputs | 1" in markdown and "inputs.jsonl:3: not a JSON object" in markdown
    assert "re-derived by app id from each side's own apps.yaml" in markdown
    # Without the gate the same analysis exits 0.
    assert run_cli("--base", "base", "--head", "head", "--dir", str(repo / "rego"), "--inputs", str(inputs))[0] == 0


def test_unknown_ref_and_missing_directory_are_clear_errors(repo: Path, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "inputs.jsonl", [HELPDESK_REQUEST])
    result = CliRunner().invoke(cli, ["policy", "impact", "--base", "no-such-ref", "--dir", str(repo / "rego"),
                                      "--inputs", str(inputs)])
    assert result.exit_code == 1 and "'no-such-ref' does not name a commit" in result.stderr
    with pytest.raises(Exception, match="does not exist at"):
        git(repo, "mv", "rego", "policy")
        commit_all(repo, "move", "moved")
        bundle_at(repo / "policy", "base", tmp_path / "x")
    result = CliRunner().invoke(cli, ["policy", "impact", "--base", "base", "--inputs", str(inputs), "--last", "3"])
    assert result.exit_code == 2 and "choose one source" in result.stderr


def test_jsonl_accepts_requests_policy_inputs_and_audit_lines(tmp_path: Path) -> None:
    lines = [
        orjson.dumps(HELPDESK_REQUEST).decode(),
        orjson.dumps(policy_input(HELPDESK_REQUEST)).decode(),
        orjson.dumps({"decision_id": "0190f000-0000-7000-8000-000000000001", "input": policy_input(HELPDESK_REQUEST)}).decode(),
        "",
        "# a comment",
        "{not json",
        orjson.dumps({"app_id": "x", "workload": {"task": "nope"}}).decode(),
        orjson.dumps({"something": 1}).decode(),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    items = list(read_jsonl(tmp_path / "in.jsonl"))
    replays = [i for i in items if isinstance(i, Replay)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert len(replays) == 3 and {r.app_id for r in replays} == {"internal-helpdesk"}
    assert replays[0].key() != replays[1].key()  # the recorded caller is part of what is replayed
    assert replays[1].key() == replays[2].key() and replays[2].decision_id.endswith("0001")
    assert [s.source for s in skipped] == ["in.jsonl:6", "in.jsonl:7", "in.jsonl:8"]
    assert "workload.task" in skipped[1].reason


def test_an_app_missing_from_the_head_is_a_deny_reported_as_a_head_error(repo: Path) -> None:
    head = copy_bundle(repo.parent / "head-copy")
    edit(head / "data" / "apps.yaml", "- id: internal-helpdesk", "- id: internal-helpdesk-v2")
    # The gateways' mappings follow the rename (a mapping to an app that is gone refuses the bundle).
    gateways = head / "data" / "gateways.yaml"
    gateways.write_text(gateways.read_text().replace(": internal-helpdesk\n", ": internal-helpdesk-v2\n"))
    items = read_jsonl(write_inputs(repo.parent / "in.jsonl", [HELPDESK_REQUEST]))
    report = analyse(repo / "rego", head, items, base_ref="base", workers=1).to_dict()
    assert report["breaking"] == 1
    assert "internal-helpdesk" in report["head_errors"][0]["error"] and report["head_errors"][0]["decisions"] == 1


@pytest.mark.slow
def test_the_process_pool_gives_the_same_report_as_one_process(repo: Path, tmp_path: Path) -> None:
    lower_llama_cap(repo / "rego")
    requests = []
    for i in range(400):  # distinct workloads on both sides of the new cap
        request = copy.deepcopy(HELPDESK_REQUEST)
        request["workload"]["monthly_active_users"] = 100_000 + i * 5_000
        requests.append(request)
    inputs = write_inputs(tmp_path / "inputs.jsonl", requests)

    base = copy_bundle(tmp_path / "base")
    single = analyse(base, repo / "rego", read_jsonl(inputs), base_ref="base", workers=1, batch=100)
    pooled = analyse(base, repo / "rego", read_jsonl(inputs), base_ref="base", workers=2, batch=100)
    assert pooled.workers == 2 and single.workers == 1
    a, b = single.to_dict(), pooled.to_dict()
    for d in (a, b):
        del d["timing"]
    assert a == b and a["replayed"] == 400 and a["newly_denied"]


def test_the_committed_sample_for_ci_replays_cleanly() -> None:
    """tests/policy/review/data/decisions-sample.jsonl feeds the CI workflow's impact step when
    no database is configured: every line must be a valid request of a known app."""
    from tests.bundles import REGO

    sample = Path(__file__).parent / "data" / "decisions-sample.jsonl"
    report = analyse(REGO, REGO, read_jsonl(sample), base_ref=None, workers=1).to_dict()
    assert report["skipped"] == 0 and report["replayed"] >= 300
    assert report["base_errors"] == [] and report["head_errors"] == []  # every line within its app's profile
    assert report["changed"] == 0 and report["base_errors"] == []
    assert set(report["outcomes"]) == {"allow->allow", "deny->deny"}  # both outcomes represented


def test_recorded_answers_stand_for_the_base_only_under_its_revision(repo: Path, tmp_path: Path) -> None:
    from policy import DecisionRequest, decide, load_policy

    base = load_policy(repo / "rego")
    policy_in, decision = decide(base, DecisionRequest.model_validate(HELPDESK_REQUEST))
    result = decision.model_dump(mode="json")
    lower_llama_cap(repo / "rego")
    same = {"decision_id": result["decision_id"], "input": policy_in, "result": result}
    # A recorded answer that is not the base's (another revision) must not be used: were it
    # used, this made-up "deny" would show as a deny->allow flip.
    other = {"decision_id": result["decision_id"], "input": policy_in,
             "result": {**result, "policy_revision": "sha256:" + "0" * 64, "outcome": "deny", "allowed": []}}
    for line, reused in ((same, 1), (other, 0)):
        report = analyse(copy_bundle(tmp_path / f"base{reused}"), repo / "rego",
                         read_jsonl(write_inputs(tmp_path / "in.jsonl", [line])), base_ref="base", workers=1).to_dict()
        assert report["base_from_trail"] == reused
        assert report["outcomes"] == {"allow->allow": 1}
        assert {r["model"] for r in report["newly_denied"]} == set(LLAMA_MODELS)
