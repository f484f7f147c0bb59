"""Where a bundle came from in git: the commit checked out and whether the directory is dirty.

The bundle's ``revision`` stays the content hash (the same files give the same revision with or
without git); this is the extra fact a reviewer needs to map a decision back to a pull request.
``git_info`` asks the ``git`` command line, and answers ``None`` when the directory is not in a
work tree, git is not installed, or git refuses (e.g. a repository owned by another user).
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

# Generous for a cold cache on a large repository; a hung git must not hang a reload.
_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class GitInfo:
    commit: str  # HEAD of the work tree holding the policy directory (40 hex digits)
    dirty: bool  # files under the policy directory differ from HEAD (untracked ones too)
    path: str  # the policy directory relative to the repository root ("." at the root)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
