"""``export_tree``: a policy directory as it is at a git ref, on every Python the project supports.

Debian 12's Python is 3.11.2, whose ``tarfile`` has no ``filter=`` argument (3.11.4 added it):
the export must not depend on it, and must still refuse archive members that would land
outside the destination.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Any

import pytest

from policy.review.gitinfo import GitError, export_tree
from policy.review.untar import UnsafeArchive, extract_tar
from tests.bundles import commit_all, git
from tests.conftest import REPO

DEBIAN_PYTHON = Path("/usr/bin/python3")


def _tree(root: Path) -> dict[str, Any]:
    """Every file, directory and link under ``root``: content, executable bit, link target."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir",)
        else:
            found[rel] = ("file", path.read_bytes(), bool(path.stat().st_mode & 0o100))
    return found


@pytest.fixture
def repo_with_extras(repo: Path) -> Path:
    """The reference pack plus what git archive can carry: an executable file, a link inside."""
    tools = repo / "rego" / "tools"
    tools.mkdir()
    (tools / "run.sh").write_text("#!/bin/sh\necho run\n")
    (tools / "run.sh").chmod(0o755)
    (tools / "same.sh").symlink_to("run.sh")
    commit_all(repo, "extras", "extras")
    return repo


def _python_3_11_2_tarfile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tarfile`` as Python 3.11.2 has it: no extraction filters."""
    for name in ("data_filter", "tar_filter", "fully_trusted_filter", "FilterError"):
        monkeypatch.delattr(tarfile, name, raising=False)
    original = tarfile.TarFile.extractall

    def extractall(self: tarfile.TarFile, path: str = ".", members: Any = None, *, numeric_owner: bool = False) -> None:
        original(self, path, members, numeric_owner=numeric_owner)  # type: ignore[call-arg]

    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)


def test_export_without_the_tarfile_filter_api(repo_with_extras: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _python_3_11_2_tarfile(monkeypatch)
    exported = export_tree(repo_with_extras / "rego", "extras", tmp_path / "out")
    assert exported.commit == git(repo_with_extras, "rev-parse", "extras")
    assert exported.directory == tmp_path / "out" / "rego"
    assert _tree(exported.directory) == _tree(repo_with_extras / "rego")
    assert _tree(exported.directory)["tools/run.sh"][2] is True
    assert _tree(exported.directory)["tools/same.sh"] == ("link", "run.sh")


@pytest.mark.skipif(not DEBIAN_PYTHON.exists() or not hasattr(tarfile, "data_filter"),
                    reason="needs /usr/bin/python3 beside a newer Python (on 3.11.2 itself, the other tests are this test)")
def test_export_under_the_system_python(repo_with_extras: Path, tmp_path: Path) -> None:
    """The same export run by /usr/bin/python3 (3.11.2 on Debian 12), with this environment's
    packages (same 3.11 ABI); skipped where that Python has tarfile filters or another minor."""
    probe = subprocess.run([str(DEBIAN_PYTHON), "-c", "import sys, tarfile; print(sys.version_info[:2] == (3, 11), "
                            "hasattr(tarfile, 'data_filter'))"], capture_output=True, text=True, check=True)
    same_minor, has_filter = (word == "True" for word in probe.stdout.split())
    if not same_minor or has_filter:
        pytest.skip(f"{DEBIAN_PYTHON} is not a 3.11 without tarfile filters")
    script = (
        "import json, sys\nfrom pathlib import Path\nfrom policy.review.gitinfo import export_tree\n"
        "tree = export_tree(Path(sys.argv[1]), 'extras', Path(sys.argv[2]))\n"
        "print(json.dumps([str(tree.directory), tree.commit, sys.version]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])}
    done = subprocess.run([str(DEBIAN_PYTHON), "-c", script, str(repo_with_extras / "rego"), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    directory, commit, version = json.loads(done.stdout)
    assert version != sys.version
    assert commit == git(repo_with_extras, "rev-parse", "extras")
    assert _tree(Path(directory)) == _tree(repo_with_extras / "rego")


# -- members that must not be extracted --------------------------------------------------------


def _archive(*members: tuple[str, str, str | bytes]) -> bytes:
    """A tar of ``(kind, name, content or link target)`` members, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            info.linkname = str(payload)
            archive.addfile(info)
    return buffer.getvalue()


UNSAFE = {
    "parent-path": [("file", "../escaped.rego", "x")],
    "nested-parent-path": [("dir", "rego", ""), ("file", "rego/../../escaped.rego", "x")],
    "absolute-path": [("file", "/tmp/escaped.rego", "x")],
    "absolute-link": [("sym", "rego", "/etc")],
    "link-climbing-out": [("sym", "up", "../..")],
    "beneath-a-link": [("sym", "rego", "."), ("file", "rego/escaped.rego", "x")],
    "write-through-link": [("sym", "rego", ".."), ("file", "rego/escaped.rego", "x")],
    "link-through-later-link": [("dir", "s", ""), ("sym", "out", "s/d/../.."), ("sym", "s/d", "../x")],
    "hard-link": [("file", "a", "x"), ("hard", "b", "/etc/passwd")],
    "fifo": [("fifo", "pipe", "")],
    "device": [("chr", "dev", "")],
}


@pytest.mark.parametrize("members", list(UNSAFE.values()), ids=list(UNSAFE))
def test_unsafe_members_are_refused(members: list[tuple[str, str, str]], tmp_path: Path) -> None:
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeArchive) as refused:
        extract_tar(_archive(*members), dest)
    assert str(refused.value).startswith("archive member '")
    outside = [p for p in (tmp_path / "box").rglob("*") if dest not in (p, *p.parents)]
    assert outside == [] and not Path("/tmp/escaped.rego").exists()


def test_a_refused_member_is_a_git_error_of_the_export(repo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What git archive hands over is checked, whatever produced it (here: a tampered archive)."""
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> Any:
        done = real_run(args, **kwargs)
        if "archive" in args:
            done.stdout = _archive(("file", "rego/../../escaped.rego", "x"))
        return done

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(GitError, match="escaped.rego"):
        export_tree(repo / "rego", "base", tmp_path / "out")
    assert not (tmp_path / "escaped.rego").exists()


def test_safe_members_are_extracted(tmp_path: Path) -> None:
    extract_tar(_archive(("dir", "rego", ""), ("file", "rego/a.rego", "package a\n"),
                         ("sym", "rego/b.rego", "a.rego"), ("sym", "rego/up", ".."), ("file", "top", b"\x00\x01")),
                tmp_path)
    assert (tmp_path / "rego" / "b.rego").read_text() == "package a\n"
    assert (tmp_path / "rego" / "up").resolve() == tmp_path.resolve()
    assert (tmp_path / "top").read_bytes() == b"\x00\x01"
