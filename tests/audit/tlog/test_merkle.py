"""The Merkle tree: hashing, proof generation from stored subtrees, verification, frontier."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from audit.tlog.errors import ConsistencyProofError, InclusionProofError, ProofRequestError, TlogFormatError
from audit.tlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    Node,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    root_plan,
    verify_consistency,
    verify_inclusion,
)

from . import reference
from .conftest import leaf_data


def test_leaf_and_node_hashes_are_domain_separated_sha256() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = bytes(32), bytes([1]) * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_roots_proofs_match_the_rfc_recursion_for_every_small_tree() -> None:
    data = [leaf_data(i) for i in range(70)]
    tree = MemoryTree(leaf_hash(d) for d in data)
    for size in range(1, 71):
        prefix = data[:size]
        assert root_hash(tree, size) == reference.mth(prefix)
        for index in range(size):
            assert inclusion_proof(tree, index=index, size=size) == reference.path(index, prefix)
        for old in range(1, size):
            assert consistency_proof(tree, old_size=old, new_size=size) == reference.proof(old, prefix)


def test_empty_tree_root_and_trivial_consistency() -> None:
    tree = MemoryTree()
    assert root_hash(tree, 0) == EMPTY_ROOT
    assert consistency_plan(0, 5).parts == ()
    assert consistency_plan(5, 5).parts == ()


class CountingReader:
    """Counts round trips and hashes read: the O(log n) claim, checked."""

    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.calls = 0
        self.hashes = 0

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        self.calls += 1
        self.hashes += len(nodes)
        for node in nodes:  # only complete subtrees are ever asked for
            assert node.end <= self.tree.size
        return self.tree.read_hashes(nodes)


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 1000, 4095, 4096])
def test_a_proof_is_one_read_of_at_most_two_log2_n_subtrees(big_tree: MemoryTree, size: int) -> None:
    bound = 2 * max(1, size.bit_length())
    for index in {0, size // 3, size - 1}:
        reader = CountingReader(big_tree)
        inclusion_proof(reader, index=index, size=size)
        assert reader.calls <= 1 and reader.hashes <= bound
    for old in {1, size // 2, size - 1} - {0}:
        reader = CountingReader(big_tree)
        consistency_proof(reader, old_size=old, new_size=size)
        assert reader.calls <= 1 and reader.hashes <= bound
    assert len(root_plan(size).nodes) == size.bit_count()


def test_plans_name_nodes_for_positions_far_beyond_memory() -> None:
    size = 10**12 + 12345
    plan = inclusion_plan(size - 1, size)
    assert len(plan.nodes) <= 2 * size.bit_length()
    assert all(node.end <= size for node in plan.nodes)
    assert all(node.end <= size for node in consistency_plan(10**12, size).nodes)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0), (True, 3), (0, 2**63)])
def test_inclusion_proof_for_positions_the_tree_lacks_is_refused(index: int, size: int) -> None:
    with pytest.raises(ProofRequestError):
        inclusion_plan(index, size)


def test_consistency_proof_from_a_larger_tree_is_refused() -> None:
    with pytest.raises(ProofRequestError, match="larger"):
        consistency_plan(6, 5)


def test_a_reader_that_answers_wrongly_is_caught(big_tree: MemoryTree) -> None:
    class Short:
        def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
            return big_tree.read_hashes(nodes)[:-1]

    class Truncated:
        def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
            return [h[:31] for h in big_tree.read_hashes(nodes)]

    with pytest.raises(ProofRequestError, match="returned"):
        inclusion_proof(Short(), index=3, size=100)
    with pytest.raises(ProofRequestError, match="bytes"):
        root_hash(Truncated(), 100)


def test_memory_tree_refuses_nodes_it_has_not_completed() -> None:
    tree = MemoryTree(leaf_hash(leaf_data(i)) for i in range(5))
    with pytest.raises(ProofRequestError):
        tree.read_hashes([Node(1, 2)])  # leaves 4..5: only 4 exists


def _proof_case(big_tree: MemoryTree, index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
    return (big_tree.read_hashes([Node(0, index)])[0], inclusion_proof(big_tree, index=index, size=size),
            root_hash(big_tree, size))


def test_inclusion_verification_names_the_failed_check(big_tree: MemoryTree) -> None:
    leaf, proof, root = _proof_case(big_tree, 5, 11)
    verify_inclusion(leaf_hash=leaf, index=5, size=11, proof=proof, root=root)

    wrong_root = root_hash(big_tree, 12)
    with pytest.raises(InclusionProofError) as caught:
        verify_inclusion(leaf_hash=leaf, index=5, size=11, proof=proof, root=wrong_root)
    assert caught.value.check == "root computed from the inclusion proof"
    assert caught.value.expected == wrong_root and caught.value.found == root
    assert wrong_root.hex() in str(caught.value) and root.hex() in str(caught.value)

    with pytest.raises(InclusionProofError, match="inclusion proof length: expected 4, found 3"):
        verify_inclusion(leaf_hash=leaf, index=5, size=11, proof=proof[:-1], root=root)
    with pytest.raises(InclusionProofError, match="leaf index < tree size"):
        verify_inclusion(leaf_hash=leaf, index=11, size=11, proof=proof, root=root)
    with pytest.raises(InclusionProofError, match="proof element 1 is a 32-byte hash"):
        verify_inclusion(leaf_hash=leaf, index=5, size=11, proof=[proof[0], proof[1][:31], *proof[2:]], root=root)
    with pytest.raises(InclusionProofError, match="root hash is a 32-byte hash"):
        verify_inclusion(leaf_hash=leaf, index=5, size=11, proof=proof, root=root.hex().encode())


def test_consistency_verification_names_the_failed_check(big_tree: MemoryTree) -> None:
    old_root, new_root = root_hash(big_tree, 6), root_hash(big_tree, 13)
    proof = consistency_proof(big_tree, old_size=6, new_size=13)
    verify_consistency(old_size=6, new_size=13, old_root=old_root, new_root=new_root, proof=proof)

    forged_old = root_hash(big_tree, 7)
    with pytest.raises(ConsistencyProofError) as caught:
        verify_consistency(old_size=6, new_size=13, old_root=forged_old, new_root=new_root, proof=proof)
    assert caught.value.check == "old root computed from the consistency proof"
    assert (caught.value.expected, caught.value.found) == (forged_old, old_root)
    with pytest.raises(ConsistencyProofError, match="new root computed"):
        verify_consistency(old_size=6, new_size=13, old_root=old_root, new_root=root_hash(big_tree, 14), proof=proof)
    with pytest.raises(ConsistencyProofError, match="old size <= new size"):
        verify_consistency(old_size=13, new_size=6, old_root=new_root, new_root=old_root, proof=proof)
    with pytest.raises(ConsistencyProofError, match="consistency proof length"):
        verify_consistency(old_size=6, new_size=13, old_root=old_root, new_root=new_root, proof=proof + proof[:1])


def test_consistency_edge_cases_of_empty_and_equal_trees(big_tree: MemoryTree) -> None:
    root = root_hash(big_tree, 9)
    verify_consistency(old_size=0, new_size=9, old_root=EMPTY_ROOT, new_root=root, proof=[])
    verify_consistency(old_size=9, new_size=9, old_root=root, new_root=root, proof=[])
    with pytest.raises(ConsistencyProofError, match="root of the empty tree"):
        verify_consistency(old_size=0, new_size=9, old_root=root, new_root=root, proof=[])
    with pytest.raises(ConsistencyProofError, match="proof is empty"):
        verify_consistency(old_size=0, new_size=9, old_root=EMPTY_ROOT, new_root=root, proof=[root])
    with pytest.raises(ConsistencyProofError, match="equal sizes have equal roots"):
        verify_consistency(old_size=9, new_size=9, old_root=root, new_root=root_hash(big_tree, 8), proof=[])


def test_frontier_tracks_every_root_and_reports_new_subtrees(big_tree: MemoryTree) -> None:
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    leaves = big_tree.read_hashes([Node(0, i) for i in range(600)])
    produced: list[tuple[Node, bytes]] = []
    for size in range(1, 601):
        frontier = frontier.grow([leaves[size - 1]], nodes=produced)
        assert frontier.size == size
        assert frontier.root() == root_hash(big_tree, size)
        assert frontier.nodes == tuple(Frontier.from_reader(big_tree, size).nodes)
    # Every complete subtree of 600 leaves was reported exactly once, with its hash.
    expected = {Node(level, i) for level in range(10) for i in range(600 >> level)}
    assert {node for node, _ in produced} == expected and len(produced) == len(expected)
    assert all(big_tree.read_hashes([node])[0] == value for node, value in produced)
    # Bulk extension from any point agrees.
    assert Frontier.from_reader(big_tree, 77).extend(leaves[77:600]) == frontier


def test_frontier_serialises_to_its_size_and_edge_hashes(big_tree: MemoryTree) -> None:
    frontier = Frontier.from_reader(big_tree, 1234)
    data = frontier.to_bytes()
    assert len(data) == 8 + 32 * (1234).bit_count()
    assert data[:8] == (1234).to_bytes(8, "big")
    assert Frontier.from_bytes(data) == frontier
    assert Frontier.from_bytes(Frontier().to_bytes()) == Frontier()
    for broken in (data[:-1], data + bytes(32), data[:7], (2**63).to_bytes(8, "big")):
        with pytest.raises(TlogFormatError):
            Frontier.from_bytes(broken)
    with pytest.raises(TlogFormatError):
        Frontier(3, (bytes(32),))
