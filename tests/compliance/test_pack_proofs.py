"""The evidence pack's inclusion proofs, computed for many consecutive leaves at once from the
stored tiles (``audit/pack.py``: ``_PathCache`` and ``_Proofs``), are exactly RFC 9162's: compared
with ``audit.tlog.merkle.inclusion_proof`` over an in-memory tree, for every leaf of trees whose
size ends inside a tile, on a tile's edge and past it."""

from __future__ import annotations

import hashlib

import pytest

from audit.pack import _PathCache, _Proofs
from audit.tlog.merkle import MemoryTree, inclusion_proof
from audit.tlog.tiles import Tile, tile_bytes


class _MemoryTiles:
    """The tiles of an in-memory tree, as ``audit.log.StoredTiles`` reads them from PostgreSQL."""

    def __init__(self, tree: MemoryTree) -> None:
        self._tree = tree

    def tile(self, tile: Tile) -> bytes:
        return tile_bytes(self._tree, tile, size=self._tree.size)


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 1000, 65_536 + 300])
def test_pack_proofs_are_the_rfc_9162_proofs(size: int) -> None:
    tree = MemoryTree(hashlib.sha256(b"leaf %d" % i).digest() for i in range(size))
    proofs = _Proofs(_PathCache(_MemoryTiles(tree), size), size)  # type: ignore[arg-type]
    # Every leaf of the small trees; of the large one, the first and last tiles and a stride.
    indexes = range(size) if size <= 1000 else [*range(600), *range(600, size - 600, 97), *range(size - 600, size)]
    for index in indexes:
        assert proofs.proof(index) == [h.hex() for h in inclusion_proof(tree, index=index, size=size)], index
