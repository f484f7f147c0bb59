"""Bundle loading: validation errors name file, line, entry and field; revisions are content hashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policy import BundleError, load_bundle, load_policy
from tests.conftest import REPO

REGO = REPO / "rego"


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "rego"
    shutil.copytree(REGO, dest)
    return dest


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_reference_bundle_loads() -> None:
    bundle = load_bundle(REGO)
    assert len(bundle.catalog.models) == 18
    assert len(bundle.catalog.apps) >= 6
    assert bundle.revision.startswith("sha256:") and len(bundle.revision) == 71


def test_revision_is_the_same_for_the_same_files_anywhere(bundle_copy: Path) -> None:
    assert load_bundle(bundle_copy).revision == load_bundle(REGO).revision


def test_revision_changes_with_any_byte(bundle_copy: Path) -> None:
    before = load_bundle(bundle_copy).revision
    (bundle_copy / "data" / "org.yaml").write_text((bundle_copy / "data" / "org.yaml").read_text() + "\n# note\n")
    assert load_bundle(bundle_copy).revision != before


def test_invalid_model_field_names_file_line_entry_and_field(bundle_copy: Path) -> None:
    models = bundle_copy / "data" / "models.yaml"
    _replace(models, "threshold: 700000000", "threshold: -5")
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_copy)
    (err,) = info.value.errors
    assert err.file.endswith("data/models.yaml")
    assert err.code == "data_invalid"
    assert "licence.mau_cap.threshold" in err.message and "(id=llama-4-" in err.message
    assert err.line is not None and "threshold: -5" in models.read_text().splitlines()[err.line - 1]


def test_unknown_field_in_app_is_refused(bundle_copy: Path) -> None:
    _replace(bundle_copy / "data" / "apps.yaml", "programs:", "progams: []\n    programs:")
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_copy)
    assert any("progams" in e.message and e.file.endswith("apps.yaml") for e in info.value.errors)


def test_attestation_for_unknown_model_is_refused(bundle_copy: Path) -> None:
    _replace(bundle_copy / "data" / "apps.yaml", "model: gemma-4-31b", "model: gemma-99")
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_copy)
    assert any("gemma-99" in e.message for e in info.value.errors)


def test_unreadable_yaml_is_refused_with_line(bundle_copy: Path) -> None:
    (bundle_copy / "data" / "org.yaml").write_text("org:\n  restricted_origin_countries: [CN\n")
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_copy)
    (err,) = info.value.errors
    assert err.code == "data_unreadable" and err.line is not None


def test_rego_compile_error_names_file_and_line(bundle_copy: Path) -> None:
    target = next(p for p in sorted(bundle_copy.glob("*.rego")) if not p.name.endswith("_test.rego") and p.name != "main.rego")
    target.write_text(target.read_text() + "\nbroken_rule := if {\n")
    with pytest.raises(BundleError) as info:
        load_policy(bundle_copy)
    (err,) = info.value.errors
    assert err.code == "rego_compile_error"
    assert err.file.endswith(target.name) and err.line is not None and err.line > 1
    assert str(err).startswith(f"{err.file}:{err.line}: rego_compile_error: ")
