"""The RFC 6962 / RFC 9162 Merkle tree: hashing, proofs from stored subtrees, verification.

Hashing (RFC 9162 §2.1.1)::

    leaf_hash(data)   = SHA-256(0x00 ‖ data)
    node_hash(l, r)   = SHA-256(0x01 ‖ l ‖ r)
    MTH({})           = SHA-256("")
    MTH(D[0:n])       = node_hash(MTH(D[0:k]), MTH(D[k:n]))   k = largest power of two < n

Storage sees only **complete subtrees**: :class:`Node` ``(level, index)`` is the subtree of the
``2**level`` leaves starting at ``index * 2**level``. Every hash a root or a proof needs is a
fold of at most ``2·log2(n)`` of them, so a store answers any proof with one batched read of
O(log n) hashes (:class:`HashReader`). Generation is split in two, so an async or SQL caller
can do the read itself: a *plan* names the nodes to read, ``plan.assemble(hashes)`` folds them.

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step;
a failure raises an error naming the check, with expected and found values.

:class:`Frontier` (a compact range) is the right edge of the tree — the roots of its maximal
complete subtrees — enough to append leaves and compute every new root in O(log n) without
reading the tree. It serialises to bytes so a writer can keep it in its head row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import ConsistencyProofError, InclusionProofError, ProofRequestError, TlogFormatError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_TREE_SIZE = 2**63 - 1  # checkpoints and tile indexes use 64-bit sizes

_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "HashReader",
    "MemoryTree",
    "Node",
    "ProofPlan",
    "consistency_plan",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_plan",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "range_subtrees",
    "read_plan",
    "root_from_inclusion_proof",
    "root_hash",
    "root_plan",
    "verify_consistency",
    "verify_inclusion",
]


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``: the hash of one leaf."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``: the hash of an interior node."""
    return _sha256(_NODE + left + right).digest()


@dataclass(frozen=True, slots=True)
class Node:
    """The complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``."""

    level: int
    index: int

    @property
    def start(self) -> int:
        """Index of its first leaf."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """Index one past its last leaf."""
        return (self.index + 1) << self.level


class HashReader(Protocol):
    """Where proofs read hashes from: a database table of nodes, tiles, an export, memory.

    ``read_hashes(nodes)`` returns the 32-byte hash of each complete subtree in ``nodes``, in the
    same order, in one round trip if it can. Proof generation calls it once per proof with at
    most ``2·log2(size)`` nodes, each with ``node.end <= size``.
    """

    def read_hashes(self, nodes: Sequence[Node]) -> Sequence[bytes]: ...


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """Which complete subtrees a root or proof needs, and how to fold them.

    ``parts[i]`` lists the complete subtrees (left to right) whose right fold is element ``i``
    of the result: ``fold([a, b, c]) = node_hash(a, node_hash(b, c))``.
    """

    parts: tuple[tuple[Node, ...], ...]

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node to read, each once, in order of first use."""
        return tuple(dict.fromkeys(node for part in self.parts for node in part))

    def assemble(self, hashes: Mapping[Node, bytes]) -> list[bytes]:
        """The proof (or ``[root]``) from the hashes of :attr:`nodes`."""
        out = []
        for part in self.parts:
            acc = hashes[part[-1]]
            for node in reversed(part[:-1]):
                acc = node_hash(hashes[node], acc)
            out.append(acc)
        return out


def read_plan(reader: HashReader, plan: ProofPlan) -> list[bytes]:
    """Read ``plan.nodes`` through ``reader`` (one call) and assemble the result."""
    nodes = plan.nodes
    if not nodes:
        return []
    hashes = list(reader.read_hashes(nodes))
    if len(hashes) != len(nodes):
        raise ProofRequestError(f"hash reader returned {len(hashes)} hashes for {len(nodes)} nodes")
    for node, value in zip(nodes, hashes, strict=True):
        if len(value) != HASH_SIZE:
            raise ProofRequestError(f"hash reader returned {len(value)} bytes for node ({node.level}, {node.index})")
    return plan.assemble(dict(zip(nodes, hashes, strict=True)))


def _subtrees(start: int, end: int) -> tuple[Node, ...]:
    """The complete subtrees, largest first, whose right fold is ``MTH(D[start:end])``.

    Only for the ranges RFC 9162 proofs use, whose start is aligned to the range's size rounded
    up to a power of two; then the pieces follow the binary digits of ``end - start``.
    """
    width = end - start
    if width <= 0 or start % (1 << (width - 1).bit_length()):
        raise AssertionError(f"range [{start}, {end}) is not a proof range")
    return tuple(Node(level, first >> level) for level, first in range_subtrees(start, end))


def range_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """``(level, first leaf)`` of each complete subtree of a proof range, largest first (as
    :func:`_subtrees`, unchecked and without a :class:`Node` each: the proof endpoints' path)."""
    width = end - start
    out = []
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            out.append((level, start))
            start += 1 << level
    return out


def _split(width: int) -> int:
    """The largest power of two smaller than ``width`` (``width >= 2``)."""
    return 1 << ((width - 1).bit_length() - 1)


def _check_size(size: int, name: str = "size") -> None:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise ProofRequestError(f"{name} must be an integer in [0, 2**63 - 1], got {size!r}")


def root_plan(size: int) -> ProofPlan:
    """Plan for ``MTH(D[0:size])`` (``size >= 1``; the empty tree's root is :data:`EMPTY_ROOT`)."""
    _check_size(size)
    if size == 0:
        raise ProofRequestError("the empty tree has no nodes; its root is EMPTY_ROOT")
    return ProofPlan((_subtrees(0, size),))


def root_hash(reader: HashReader, size: int) -> bytes:
    """The root of the first ``size`` leaves, from at most ``log2(size) + 1`` stored subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return read_plan(reader, root_plan(size))[0]


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Plan for the inclusion proof of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1)."""
    return ProofPlan(tuple(_subtrees(a, b) for a, b in inclusion_ranges(index, size)))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose hashes are the inclusion proof of leaf ``index``
    in the tree of ``size`` leaves, bottom to top (each a fold of :func:`range_subtrees`)."""
    _check_size(size)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise ProofRequestError(f"leaf index {index!r} is not in a tree of size {size}")
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def inclusion_proof(reader: HashReader, *, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, bottom to top."""
    return read_plan(reader, inclusion_plan(index, size))


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan for the consistency proof from ``old_size`` to ``new_size`` (RFC 9162 §2.1.4.1).

    Empty when ``old_size`` is 0 (the empty tree is a prefix of every tree) or equals ``new_size``.
    """
    return ProofPlan(tuple(_subtrees(a, b) for a, b in consistency_ranges(old_size, new_size)))


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are the consistency proof from ``old_size`` to ``new_size``,
    in proof order (as :func:`inclusion_ranges`)."""
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if old_size > new_size:
        raise ProofRequestError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    ranges = []
    lo, hi, whole = 0, new_size, True  # whole: still on the old tree's own root path
    while old_size != hi:
        k = _split(hi - lo)
        if old_size <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole:
        ranges.append((lo, hi))  # the old tree's subtree the verifier cannot rebuild otherwise
    ranges.reverse()
    return ranges


def consistency_proof(reader: HashReader, *, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof between the trees of ``old_size`` and ``new_size`` leaves."""
    return read_plan(reader, consistency_plan(old_size, new_size))


def _check_hash(value: object, what: str, error: type[InclusionProofError] | type[ConsistencyProofError]) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        found = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise error(f"{what} is a {HASH_SIZE}-byte hash", expected=f"{HASH_SIZE} bytes", found=found)


def root_from_inclusion_proof(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` folds ``leaf_hash`` at ``index`` into (RFC 9162 §2.1.3.2 steps 1–4)."""
    err = InclusionProofError
    if not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        raise err("tree size is in [0, 2**63 - 1]", found=size)
    # (1) leaf_index < tree_size
    if not isinstance(index, int) or not 0 <= index < size:
        raise err("leaf index < tree size", expected=f"< {size}", found=index)
    _check_hash(leaf_hash, "leaf hash", err)
    for position, value in enumerate(proof):
        _check_hash(value, f"proof element {position}", err)
    # The RFC's loop rejects a proof of the wrong length; checking first names the problem.
    expected_length = len(inclusion_ranges(index, size))
    if len(proof) != expected_length:
        raise err("inclusion proof length", expected=expected_length, found=len(proof))
    # (2) fn = leaf_index, sn = tree_size - 1; (3) r = hash
    fn, sn, r = index, size - 1, leaf_hash
    # (4) fold each proof element
    for p in proof:
        if sn == 0:  # (4a)
            raise err("proof is longer than the path to the root (sn reached 0)")
        if fn & 1 or fn == sn:  # (4b)
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # (4c)
        sn >>= 1
    # (5, first half) sn must be 0
    if sn != 0:
        raise err("proof reaches the root (sn = 0 after the last element)", expected=0, found=sn)
    return r


def verify_inclusion(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`InclusionProofError` unless ``proof`` proves the leaf is at ``index`` in ``root``."""
    _check_hash(root, "root hash", InclusionProofError)
    computed = root_from_inclusion_proof(leaf_hash=leaf_hash, index=index, size=size, proof=proof)
    # (5) r equals root_hash
    if computed != root:
        raise InclusionProofError("root computed from the inclusion proof", expected=root, found=computed)


def verify_consistency(*, old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise :class:`ConsistencyProofError` unless the old tree is a prefix of the new one.

    RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. Also defined: equal sizes (empty proof,
    equal roots) and ``old_size == 0`` (empty proof, ``old_root`` is the empty tree's root), as
    the C2SP tlog-witness protocol needs.
    """
    err = ConsistencyProofError
    for size, name in ((old_size, "old size"), (new_size, "new size")):
        if not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
            raise err(f"{name} is in [0, 2**63 - 1]", found=size)
    _check_hash(old_root, "old root", err)
    _check_hash(new_root, "new root", err)
    for position, value in enumerate(proof):
        _check_hash(value, f"proof element {position}", err)
    if old_size > new_size:
        raise err("old size <= new size", expected=f"<= {new_size}", found=old_size)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise err("proof is empty when the old tree is empty or the sizes are equal",
                      expected=0, found=len(proof))
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise err("root of the empty tree", expected=EMPTY_ROOT, found=old_root)
        if old_size == new_size and old_root != new_root:
            raise err("equal sizes have equal roots", expected=old_root, found=new_root)
        return
    expected_length = _consistency_length(old_size, new_size)
    if len(proof) != expected_length:
        raise err("consistency proof length", expected=expected_length, found=len(proof))
    path = list(proof)
    # (1) the path is not empty: implied by the length check (every 0 < m < n needs one hash).
    # (2) if first is an exact power of 2, prepend first_hash
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # (3) fn = first - 1, sn = second - 1
    fn, sn = old_size - 1, new_size - 1
    # (4) shift while LSB(fn) is set
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # (5) fr = sr = first path element
    fr = sr = path[0]
    # (6) fold the remaining elements
    for c in path[1:]:
        if sn == 0:  # (6a)
            raise err("proof is longer than the path to the new root (sn reached 0)")
        if fn & 1 or fn == sn:  # (6b)
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # (6c)
        sn >>= 1
    # (7) fr == first_hash, sr == second_hash, sn == 0
    if sn != 0:
        raise err("proof reaches the new root (sn = 0 after the last element)", expected=0, found=sn)
    if fr != old_root:
        raise err("old root computed from the consistency proof", expected=old_root, found=fr)
    if sr != new_root:
        raise err("new root computed from the consistency proof", expected=new_root, found=sr)


def _consistency_length(old_size: int, new_size: int) -> int:
    return len(consistency_ranges(old_size, new_size))


class MemoryTree:
    """A whole tree in memory: a :class:`HashReader` for tests, packs and small logs.

    Keeps every complete subtree's hash (about two hashes per leaf).
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes) at the right edge."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
        levels = self._levels
        levels[0].append(leaf)
        level = 0
        while len(levels[level]) % 2 == 0:
            row = levels[level]
            if level + 1 == len(levels):
                levels.append([])
            levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf in leaf_hashes:
            self.append(leaf)

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        out = []
        for node in nodes:
            level, index = node.level, node.index
            if level >= len(self._levels) or not 0 <= index < len(self._levels[level]):
                raise ProofRequestError(f"node ({level}, {index}) is not a complete subtree of a tree "
                                        f"of size {self.size}")
            out.append(self._levels[level][index])
        return out

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self, self.size if size is None else size)

    def frontier(self) -> Frontier:
        """The compact range of the whole tree."""
        return Frontier.from_reader(self, self.size)


@dataclass(frozen=True, slots=True)
class Frontier:
    """The right edge of a tree of ``size`` leaves: one hash per set bit of ``size``.

    ``hashes[i]`` is the root of the ``i``-th maximal complete subtree from the left (sizes
    follow the binary digits of ``size``, largest first). Immutable: :meth:`extend` returns
    a new frontier.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise TlogFormatError("frontier", f"size {self.size} is out of range")
        if len(self.hashes) != self.size.bit_count():
            raise TlogFormatError("frontier", f"a tree of size {self.size} has {self.size.bit_count()} "
                                  f"edge hashes, got {len(self.hashes)}")
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise TlogFormatError("frontier", f"edge hashes are {HASH_SIZE} bytes")

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The complete subtrees whose hashes :attr:`hashes` holds, left to right."""
        return _edge_nodes(self.size)

    def root(self) -> bytes:
        """``MTH`` of the whole tree."""
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for value in reversed(self.hashes[:-1]):
            acc = node_hash(value, acc)
        return acc

    def extend(self, leaf_hashes: Iterable[bytes]) -> Frontier:
        """The frontier after appending ``leaf_hashes``."""
        return self.grow(leaf_hashes, nodes=None)

    def grow(self, leaf_hashes: Iterable[bytes], *, nodes: list[tuple[Node, bytes]] | None) -> Frontier:
        """Like :meth:`extend`; also appends to ``nodes`` every complete subtree the new leaves
        complete (the leaves themselves included), so a writer can store them (or their tiles)."""
        size = self.size
        edge = list(self.hashes)
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
            acc = leaf
            if nodes is not None:
                nodes.append((Node(0, size), acc))
            level = 0
            while size >> level & 1:
                acc = node_hash(edge.pop(), acc)
                level += 1
                if nodes is not None:
                    nodes.append((Node(level, size >> level), acc))
            edge.append(acc)
            size += 1
        if size > MAX_TREE_SIZE:
            raise ProofRequestError("tree size would exceed 2**63 - 1")
        return Frontier(size, tuple(edge))

    def fold(self, leaf_hashes: Sequence[bytes], *, keep: Container[int] = ()) -> tuple[Frontier, dict[int, tuple[int, list[bytes]]]]:
        """Like :meth:`extend`, one level at a time: each level's new complete subtrees are
        hashed in one pass over the level below (about ``len(leaf_hashes)`` SHA-256 calls in
        all, no per-leaf Python loop), the fast path of verification.

        Also returns, for every level in ``keep`` that got new complete subtrees, ``(index of
        the first, their hashes)``: the same nodes :meth:`grow` reports at those levels.
        """
        if any(len(h) != HASH_SIZE for h in leaf_hashes):
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        start, end = self.size, self.size + len(leaf_hashes)
        if end > MAX_TREE_SIZE:
            raise ProofRequestError("tree size would exceed 2**63 - 1")
        # The old edge by level: hashes[0] is the highest set bit of the size.
        old = dict(zip([lv for lv in range(start.bit_length() - 1, -1, -1) if start >> lv & 1], self.hashes,
                       strict=True))
        edge: dict[int, bytes] = {}
        kept: dict[int, tuple[int, list[bytes]]] = {}
        row = list(leaf_hashes)  # the new complete subtrees of this level: indices lo..hi-1
        level = 0
        sha256 = _sha256
        while True:
            lo, hi = start >> level, end >> level
            if row and level in keep:
                kept[level] = (lo, row)
            if hi & 1:  # the new frontier holds (level, hi - 1): new, or the old one unchanged
                edge[level] = row[-1] if row else old[level]
            pairs = (hi >> 1) - (lo >> 1)  # new subtrees one level up
            if not pairs:
                break  # nothing new above: every higher frontier hash is the old one
            if lo & 1:  # the first new node's left sibling is the old frontier's hash
                row = [old[level], *row]
            row = [sha256(_NODE + a + b).digest() for a, b in zip(row[0:2 * pairs:2], row[1:2 * pairs:2])]
            level += 1
        for higher, value in old.items():
            if higher > level:
                edge[higher] = value
        return Frontier(end, tuple(edge[lv] for lv in sorted(edge, reverse=True))), kept

    @classmethod
    def from_reader(cls, reader: HashReader, size: int) -> Frontier:
        """The frontier of the first ``size`` leaves of a stored tree (one read of ≤ 64 hashes)."""
        _check_size(size)
        nodes = _edge_nodes(size)
        hashes = list(reader.read_hashes(nodes)) if nodes else []
        return cls(size, tuple(hashes))

    def to_bytes(self) -> bytes:
        """``size`` as 8 bytes big-endian, then the edge hashes: ``8 + 32·popcount(size)`` bytes."""
        return self.size.to_bytes(8, "big") + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes`; :class:`TlogFormatError` on any other length."""
        if len(data) < 8:
            raise TlogFormatError("frontier", f"{len(data)} bytes is shorter than its 8-byte size")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if size > MAX_TREE_SIZE or len(body) != HASH_SIZE * size.bit_count():
            raise TlogFormatError("frontier", f"size {size} needs {HASH_SIZE * size.bit_count()} bytes of "
                                  f"hashes, got {len(body)}")
        return cls(size, tuple(body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)))


def _edge_nodes(size: int) -> tuple[Node, ...]:
    return tuple(Node(level, (size >> level) - 1)
                 for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1)
