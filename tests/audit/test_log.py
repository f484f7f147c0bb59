"""The v2 log as the writer builds it: leaves, blobs, subtrees, one checkpoint per batch, receipts."""

from __future__ import annotations

import psycopg
import pytest

from audit import AuditStore, AuditWriter, LogStateMismatch, SigningKey
from audit.log import batch_proofs, last_leaf_proof
from audit.tlog import MemoryTree, Node, verify_receipt
from audit.tlog.errors import ReceiptVerificationError
from audit.tlog.leaf import blob_sha256, result_blob
from audit.tlog.merkle import Frontier, inclusion_proof, leaf_hash
from audit.trust import log_verifier

from .helpers import decision_fields, libpq


def _trusted(store: AuditStore, key: SigningKey) -> list:
    return [log_verifier(key.public, store.log_origin())]


def test_receipts_verify_offline_with_the_pinned_key(store: AuditStore, signing_key: SigningKey) -> None:
    with AuditWriter(store, key=signing_key) as writer:
        fields = [decision_fields(i) for i in range(5)]
        receipts = [writer.append(f) for f in fields]
    trusted = _trusted(store, signing_key)
    for fields_, receipt in zip(fields, receipts, strict=True):
        decision = fields_["result"]
        signed = verify_receipt(receipt.to_dict(), trusted_keys=trusted, decision=decision)
        assert signed.size >= receipt.seq
        assert receipt.entry["result_sha256"] == blob_sha256(result_blob(decision))
        assert receipt.entry["input_sha256"] == blob_sha256(fields_["input"])
        assert "input" not in receipt.entry and "prev_hash" not in receipt.entry
    assert receipts[0].seq == 1  # no v1 chain here: no v1_head leaf
    other = SigningKey.generate()
    with pytest.raises(ReceiptVerificationError):
        verify_receipt(receipts[0].to_dict(), trusted_keys=_trusted(store, other))


def test_blobs_are_stored_once_and_the_tree_matches(store: AuditStore, signing_key: SigningKey) -> None:
    same = decision_fields(1)
    with AuditWriter(store, key=signing_key, max_batch=7) as writer:
        futures = [writer.submit({**same, "decision_id": decision_fields(1)["decision_id"]}) for _ in range(300)]
        receipts = [f.result(30) for f in futures]
    with psycopg.connect(libpq(str(store.engine.url))) as conn:
        assert conn.execute("SELECT count(*) FROM audit_blobs").fetchone()[0] == 2
        hashes = [bytes(r[0]) for r in conn.execute("SELECT leaf_hash FROM audit_leaves ORDER BY seq")]
        size, root = conn.execute("SELECT size, root FROM audit_tlog_head").fetchone()
        nodes = conn.execute("SELECT level, idx, hash FROM audit_tlog_nodes").fetchall()
        checkpoints = conn.execute("SELECT count(*) FROM audit_tlog_checkpoints").fetchone()[0]
    tree = MemoryTree(hashes)
    assert size == 300 and bytes(root) == tree.root()
    assert [(lvl, i) for lvl, i, _ in nodes] == [(8, 0)]
    assert bytes(nodes[0][2]) == tree.read_hashes([Node(8, 0)])[0]
    assert checkpoints == len({r.checkpoint for r in receipts})


def test_writer_refuses_a_head_not_matching_the_trusted_checkpoint(store: AuditStore, signing_key: SigningKey) -> None:
    with AuditWriter(store, key=signing_key) as writer:
        writer.append(decision_fields(0))
    with psycopg.connect(libpq(str(store.engine.url))) as conn:
        conn.execute("ALTER TABLE audit_leaves DISABLE TRIGGER audit_append_only")
        conn.execute("INSERT INTO audit_leaves SELECT seq + 1, recorded_at, kind, decision_id, app_id, "
                     "outcome, input_sha256, result_sha256, leaf_hash, body "
                     "FROM audit_leaves WHERE seq = 1")
    refused: list[str] = []
    with AuditWriter(store, key=signing_key, on_refused=refused.append) as writer:
        assert writer.refusal is not None and "leaves stored end at seq 2" in writer.refusal  # at start-up
        with pytest.raises(LogStateMismatch, match="leaves stored end at seq 2"):
            writer.append(decision_fields(1))
        assert writer.stats.refused_batches == 1 and refused == ["startup", "batch"]


def test_writer_refuses_a_checkpoint_signed_by_an_untrusted_key(store: AuditStore, signing_key: SigningKey) -> None:
    with AuditWriter(store, key=signing_key) as writer:
        writer.append(decision_fields(0))
    with AuditWriter(store, key=SigningKey.generate(), trusted=_trusted(store, SigningKey.generate())) as writer:
        with pytest.raises(LogStateMismatch, match="does not verify with a trusted key"):
            writer.append(decision_fields(1))


def test_a_leaf_prepared_before_the_lock_is_the_rfc8785_body_once_seq_time_and_key_are_spliced() -> None:
    """The writer builds each body before the head lock but for seq, recorded_at and key_id
    (``audit.log.prepare_leaf``): the bytes are those of RFC 8785 over the whole body."""
    import rfc8785

    from audit.canonical import canonical_bytes, plain
    from audit.chain import encode_members
    from audit.entry import draft_leaf, prepare_fields
    from audit.errors import AuditEntryInvalid
    from audit.log import prepare_leaf, v1_head_members

    drafts = [draft_leaf(encode_members(prepare_fields(decision_fields(i, outcome=o))))
              for i, o in enumerate(("allow", "deny"))]
    for members in [*(d.members for d in drafts), v1_head_members(7, bytes(range(32)))]:
        for seq, key_id in ((1, "k1"), (123456789, "clearance/audit+abcdef12")):
            at = "2026-12-03T21:00:00.123456Z"
            body = leaf = prepare_leaf(members).body(canonical_bytes(seq), canonical_bytes(at), canonical_bytes(key_id))
            expected = rfc8785.dumps({**plain(members), "seq": seq, "recorded_at": at, "key_id": key_id})
            assert body == expected, leaf
    with pytest.raises(AuditEntryInvalid, match="NUL"):
        prepare_leaf({**drafts[0].members, "app_id": "a\x00b"})


def test_proofs_from_folded_tiles_equal_cold_reads_as_a_partial_edge_tile_fills(
        store: AuditStore, signing_key: SigningKey) -> None:
    """The process's folded tiles (SharedTiles) across a growing log: the partial level-0 tile
    folded at size 200 is kept under its width and never answers for the full tile at 300;
    every proof equals a cold read (no cache), the reference tree's, on the libpq path (idle
    connection), inside a transaction (psycopg's path) and after the session's prepared
    statements are dropped; a cache warmed at start holds the tiles above level 0."""
    from audit.log import SharedTiles, consistency, inclusion
    from audit.tlog import inclusion_proof, root_hash

    tiles = SharedTiles()
    url = libpq(str(store.engine.url))
    with AuditWriter(store, key=signing_key, max_batch=50) as writer:
        for f in [writer.submit(decision_fields(i)) for i in range(200)]:
            f.result(30)
        with psycopg.connect(url) as conn:
            early = {seq: inclusion(conn, seq=seq, size=200, tiles=tiles) for seq in (1, 150, 200)}
        assert (0, 0, 200) in tiles and (0, 0, 256) not in tiles
        for f in [writer.submit(decision_fields(i)) for i in range(200, 300)]:
            f.result(30)
    with psycopg.connect(url) as conn:
        hashes = [bytes(r[0]) for r in conn.execute("SELECT leaf_hash FROM audit_leaves ORDER BY seq")]
        conn.rollback()
        tree = MemoryTree(hashes)
        asks = [(seq, size) for size in (200, 256, 257, 300) for seq in (1, 150, 200, size)]
        for seq, size in asks:
            cached = inclusion(conn, seq=seq, size=size, tiles=tiles)
            assert cached == inclusion(conn, seq=seq, size=size)  # cold: every tile read
            assert cached["inclusion_proof"] == [h.hex() for h in inclusion_proof(tree, index=seq - 1, size=size)]
            assert cached["root"] == root_hash(tree, size).hex()
        assert {seq: inclusion(conn, seq=seq, size=200, tiles=tiles) for seq in early} == early
        assert {(0, 0, 200), (0, 0, 256), (0, 1, 44)} <= set(tiles) and (0, 1, 256) not in tiles
        moved = consistency(conn, old_size=200, new_size=300, tiles=tiles)
        assert moved == consistency(conn, old_size=200, new_size=300)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # one statement each
        with conn.transaction():
            assert inclusion(conn, seq=150, size=300, tiles=tiles) == inclusion(conn, seq=150, size=300)
        conn.execute("DEALLOCATE ALL")
        conn.rollback()
        assert inclusion(conn, seq=150, size=300) == inclusion(conn, seq=150, size=300, tiles=tiles)
        assert consistency(conn, old_size=200, new_size=300) == moved
        warmed = SharedTiles()  # a process warming its tiles at start: those above level 0
        assert warmed.warm(conn) == 1 and list(warmed) == [(1, 0, 1)]
        assert warmed.warm(conn) == 0
        assert inclusion(conn, seq=150, size=300, tiles=warmed) == inclusion(conn, seq=150, size=300)
        assert set(warmed) == {(1, 0, 1), (0, 0, 256), (0, 1, 44)}  # the proof read only level-0 tiles


def test_the_path_of_a_batch_of_one_is_the_old_edge_smallest_first() -> None:
    """A batch of one leaf takes its audit path from the old frontier (no tree walked): the
    same path as the tree's own, for every size up to a few tiles and at powers of two."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(600)]
    tree = MemoryTree()
    old = Frontier()
    for n, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert last_leaf_proof(old) == inclusion_proof(tree, index=n - 1, size=n), n
        old = old.extend([leaf])


def test_the_paths_of_a_batch_are_the_trees_own() -> None:
    """``batch_proofs`` (one walk over the new leaves, no read) gives every new leaf the audit
    path the whole tree gives it: batches of 1 to 40 leaves on old trees of 0 to 300 leaves,
    across tile and power-of-two boundaries."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(340)]
    for start in (*range(0, 70), 127, 128, 129, 255, 256, 257, 300):
        old = Frontier().extend(leaves[:start])
        for count in (1, 2, 3, 5, 8, 13, 16, 17, 31, 40):
            tree = MemoryTree()
            for leaf in leaves[:start + count]:
                tree.append(leaf)
            expected = [inclusion_proof(tree, index=i, size=start + count) for i in range(start, start + count)]
            assert batch_proofs(old, leaves[start:start + count]) == expected, (start, count)

