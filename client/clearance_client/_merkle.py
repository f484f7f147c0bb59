"""RFC 6962 / RFC 9162 Merkle tree hashing and inclusion-proof verification."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class ProofError(ValueError):
    """The proof cannot belong to a tree of that size at that index (wrong length or index)."""


def root_from_inclusion_proof(*, leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold an inclusion proof into the root it implies (RFC 9162 §2.1.3.2).

    Raises ProofError when the index is outside the tree or the proof has the wrong length for
    that index and size; a proof of the right shape with wrong hashes yields a different root,
    which the caller compares.
    """
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of {tree_size} leaves")
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"the proof has more hashes ({len(proof)}) than a tree of {tree_size} "
                             f"leaves needs at index {leaf_index}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # Right-most node of a level with no right sibling: climb until it is a right child.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof has too few hashes ({len(proof)}) for a tree of {tree_size} "
                         f"leaves at index {leaf_index}")
    return r
