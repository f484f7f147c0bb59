"""``OpaEngine`` against OPA's documented REST API, replayed by a real HTTP server.

The replies are the request/response pairs recorded from OPA's documentation
(tests/engines/fixtures/, each naming its section); the decision itself, where one is
needed, is regorus' answer for the same input inside the documented envelope
``{"result": …}``. These tests check what the adapter sends (method, path, query, headers,
body) and how it reads every kind of answer; they say nothing about OPA's evaluation, which
tests/engines/test_opa_live.py compares with regorus when an OPA is available.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from policy import (
    ActivePolicy,
    Bundle,
    BundleError,
    EngineConfigError,
    EvaluationError,
    RegorusEngine,
    evaluate_input,
    load_bundle,
    load_policy,
    make_engine,
)
from policy.opa import (
    DATA_ROOTS,
    GUARD_FILE,
    OpaEngine,
    OpaError,
    OpaTarget,
    guard_module,
    guard_package,
    policy_id,
    revision_short,
)
from policy.review.testing import run_rego_tests_opa
from tests.conftest import REPO
from tests.engines.replay import Reply, ReplayServer, fixture, install_routes, replay_server
from tests.engines.workloads import policy_inputs


def decision_path(bundle: Bundle) -> str:
    return f"/v1/data/clearance/revisions/r{revision_short(bundle.revision)}/decision"


def answer_with(server: ReplayServer, bundle: Bundle, *replies: Reply) -> None:
    server.route("POST", decision_path(bundle), *replies)


def result_reply(result: Any, **changes: Any) -> Reply:
    """The documented 200 ``{"result": true}`` with its value replaced by ``result``."""
    body = dict(fixture("data_post_defined")["response"]["body"], result=result)
    return Reply.of("data_post_defined", body=body, **changes)


def answering_engine(server: ReplayServer, bundle: Bundle, reference: RegorusEngine, *, timeout: float = 2.0,
                     **reply: Any) -> tuple[OpaEngine, dict[str, Any], dict[str, Any]]:
    """(an OpaEngine installed in ``server``, an input, regorus' decision for it), the server
    answering the decision query with that decision in the documented envelope."""
    engine = OpaEngine(bundle, url=server.url, timeout=timeout)
    policy_input = policy_inputs(bundle, 1)[0]
    expected = reference.evaluate(policy_input)
    answer_with(server, bundle, result_reply(expected, **reply))
    return engine, policy_input, expected


# --- the fixtures are what the documentation says --------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parent / "fixtures").glob("*.json")))
def test_every_fixture_names_its_source(name: str) -> None:
    item = fixture(name)
    assert item["source"].startswith("OPA REST API Reference"), name
    assert item["url"].startswith("https://www.openpolicyagent.org/docs/rest-api#")
    assert "open-policy-agent/opa" in item["recorded_from"] and item["note"]
    assert {"method", "path", "headers"} <= set(item["request"])
    assert isinstance(item["response"]["status"], int)


def test_documented_data_api_shape_matches_what_the_adapter_sends(opa_stand_in: ReplayServer, bundle: Bundle,
                                                                  regorus_engine: RegorusEngine) -> None:
    documented = fixture("data_post_defined")["request"]
    engine, policy_input, _ = answering_engine(opa_stand_in, bundle, regorus_engine)
    engine.evaluate(policy_input)
    sent = opa_stand_in.seen("POST")[-1]
    assert sent.method == documented["method"]
    assert sent.headers["content-type"] == documented["headers"]["Content-Type"]
    assert set(sent.json()) == set(documented["body"]) == {"input"}


# --- installing the bundle --------------------------------------------------------------


def test_construction_pushes_every_module_and_each_data_root(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    OpaEngine(bundle, url=opa_stand_in.url)
    calls = [(r.method, r.path) for r in opa_stand_in.requests]
    assert calls[0][0] == "GET" and calls[0][1].rstrip("/") == "/v1/policies"

    data = {r.path.removeprefix("/v1/data/"): r for r in opa_stand_in.seen("PUT", "/v1/data/")}
    assert sorted(data) == sorted(DATA_ROOTS)
    document = bundle.data_document()
    for root, sent in data.items():
        assert sent.headers["content-type"] == "application/json"
        assert sent.json() == document[root], root

    policies = {r.path.removeprefix("/v1/policies/"): r for r in opa_stand_in.seen("PUT", "/v1/policies/")}
    expected = {policy_id(bundle.revision, path): text for path, text in bundle.modules.items()}
    expected[policy_id(bundle.revision, GUARD_FILE)] = guard_module(bundle.revision)
    assert set(policies) == set(expected)
    for pid, sent in policies.items():
        assert pid.startswith(f"clearance/{revision_short(bundle.revision)}/")
        assert sent.headers["content-type"] == "text/plain"
        assert sent.body.decode() == expected[pid]
    assert not any(p.endswith("_test.rego") for p in policies), "tests are not pushed to a serving OPA"
    # the data first, the revision's guard last: it becomes evaluable only when complete
    order = [r.path for r in opa_stand_in.requests if r.method == "PUT"]
    assert all(p.startswith("/v1/data/") for p in order[: len(DATA_ROOTS)])
    assert order[-1] == f"/v1/policies/{policy_id(bundle.revision, GUARD_FILE)}"


def test_guard_module_asks_for_the_decision_of_this_revision(bundle: Bundle) -> None:
    text = guard_module(bundle.revision)
    assert f"package {guard_package(bundle.revision)}\n" in text
    assert "decision := data.clearance.decision\n" in text and bundle.revision in text
    # the guard is valid Rego and only forwards the decision (regorus evaluates it the same)
    engine = RegorusEngine(bundle)
    import regorus

    interpreter = regorus.Engine()
    for path, module in sorted({**bundle.modules, GUARD_FILE: text}.items()):
        interpreter.add_policy(path, module)
    interpreter.add_data_json(json.dumps(bundle.data_document()))
    policy_input = policy_inputs(bundle, 1, seed=3)[0]
    interpreter.set_input_json(json.dumps(policy_input))
    guarded = json.loads(interpreter.eval_rule_as_json(f"data.{guard_package(bundle.revision)}.decision"))
    assert guarded == engine.evaluate(policy_input)


def test_module_refused_at_first_is_pushed_again_once_others_are_in(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    """OPA type-checks against the modules already loaded: order must not matter."""
    refused_once = policy_id(bundle.revision, "main.rego")
    opa_stand_in.route("PUT", f"/v1/policies/{refused_once}", Reply.of("error_400_compile"), Reply.of("policy_put"))
    OpaEngine(bundle, url=opa_stand_in.url)
    assert len(opa_stand_in.seen("PUT", f"/v1/policies/{refused_once}")) == 2


def test_module_refused_for_good_is_a_bundle_error_located_in_the_bundle(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    bad = policy_id(bundle.revision, "licence.rego")
    opa_stand_in.route("PUT", f"/v1/policies/{bad}", Reply.of("error_400_compile"))
    with pytest.raises(BundleError) as caught:
        OpaEngine(bundle, url=opa_stand_in.url)
    (error,) = caught.value.errors
    assert error.file == (bundle.root / "licence.rego").as_posix()  # the documented "example" file is not ours
    assert (error.line, error.code) == (3, "rego_unsafe_var_error")
    assert "var x is unsafe" in error.message
    # nothing of this revision is left behind: its modules and the data roots are deleted
    deleted = {r.path for r in opa_stand_in.seen("DELETE")}
    assert f"/v1/policies/{policy_id(bundle.revision, 'main.rego')}" in deleted
    assert {f"/v1/data/{root}" for root in DATA_ROOTS} <= deleted


def test_refused_data_document_is_an_opa_error(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    opa_stand_in.route("PUT", "/v1/data/models", Reply.of("error_400_compile"))
    with pytest.raises(OpaError, match="refused the data document.*invalid_parameter"):
        OpaEngine(bundle, url=opa_stand_in.url)
    assert not opa_stand_in.seen("PUT", "/v1/policies/")


def test_another_clearance_revision_in_opa_is_refused(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    listed = fixture("policies_list")["response"]["body"]
    foreign = {"id": "clearance/0123456789ab/main.rego", "raw": "package clearance\n"}
    opa_stand_in.route("GET", "/v1/policies/?", Reply.of("policies_list", body={"result": [*listed["result"], foreign]}))
    with pytest.raises(OpaError, match="another Clearance bundle.*0123456789ab.*one bundle at a time"):
        OpaEngine(bundle, url=opa_stand_in.url)
    assert not opa_stand_in.seen("PUT"), "nothing is overwritten when refusing"

    opa_stand_in.clear()
    OpaEngine(bundle, url=opa_stand_in.url, replace=True)
    assert [r.path for r in opa_stand_in.seen("DELETE")] == ["/v1/policies/clearance/0123456789ab/main.rego"]
    assert opa_stand_in.seen("PUT", "/v1/policies/")


def test_same_revision_already_installed_is_reinstalled_in_place(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    mine = [{"id": policy_id(bundle.revision, p), "raw": t} for p, t in bundle.modules.items()]
    opa_stand_in.route("GET", "/v1/policies/?", Reply.of("policies_list", body={"result": mine}))
    OpaEngine(bundle, url=opa_stand_in.url)
    assert not opa_stand_in.seen("DELETE")


def test_opa_unreachable_at_start_is_a_clear_error(bundle: Bundle) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(OpaError, match=rf"OPA at {url} is unreachable \(.*refused"):
        OpaEngine(bundle, url=url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("opa:8181", "not http"), ("ftp://opa:8181", "not http"), ("http://opa:8181/v1", "path"),
     ("http://user:pw@opa:8181", "credentials"), ("http://opa:99999", "invalid port")],
)
def test_bad_opa_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(OpaError, match=problem):
        OpaTarget.parse(url)


def test_opa_urls_are_normalised() -> None:
    assert OpaTarget.parse("http://opa").url == "http://opa:80"
    assert OpaTarget.parse("https://opa.internal/").url == "https://opa.internal:443"
    assert OpaTarget.parse("http://[::1]:8181").host == "[::1]"


# --- evaluating -------------------------------------------------------------------------


def test_evaluate_posts_the_input_and_returns_the_result(opa_stand_in: ReplayServer, bundle: Bundle,
                                                         regorus_engine: RegorusEngine) -> None:
    engine, policy_input, expected = answering_engine(opa_stand_in, bundle, regorus_engine)
    assert engine.evaluate(policy_input) == expected
    (sent,) = opa_stand_in.seen("POST")
    assert sent.path == decision_path(bundle)
    assert sent.query == {"strict-builtin-errors": ["true"]}
    assert sent.json() == {"input": policy_input}


def test_decision_assembly_through_opa_equals_the_embedded_one(opa_stand_in: ReplayServer, bundle: Bundle,
                                                               regorus_engine: RegorusEngine) -> None:
    opa_policy = ActivePolicy(bundle=bundle, engine=OpaEngine(bundle, url=opa_stand_in.url))
    embedded = ActivePolicy(bundle=bundle, engine=regorus_engine)
    policy_input = policy_inputs(bundle, 2)[1]
    answer_with(opa_stand_in, bundle, result_reply(regorus_engine.evaluate(policy_input)))
    assert evaluate_input(opa_policy, policy_input, decision_id="d") == evaluate_input(embedded, policy_input, decision_id="d")


def test_undefined_decision_fails_closed(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    engine = OpaEngine(bundle, url=opa_stand_in.url)
    answer_with(opa_stand_in, bundle, Reply.of("data_post_undefined"))
    with pytest.raises(EvaluationError, match="no result.*undefined.*still installed"):
        engine.evaluate(policy_inputs(bundle, 1)[0])


def test_result_that_is_not_a_decision_fails_closed(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    engine = OpaEngine(bundle, url=opa_stand_in.url)
    answer_with(opa_stand_in, bundle, Reply.of("data_post_defined"))  # {"result": true}, verbatim
    with pytest.raises(EvaluationError, match="not an object"):
        engine.evaluate(policy_inputs(bundle, 1)[0])


def test_a_400_answer_fails_closed_with_opas_error(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    engine = OpaEngine(bundle, url=opa_stand_in.url)
    answer_with(opa_stand_in, bundle, Reply.of("error_400_compile"))
    with pytest.raises(EvaluationError) as caught:
        engine.evaluate(policy_inputs(bundle, 1)[0])
    message = str(caught.value)
    assert "HTTP 400" in message and "invalid_parameter" in message
    assert "example:3: rego_unsafe_var_error: var x is unsafe" in message


def test_a_500_answer_fails_closed_and_is_not_retried(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    engine = OpaEngine(bundle, url=opa_stand_in.url)
    answer_with(opa_stand_in, bundle, Reply.of("error_500_eval"))
    with pytest.raises(EvaluationError, match="HTTP 500: internal_error: error\\(s\\) occurred while evaluating query.*eval_builtin_error"):
        engine.evaluate(policy_inputs(bundle, 1)[0])
    assert len(opa_stand_in.seen("POST")) == 1


def test_a_body_that_is_not_json_fails_closed(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    engine = OpaEngine(bundle, url=opa_stand_in.url)
    answer_with(opa_stand_in, bundle, Reply(200, raw=b"<html>proxy error</html>", content_type="text/html"))
    with pytest.raises(EvaluationError, match="not JSON"):
        engine.evaluate(policy_inputs(bundle, 1)[0])


def test_opa_gone_after_start_fails_closed(bundle: Bundle) -> None:
    with replay_server() as server:
        install_routes(server)
        engine = OpaEngine(bundle, url=server.url)
    with pytest.raises(EvaluationError, match="is unreachable .*refused"):
        engine.evaluate(policy_inputs(bundle, 1)[0])


def test_a_slow_opa_times_out_and_fails_closed(opa_stand_in: ReplayServer, bundle: Bundle,
                                               regorus_engine: RegorusEngine) -> None:
    engine, policy_input, _ = answering_engine(opa_stand_in, bundle, regorus_engine, timeout=0.2, delay=1.5)
    started = time.monotonic()
    with pytest.raises(EvaluationError, match="did not answer within 0.2 s"):
        engine.evaluate(policy_input)
    assert time.monotonic() - started < 1.2


def test_threads_each_use_their_own_client_and_agree(opa_stand_in: ReplayServer, bundle: Bundle,
                                                     regorus_engine: RegorusEngine) -> None:
    engine, policy_input, expected = answering_engine(opa_stand_in, bundle, regorus_engine)
    barrier = threading.Barrier(8)

    def decide(_: int) -> dict[str, Any]:
        barrier.wait(timeout=5)
        return engine.evaluate(policy_input)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(decide, range(64)))
    assert all(r == expected for r in results)
    assert len(engine._clients) == 8  # noqa: SLF001 - one client (session) per thread
    engine.close()
    assert engine._clients == []  # noqa: SLF001


# --- choosing the engine ----------------------------------------------------------------


def test_make_engine_chooses_and_refuses_clearly(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    assert make_engine(bundle).name == "regorus"
    engine = make_engine(bundle, name="opa", opa_url=opa_stand_in.url, timeout=0.5)
    assert isinstance(engine, OpaEngine) and engine.name == "opa" and engine.timeout == 0.5
    with pytest.raises(EngineConfigError, match="CLEARANCE_ENGINE=opa needs CLEARANCE_OPA_URL"):
        make_engine(bundle, name="opa")
    with pytest.raises(EngineConfigError, match="unknown engine 'wasm'"):
        make_engine(bundle, name="wasm")  # type: ignore[arg-type]
    with pytest.raises(OpaError, match="timeout must be positive"):
        make_engine(bundle, name="opa", opa_url=opa_stand_in.url, timeout=0)


def test_load_policy_with_the_opa_engine(opa_stand_in: ReplayServer) -> None:
    policy = load_policy(REPO / "rego", engine="opa", opa_url=opa_stand_in.url, opa_timeout=1.0)
    assert policy.engine.name == "opa" and policy.revision == load_bundle(REPO / "rego").revision


# --- the Rego tests through OPA ---------------------------------------------------------


def test_rego_tests_run_through_opa_one_query_per_test(opa_stand_in: ReplayServer, bundle: Bundle) -> None:
    short = revision_short(bundle.revision)
    opa_stand_in.route("POST", "/v1/data/clearance/.+", Reply.of("data_post_defined"))  # {"result": true}
    opa_stand_in.route("POST", "/v1/data/clearance/licence_test/test_org_mau_above_the_cap_in_the_month_before_release_is_denied_citing_the_clause",
                       Reply.of("data_post_undefined"))
    opa_stand_in.route("POST", "/v1/data/clearance/main_test/.+", Reply.of("error_500_eval"))
    results = run_rego_tests_opa(bundle, opa_stand_in.url, 1.0)

    assert len(results) > 100
    by_name = {(r.test.package, r.test.rule): r for r in results}
    assert len(by_name) == len(results)
    failed = by_name[("clearance.licence_test", "test_org_mau_above_the_cap_in_the_month_before_release_is_denied_citing_the_clause")]
    assert failed.status == "FAIL" and "undefined" in (failed.message or "")
    assert failed.test.file == "licence_test.rego" and failed.test.line > 0  # the embedded runner's discovery
    errors = [r for r in results if r.test.package == "clearance.main_test"]
    assert errors and all(r.status == "ERROR" and "HTTP 500" in (r.message or "") for r in errors)
    passed = [r for r in results if r.status == "PASS"]
    assert passed and all(r.status == "PASS" and r.message is None and r.seconds >= 0 for r in passed)

    posts = opa_stand_in.seen("POST")
    assert len(posts) == len(results)
    assert all(p.json() == {"input": None} and p.query == {"strict-builtin-errors": ["true"]} for p in posts)
    pushed = {r.path.removeprefix("/v1/policies/") for r in opa_stand_in.seen("PUT", "/v1/policies/")}
    tests = {policy_id(bundle.revision, p) for p in bundle.test_modules}
    assert tests <= pushed and all(t.startswith(f"clearance/{short}/") for t in tests)
    # afterwards: the tests are deleted, and (the revision was not installed before) all the rest
    deleted = {r.path.removeprefix("/v1/policies/") for r in opa_stand_in.seen("DELETE", "/v1/policies/")}
    assert deleted == pushed


def test_rego_test_results_feed_clearance_policy_test(opa_stand_in: ReplayServer) -> None:
    """policy/review/testing.py (``clearance policy test --engine opa``) reads these results."""
    from policy.review.testing import run_tests

    opa_stand_in.route("POST", "/v1/data/clearance/.+", Reply.of("data_post_defined"))
    opa_stand_in.route("POST", "/v1/data/clearance/licence_test/test_one_above_the_cap_is_denied",
                       Reply.of("data_post_undefined"))
    run = run_tests(REPO / "rego", engine="opa", opa_url=opa_stand_in.url, timeout=1.0)
    assert run.count("FAIL") == 1 and run.count("PASS") == len(run.results) - 1 > 100
    (bad,) = [r for r in run.results if r.status != "PASS"]
    assert bad.test.rule == "test_one_above_the_cap_is_denied" and bad.test.line > 0


def test_rego_tests_stop_when_opa_goes_away(bundle: Bundle) -> None:
    with pytest.raises(OpaError, match="unreachable"):
        run_rego_tests_opa(bundle, f"http://127.0.0.1:{_closed_port()}", 0.5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
