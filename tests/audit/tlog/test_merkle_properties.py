"""Properties over random trees of up to 4096 leaves: every proof verifies; any change to a
proof (a flipped bit, a reordering, a cut, an extra hash, another position) makes it fail."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.tlog.errors import ConsistencyProofError, InclusionProofError
from audit.tlog.merkle import (
    Frontier,
    MemoryTree,
    Node,
    consistency_proof,
    inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

from .conftest import BIG

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def positions(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, BIG))
    return draw(st.integers(0, size - 1)), size


@st.composite
def size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(2, BIG))
    return draw(st.integers(1, new - 1)), new


@st.composite
def mutations(draw: st.DrawFn, proof: list[bytes]) -> tuple[str, list[bytes]]:
    """A changed proof, never equal to ``proof``."""
    kinds = ["extend"]
    if proof:
        kinds += ["flip", "truncate", "drop"]
    if len(proof) >= 2 and len(set(proof)) > 1:
        kinds.append("swap")
    kind = draw(st.sampled_from(kinds))
    out = list(proof)
    if kind == "flip":
        i, bit = draw(st.integers(0, len(out) - 1)), draw(st.integers(0, 255))
        value = bytearray(out[i])
        value[bit // 8] ^= 1 << (bit % 8)
        out[i] = bytes(value)
    elif kind == "truncate":
        out = out[:draw(st.integers(0, len(out) - 1))]
    elif kind == "drop":
        del out[draw(st.integers(0, len(out) - 1))]
    elif kind == "swap":
        i, j = draw(st.lists(st.integers(0, len(out) - 1), min_size=2, max_size=2, unique=True))
        if out[i] == out[j]:
            i, j = 0, next(k for k in range(len(out)) if out[k] != out[0])
        out[i], out[j] = out[j], out[i]
    else:
        out.insert(draw(st.integers(0, len(out))), draw(st.binary(min_size=32, max_size=32)))
    assert out != proof
    return kind, out


@SETTINGS
@given(position=positions(), data=st.data())
def test_inclusion_proofs_verify_and_any_change_fails(big_tree: MemoryTree, position: tuple[int, int],
                                                      data: st.DataObject) -> None:
    index, size = position
    leaf = big_tree.read_hashes([Node(0, index)])[0]
    root = root_hash(big_tree, size)
    proof = inclusion_proof(big_tree, index=index, size=size)
    verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)

    _, changed = data.draw(mutations(proof))
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=changed, root=root)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index) if size > 1 else st.nothing())
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf_hash=leaf, index=other, size=size, proof=proof, root=root)


@SETTINGS
@given(position=positions())
def test_inclusion_proof_does_not_prove_inclusion_in_another_tree(big_tree: MemoryTree,
                                                                  position: tuple[int, int]) -> None:
    # (The size alone is not bound by the proof: index 0 of 3 leaves folds like index 0 of 4.
    # What is bound is the root, which the signed checkpoint pins together with the size.)
    index, size = position
    leaf = big_tree.read_hashes([Node(0, index)])[0]
    proof = inclusion_proof(big_tree, index=index, size=size)
    for claimed in {size - 1, size + 1} & set(range(index + 1, BIG + 1)):
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaf_hash=leaf, index=index, size=claimed, proof=proof, root=root_hash(big_tree, claimed))


@SETTINGS
@given(sizes=size_pairs(), data=st.data())
def test_consistency_proofs_verify_and_any_change_fails(big_tree: MemoryTree, sizes: tuple[int, int],
                                                        data: st.DataObject) -> None:
    old, new = sizes
    old_root, new_root = root_hash(big_tree, old), root_hash(big_tree, new)
    proof = consistency_proof(big_tree, old_size=old, new_size=new)
    verify_consistency(old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof)

    _, changed = data.draw(mutations(proof))
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=changed)
    # A rewritten history: any other old root (here: a neighbouring tree's) is refused.
    other = root_hash(big_tree, old + 1 if old + 1 < new else old - 1) if new > 2 else bytes(32)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old_size=old, new_size=new, old_root=other, new_root=new_root, proof=proof)


@SETTINGS
@given(sizes=size_pairs())
def test_consistency_proof_for_other_sizes_fails(big_tree: MemoryTree, sizes: tuple[int, int]) -> None:
    old, new = sizes
    proof = consistency_proof(big_tree, old_size=old, new_size=new)
    for claimed_old, claimed_new in {(old + 1, new), (old - 1, new), (old, new + 1), (old, new - 1)}:
        if not 0 < claimed_old < claimed_new <= BIG:
            continue
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old_size=claimed_old, new_size=claimed_new, old_root=root_hash(big_tree, claimed_old),
                               new_root=root_hash(big_tree, claimed_new), proof=proof)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, BIG), steps=st.lists(st.integers(0, 300), max_size=8))
def test_frontier_extended_in_any_batches_has_the_tree_root(big_tree: MemoryTree, start: int, steps: list[int]) -> None:
    frontier = Frontier.from_reader(big_tree, start)
    size = start
    for step in steps:
        step = min(step, BIG - size)
        frontier = frontier.extend(big_tree.read_hashes([Node(0, i) for i in range(size, size + step)]))
        size += step
        assert frontier.root() == root_hash(big_tree, size)
        assert Frontier.from_bytes(frontier.to_bytes()) == frontier


@SETTINGS
@given(start=st.integers(0, BIG), count=st.integers(0, BIG))
def test_folding_a_level_at_a_time_equals_growing_leaf_by_leaf(big_tree: MemoryTree, start: int, count: int) -> None:
    leaves = big_tree.read_hashes([Node(0, i) for i in range(min(BIG, start + count))])
    start = min(start, len(leaves))
    old = Frontier.from_reader(big_tree, start)
    grown: list[tuple[Node, bytes]] = []
    expected = old.grow(leaves[start:], nodes=grown)
    levels = {0, 1, 8}
    folded, kept = old.fold(leaves[start:], keep=levels)
    assert folded == expected
    by_level: dict[int, list[tuple[int, bytes]]] = {}
    for node, value in grown:
        if node.level in levels:
            by_level.setdefault(node.level, []).append((node.index, value))
    assert {lv: sorted(v) for lv, v in by_level.items()} == \
        {lv: [(first + i, h) for i, h in enumerate(row)] for lv, (first, row) in kept.items()}
