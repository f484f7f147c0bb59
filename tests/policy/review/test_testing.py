"""`clearance policy test`: PASS/FAIL per test like `opa test`, coverage and its threshold."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from api.cli import app as cli
from policy.review.testing import format_run, run_tests
from tests.bundles import REGO


def add_tests(bundle: Path, text: str) -> None:
    path = bundle / "fitness_test.rego"
    path.write_text(path.read_text() + text)


def test_reference_pack_passes_with_full_coverage() -> None:
    run = run_tests(REGO, coverage=True)
    assert run.ok and run.count("PASS") == len(run.results) > 150
    assert run.coverage is not None and run.coverage.percent >= 95
    assert {f.file for f in run.coverage.files} == {p.name for p in REGO.glob("*.rego") if not p.name.endswith("_test.rego")}
    text = format_run(run, threshold=95)
    assert f"PASS: {len(run.results)}/{len(run.results)}" in text and "FAIL" not in text
    assert "TOTAL" in text and "meets the threshold 95.0%" in text


def test_failures_and_errors_are_reported_like_opa_test(bundle_dir: Path) -> None:
    add_tests(bundle_dir, "\ntest_wrong if { 1 == 2 }\n\ntest_boom if {\n\tx := 1 / 0\n\tx > 0\n}\n")
    run = run_tests(bundle_dir)
    by_rule = {r.test.rule: r for r in run.results}
    assert by_rule["test_wrong"].status == "FAIL" and "undefined" in (by_rule["test_wrong"].message or "")
    assert by_rule["test_boom"].status == "ERROR" and "divide by zero" in (by_rule["test_boom"].message or "")
    total = len(run.results)
    text = format_run(run)
    assert text.startswith("FAILURES\n")
    assert "data.clearance.fitness_test.test_wrong: FAIL (" in text
    assert f"PASS: {total - 2}/{total}\nFAIL: 1/{total}\nERROR: 1/{total}" in text
    line = by_rule["test_boom"].test.line
    assert f"{(bundle_dir / 'fitness_test.rego').as_posix()}:{line}: divide by zero" in text


def test_a_module_no_test_reaches_has_zero_coverage_and_fails_the_threshold(bundle_dir: Path) -> None:
    (bundle_dir / "extra.rego").write_text("package clearance.extra\n\nimport rego.v1\n\nlimit := 3\n\nover if {\n\tinput.n > limit\n}\n")
    run = run_tests(bundle_dir, coverage=True)
    assert run.ok and run.coverage is not None
    extra = next(f for f in run.coverage.files if f.file == "extra.rego")
    assert extra.covered == frozenset() and extra.lines >= 2
    result = CliRunner().invoke(cli, ["policy", "test", str(bundle_dir), "--threshold", "100"])
    assert result.exit_code == 1 and "is BELOW the threshold 100.0%" in result.stdout
    assert "extra.rego" in result.stdout and "not covered: " in result.stdout


def test_cli_text_and_json(bundle_dir: Path) -> None:
    ok = CliRunner().invoke(cli, ["policy", "test", str(REGO), "--coverage", "-v"])
    assert ok.exit_code == 0 and "SUMMARY" in ok.stdout and ": PASS (" in ok.stdout and "COVERAGE" in ok.stdout
    add_tests(bundle_dir, "\ntest_wrong if { false }\n")
    bad = CliRunner().invoke(cli, ["policy", "test", str(bundle_dir), "--format", "json"])
    assert bad.exit_code == 1
    document = orjson.loads(bad.stdout)
    assert document["ok"] is False and document["summary"]["fail"] == 1
    assert {"file", "line", "package", "name", "status", "seconds", "message"} <= set(document["tests"][0])


def test_cli_usage_errors(bundle_dir: Path, monkeypatch: object) -> None:
    result = CliRunner().invoke(cli, ["policy", "test", str(REGO), "--engine", "opa", "--coverage"])
    assert result.exit_code == 2 and "coverage needs --engine regorus" in result.stderr
    result = CliRunner().invoke(cli, ["policy", "test", str(REGO), "--engine", "nope"])
    assert result.exit_code == 2
    result = CliRunner(env={"CLEARANCE_OPA_URL": ""}).invoke(cli, ["policy", "test", str(REGO), "--engine", "opa"])
    assert result.exit_code == 2 and "needs the server's URL" in result.stderr


