"""Asking git: where a policy directory came from, and the directory as it is at a ref.

``git_info`` gives the commit checked out and whether the directory is dirty
(:class:`policy.bundle.GitInfo`); the service passes it to ``load_policy`` so that a decision's
audit entry names it. It answers ``None`` when the directory is not in a work tree, git is not
installed, or git refuses (e.g. a repository owned by another user). ``export_tree`` extracts
the directory at a ref, for impact analysis.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from clearance.errors import ClearanceError
from policy.bundle import GitInfo
from policy.review.untar import UnsafeArchive, extract_tar

# Generous for a cold cache on a large repository; a hung git must not hang a reload.
_TIMEOUT_SECONDS = 10.0


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(directory: Path | str) -> GitInfo | None:
    """The git commit and dirtiness of ``directory``; ``None`` outside a git work tree."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    inside = _git(directory, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != "true":
        return None
    head = _git(directory, "rev-parse", "--verify", "--quiet", "HEAD")
    prefix = _git(directory, "rev-parse", "--show-prefix")
    # `-- .` limits the status to the policy directory; a change elsewhere in the repository
    # does not make this bundle dirty.
    status = _git(directory, "status", "--porcelain", "--untracked-files=all", "--", ".")
    if head is None or prefix is None or status is None:
        return None  # e.g. a repository without commits yet
    return GitInfo(commit=head.strip(), dirty=bool(status.strip()), path=prefix.strip().rstrip("/") or ".")


class GitError(ClearanceError):
    """A git operation needed to build a bundle from a ref failed; the message says which."""


@dataclass(frozen=True)
class ExportedTree:
    directory: Path  # the policy directory inside the export
    commit: str  # the ref resolved to a commit


def export_tree(policy_dir: Path | str, ref: str, dest: Path) -> ExportedTree:
    """The policy directory as it is at ``ref``, extracted under ``dest`` (``git archive``).

    ``policy_dir`` is the directory in the work tree (e.g. ``rego``); the same path inside the
    repository is taken at ``ref``. Raises :class:`GitError` when ``policy_dir`` is not in a
    work tree, ``ref`` does not name a commit, or the directory does not exist at ``ref``.
    """
    policy_dir = Path(policy_dir)
    if not policy_dir.is_dir():
        raise GitError(f"{policy_dir} is not a directory")
    prefix, top = _git(policy_dir, "rev-parse", "--show-prefix"), _git(policy_dir, "rev-parse", "--show-toplevel")
    if prefix is None or top is None:
        raise GitError(f"{policy_dir} is not inside a git work tree")
    prefix = prefix.strip().rstrip("/")
    resolved = _git(policy_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved is None:
        raise GitError(f"{ref!r} does not name a commit in the repository of {policy_dir}")
    commit = resolved.strip()
    try:
        done = subprocess.run(
            ["git", "-C", top.strip(), "archive", "--format=tar", commit, *(["--", prefix] if prefix else [])],
            capture_output=True, timeout=_TIMEOUT_SECONDS * 6, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git archive {ref}: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"{prefix or '.'} does not exist at {ref} ({commit[:12]}): {detail[0] if detail else 'git archive failed'}")
    try:
        extract_tar(done.stdout, dest)  # refuses absolute paths, '..', links out of dest
    except UnsafeArchive as exc:
        raise GitError(f"git archive {ref} ({commit[:12]}): {exc}") from None
    target = dest / prefix if prefix else dest
    if not target.is_dir():
        raise GitError(f"{prefix or '.'} does not exist at {ref} ({commit[:12]})")
    return ExportedTree(directory=target, commit=commit)
