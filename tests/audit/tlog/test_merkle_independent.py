"""Our Merkle tree checked against work the project did not write.

1. The language-independent proof vectors published with github.com/transparency-dev/merkle
   (``testdata/inclusion``, ``testdata/consistency``; Apache-2.0), kept verbatim in
   ``vectors/transparency_dev_merkle.json`` with the commit they come from: every vector's
   verdict must be ours, and the happy-path proofs must be what we generate.
2. pymerkle (PyPI, test dependency only), whose hashing is first checked to be RFC 6962's:
   its roots must be ours, its inclusion paths ours, and its proofs must pass our verifier.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pymerkle
import pytest

from audit.tlog.errors import TlogError
from audit.tlog.merkle import (
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "transparency_dev_merkle.json").read_text())

# Where our verdict deliberately differs, and why.
DEVIATIONS = {
    # Equal sizes, empty proof, equal 12-byte "roots": transparency-dev compares the bytes and
    # accepts; we refuse any root that is not a 32-byte SHA-256 hash before comparing.
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": True,
}

# The eight leaves of the RFC 6962 reference tests (certificate-transparency's C++ tests),
# which the transparency-dev vectors use.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _verdict(call: Any) -> bool:
    """True when our verifier raised."""
    try:
        call()
    except TlogError:
        return True
    return False


@pytest.mark.parametrize("name", sorted(VECTORS["inclusion"]))
def test_inclusion_vectors(name: str) -> None:
    case = VECTORS["inclusion"][name]
    proof = [_b64(p) for p in case["proof"] or []]
    failed = _verdict(lambda: verify_inclusion(leaf_hash=_b64(case["leafHash"]), index=case["leafIdx"],
                                               size=case["treeSize"], proof=proof, root=_b64(case["root"])))
    assert failed == DEVIATIONS.get(name, case["wantErr"]), case["desc"]


@pytest.mark.parametrize("name", sorted(VECTORS["consistency"]))
def test_consistency_vectors(name: str) -> None:
    case = VECTORS["consistency"][name]
    proof = [_b64(p) for p in case["proof"] or []]
    failed = _verdict(lambda: verify_consistency(old_size=case["size1"], new_size=case["size2"],
                                                 old_root=_b64(case["root1"]), new_root=_b64(case["root2"]),
                                                 proof=proof))
    assert failed == DEVIATIONS.get(name, case["wantErr"]), case["desc"]


def test_happy_path_vectors_are_the_proofs_we_generate() -> None:
    tree = MemoryTree(leaf_hash(d) for d in CT_LEAVES)
    checked = 0
    for name, case in VECTORS["inclusion"].items():
        if name.endswith("/happy-path.json") and case["treeSize"] <= len(CT_LEAVES) \
                and _b64(case["leafHash"]) == leaf_hash(CT_LEAVES[case["leafIdx"]]):
            assert inclusion_proof(tree, index=case["leafIdx"], size=case["treeSize"]) == \
                [_b64(p) for p in case["proof"] or []]
            assert root_hash(tree, case["treeSize"]) == _b64(case["root"])
            checked += 1
    for name, case in VECTORS["consistency"].items():
        if name.endswith("/happy-path.json") and 0 < case["size1"] < case["size2"] <= len(CT_LEAVES):
            assert consistency_proof(tree, old_size=case["size1"], new_size=case["size2"]) == \
                [_b64(p) for p in case["proof"]]
            assert root_hash(tree, case["size1"]) == _b64(case["root1"])
            checked += 1
    assert checked >= 5


def _pymerkle_tree(data: list[bytes]) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")  # security mode (0x00 / 0x01 prefixes) is the default
    for item in data:
        tree.append_entry(item)
    return tree


def test_pymerkle_hashes_as_rfc_6962() -> None:
    # Before relying on it: its leaf is SHA-256(0x00 ‖ data) and its 8-leaf root is the one the
    # RFC 6962 reference tests publish (5dc9da79…).
    tree = _pymerkle_tree(CT_LEAVES)
    assert tree.get_leaf(1) == leaf_hash(b"")
    assert tree.get_root(8).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_roots_and_inclusion_proofs_agree_with_pymerkle() -> None:
    rng = random.Random(6962)
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(300)]
    theirs = _pymerkle_tree(data)
    ours = MemoryTree(leaf_hash(d) for d in data)
    sizes = [*range(1, 40), 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 299, 300]
    for size in sizes:
        root = theirs.get_root(size)
        assert root_hash(ours, size) == root
        for index in sorted({0, 1, size // 2, size - 2, size - 1, rng.randrange(size)} & set(range(size))):
            their_proof = theirs.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
            # pymerkle's path starts with the leaf itself, then the RFC 9162 audit path.
            assert their_proof.path[0] == leaf_hash(data[index])
            assert inclusion_proof(ours, index=index, size=size) == their_proof.path[1:]
            verify_inclusion(leaf_hash=leaf_hash(data[index]), index=index, size=size,
                             proof=their_proof.path[1:], root=root)
            pymerkle.verify_inclusion(leaf_hash(data[index]), root, their_proof)


def test_consistency_proofs_link_pymerkle_roots() -> None:
    # pymerkle's consistency proofs use their own layout, so we check that ours tie together
    # the roots pymerkle computes, and that pymerkle agrees those trees are consistent.
    rng = random.Random(9162)
    data = [rng.randbytes(16) for _ in range(260)]
    theirs = _pymerkle_tree(data)
    ours = MemoryTree(leaf_hash(d) for d in data)
    for _ in range(300):
        new = rng.randrange(2, 261)
        old = rng.randrange(1, new)
        proof = consistency_proof(ours, old_size=old, new_size=new)
        verify_consistency(old_size=old, new_size=new, old_root=theirs.get_root(old),
                           new_root=theirs.get_root(new), proof=proof)
        pymerkle.verify_consistency(theirs.get_root(old), theirs.get_root(new), theirs.prove_consistency(old, new))
        with pytest.raises(TlogError):
            verify_consistency(old_size=old, new_size=new, old_root=theirs.get_root(old),
                               new_root=theirs.get_root(new - 1) if new - 1 > old else leaf_hash(b"x"), proof=proof)
