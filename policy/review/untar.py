"""Extracting a ``git archive`` tar into a directory, member by member, refusing anything that
would land outside it.

``tarfile.extractall(filter="data")`` does this check too, but only from Python 3.11.4 on;
Debian 12's Python is 3.11.2. Only what ``git archive`` produces is accepted: directories,
regular files (executable or not) and symbolic links whose target stays inside the directory.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from clearance.errors import ClearanceError


class UnsafeArchive(ClearanceError):
    """A member of the archive would be written outside the destination, or is of a kind
    ``git archive`` never produces (hard link, device, FIFO)."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _relative(member: tarfile.TarInfo) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts or name == PurePosixPath("."):
        raise UnsafeArchive(f"archive member {member.name!r}: an absolute path or one that climbs out with '..'")
    return name


def extract_tar(data: bytes, dest: Path) -> None:
    """Extract the tar archive ``data`` under ``dest`` (created if missing).

    Raises :class:`UnsafeArchive` naming the first member that is refused; what was extracted
    before it stays under ``dest`` (nothing is ever written outside it): extract into a
    directory of its own and discard it on error.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    links: list[tuple[tarfile.TarInfo, Path]] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            name = _relative(member)
            target = root.joinpath(*name.parts)
            # git never puts an entry beneath a symlink: a path through one is refused, so that
            # nothing is ever written through a link.
            if target.parent.resolve() != target.parent:
                raise UnsafeArchive(f"archive member {member.name!r} lies beneath a symbolic link")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                target.parent.mkdir(parents=True, exist_ok=True)
                _write(archive, member, target)
            elif member.issym():
                if PurePosixPath(member.linkname).is_absolute():
                    raise UnsafeArchive(f"archive member {member.name!r} links to {member.linkname!r}, outside {dest}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(member.linkname)
                links.append((member, target))
            else:
                raise UnsafeArchive(f"archive member {member.name!r} is a hard link or special file; "
                                    "git archive produces only files, directories and symbolic links")
    # A link's target may pass through links extracted after it: judge each one at the end.
    for member, link in links:
        if not _inside(link.resolve(), root):
            raise UnsafeArchive(f"archive member {member.name!r} links to {member.linkname!r}, outside {dest}")


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = archive.extractfile(member)
    assert source is not None  # a regular file always has content (possibly empty)
    mode = 0o755 if member.mode & 0o100 else 0o644
    # O_EXCL|O_NOFOLLOW: never write through a symlink (or over a file) already at the target.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 16):
            out.write(chunk)
