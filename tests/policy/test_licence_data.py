"""Validation of the licence data: the org's MAU figures and the catalog's licence terms. A
bundle that gets them wrong is refused with the file, line and field, before any decision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from policy import BundleError, load_bundle
from tests.conftest import REPO


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dest = tmp_path / "rego"
    shutil.copytree(REPO / "rego", dest)
    return dest


def _set_org_mau(bundle: Path, body: str, *, field: str = "licensee_mau") -> Path:
    org = bundle / "data" / "org.yaml"
    text = org.read_text()
    start = text.index("  licensee_mau:\n")
    end = text.index("  # Optional:", start)
    org.write_text(text[:start] + f"  {field}:\n{body}" + text[end:])
    return org


def _error(bundle: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    (err,) = info.value.errors
    return f"{Path(err.file).name}:{err.line}: {err.code}: {err.message}"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('    "2025-13": 1\n', "'2025-13' is not a calendar month: write YYYY-MM"),
        ('    "2025-3": 1\n', "'2025-3' is not a calendar month"),
        ('    "March 2025": 1\n', "is not a calendar month"),
        ("    2025-03-01: 1\n", "valid string"),  # a YAML date, not a month
        ('    "2025-03": -1\n', "greater than or equal to 0"),
        ('    "2025-03": true\n', "valid integer"),
        ('    "2025-03": 812000000.0\n', "valid integer"),
        ('    "2025-03": "812000000"\n', "valid integer"),
        ('    "2025-03": 100000000001\n', "less than or equal to 100000000000"),
    ],
)
def test_bad_mau_figures_are_refused_naming_the_field(bundle: Path, entry: str, why: str) -> None:
    _set_org_mau(bundle, entry)
    message = _error(bundle)
    assert message.startswith("org.yaml:") and ": data_invalid: org.licensee_mau" in message, message
    assert why in message, message


def test_the_error_points_at_the_line_of_the_bad_figure(bundle: Path) -> None:
    org = _set_org_mau(bundle, '    "2025-02": 1\n    "2025-03": -5\n')
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    (err,) = info.value.errors
    assert err.line is not None and '"2025-03": -5' in org.read_text().splitlines()[err.line - 1]


def test_figures_without_affiliates_are_validated_alike(bundle: Path) -> None:
    org = bundle / "data" / "org.yaml"
    org.write_text(org.read_text() + '  licensee_mau_without_affiliates:\n    "2025-5": 1\n')
    assert "org.licensee_mau_without_affiliates" in _error(bundle)


def test_zero_and_empty_figures_are_valid(bundle: Path) -> None:
    _set_org_mau(bundle, '    "2025-03": 0\n')
    assert load_bundle(bundle).catalog.org.licensee_mau == {"2025-03": 0}
    _set_org_mau(bundle, "    {}\n")
    assert load_bundle(bundle).catalog.org.licensee_mau == {}


# --- the catalog's licence terms ---------------------------------------------------------------


def _edit_model(bundle: Path, model_id: str, edit: dict) -> None:  # type: ignore[type-arg]
    path = bundle / "data" / "models.yaml"
    doc = yaml.safe_load(path.read_text())
    (model,) = [m for m in doc["models"] if m["id"] == model_id]
    edit_fn = edit.pop("__fn__", None)
    model.update(edit)
    if edit_fn:
        edit_fn(model)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def test_a_capped_licence_needs_the_release_date(bundle: Path) -> None:
    def drop(model: dict) -> None:  # type: ignore[type-arg]
        model.pop("released_on")
        model["sources"].pop("released_on")

    _edit_model(bundle, "llama-4-scout", {"__fn__": drop})
    assert "released_on is required" in _error(bundle)


def test_every_licence_term_needs_a_source(bundle: Path) -> None:
    _edit_model(bundle, "hunyuan-a13b", {"__fn__": lambda m: m["sources"].pop("licence.excluded_territories")})
    message = _error(bundle)
    assert "(id=hunyuan-a13b)" in message and "licence.excluded_territories" in message


@pytest.mark.parametrize(("model_id", "term"), [
    ("llama-4-maverick", "mau_cap"), ("llama-4-scout", "attribution"), ("llama-4-scout", "prohibited_uses"),
    ("llama-4-scout", "name_prefix"), ("llama-4-scout", "acceptable_use_policy"), ("gpt-5.4", "restricts_output_training"),
    ("command-r-plus", "commercial_use"),
])
def test_each_term_the_policy_acts_on_needs_its_source(bundle: Path, model_id: str, term: str) -> None:
    _edit_model(bundle, model_id, {"__fn__": lambda m: m["sources"].pop(f"licence.{term}")})
    message = _error(bundle)
    assert f"(id={model_id})" in message and f"licence.{term}" in message


def test_a_route_licence_needs_a_source(bundle: Path) -> None:
    _edit_model(bundle, "command-r-plus", {"__fn__": lambda m: m["sources"].pop("deployments.cohere-api.licence")})
    assert "deployments.cohere-api.licence" in _error(bundle)


def test_uk_is_refused_as_a_territory_gb_is_the_code(bundle: Path) -> None:
    _edit_model(bundle, "hunyuan-a13b", {"__fn__": lambda m: m["licence"].update(excluded_territories=["EU", "UK", "KR"])})
    assert "the United Kingdom is GB" in _error(bundle)


@pytest.mark.parametrize("territory", ["eu", "DEU", "E1", "", "XX", "EZ"])
def test_a_territory_is_an_iso_code_or_a_group(bundle: Path, territory: str) -> None:
    _edit_model(bundle, "hunyuan-a13b", {"__fn__": lambda m: m["licence"].update(excluded_territories=[territory])})
    assert "licence.excluded_territories" in _error(bundle)


def test_clauses_are_for_known_terms(bundle: Path) -> None:
    _edit_model(bundle, "llama-4-scout", {"__fn__": lambda m: m["licence"]["clauses"].update(royalties="§9")})
    assert "licence.clauses.royalties" in _error(bundle)


def test_a_cap_is_an_object_stating_whose_users_and_when(bundle: Path) -> None:
    _edit_model(bundle, "llama-4-scout", {"__fn__": lambda m: m["licence"].update(mau_cap=700000000)})
    assert "licence.mau_cap" in _error(bundle)
    _edit_model(bundle, "llama-4-scout", {"__fn__": lambda m: m["licence"].update(
        mau_cap={"threshold": 700000000, "measures": "users", "period": "calendar_month_before_release"})})
    assert "licence.mau_cap.measures" in _error(bundle)
