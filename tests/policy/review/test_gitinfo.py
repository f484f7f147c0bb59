"""Revisions: the content hash stays the revision; the git commit and dirtiness travel beside it
(Bundle, GET /v1/policy, each decision's audit entry, reload entries)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.reload import reload_policy
from policy import GitInfo, load_bundle, load_policy
from policy.review.gitinfo import git_info
from tests.api.conftest import bearer, make_keys
from tests.bundles import HELPDESK_REQUEST, entries, git, lower_llama_cap, start_services

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_reload.py


def test_commit_and_dirtiness_of_the_policy_directory(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert git_info(repo / "rego") == git_info(repo / "rego")  # stable
    info = git_info(repo / "rego")
    assert info is not None and (info.commit, info.dirty, info.path) == (head, False, "rego")
    (repo / "README").write_text("outside the policy directory\n")
    assert git_info(repo / "rego").dirty is False  # type: ignore[union-attr]
    (repo / "rego" / "notes.rego").write_text("package clearance.notes\n")  # untracked, inside
    assert git_info(repo / "rego").dirty is True  # type: ignore[union-attr]
    (repo / "rego" / "notes.rego").unlink()
    lower_llama_cap(repo / "rego")
    assert git_info(repo / "rego").dirty is True  # type: ignore[union-attr]


def test_none_outside_a_work_tree_or_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_info(plain) is None
    assert git_info(tmp_path / "missing") is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert git_info(Path(__file__).parent) is None


def test_the_revision_is_the_content_hash_with_or_without_git(repo: Path, tmp_path: Path) -> None:
    in_git = load_bundle(repo / "rego", git=git_info(repo / "rego"))
    copy = tmp_path / "copy"
    shutil.copytree(repo / "rego", copy)
    outside = load_bundle(copy, git=git_info(copy))
    assert in_git.git is not None and outside.git is None
    assert in_git.revision == outside.revision


def test_loading_a_policy_never_runs_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provenance is passed in by whoever loads (the service); the core starts no subprocess."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started while loading: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert load_policy(repo / "rego").bundle.git is None
    told = GitInfo(commit="0" * 40, dirty=True, path="rego")
    assert load_policy(repo / "rego", git=told).bundle.git == told


def test_policy_info_decisions_and_reloads_carry_git(repo: Path, migrated_database: str, tmp_path: Path) -> None:
    services = start_services(migrated_database, tmp_path / "home", policy_dir=repo / "rego")
    try:
        head = git(repo, "rev-parse", "HEAD")
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            keys = make_keys(services)
            info = client.get("/v1/policy", headers=bearer(keys.auditor)).json()
            assert info["git"] == {"commit": head, "dirty": False, "path": "rego"}
            decision = client.post("/v1/decisions", json=HELPDESK_REQUEST, headers=bearer(keys.other_app)).json()
            (body,) = [b for b in entries(services.store, "decision") if b["decision_id"] == decision["decision_id"]]
            assert body["policy_git"] == {"commit": head, "dirty": False, "path": "rego"}
            assert body["policy_revision"] == info["revision"]  # still the content hash

            lower_llama_cap(repo / "rego")  # an uncommitted change, reloaded
            result = reload_policy(services, requested_by="test")
            assert result.accepted and result.git is not None and result.git.dirty is True
            after = client.get("/v1/policy", headers=bearer(keys.auditor)).json()
            assert after["git"]["dirty"] is True and after["revision"] != info["revision"]
            (reload_entry,) = entries(services.store, "policy_reload")
            assert reload_entry["reload"]["old_git"]["dirty"] is False
            assert reload_entry["reload"]["new_git"] == reload_entry["policy_git"] == after["git"]
    finally:
        services.close()
