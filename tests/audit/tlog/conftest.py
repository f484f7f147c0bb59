"""Shared trees for the transparency-log tests."""

from __future__ import annotations

import pytest

from audit.tlog.merkle import MemoryTree, leaf_hash

BIG = 4096


def leaf_data(i: int) -> bytes:
    return f"leaf {i}".encode()


@pytest.fixture(scope="session")
def big_tree() -> MemoryTree:
    """A tree of 4096 leaves; any prefix of it is the tree of that size."""
    return MemoryTree(leaf_hash(leaf_data(i)) for i in range(BIG))
