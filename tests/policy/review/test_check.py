"""`clearance policy check`: every problem of a bundle as `file:line: code: message`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.cli import app as cli
from policy.review.check import check_bundle
from policy.errors import PolicyError
from tests.bundles import REGO, break_rego, edit


def codes(errors: list[PolicyError]) -> list[str]:
    return [e.code for e in errors]


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_the_reference_pack_is_clean() -> None:
    assert check_bundle(REGO) == []


def test_a_syntax_error_names_the_file_and_line(bundle_dir: Path) -> None:
    line = break_rego(bundle_dir)
    (error,) = check_bundle(bundle_dir)
    assert (error.file, error.line, error.code) == ((bundle_dir / "licence.rego").as_posix(), line, "rego_parse_error")
    assert str(error).startswith(f"{bundle_dir.as_posix()}/licence.rego:{line}: rego_parse_error: ")


def test_every_broken_module_is_reported_not_only_the_first(bundle_dir: Path) -> None:
    break_rego(bundle_dir)
    (bundle_dir / "fitness_test.rego").write_text("package clearance.fitness_test\n\ntest_x if {\n")
    assert sorted(Path(e.file).name for e in check_bundle(bundle_dir)) == ["fitness_test.rego", "licence.rego"]


def test_an_unsafe_variable_in_a_test_module_is_a_compile_error(bundle_dir: Path) -> None:
    path = bundle_dir / "licence_test.rego"
    path.write_text(path.read_text() + "\ntest_unsafe if {\n\tundefined_thing == 1\n}\n")
    line = len(path.read_text().splitlines()) - 1
    (error,) = check_bundle(bundle_dir)
    assert (Path(error.file).name, error.line, error.code) == ("licence_test.rego", line, "rego_compile_error")
    assert "undefined_thing" in error.message


def test_invalid_data_and_broken_rego_are_reported_together(bundle_dir: Path) -> None:
    edit(bundle_dir / "data" / "models.yaml", "threshold: 700000000", "threshold: -5", count=2)
    break_rego(bundle_dir)
    found = check_bundle(bundle_dir)
    assert codes(found).count("data_invalid") == 2 and "rego_parse_error" in codes(found)
    assert all(e.line for e in found)


def test_a_new_code_must_be_documented(bundle_dir: Path) -> None:
    edit(bundle_dir / "codes.rego", 'HUMAN_REVIEW := "human_review"', 'HUMAN_REVIEW := "human_review"\n\nNEW_CODE := "NEW_CODE"')
    (error,) = check_bundle(bundle_dir)
    assert error.code == "reason_undocumented" and "NEW_CODE" in error.message
    assert (Path(error.file).name, error.line) == ("codes.rego", line_of(bundle_dir / "codes.rego", 'NEW_CODE := "NEW_CODE"'))


def test_a_documented_code_no_rule_emits_and_a_literal_code(bundle_dir: Path) -> None:
    # licence.rego spells a code literally instead of using the constant: the constant's code
    # is now emitted by no rule, and the literal is not in reasons.yaml.
    edit(bundle_dir / "licence.rego", "data.clearance.codes.LICENCE_NONCOMMERCIAL", '"LICENCE_NONCOMM"')
    found = {e.code: e for e in check_bundle(bundle_dir)}
    assert set(found) == {"reason_literal", "reason_undocumented", "reason_unused"}
    unused = found["reason_unused"]
    reasons = bundle_dir / "data" / "reasons.yaml"
    assert (unused.file, unused.line) == (reasons.as_posix(), line_of(reasons, "  LICENCE_NONCOMMERCIAL:"))
    assert Path(found["reason_literal"].file).name == "licence.rego" and found["reason_literal"].line


def test_obligations_both_ways(bundle_dir: Path) -> None:
    reasons = bundle_dir / "data" / "reasons.yaml"
    text = reasons.read_text()
    reasons.write_text(text + "  review_board:\n    summary: A board reviews each call.\n")
    (error,) = check_bundle(bundle_dir)
    assert error.code == "obligation_unused" and "review_board" in error.message and error.line


def test_a_code_in_the_wrong_category(bundle_dir: Path) -> None:
    reasons = bundle_dir / "data" / "reasons.yaml"
    text = reasons.read_text()
    start = text.index("  UNSUITABLE_PRICE:")
    reasons.write_text(text[:start] + text[start:].replace("category: fitness", "category: governance", 1))
    (error,) = check_bundle(bundle_dir)
    assert error.code == "reason_category" and "UNSUITABLE_PRICE" in error.message


def test_two_test_rules_with_one_name_are_refused(bundle_dir: Path) -> None:
    path = bundle_dir / "fitness_test.rego"
    path.write_text(path.read_text() + "\ntest_twice if { true }\n\ntest_twice if { false }\n")
    (error,) = check_bundle(bundle_dir)
    assert error.code == "test_duplicate" and error.line == len(path.read_text().splitlines())


def test_missing_directory() -> None:
    (error,) = check_bundle("/nonexistent/rego")
    assert error.code == "bundle_missing"


def test_cli_prints_errors_and_exits_1(bundle_dir: Path) -> None:
    line = break_rego(bundle_dir)
    result = CliRunner().invoke(cli, ["policy", "check", str(bundle_dir)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{bundle_dir.as_posix()}/licence.rego:{line}: rego_parse_error: ")
    assert "1 error" in result.stderr
    ok = CliRunner().invoke(cli, ["policy", "check", str(REGO), "--examples", "50"])
    assert ok.exit_code == 0 and ok.stdout == "" and "ok" in ok.stderr
    assert "invariants: 9 declared, 0 violated" in ok.stderr
    assert "decisions: assembled in Python" in ok.stderr


def test_cli_says_when_decisions_are_not_assembled(bundle_dir: Path) -> None:
    """An edited main.rego is fit to serve, decided whole by the VM: the check says so and why."""
    main = bundle_dir / "main.rego"
    main.write_text(main.read_text() + "\n# reviewed\n")
    ok = CliRunner().invoke(cli, ["policy", "check", str(bundle_dir), "--examples", "0"])
    assert ok.exit_code == 0, ok.stderr
    assert "note: decisions are evaluated whole by the VM" in ok.stderr
    assert "main.rego is not the text policy/assembly.py pins" in ok.stderr
