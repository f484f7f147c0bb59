"""C2SP tlog-tiles: paths, the tiles of a tree, tiles from a hash reader and proofs from tiles."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from audit.tlog.errors import ProofRequestError, TlogFormatError
from audit.tlog.merkle import (
    MemoryTree,
    Node,
    consistency_plan,
    consistency_proof,
    consistency_ranges,
    inclusion_plan,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    root_hash,
    root_plan,
)
from audit.tlog.tiles import (
    Tile,
    TileHashReader,
    TileInterior,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    fold_lookups,
    parse_tile_path,
    range_lookups,
    tile_bytes,
    tile_of,
    tiles_for_size,
    tiles_of,
)

from . import c2sp_vectors as c2sp


def test_the_spec_index_encoding() -> None:
    index, path = c2sp.TILE_INDEX
    assert encode_index(index) == path
    assert [encode_index(n) for n in (0, 5, 999, 1000, 1000000)] == ["000", "005", "999", "x001/000", "x001/x000/000"]


def test_the_spec_tiles_of_a_tree_of_70000() -> None:
    tiles = tiles_for_size(70_000)
    full = Counter(t.level for t in tiles if not t.is_partial)
    partial = {t.level: t.width for t in tiles if t.is_partial}
    assert {level: full.get(level, 0) for level in (0, 1, 2)} == c2sp.TILES_OF_70000["full"]
    assert partial == c2sp.TILES_OF_70000["partial"]
    assert [t.path() for t in tiles_for_size(256)] == ["tile/0/000", "tile/1/000.p/1"]
    assert tiles_for_size(0) == []


@pytest.mark.parametrize(("path", "tile"), [
    ("tile/0/000", Tile(0, 0)),
    ("tile/0/x001/x234/067", Tile(0, 1234067)),
    ("tile/2/005.p/17", Tile(2, 5, 17)),
    ("tile/entries/x001/000.p/255", Tile(None, 1000, 255)),
    ("tile/entries/042", Tile(None, 42)),
    ("tile/63/000.p/1", Tile(63, 0, 1)),
])
def test_valid_paths_parse(path: str, tile: Tile) -> None:
    assert parse_tile_path(path) == tile
    assert tile.path() == path


@pytest.mark.parametrize(("path", "reason"), [
    ("tile/0", "is not tile/"),
    ("tiles/0/000", "is not tile/"),
    ("tile/00/000", "level"),
    ("tile/64/000", "level"),
    ("tile/-1/000", "level"),
    ("tile/x/000", "level"),
    ("tile/0/5", "3 digits"),
    ("tile/0/0005", "3 digits"),
    ("tile/0/x005", "3 digits"),
    ("tile/0/001/234", "3 digits"),
    ("tile/0/x000/005", "not canonical"),
    ("tile/0/000.p/0", "partial width"),
    ("tile/0/000.p/256", "partial width"),
    ("tile/0/000.p/07", "partial width"),
    ("tile/0/000.p/", "partial width"),
    ("tile/0/000.q/5", "3 digits"),
    ("tile/0/000/", "3 digits"),
    ("tile/0/../000", "3 digits"),
    ("tile/0/x999/x999/x999/x999/x999/x999/999", "out of range"),
    ("tile/0/x001/x001/x001/x001/x001/x001/x001/001", "has no valid index"),
    ("tile/9/x999/x999/999", "out of range"),
])
def test_malformed_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(TlogFormatError, match=re.escape(reason)):
        parse_tile_path(path)


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree(leaf_hash(f"entry {i}".encode()) for i in range(70_000))


def test_tiles_hold_the_spec_hashes(tree: MemoryTree) -> None:
    level0 = tile_bytes(tree, Tile(0, 3), size=70_000)
    assert level0 == b"".join(tree.read_hashes([Node(0, 768 + i) for i in range(256)]))
    level1 = tile_bytes(tree, Tile(1, 1, 17), size=70_000)
    # Hash i of level-1 tile 1 is MTH(D[(256 + i)·256 : (257 + i)·256]), a complete level-8 node.
    assert level1[:32] == tree.read_hashes([Node(8, 256)])[0]
    assert len(level1) == 17 * 32
    assert tile_bytes(tree, Tile(2, 0, 1), size=70_000) == tree.read_hashes([Node(16, 0)])[0]


@pytest.mark.parametrize("tile", [Tile(0, 273, 111), Tile(0, 274, 1), Tile(1, 1, 18), Tile(1, 2), Tile(3, 0, 1)])
def test_tiles_a_tree_does_not_have_are_refused(tree: MemoryTree, tile: Tile) -> None:
    with pytest.raises(ProofRequestError):
        tile_bytes(tree, tile, size=70_000)


@pytest.mark.parametrize("size", [1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000])
def test_proofs_read_through_tiles_equal_proofs_from_the_tree(tree: MemoryTree, size: int) -> None:
    fetched: list[Tile] = []

    def fetch(tile: Tile) -> bytes:
        fetched.append(tile)
        return tile_bytes(tree, tile, size=size)

    reader = TileHashReader(fetch, size=size)
    assert root_hash(reader, size) == root_hash(tree, size)
    for index in {0, size // 2, size - 1}:
        fetched.clear()
        assert inclusion_proof(reader, index=index, size=size) == inclusion_proof(tree, index=index, size=size)
        assert len(fetched) == len(set(fetched)) <= 2 * (1 + size.bit_length() // 8) + 1
    for old in {1, size // 3, size - 1} - {0}:
        assert consistency_proof(reader, old_size=old, new_size=size) == \
            consistency_proof(tree, old_size=old, new_size=size)


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 65_535, 65_536, 65_537, 70_000])
def test_range_lookups_in_folded_tiles_give_the_proofs_of_the_tree(tree: MemoryTree, size: int) -> None:
    """The proof endpoints' path (ranges, integer lookups into folded tiles, partial tiles keyed
    with their width) gives the proofs and roots of the reference tree, at every edge."""
    interiors = {(t.level, t.index, t.width): TileInterior(t, tile_bytes(tree, t, size=size))
                 for t in tiles_for_size(size)}
    for index in {0, 1 % size, size // 2, size - 2 if size > 1 else 0, size - 1}:
        ranges = [(index, index + 1), *inclusion_ranges(index, size), (0, size)]
        leaf, *proof, root = fold_lookups(*range_lookups(ranges, size), interiors)
        assert leaf == tree.read_hashes([Node(0, index)])[0]
        assert proof == inclusion_proof(tree, index=index, size=size)
        assert root == root_hash(tree, size)
    for old in {1, size // 3, size - 1, size} - {0}:
        ranges = consistency_ranges(old, size)
        assert fold_lookups(*range_lookups(ranges, size), interiors) == \
            consistency_proof(tree, old_size=old, new_size=size)


@pytest.mark.parametrize("start, end", [(0, 0), (3, 7), (0, 71_000), (-1, 1)])
def test_range_lookups_refuse_what_is_not_a_proof_range(start: int, end: int) -> None:
    with pytest.raises(ProofRequestError, match="not a proof range"):
        range_lookups([(start, end)], 70_000)


def test_a_tile_of_the_wrong_length_is_an_error(tree: MemoryTree) -> None:
    reader = TileHashReader(lambda tile: bytes(31), size=1000)
    with pytest.raises(TlogFormatError, match="expected"):
        inclusion_proof(reader, index=3, size=1000)


def test_entry_bundles_round_trip_and_reject_truncation() -> None:
    entries = [b"", b"a", b"{}" * 1000, bytes(65_535)]
    data = encode_entry_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a"
    assert decode_entry_bundle(data) == entries
    for cut in (1, 3, len(data) - 1):
        with pytest.raises(TlogFormatError, match="entry bundle"):
            decode_entry_bundle(data[:cut])
    with pytest.raises(ValueError, match="at most 65535"):
        encode_entry_bundle([bytes(65_536)])


@pytest.mark.parametrize("size", [1, 255, 256, 257, 65_536, 70_000])
def test_folded_tiles_kept_across_reads_give_the_same_proofs_and_fetch_each_tile_once(tree: MemoryTree,
                                                                                      size: int) -> None:
    fetched: list[Tile] = []

    def fetch(tile: Tile) -> bytes:
        fetched.append(tile)
        return tile_bytes(tree, tile, size=size)

    kept: dict[Tile, TileInterior] = {}
    reader = TileHashReader(fetch, size=size, interiors=kept)
    for index in (0, size // 2, size - 1, size // 2, 0):
        assert inclusion_proof(reader, index=index, size=size) == inclusion_proof(tree, index=index, size=size)
        assert root_hash(reader, size) == root_hash(tree, size)
    assert len(fetched) == len(set(fetched)) == len(kept)  # a kept tile is never fetched again


def test_a_tile_interior_holds_every_node_of_the_tile(tree: MemoryTree) -> None:
    for tile, size in ((Tile(0, 3), 70_000), (Tile(0, 273, 111), 70_000 - 1), (Tile(1, 1, 17), 70_000)):
        interior = TileInterior(tile, tile_bytes(tree, tile, size=size))
        for rise in range(9):
            first = tile.index * 256 >> rise  # the tile's first node at that rise
            count = tile.width >> rise
            nodes = [Node(tile.hash_level + rise, first + i) for i in range(count)]
            assert interior.row(rise) == b"".join(tree.read_hashes(nodes))


@pytest.mark.parametrize("size", [1, 255, 256, 257, 65_536, 70_000, 10_000_000])
def test_tiles_of_nodes_are_their_distinct_tiles_in_order(size: int) -> None:
    for index in {0, size // 2, size - 1}:
        nodes = [Node(0, index), *inclusion_plan(index, size).nodes, *root_plan(size).nodes,
                 *consistency_plan(max(1, index), size).nodes]
        assert tiles_of(nodes, size) == list(dict.fromkeys(tile_of(node, size) for node in nodes))
