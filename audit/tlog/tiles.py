"""C2SP tlog-tiles: the tree as static tiles of 256 hashes, and entry bundles.

Paths (relative to the log's prefix)::

    tile/<L>/<N>[.p/<W>]        hashes at tile level L (0..63), tile index N, partial width W
    tile/entries/<N>[.p/<W>]    the entries of level-0 tile N, each a big-endian uint16 length
                                followed by the entry bytes

``<N>`` is written in zero-padded 3-digit elements, all but the last prefixed with ``x``
(1234067 → ``x001/x234/067``). ``<W>`` is 1..255; a full tile has no suffix.

Tile ``N`` at level ``L`` holds ``MTH(D[(N·256 + i)·256**L : (N·256 + i + 1)·256**L])`` for
``i`` in 0..255: in :mod:`audit.tlog.merkle` terms, the nodes ``(8·L, N·256 + i)``. Tile height
is 8, so a node of any level is either in a tile or the fold of at most 128 hashes of one tile:
:class:`TileHashReader` answers proofs from tiles, :func:`tile_bytes` builds a tile from any
:class:`~audit.tlog.merkle.HashReader`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from .errors import ProofRequestError, TlogFormatError
from .merkle import HASH_SIZE, MAX_TREE_SIZE, HashReader, Node, range_subtrees

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileHashReader",
    "TileInterior",
    "TileKey",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "encode_index",
    "fold_lookups",
    "parse_tile_path",
    "range_lookups",
    "tile_bytes",
    "tile_for_size",
    "tile_of",
    "tiles_for_size",
    "tiles_of",
]

_sha256 = hashlib.sha256
_NODE = b"\x01"  # RFC 9162 interior node prefix (merkle.node_hash, inlined in the fold)
_NODE_STATE = _sha256(_NODE)  # only ever copied, never updated
_ELEMENT = re.compile(r"x?[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: ``level`` (``None`` for an entry bundle), ``index``, ``width`` (256 if full)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise TlogFormatError("tile", f"level {self.level} is not in 0..{MAX_LEVEL}")
        if not 1 <= self.width <= TILE_WIDTH:
            raise TlogFormatError("tile", f"width {self.width} is not in 1..{TILE_WIDTH}")
        if self.index < 0 or self.start > MAX_TREE_SIZE:
            raise TlogFormatError("tile", f"index {self.index} is out of range")

    @property
    def is_entries(self) -> bool:
        return self.level is None

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def hash_level(self) -> int:
        """The Merkle level (in leaves, ``2**hash_level`` per hash) of the hashes it holds."""
        return TILE_HEIGHT * (self.level or 0)

    @property
    def start(self) -> int:
        """First leaf index covered: ``N · 256**(L+1)``."""
        return self.index << (TILE_HEIGHT * ((self.level or 0) + 1))

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The Merkle nodes whose hashes the tile holds, in order (for entries: the leaves)."""
        first = self.index * TILE_WIDTH
        return tuple(Node(self.hash_level, first + i) for i in range(self.width))

    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
        head = "tile/entries" if self.level is None else f"tile/{self.level}"
        tail = "" if self.width == TILE_WIDTH else f".p/{self.width}"
        return f"{head}/{encode_index(self.index)}{tail}"


def encode_index(index: int) -> str:
    """1234067 → ``x001/x234/067``; 5 → ``005``."""
    if index < 0:
        raise ValueError(f"tile index must be >= 0, got {index}")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if not index:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> Tile:
    """Parse a tile or entry-bundle path (without the log prefix); only canonical paths pass."""
    what = "tile path"
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TlogFormatError(what, f"{path!r} is not tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    level_text, rest = parts[1], parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not _DECIMAL.fullmatch(width_text) or not 1 <= int(width_text) < TILE_WIDTH:
            raise TlogFormatError(what, f"partial width {width_text!r} is not a decimal in 1..255")
        width = int(width_text)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or len(rest) > 7:
        raise TlogFormatError(what, f"{path!r} has no valid index")
    if any(not _ELEMENT.fullmatch(e) for e in rest) or any(e.startswith("x") for e in rest[-1:]) \
            or any(not e.startswith("x") for e in rest[:-1]):
        raise TlogFormatError(what, "index elements are 3 digits, all but the last prefixed with 'x'")
    index = int("".join(e.lstrip("x") for e in rest))
    if level_text == "entries":
        level = None
    elif _DECIMAL.fullmatch(level_text) and int(level_text) <= MAX_LEVEL:
        level = int(level_text)
    else:
        raise TlogFormatError(what, f"level {level_text!r} is not 'entries' or a decimal in 0..{MAX_LEVEL}")
    tile = Tile(level, index, width)
    if tile.path() != path:  # e.g. x000/005: an index with a leading zero element
        raise TlogFormatError(what, f"{path!r} is not canonical; it is written {tile.path()!r}")
    return tile


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile (full and partial) of a tree of ``size`` leaves, level 0 first."""
    tiles: list[Tile] = []
    level = 0
    count = size  # hashes at this tile level
    while count:
        full, rest = divmod(count, TILE_WIDTH)
        tiles.extend(Tile(level, n) for n in range(full))
        if rest:
            tiles.append(Tile(level, full, rest))
        count = full
        level += 1
    return tiles


def tile_for_size(tile: Tile, size: int) -> Tile:
    """Check that ``tile`` exists in a tree of ``size`` leaves (a full tile, or the partial tile of
    exactly that width); raise :class:`ProofRequestError` otherwise."""
    available = size >> tile.hash_level  # hashes of this tile level in the tree
    width = min(TILE_WIDTH, available - tile.index * TILE_WIDTH)
    if width <= 0 or tile.width > width or (tile.is_partial and tile.width != width):
        raise ProofRequestError(f"{tile.path()} is not a tile of a tree of size {size}")
    return tile


def tile_bytes(reader: HashReader, tile: Tile, *, size: int) -> bytes:
    """The tile's content, ``width × 32`` bytes, read from ``reader`` for a tree of ``size``."""
    if tile.is_entries:
        raise ValueError("entry bundles hold entries, not hashes; use encode_entry_bundle")
    tile_for_size(tile, size)
    hashes = list(reader.read_hashes(tile.nodes))
    if len(hashes) != tile.width or any(len(h) != HASH_SIZE for h in hashes):
        raise ProofRequestError(f"hash reader returned a malformed tile for {tile.path()}")
    return b"".join(hashes)


class TileInterior:
    """The nodes inside one tile: ``row(r)`` is the concatenated hashes of its complete subtrees
    ``r`` levels above the tile's own hashes (``row(0)`` is the tile; a partial tile of width
    ``w`` has ``w >> r`` of them). Every row is folded at construction, each hash once (at most
    255 SHA-256 per tile; a proof needs 247 of them from a level-0 tile anyway), so the interior
    never changes afterwards: threads share one without a lock.
    """

    __slots__ = ("rows",)

    def __init__(self, tile: Tile, data: bytes) -> None:
        if len(data) != tile.width * HASH_SIZE:
            raise TlogFormatError("tile", f"{tile.path()} has {len(data)} bytes, expected {tile.width * HASH_SIZE}")
        rows = [data]
        below = data
        while len(below) >= 2 * HASH_SIZE:
            hashes = []
            for i in range(0, len(below) - 2 * HASH_SIZE + 1, 2 * HASH_SIZE):
                # A copy of a hash already fed the node prefix: cheaper than a new sha256
                # object (OpenSSL 3 looks the algorithm up for each one).
                h = _NODE_STATE.copy()
                h.update(below[i:i + 2 * HASH_SIZE])
                hashes.append(h.digest())
            below = b"".join(hashes)
            rows.append(below)
        self.rows = tuple(rows)  # row(r) for r < len(rows)

    def row(self, rise: int) -> bytes:
        rows = self.rows
        return rows[rise] if rise < len(rows) else b""

    def node(self, rise: int, position: int) -> bytes:
        """The hash of the ``position``-th subtree of ``row(rise)``."""
        return self.row(rise)[position * HASH_SIZE:(position + 1) * HASH_SIZE]


TileKey = tuple[int, int, int]  # (tile level, index, width): a Tile's identity without its checks
Lookup = tuple[TileKey, int, int]  # a node's tile, its rise in it, its byte offset in that row


def range_lookups(ranges: Sequence[tuple[int, int]], size: int) -> tuple[list[Lookup], list[int]]:
    """Where the complete subtrees of each proof range (:func:`~audit.tlog.merkle.inclusion_ranges`,
    :func:`~audit.tlog.merkle.consistency_ranges`, ``(0, size)`` for the root) are in the tiles of
    a tree of ``size`` leaves, all ranges' in one list, and how many each range has. Integers and
    tuples only (no :class:`Node` or :class:`Tile` per node): the proof endpoints' path."""
    lookups: list[Lookup] = []
    counts = []
    for start, end in ranges:
        width = end - start
        if not 0 <= start < end <= size or start % (1 << (width - 1).bit_length()):
            raise ProofRequestError(f"leaves [{start}, {end}) are not a proof range of a tree of size {size}")
        if width & (width - 1):  # a right edge: several subtrees, the same for every proof at this size
            found = _edge_lookups(start, end, size)
            lookups += found
            counts.append(len(found))
        else:  # most ranges of a proof: one complete subtree, a power of two wide
            lookups.append(_lookup(width.bit_length() - 1, start, size))
            counts.append(1)
    return lookups, counts


def _lookup(level: int, leaf: int, size: int) -> Lookup:
    """Where the complete subtree of ``2**level`` leaves from ``leaf`` is in the tiles of the tree."""
    tile_level, rise = level // TILE_HEIGHT, level % TILE_HEIGHT
    shift = TILE_HEIGHT * tile_level
    first = leaf >> shift  # the subtree's first hash at its tile level
    index = first >> TILE_HEIGHT
    width = min(TILE_WIDTH, (size >> shift) - (index << TILE_HEIGHT))
    return (tile_level, index, width), rise, ((first & (TILE_WIDTH - 1)) >> rise) * HASH_SIZE


@functools.lru_cache(maxsize=1024)
def _edge_lookups(start: int, end: int, size: int) -> tuple[Lookup, ...]:
    """:func:`_lookup` of each subtree of a range at the right edge (the root's, the path's)."""
    return tuple(_lookup(level, leaf, size) for level, leaf in range_subtrees(start, end))


def fold_lookups(lookups: Sequence[Lookup], counts: Sequence[int], interiors: Mapping[TileKey, TileInterior]
                 ) -> list[bytes]:
    """Each range's hash (the right fold of its subtrees) from the folded tiles holding them."""
    hashes = [interiors[key].rows[rise][at:at + HASH_SIZE] for key, rise, at in lookups]
    out = []
    end = 0
    for count in counts:
        end += count
        acc = hashes[end - 1]
        for i in range(end - 2, end - count - 1, -1):  # none for a range of one subtree
            h = _NODE_STATE.copy()
            h.update(hashes[i])
            h.update(acc)
            acc = h.digest()
        out.append(acc)
    return out


class TileHashReader:
    """A :class:`~audit.tlog.merkle.HashReader` over tiles of a tree of ``size`` leaves.

    ``fetch(tile)`` returns a tile's bytes (from a database, files, or HTTP). Each tile is
    fetched and folded once per :meth:`read_hashes` call (:class:`TileInterior`); nodes between
    tile levels are looked up in the fold of the tile below. ``interiors``: where to keep the
    folded tiles across calls (a reader of immutable tiles may share them), keyed by tile.
    """

    def __init__(self, fetch: Callable[[Tile], bytes], *, size: int,
                 interiors: MutableMapping[Tile, TileInterior] | None = None) -> None:
        self._fetch = fetch
        self._size = size
        self._interiors = interiors

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        size = self._size
        tiles: dict[tuple[int, int], TileInterior] = {}  # (tile level, index): one width at this size
        kept = self._interiors
        out = []
        for node in nodes:
            level, index = node.level, node.index
            if level < 0 or (index + 1) << level > size:
                raise ProofRequestError(f"node ({level}, {index}) is not complete in a tree of size {size}")
            tile_level, rise = divmod(level, TILE_HEIGHT)
            first = index << rise  # as tile_of, without a Tile per node
            interior = tiles.get((tile_level, first // TILE_WIDTH))
            if interior is None:
                tile = tile_of(node, size)
                interior = kept.get(tile) if kept is not None else None
                if interior is None:
                    interior = TileInterior(tile, self._fetch(tile))
                    if kept is not None:
                        kept[tile] = interior
                tiles[tile_level, tile.index] = interior
            at = ((first % TILE_WIDTH) >> rise) * HASH_SIZE
            out.append(interior.row(rise)[at:at + HASH_SIZE])
        return out


def tiles_of(nodes: Iterable[Node], size: int) -> list[Tile]:
    """The distinct tiles holding ``nodes`` (:func:`tile_of` of each), in order of first use."""
    found: dict[tuple[int, int], Tile] = {}
    for node in nodes:
        tile_level, rise = divmod(node.level, TILE_HEIGHT)
        if (tile_level, (node.index << rise) // TILE_WIDTH) not in found:  # a Tile per tile, not per node
            tile = tile_of(node, size)
            found[tile_level, tile.index] = tile
    return list(found.values())


def tile_of(node: Node, size: int) -> Tile:
    """The tile (full or partial, in a tree of ``size`` leaves) holding ``node`` or the hashes
    it is folded from."""
    tile_level, rise = divmod(node.level, TILE_HEIGHT)
    first = node.index << rise  # first hash of this node in its tile level
    tile_index = first // TILE_WIDTH
    width = min(TILE_WIDTH, (size >> (TILE_HEIGHT * tile_level)) - tile_index * TILE_WIDTH)
    return Tile(tile_level, tile_index, width)


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes."""
    out = bytearray()
    for number, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_BYTES:
            raise ValueError(f"entry {number} is {len(entry)} bytes; a bundle entry is at most "
                             f"{MAX_ENTRY_BYTES}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; :class:`TlogFormatError` if it is truncated."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TlogFormatError("entry bundle", f"truncated length prefix at byte {pos}")
        length = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + length > len(data):
            raise TlogFormatError("entry bundle",
                                  f"entry {len(entries)} needs {length} bytes, {len(data) - pos} remain")
        entries.append(data[pos:pos + length])
        pos += length
    return entries
