"""Durable file replacement shared by the trust-anchor files (pinned keys, checkpoint file)."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, content: str) -> Path:
    """Replace ``path`` with ``content``: a temporary file, fsync, rename, fsync of the directory.
    A crash leaves the old file or the new, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
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
