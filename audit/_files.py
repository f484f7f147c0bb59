"""Durable file replacement shared by the trust-anchor files (pinned keys, checkpoint file)."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, content: str | bytes, *, make_parent: bool = True) -> Path:
    """Replace ``path`` with ``content`` (text as UTF-8): a temporary file, fsync, rename, fsync
    of the directory. A crash leaves the old file or the new, never half of one.
    ``make_parent=False``: the caller made the directory already (a file written after every
    audit batch saves the two system calls of a ``mkdir`` that finds it)."""
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once; a short write is retried
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:  # the rename itself is durable only once the directory is
        os.fsync(directory)
    finally:
        os.close(directory)
    return path
