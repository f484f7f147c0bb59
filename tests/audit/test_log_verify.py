"""Verification of the v2 log: every tampering is caught with its seq, with pinned keys only."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from audit import AuditStore, AuditWriter, CheckpointFileError, SigningKey
from audit.entry import prepare_fields
from audit.chain import encode_members
from audit.logverify import verify_log, verify_trail
from audit.tlog import Checkpoint, MemoryTree, leaf_hash, sign_checkpoint
from audit.trust import log_signer, log_verifier

from .helpers import decision_fields, libpq


@pytest.fixture
def log(store: AuditStore, signing_key: SigningKey) -> Iterator[AuditStore]:
    """Three v1 entries, then a v2 log of 1 + 12 leaves, one leaf per batch."""
    store.append_v1_batch([encode_members(prepare_fields(decision_fields(i))) for i in range(3)], key=signing_key)
    with AuditWriter(store, key=signing_key) as writer:
        for i in range(12):
            writer.append(decision_fields(i))
    yield store


def _trusted(store: AuditStore, key: SigningKey) -> list:
    return [log_verifier(key.public, store.log_origin())]


def _sql(store: AuditStore, *statements: str) -> list:
    out = []
    with psycopg.connect(libpq(str(store.engine.url)), autocommit=True) as conn:
        for table in ("audit_leaves", "audit_blobs", "audit_tlog_nodes", "audit_tlog_checkpoints", "audit_entries"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE audit_tlog_head DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE audit_chain_head DISABLE TRIGGER USER")
        for statement in statements:
            cur = conn.execute(statement)
            out.append(cur.fetchall() if cur.description else None)
    return out


def _check(store: AuditStore, key: SigningKey, **options):
    return verify_trail(store, trusted=_trusted(store, key), **options)


def test_a_log_built_by_the_writer_verifies_with_its_v1_link(log: AuditStore, signing_key: SigningKey) -> None:
    result = _check(log, signing_key)
    assert result.valid, result.reason
    assert (result.log, result.checked, result.checkpoints_checked) == ("v2", 13, 12)
    (rows,) = _sql(log, "SELECT convert_from(body, 'UTF8')::jsonb -> 'v1_head' FROM audit_leaves WHERE seq = 1")
    assert rows[0][0]["seq"] == 3
    ranged = verify_log(log, trusted=_trusted(log, signing_key), from_seq=5, to_seq=9)
    assert ranged.valid and ranged.checked == 5


def test_a_key_present_only_in_the_database_is_not_trusted(log: AuditStore, signing_key: SigningKey) -> None:
    result = _check(log, SigningKey.generate())
    # Leaf 1 names the writer's key, which is not among the pinned ones.
    assert (result.valid, result.check, result.first_bad_seq) == (False, "unknown_key", 1)
    assert f"signing key '{signing_key.key_id}', which is not pinned" in result.reason


@pytest.mark.parametrize(("statement", "check", "seq"), [
    ("UPDATE audit_leaves SET body = convert_to(replace(convert_from(body, 'UTF8'), 'app-', 'app_'), 'UTF8') "
     "WHERE seq = 6", "leaf_hash", 6),
    ("UPDATE audit_leaves SET app_id = 'someone-else' WHERE seq = 7", "column", 7),
    ("UPDATE audit_leaves SET outcome = 'allow' WHERE seq = 2", "column", 2),
    ("DELETE FROM audit_leaves WHERE seq = 8", "missing", 8),
    ("UPDATE audit_blobs SET models_allowed = '{gpt-9}' WHERE sha256 = (SELECT result_sha256 FROM audit_leaves "
     "WHERE seq = 4)", "column", 3),  # seq 3 is the first to use that result
    ("UPDATE audit_blobs SET data = convert_to('{}', 'UTF8') WHERE sha256 = (SELECT input_sha256 FROM audit_leaves "
     "WHERE seq = 3)", "blob", 3),
    ("UPDATE audit_leaves SET recorded_at = recorded_at - interval '1 day' WHERE seq = 5", "column", 5),
    ("DELETE FROM audit_tlog_checkpoints WHERE size = 13", "checkpoint", 13),
    # Two leaves swapped (rows, or just their bodies and hashes): each body names its seq.
    ("UPDATE audit_leaves SET seq = 1000 WHERE seq = 4; UPDATE audit_leaves SET seq = 4 WHERE seq = 5; "
     "UPDATE audit_leaves SET seq = 5 WHERE seq = 1000", "seq", 4),
    ("UPDATE audit_leaves SET (body, leaf_hash) = (SELECT body, leaf_hash FROM audit_leaves o "
     "WHERE o.seq = CASE audit_leaves.seq WHEN 4 THEN 5 ELSE 4 END) WHERE seq IN (4, 5)", "seq", 4),
    ("DELETE FROM audit_leaves WHERE seq > 11", "truncated", 12),  # the head kept
    ("UPDATE audit_tlog_checkpoints SET note = (SELECT note FROM audit_tlog_checkpoints WHERE size = 7) "
     "WHERE size = 8", "checkpoint", 8),  # a stored checkpoint edited
    ("UPDATE audit_tlog_checkpoints SET root = (SELECT root FROM audit_tlog_checkpoints WHERE size = 7) "
     "WHERE size = 8", "checkpoint", 8),
    ("UPDATE audit_tlog_head SET root = (SELECT root FROM audit_tlog_checkpoints WHERE size = 7)", "head", 13),
])
def test_each_tampering_is_named_with_its_seq(log: AuditStore, signing_key: SigningKey, statement: str,
                                              check: str, seq: int) -> None:
    _sql(log, statement)
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, check, seq), result.reason


def _rewrite_leaf(store: AuditStore, seq: int, new_body: bytes) -> None:
    _sql(store, f"UPDATE audit_leaves SET body = '\\x{new_body.hex()}'::bytea, "
                f"leaf_hash = '\\x{leaf_hash(new_body).hex()}'::bytea WHERE seq = {seq}")


def test_a_body_rewritten_with_its_leaf_hash_breaks_the_signed_root(log: AuditStore, signing_key: SigningKey) -> None:
    (rows,) = _sql(log, "SELECT body FROM audit_leaves WHERE seq = 9")
    body = bytes(rows[0][0]).replace(b'"ak_', b'"xk_')
    assert body != bytes(rows[0][0])
    _rewrite_leaf(log, 9, body)
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, "checkpoint", 9), result.reason


def test_a_tail_resigned_with_an_unpinned_key_is_refused(log: AuditStore, signing_key: SigningKey) -> None:
    """An insider rewrites leaf 10, rebuilds the tree and re-signs every later checkpoint with a
    key of their own (and registers it in the database): only pinned keys count."""
    (rows, head) = _sql(log, "SELECT leaf_hash, body FROM audit_leaves ORDER BY seq",
                        "SELECT origin FROM audit_tlog_head")
    hashes = [bytes(r[0]) for r in rows]
    forged = bytes(rows[9][1]).replace(b"ak_", b"xk_")
    hashes[9] = leaf_hash(forged)
    _rewrite_leaf(log, 10, forged)
    intruder = SigningKey.generate()
    log.register_key(intruder.public)
    signer = log_signer(intruder, head[0][0])
    tree = MemoryTree(hashes)
    statements = []
    for size in range(10, 14):
        root = tree.root(size)
        note = sign_checkpoint(Checkpoint(head[0][0], size, root), [signer]).replace("'", "''")
        statements.append(f"UPDATE audit_tlog_checkpoints SET root = '\\x{root.hex()}'::bytea, note = '{note}' "
                          f"WHERE size = {size}")
    statements.append(f"UPDATE audit_tlog_head SET root = '\\x{tree.root().hex()}'::bytea, "
                      f"frontier = '\\x{tree.frontier().to_bytes().hex()}'::bytea")
    _sql(log, *statements)
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, "checkpoint_key", 10), result.reason
    # With the database's keyring (what a compromised service would trust) it would pass:
    everyone = [log_verifier(k, log.log_origin()) for k in log.list_keys()]
    assert verify_trail(log, trusted=everyone).valid


def test_a_leaf_inserted_in_the_middle_is_caught(log: AuditStore, signing_key: SigningKey) -> None:
    # Shift leaves 6.. up by one and put a copy of leaf 5 at 6.
    with psycopg.connect(libpq(str(log.engine.url)), autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_leaves DISABLE TRIGGER USER")
        conn.execute("CREATE TEMP TABLE x AS SELECT * FROM audit_leaves WHERE seq >= 6")
        conn.execute("DELETE FROM audit_leaves WHERE seq >= 6")
        conn.execute("INSERT INTO audit_leaves SELECT seq + 1, recorded_at, kind, decision_id, app_id, "
                     "outcome, input_sha256, result_sha256, leaf_hash, body FROM x")
        conn.execute("INSERT INTO audit_leaves SELECT 6, recorded_at, kind, decision_id, app_id, "
                     "outcome, input_sha256, result_sha256, leaf_hash, body "
                     "FROM audit_leaves WHERE seq = 5")
    result = _check(log, signing_key)
    assert (result.valid, result.first_bad_seq) == (False, 6), result.reason


def test_a_removed_tail_is_caught_by_an_outside_checkpoint(log: AuditStore, signing_key: SigningKey,
                                                           tmp_path: Path) -> None:
    (notes,) = _sql(log, "SELECT note FROM audit_tlog_checkpoints WHERE size = 13")
    outside = tmp_path / "checkpoint"
    outside.write_text(notes[0][0])
    (rows,) = _sql(log, "SELECT leaf_hash FROM audit_leaves WHERE seq <= 10 ORDER BY seq")
    tree = MemoryTree([bytes(r[0]) for r in rows])
    _sql(log, "DELETE FROM audit_leaves WHERE seq > 10", "DELETE FROM audit_tlog_checkpoints WHERE size > 10",
         f"UPDATE audit_tlog_head SET size = 10, root = '\\x{tree.root().hex()}'::bytea, "
         f"frontier = '\\x{tree.frontier().to_bytes().hex()}'::bytea")
    assert _check(log, signing_key).valid  # inside the database alone: undetectable (docs/audit.md)
    result = _check(log, signing_key, checkpoint_files=[outside])
    assert (result.valid, result.check, result.first_bad_seq) == (False, "truncated", 11)


def test_a_tampered_v1_entry_is_still_named(log: AuditStore, signing_key: SigningKey) -> None:
    _sql(log, "UPDATE audit_entries SET app_id = 'forged' WHERE seq = 2")
    result = _check(log, signing_key)
    assert (result.valid, result.log, result.first_bad_seq) == (False, "v1", 2)


def test_the_v1_head_link_is_checked(log: AuditStore, signing_key: SigningKey) -> None:
    _sql(log, "UPDATE audit_chain_head SET seq = 2, head_hash = (SELECT entry_hash FROM audit_entries WHERE seq = 2)")
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, "v1_head", 1), result.reason


def test_a_fork_is_caught_by_an_outside_checkpoint_of_the_same_size(log: AuditStore, signing_key: SigningKey,
                                                                    tmp_path: Path) -> None:
    """A database restored from a copy and appended again: checkpoints of the same sizes with
    other roots. The one kept outside (signed by the real key) exposes it."""
    (rows,) = _sql(log, "SELECT origin FROM audit_tlog_head")
    other = MemoryTree([leaf_hash(b"another history %d" % i) for i in range(13)])
    outside = tmp_path / "checkpoint"
    outside.write_text(sign_checkpoint(Checkpoint(rows[0][0], 13, other.root()),
                                       [log_signer(signing_key, rows[0][0])]))
    result = _check(log, signing_key, checkpoint_files=[outside])
    assert (result.valid, result.check, result.first_bad_seq) == (False, "checkpoint", 13), result.reason


def test_a_forged_checkpoint_beyond_the_end_is_not_taken_as_evidence(log: AuditStore, signing_key: SigningKey,
                                                                      tmp_path: Path) -> None:
    """A checkpoint beyond the last entry proves removed entries only when a trusted key signed
    it: a file signed by an unknown key is refused before verification starts
    (``CheckpointFileError`` naming the file, docs/audit.md "Trust model"), not ``truncated``."""
    (rows,) = _sql(log, "SELECT origin FROM audit_tlog_head")
    forged = tmp_path / "forged"
    forged.write_text(sign_checkpoint(Checkpoint(rows[0][0], 18, bytes(32)),
                                      [log_signer(SigningKey.generate(), rows[0][0])]))
    with pytest.raises(CheckpointFileError) as refused:
        _check(log, signing_key, checkpoint_files=[forged])
    assert refused.value.path == str(forged) and str(forged) in str(refused.value)
    assert "not a checkpoint signed with a pinned key" in str(refused.value)
    genuine = tmp_path / "genuine"
    genuine.write_text(sign_checkpoint(Checkpoint(rows[0][0], 18, bytes(32)), [log_signer(signing_key, rows[0][0])]))
    result = _check(log, signing_key, checkpoint_files=[genuine])
    assert (result.valid, result.check, result.first_bad_seq) == (False, "truncated", 14), result.reason


@pytest.mark.parametrize("page", [1, 5])
@pytest.mark.parametrize(("statement", "check", "seq"), [
    ("UPDATE audit_leaves SET app_id = 'someone-else' WHERE seq = 7", "column", 7),
    ("UPDATE audit_leaves SET body = convert_to(replace(convert_from(body, 'UTF8'), 'app-', 'app_'), 'UTF8') "
     "WHERE seq = 6", "leaf_hash", 6),
    ("DELETE FROM audit_leaves WHERE seq = 11", "missing", 11),
    ("UPDATE audit_leaves SET recorded_at = recorded_at + interval '1 day' WHERE seq = 10", "column", 10),
    ("DELETE FROM audit_tlog_checkpoints WHERE size = 13", "checkpoint", 13),
])
def test_pages_of_any_size_find_the_same_first_failure(log: AuditStore, signing_key: SigningKey,
                                                        monkeypatch: pytest.MonkeyPatch, page: int, statement: str,
                                                        check: str, seq: int) -> None:
    """verify_log reads pages and checks each with list operations, falling back to the exact
    per-leaf checks when one might fail: the pages' bounds must not change any finding."""
    import audit.logverify

    monkeypatch.setattr(audit.logverify, "PAGE", page)
    clean = _check(log, signing_key)
    assert clean.valid and (clean.checked, clean.checkpoints_checked) == (13, 12)
    _sql(log, statement)
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, check, seq), result.reason


def test_proofs_fold_each_stored_tile_once_per_process_but_verification_reads_the_database(
        log: AuditStore, signing_key: SigningKey) -> None:
    """The proof endpoints keep folded tiles for the process (audit.log.SharedTiles, shared by
    its connections): a stored hash rewritten afterwards does not change the proofs it serves
    on any of them, while a proof without that cache and verification, which never reads
    through it, see the rewrite."""
    from audit.log import SharedTiles, inclusion

    url = libpq(str(log.engine.url))
    tiles = SharedTiles()
    with psycopg.connect(url) as conn, psycopg.connect(url) as other:
        before = inclusion(conn, seq=3, size=13, tiles=tiles)
        _sql(log, "UPDATE audit_leaves SET leaf_hash = sha256('rewritten') WHERE seq = 3")
        assert inclusion(conn, seq=3, size=13, tiles=tiles) == before
        assert inclusion(other, seq=3, size=13, tiles=tiles) == before  # folded on another connection
        assert inclusion(other, seq=3, size=13)["leaf_hash"] != before["leaf_hash"]  # what is stored now
        assert inclusion(conn, seq=3, size=13, tiles=SharedTiles())["leaf_hash"] != before["leaf_hash"]
    result = _check(log, signing_key)
    assert (result.valid, result.check, result.first_bad_seq) == (False, "leaf_hash", 3)


# -- the fast path's typed reading (msgspec) against the exact checks (orjson) ---------------------

_KEY = SigningKey.generate()


def _leaf(seq: int) -> dict:
    return {"app_id": f"app-{seq}", "caller_key_id": "ak_0001", "context": {"request_id": f"req-{seq}"},
            "decision_id": f"01a23dbf-cca2-75ca-951f-17914{seq:07d}", "engine": "regorus",
            "input_sha256": "ab" * 32, "key_id": _KEY.key_id, "kind": "decision", "outcome": "allow",
            "policy_git": None, "policy_revision": "sha256:" + "3f" * 32,
            "recorded_at": f"2026-12-03T21:12:0{seq}.156735Z", "result_sha256": "cd" * 32, "seq": seq}


def _canonical(value: dict) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


_SECOND = _canonical(_leaf(2))
_ESCAPED_KEY = b'"k\\u0065y_id":"intruder",'  # "key_id" spelled with an escape, after the real one


@pytest.mark.parametrize(("body", "finding"), [
    (_SECOND, None),
    # Bodies orjson refuses, which a decoder skipping the members no check reads would let through.
    (_SECOND.replace(b'"regorus"', b'"rego\xffrus"'), "body"),  # invalid UTF-8
    (_SECOND.replace(b'"regorus"', b'"rego\xc0\xafrus"'), "body"),  # overlong UTF-8
    (_SECOND.replace(b'"regorus"', b'"rego\xed\xa0\x80rus"'), "body"),  # a surrogate in UTF-8
    (_SECOND.replace(b'"request_id"', b'"request\xff_id"'), "body"),  # invalid UTF-8 in a nested key
    (_SECOND.replace(b'"regorus"', b'"\\ud800"'), "body"),  # a lone surrogate escape
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":' + b"9" * 400), "body"),  # beyond a float
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":1e400'), "body"),
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":' + b"[" * 1100 + b"]" * 1100), "body"),  # too deep
    (_SECOND.replace(b'"seq":2', b'"seq":' + b"2" * 400), "body"),
    (_SECOND + b" x", "body"),
    (b"[" + _SECOND + b"]", "body"),
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":1.7976931348623159e308'), "body"),  # orjson rounds it up
    # Bodies both read, whose values must be the same in both.
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":18446744073709551616'), None),  # beyond 64 bits
    (_SECOND.replace(b'"policy_git":null', b'"policy_git":{"a":[[[[1]]]]}'), None),  # deeper than the struct
    (_SECOND.replace(b'"seq":2', b'"seq":2.0'), None),  # 2.0 == 2, as the exact check compares
    (_SECOND.replace(b'"regorus"', b'5'), None),  # a member no check reads: only its bytes count
    (_SECOND.replace(b'{', b'{"zzz":1,', 1), None),  # an extra member
    (_SECOND.replace(b'{', b'{"\\u0000":1,', 1), None),
    (orjson.dumps(_leaf(2), option=orjson.OPT_INDENT_2), None),  # not canonical: other order, spaces
    (_SECOND.replace(b'{', b'{"app_id":"forged",', 1), None),  # a duplicated member: the last one counts
    (_SECOND.replace(b'"seq":2', b'"app_id":"forged","seq":2'), "column"),
    (_SECOND.replace(b'"seq":2', b'"seq":2,"seq":3'), "seq"),
    (_SECOND.replace(b'"kind"', _ESCAPED_KEY + b'"kind"'), "unknown_key"),
    (_SECOND.replace(b'"kind":"decision"', b'"kind":5'), "column"),
    (_SECOND.replace(b'"recorded_at":"2026-12-03T21:12:02.156735Z"', b'"recorded_at":null'), "column"),
    (_SECOND.replace(b'"key_id":"' + _KEY.key_id.encode() + b'"', b'"key_id":["' + _KEY.key_id.encode() + b'"]'),
     "unknown_key"),  # not a string (it raised TypeError before)
])
def test_the_typed_reading_never_accepts_what_orjson_refuses(body: bytes, finding: str | None) -> None:
    """A page's fast path reads the bodies with msgspec into a struct; the exact checks read each
    with orjson. A body rewritten with its leaf hash (an insider) gets the same finding either
    way, down to the reason: nothing the typed reading accepts is refused by orjson."""
    from audit.logverify import LeafPage, LeafRow, _text_columns, verify_leaves

    stored = [_canonical(_leaf(1)), body, _canonical(_leaf(3))]
    columns = [_text_columns(_leaf(seq)) for seq in (1, 2, 3)]  # what the database's columns say
    hashes = [leaf_hash(b) for b in stored]
    options = {"trusted": [log_verifier(_KEY.public, "example.org/log")], "origin": None, "checkpoints": (),
               "fetch_blob": None}
    exact = verify_leaves([LeafRow(seq, h, b, c) for seq, h, b, c in zip((1, 2, 3), hashes, stored, columns)],
                          **options)
    fast = verify_leaves([LeafPage([1, 2, 3], hashes, stored, [list(c) for c in zip(*columns)])],
                         **options)
    assert (fast.valid, fast.check, fast.first_bad_seq, fast.reason, fast.checked) == (
        exact.valid, exact.check, exact.first_bad_seq, exact.reason, exact.checked)
    if finding is None:
        assert exact.valid, exact.reason
    else:
        assert (exact.check, exact.first_bad_seq) == (finding, 2), exact.reason


def test_the_writers_leaves_take_the_typed_reading(log: AuditStore) -> None:
    """The fast path's typed reading fits every leaf the writer wrote (else it reads them
    with orjson: correct, slower)."""
    from audit.logverify import _typed

    (rows,) = _sql(log, "SELECT body FROM audit_leaves ORDER BY seq")
    decoded = _typed([bytes(r[0]) for r in rows])
    assert decoded is not None and [leaf.seq for leaf in decoded] == list(range(1, 14))
    assert decoded[0].kind == "v1_head" and decoded[1].kind == "decision"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_typed_reading_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    """The collector is paused for a page's decoding only: on again afterwards (a page that
    fits or one that does not), and still off if the process had switched it off."""
    from audit.logverify import _typed

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        fits = _typed([b'{"seq": 1, "context": {"request_id": "r"}}'])
        assert fits is not None and fits[0].context == {"request_id": "r"}
        assert gc.isenabled() is enabled
        assert _typed([b'{"seq": 1}', b'{"seq": 1.5}']) is None
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_folded_tiles_refuse_another_database(log: AuditStore) -> None:
    """One SharedTiles never mixes two databases' trees (a process serves one log)."""
    from audit.log import SharedTiles, inclusion

    url = libpq(str(log.engine.url))
    tiles = SharedTiles()
    with psycopg.connect(url) as conn, psycopg.connect(url.rsplit("/", 1)[0] + "/postgres") as elsewhere:
        inclusion(conn, seq=3, size=13, tiles=tiles)
        with pytest.raises(ValueError, match="folded tiles"):
            inclusion(elsewhere, seq=3, size=13, tiles=tiles)


def test_folded_tiles_shared_by_threads_give_the_proofs_of_the_stored_tree(
        log: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads on their own connections share one SharedTiles, small enough here that they evict
    each other's tiles: every proof equals the one read without the cache."""
    from concurrent.futures import ThreadPoolExecutor

    from audit.log import SharedTiles, consistency, inclusion

    monkeypatch.setattr(SharedTiles, "LEAF_TILES", 2)
    url = libpq(str(log.engine.url))
    tiles = SharedTiles()
    asks = [(seq, size) for size in range(1, 14) for seq in range(1, size + 1)]
    with psycopg.connect(url) as conn:
        expected = {ask: inclusion(conn, seq=ask[0], size=ask[1]) for ask in asks}
        expected_consistency = {size: consistency(conn, old_size=size // 2, new_size=size) for size in range(1, 14)}

    def prove(part: int) -> None:
        with psycopg.connect(url) as own:
            for _ in range(5):
                for seq, size in asks[part::4]:
                    assert inclusion(own, seq=seq, size=size, tiles=tiles) == expected[seq, size]
                    assert consistency(own, old_size=size // 2, new_size=size, tiles=tiles) == \
                        expected_consistency[size]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(prove, range(4)))
    assert len(tiles) <= 2


def test_a_null_stored_hash_is_a_format_error_not_a_shorter_tile(log: AuditStore) -> None:
    """Tiles are read as arrays: a NULL hash (possible only once the NOT NULL is dropped) is
    named, not joined into a tile of the wrong length."""
    from audit.log import inclusion
    from audit.tlog.errors import TlogFormatError

    _sql(log, "ALTER TABLE audit_leaves ALTER COLUMN leaf_hash DROP NOT NULL",
         "UPDATE audit_leaves SET leaf_hash = NULL WHERE seq = 3")
    with psycopg.connect(libpq(str(log.engine.url))) as conn, pytest.raises(TlogFormatError, match="NULL"):
        inclusion(conn, seq=5, size=13)


def test_a_stored_hash_of_the_wrong_length_is_a_format_error_on_either_path(log: AuditStore) -> None:
    """A rewritten leaf hash of 31 bytes is named whether the proof's statement runs through
    libpq (idle connection) or psycopg (inside a transaction), never folded into a tile."""
    from audit.log import inclusion
    from audit.tlog.errors import TlogFormatError

    _sql(log, "UPDATE audit_leaves SET leaf_hash = substring(leaf_hash from 2) WHERE seq = 3")
    with psycopg.connect(libpq(str(log.engine.url))) as conn:
        with pytest.raises(TlogFormatError, match="32 bytes"):
            inclusion(conn, seq=5, size=13)
        with conn.transaction(), pytest.raises(TlogFormatError, match="expected"):
            inclusion(conn, seq=5, size=13)
