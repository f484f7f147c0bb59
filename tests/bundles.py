"""Copies of the reference bundle to break or change, git repositories holding one, and services
over a real PostgreSQL whose policy directory is such a copy. The fixtures here (``bundle_dir``,
``services_on_copy``, ``repo``) are registered for every test by tests/conftest.py."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from api.settings import Settings
from audit import AuditStore
from tests.api.conftest import Keys, make_keys, make_settings
from tests.conftest import REPO

REGO = REPO / "rego"

# A workload for which many routes are cleared, the Llama 4 ones among them (the org's own
# figures are well under their 700M cap): lowering that cap below the org's figure for the month
# before their release must deny exactly those routes, whatever the workload's MAU.
HELPDESK_REQUEST: dict[str, Any] = {
    "app_id": "internal-helpdesk",
    "workload": {
        "task": "summarization", "quality_tier": "commodity", "regulatory_tier": "minimal",
        "sector": "general", "data_classification": "internal", "monthly_active_users": 5_000_000,
    },
}
LLAMA_MODELS = ("llama-4-maverick", "llama-4-scout")


def copy_bundle(dest: Path) -> Path:
    shutil.copytree(REGO, dest)
    return dest


def edit(path: Path, old: str, new: str, *, count: int = 1) -> None:
    """Replace ``old`` by ``new`` exactly ``count`` times (fails loudly if the text moved)."""
    text = path.read_text()
    assert text.count(old) == count, f"{path.name}: {old!r} occurs {text.count(old)} times, expected {count}"
    path.write_text(text.replace(old, new))


def lower_llama_cap(bundle: Path, cap: int = 1_000_000) -> None:
    """Below the org's licensee MAU figure for 2025-03 (org.yaml): denies every Llama 4 route."""
    edit(bundle / "data" / "models.yaml", "threshold: 700000000", f"threshold: {cap}", count=2)


def set_org_mau(bundle: Path, month: str, figure: int) -> None:
    """Change one of the licensee's monthly figures in org.yaml."""
    path = bundle / "data" / "org.yaml"
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip().startswith(f'"{month}":')]
    assert len(hits) == 1, f"org.yaml: {month} occurs {len(hits)} times"
    indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
    lines[hits[0]] = f'{indent}"{month}": {figure}\n'
    path.write_text("".join(lines))


def break_rego(bundle: Path) -> int:
    """A syntax error in licence.rego; returns its line."""
    path = bundle / "licence.rego"
    lines = path.read_text().splitlines()
    lines.append("broken_rule if {")
    lines.append("  x := ")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def entries(store: AuditStore, kind: str | None = None) -> list[dict[str, Any]]:
    """Every leaf of the log (of one kind), oldest first, with the input and result blobs it
    names put back as ``input`` and ``result``."""
    with store.log_snapshot() as conn:
        rows = conn.execute("SELECT body, input_data, result_data FROM audit_log ORDER BY seq").fetchall()
    bodies = [{**orjson.loads(bytes(body)),
               "input": orjson.loads(bytes(data_in)) if data_in is not None else None,
               "result": orjson.loads(bytes(data_out)) if data_out is not None else None}
              for body, data_in, data_out in rows]
    return [b for b in bodies if kind is None or b["kind"] == kind]


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return copy_bundle(tmp_path / "rego")


def start_services(database_url: str, home: Path, **overrides: Any) -> Services:
    home.mkdir(parents=True, exist_ok=True)
    settings: Settings = make_settings(home, database_url).model_copy(update=overrides)
    return Services.start(settings)


@pytest.fixture
def services_on_copy(migrated_database: str, bundle_dir: Path, tmp_path: Path) -> Iterator[Services]:
    """Services on a database of their own whose policy directory is a copy of the reference
    bundle (safe to change)."""
    started = start_services(migrated_database, tmp_path / "home", policy_dir=bundle_dir)
    yield started
    started.close()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=Reviewer", "-c", "user.email=r@example.org",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_all(repo: Path, message: str, tag: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    git(repo, "tag", tag)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (in a temporary directory) whose `rego/` is the reference pack,
    committed and tagged `base`."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    copy_bundle(root / "rego")
    git(root, "add", "rego")
    git(root, "commit", "-q", "-m", "reference pack")
    git(root, "tag", "base")
    return root


def app_client(services: Services) -> Iterator[TestClient]:
    """The real app over ``services``, for a test module's own ``client`` fixture."""
    with TestClient(create_app(services=services), raise_server_exceptions=False) as test_client:
        yield test_client


def app_fixtures() -> tuple[Any, Any]:
    """``client`` and ``keys`` fixtures over a test module's own ``services`` fixture, one per
    test (tests/api/conftest.py's are one per module): ``client, keys = app_fixtures()``."""

    @pytest.fixture
    def client(services: Services) -> Iterator[TestClient]:
        yield from app_client(services)

    @pytest.fixture
    def keys(services: Services) -> Keys:
        return make_keys(services)

    return client, keys
