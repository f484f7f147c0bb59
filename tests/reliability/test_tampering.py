"""Tampering with a log the real service wrote: every case caught, with its seq and its check.

One pristine trail is built once: a v1 chain of ``V1_ENTRIES`` entries (recorded before the
upgrade), then ``ENTRIES`` real decisions through the HTTP app, each its own batch with its own
signed checkpoint (leaf 1 links the v1 head; leaves 2..13 are the decisions), the newest
checkpoint also kept outside the database. It is copied per case with
``CREATE DATABASE … TEMPLATE``; the case attacks its copy as a superuser with the append-only
triggers switched off, and verification must name the first bad seq and the failed check.

The cases of tests/audit/test_log_verify.py and more, on a log the service wrote: an edited leaf
(bytes, or bytes with a recomputed leaf hash), each derived column, each blob facet and a blob's
bytes, deleted, inserted, swapped and duplicated leaves, the tail re-signed with a key that is
not pinned (``checkpoint_key``) and a leaf appended under one (``unknown_key``; also when
registered in the database), a cut tail with the head moved back against an outside checkpoint,
a kept head, edited or deleted checkpoints and head, the v1 chain and its link, a public key
swapped in ``audit_signing_keys``, the whole trail re-signed under a swapped key, and forks (an
older database restored: the service, whose checkpoint file is ahead, refuses to append; a
service without that file appends, and the exported checkpoint exposes the fork). An outside
checkpoint no pinned key signed (another log's, or forged) is refused before verification:
``CheckpointFileError`` naming the file (docs/audit.md "Trust model").

And the service itself: on a tampered head, ``POST /v1/decisions`` answers 503
``audit_unavailable`` and the writer appends and signs nothing.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key
from api.app import create_app
from api.services import Services, load_key
from audit import AuditStore, CheckpointFileError, Keyring, SigningKey, VerificationResult, init_key, upgrade
from audit.canonical import GENESIS_PREV_HASH
from audit.chain import encode_members
from audit.entry import prepare_fields
from audit.logverify import verify_trail
from audit.tlog import Checkpoint, MemoryTree, leaf_hash, sign_checkpoint
from audit.tlog.note import Verifier
from audit.trust import log_signer, log_verifier, trusted_verifiers, write_trusted_keys
from tests.api.conftest import bearer, make_settings
from tests.audit.helpers import decision_fields, libpq, superuser, triggers_disabled
from tests.audit.test_verify import _forge, _insert, _row
from tests.conftest import drop_database

from .figures import Figures
from .load import decision_body

V1_ENTRIES = 3  # a v1 chain recorded before the upgrade
ENTRIES = 12  # decisions through the service: leaves 2..13, one batch and one checkpoint each
LEAVES = ENTRIES + 1  # leaf 1 links the v1 head
SNAPSHOT_AT = 8  # decisions in the older state a fork restores (leaves 1..9)
SNAPSHOT_LEAVES = SNAPSHOT_AT + 1
FIRST_DECISION = 2  # the first leaf using a decision's blobs
pytestmark = pytest.mark.slow  # a pristine trail through the app, a database copy per case


def _create_from(server_url: str, name: str, template: str) -> str:
    from sqlalchemy.engine import make_url

    with psycopg.connect(libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _decide(services: Services, count: int, *, first: int) -> None:
    """``count`` decisions through the HTTP app, one after another (a batch each)."""
    key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
    with TestClient(create_app(services=services), raise_server_exceptions=True) as client:
        for n in range(first, first + count):
            response = client.post("/v1/decisions", json=decision_body(n), headers=bearer(key))
            assert response.status_code == 200, response.text


@dataclass(frozen=True)
class Pristine:
    server_url: str
    name: str  # the database holding the whole trail (a template)
    snapshot: str  # the same trail at SNAPSHOT_AT decisions (a template)
    home: Path
    key: SigningKey  # the service's signing key
    origin: str  # the log's origin
    pinned: Keyring  # public keys exported before any attack (v1)
    outside: Path  # the checkpoint note of size LEAVES, kept outside the database

    @property
    def pinned_verifiers(self) -> list[Verifier]:
        return [log_verifier(self.key.public, self.origin)]


@pytest.fixture(scope="module")
def pristine(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    tag = uuid.uuid4().hex[:10]
    name, snapshot = f"clearance_tamper_{tag}", f"clearance_tamper_{tag}_snap"
    from tests.conftest import create_database

    url = create_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("tamper")
    try:
        upgrade(url)
        settings = make_settings(home, url)
        key = load_key(settings)
        store = AuditStore.from_url(url, pooled=False)
        try:
            store.append_v1_batch([encode_members(prepare_fields(decision_fields(i))) for i in range(V1_ENTRIES)],
                                  key=key)
            origin = store.log_origin()
        finally:
            store.dispose()
        services = Services.start(settings)
        try:
            _decide(services, SNAPSHOT_AT, first=0)
        finally:
            services.close()
        _create_from(pg_server_url, snapshot, name)  # the backup a fork is restored from
        services = Services.start(settings)
        try:
            _decide(services, ENTRIES - SNAPSHOT_AT, first=SNAPSHOT_AT)
            pinned = Keyring(services.store.list_keys())
        finally:
            services.close()
        with psycopg.connect(libpq(url)) as conn:
            size, note = conn.execute("SELECT size, note FROM audit_tlog_checkpoints ORDER BY size DESC").fetchone()  # type: ignore[misc]
            batches = conn.execute("SELECT count(*) FROM audit_tlog_checkpoints").fetchone()
        assert (size, batches) == (LEAVES, (ENTRIES,)), (size, batches)  # one per batch; the first holds leaf 1
        outside = home / "outside-checkpoint"
        outside.write_text(note)
        yield Pristine(pg_server_url, name, snapshot, home, key, origin, pinned, outside)
    finally:
        drop_database(pg_server_url, snapshot)
        drop_database(pg_server_url, name)


@dataclass
class Attack:
    """What a case gets: its own copy of the trail and a superuser connection, guards off."""

    url: str
    conn: psycopg.Connection[Any]
    pristine: Pristine
    tmp: Path

    def verify(self, *, pinned: bool = False, outside: Sequence[Path] = ()) -> VerificationResult:
        """The whole trail, trusting the keys the database holds (what the service trusts
        today) or, ``pinned``, only those exported before the attack."""
        store = AuditStore.from_url(self.url, pooled=False)
        try:
            trusted = (self.pristine.pinned_verifiers if pinned
                       else trusted_verifiers(store.list_keys(), store.log_origin()))
            return verify_trail(store, trusted=trusted, keyring=self.pristine.pinned if pinned else None,
                                checkpoint_files=list(outside))
        finally:
            store.dispose()

    def verify_outside(self) -> VerificationResult:
        return self.verify(outside=[self.pristine.outside])

    def leaf(self, seq: int) -> dict[str, Any]:
        cur = self.conn.cursor(row_factory=psycopg.rows.dict_row)
        row = cur.execute("SELECT * FROM audit_leaves WHERE seq = %s", (seq,)).fetchone()
        assert row is not None, seq
        return row

    def hashes(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute("SELECT leaf_hash FROM audit_leaves ORDER BY seq")]

    def rewrite_leaf(self, seq: int, body: bytes) -> None:
        """New bytes for leaf ``seq`` with their leaf hash (a consistent row)."""
        self.conn.execute("UPDATE audit_leaves SET body = %s, leaf_hash = %s WHERE seq = %s",
                          (body, leaf_hash(body), seq))

    def resign(self, key: SigningKey, sizes: Sequence[int]) -> None:
        """Rebuild the tree from the stored leaf hashes and sign the checkpoints of ``sizes``
        with ``key`` (inserting those not stored); the head follows the last leaf."""
        tree = MemoryTree(self.hashes())
        signer = log_signer(key, self.pristine.origin)
        for size in sizes:
            root = tree.root(size)
            note = sign_checkpoint(Checkpoint(self.pristine.origin, size, root), [signer])
            self.conn.execute("INSERT INTO audit_tlog_checkpoints (size, root, note) VALUES (%s, %s, %s) "
                              "ON CONFLICT (size) DO UPDATE SET root = excluded.root, note = excluded.note",
                              (size, root, note))
        self.move_head(tree)

    def move_head(self, tree: MemoryTree) -> None:
        self.conn.execute("UPDATE audit_tlog_head SET size = %s, root = %s, frontier = %s",
                          (tree.frontier().size, tree.root(), tree.frontier().to_bytes()))

    def outside_note(self, name: str, origin: str, size: int, root: bytes, key: SigningKey) -> Path:
        path = self.tmp / name
        path.write_text(sign_checkpoint(Checkpoint(origin, size, root), [log_signer(key, origin)]))
        return path


@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[Attack], VerificationResult]
    seq: int
    check: str
    says: str = ""  # a fragment the reason must contain
    template: str = "whole"  # "whole" trail, or "snapshot" (the older state, for forks)
    file: str = ""  # instead of a seq: the outside checkpoint file verification must refuse, by name


CASES: list[Case] = []


def case(seq: int, check: str, says: str = "", template: str = "whole", file: str = "") -> Callable[..., Any]:
    def register(attack: Callable[[Attack], VerificationResult]) -> Callable[[Attack], VerificationResult]:
        CASES.append(Case(attack.__name__, attack, seq, check, says, template, file))
        return attack
    return register


def _flip_outcome(body: bytes) -> tuple[bytes, str]:
    doc = json.loads(body)
    doc["outcome"] = "deny" if doc["outcome"] == "allow" else "allow"
    from audit.canonical import canonical_bytes

    return canonical_bytes(doc), doc["outcome"]


# -- leaves -----------------------------------------------------------------------------------


@case(6, "leaf_hash")
def leaf_bytes_edited(a: Attack) -> VerificationResult:
    """The leaf's bytes edited (and its outcome column with them), its leaf hash kept."""
    body, outcome = _flip_outcome(bytes(a.leaf(6)["body"]))
    a.conn.execute("UPDATE audit_leaves SET body = %s, outcome = %s WHERE seq = 6", (body, outcome))
    return a.verify()


@case(9, "checkpoint")
def leaf_rewritten_with_its_leaf_hash(a: Attack) -> VerificationResult:
    """A consistent row (bytes, hash, column): only the signed root of checkpoint 9 tells."""
    body, outcome = _flip_outcome(bytes(a.leaf(9)["body"]))
    a.rewrite_leaf(9, body)
    a.conn.execute("UPDATE audit_leaves SET outcome = %s WHERE seq = 9", (outcome,))
    return a.verify()


LEAF_COLUMN_EDITS = {
    "outcome": "outcome = CASE outcome WHEN 'allow' THEN 'deny' ELSE 'allow' END",
    "app_id": "app_id = 'someone-else'",
    "decision_id": "decision_id = gen_random_uuid()",
    "recorded_at": "recorded_at = recorded_at + interval '1 microsecond'",
    "kind": "kind = 'policy_reload'",
    "input_sha256": "input_sha256 = result_sha256",
    "result_sha256": "result_sha256 = input_sha256",
}
for _column, _assignment in LEAF_COLUMN_EDITS.items():
    def _edit(a: Attack, assignment: str = _assignment) -> VerificationResult:
        a.conn.execute(f"UPDATE audit_leaves SET {assignment} WHERE seq = 7")
        return a.verify()
    _edit.__name__ = f"leaf_column_{_column}_edited"
    case(7, "column", says=_column)(_edit)

# The query facets stored with a blob, derived from its bytes: (blob, assignment).
BLOB_FACET_EDITS = {
    "regulatory_tier": ("input", "regulatory_tier = 'minimal'"),
    "sector": ("input", "sector = 'forged'"),
    "dangerous_capability": ("input", "dangerous_capability = 'cyber_offense'"),
    "models_allowed": ("result", "models_allowed = array_append(models_allowed, 'gpt-9')"),
    "models_denied": ("result", "models_denied = array_append(models_denied, 'gpt-9')"),
    "reason_codes": ("result", "reason_codes = array_append(reason_codes, 'FORGED')"),
    "provenances_allowed": ("result", "provenances_allowed = array_append(provenances_allowed, 'forged')"),
    "policy_revision": ("result", "policy_revision = 'sha256:forged'"),
}
for _facet, (_blob, _assignment) in BLOB_FACET_EDITS.items():
    def _edit_blob(a: Attack, blob: str = _blob, assignment: str = _assignment) -> VerificationResult:
        a.conn.execute(f"UPDATE audit_blobs SET {assignment} "
                       f"WHERE sha256 = (SELECT {blob}_sha256 FROM audit_leaves WHERE seq = {FIRST_DECISION})")
        return a.verify()
    _edit_blob.__name__ = f"blob_facet_{_facet}_edited"
    case(FIRST_DECISION, "column", says=_facet)(_edit_blob)


@case(FIRST_DECISION, "blob")
def blob_bytes_edited(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_blobs SET data = convert_to('{}', 'UTF8') "
                   f"WHERE sha256 = (SELECT input_sha256 FROM audit_leaves WHERE seq = {FIRST_DECISION})")
    return a.verify()


@case(5, "missing")
def middle_leaf_deleted(a: Attack) -> VerificationResult:
    a.conn.execute("DELETE FROM audit_leaves WHERE seq = 5")
    return a.verify()


@case(6, "seq")
def leaf_inserted_in_the_middle(a: Attack) -> VerificationResult:
    """Leaves 6.. shifted up by one, a copy of leaf 5 at 6, the head moved on by one."""
    a.conn.execute("CREATE TEMP TABLE shifted AS SELECT * FROM audit_leaves WHERE seq >= 6")
    a.conn.execute("DELETE FROM audit_leaves WHERE seq >= 6")
    a.conn.execute("INSERT INTO audit_leaves SELECT seq + 1, recorded_at, kind, decision_id, app_id, outcome, "
                   "input_sha256, result_sha256, leaf_hash, body FROM shifted")
    a.conn.execute("INSERT INTO audit_leaves SELECT 6, recorded_at, kind, decision_id, app_id, outcome, "
                   "input_sha256, result_sha256, leaf_hash, body FROM audit_leaves WHERE seq = 5")
    a.move_head(MemoryTree(a.hashes()))
    return a.verify()


@case(4, "seq")
def leaves_swapped(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_leaves SET seq = 1000004 WHERE seq = 4")
    a.conn.execute("UPDATE audit_leaves SET seq = 4 WHERE seq = 5")
    a.conn.execute("UPDATE audit_leaves SET seq = 5 WHERE seq = 1000004")
    return a.verify()


@case(4, "seq")
def bodies_swapped(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_leaves SET (body, leaf_hash) = (SELECT body, leaf_hash FROM audit_leaves o "
                   "WHERE o.seq = CASE audit_leaves.seq WHEN 4 THEN 5 ELSE 4 END) WHERE seq IN (4, 5)")
    return a.verify()


@case(LEAVES + 1, "seq")
def leaf_duplicated_after_the_head(a: Attack) -> VerificationResult:
    """A copy of leaf 5 stored again as the next seq (the head kept)."""
    a.conn.execute(f"INSERT INTO audit_leaves SELECT {LEAVES + 1}, recorded_at, kind, decision_id, app_id, "
                   "outcome, input_sha256, result_sha256, leaf_hash, body FROM audit_leaves WHERE seq = 5")
    return a.verify()


# -- checkpoints signed by a key that is not pinned ----------------------------------------------


def _resign_tail(a: Attack, intruder: SigningKey) -> None:
    """Leaf 10 rewritten, the tree rebuilt, checkpoints 10.. re-signed with ``intruder``."""
    body, outcome = _flip_outcome(bytes(a.leaf(10)["body"]))
    a.rewrite_leaf(10, body)
    a.conn.execute("UPDATE audit_leaves SET outcome = %s WHERE seq = 10", (outcome,))
    a.resign(intruder, range(10, LEAVES + 1))


@case(10, "checkpoint_key")
def tail_resigned_with_an_unknown_key(a: Attack) -> VerificationResult:
    _resign_tail(a, SigningKey.generate())
    return a.verify()


@case(10, "checkpoint_key")
def tail_resigned_with_a_key_registered_in_the_database(a: Attack) -> VerificationResult:
    intruder = SigningKey.generate()
    _resign_tail(a, intruder)
    a.conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
                   (intruder.key_id, intruder.public.raw))
    assert a.verify().valid  # the database vouches for its own intruder: only pinned keys tell
    return a.verify(pinned=True)


def _append_intruder_leaf(a: Attack, intruder: SigningKey) -> None:
    previous = a.leaf(LEAVES)
    doc = json.loads(bytes(previous["body"]))
    doc.update(seq=LEAVES + 1, decision_id=str(uuid.uuid4()), key_id=intruder.key_id)
    from audit.canonical import canonical_bytes

    body = canonical_bytes(doc)
    a.conn.execute("INSERT INTO audit_leaves SELECT %s, recorded_at, kind, %s, app_id, outcome, input_sha256, "
                   "result_sha256, %s, %s FROM audit_leaves WHERE seq = %s",
                   (LEAVES + 1, doc["decision_id"], leaf_hash(body), body, LEAVES))
    a.resign(intruder, [LEAVES + 1])


@case(LEAVES + 1, "unknown_key")
def leaf_appended_with_an_unknown_key(a: Attack) -> VerificationResult:
    _append_intruder_leaf(a, SigningKey.generate())
    return a.verify()


@case(LEAVES + 1, "unknown_key")
def leaf_appended_with_a_key_registered_in_the_database(a: Attack) -> VerificationResult:
    intruder = SigningKey.generate()
    _append_intruder_leaf(a, intruder)
    a.conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
                   (intruder.key_id, intruder.public.raw))
    assert a.verify().valid
    return a.verify(pinned=True)


# -- the tail, the head and the checkpoints ---------------------------------------------------


@case(SNAPSHOT_LEAVES + 1, "truncated", says=f"{LEAVES}")
def tail_cut_and_head_moved_back(a: Attack) -> VerificationResult:
    a.conn.execute(f"DELETE FROM audit_leaves WHERE seq > {SNAPSHOT_LEAVES}")
    a.conn.execute(f"DELETE FROM audit_tlog_checkpoints WHERE size > {SNAPSHOT_LEAVES}")
    a.move_head(MemoryTree(a.hashes()))
    inside = a.verify()
    assert inside.valid, inside  # undetectable inside the database (docs/audit.md)
    return a.verify_outside()


@case(11, "truncated")
def tail_deleted_head_kept(a: Attack) -> VerificationResult:
    a.conn.execute("DELETE FROM audit_leaves WHERE seq > 10")
    return a.verify()


@case(8, "checkpoint")
def stored_checkpoint_note_replaced(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_tlog_checkpoints SET note = (SELECT note FROM audit_tlog_checkpoints "
                   "WHERE size = 7) WHERE size = 8")
    return a.verify()


@case(8, "checkpoint")
def stored_checkpoint_root_edited(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_tlog_checkpoints SET root = decode(repeat('ab', 32), 'hex') WHERE size = 8")
    return a.verify()


@case(LEAVES, "checkpoint")
def head_checkpoint_deleted(a: Attack) -> VerificationResult:
    a.conn.execute(f"DELETE FROM audit_tlog_checkpoints WHERE size = {LEAVES}")
    return a.verify()


@case(LEAVES, "head")
def head_root_edited(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_tlog_head SET root = (SELECT root FROM audit_tlog_checkpoints WHERE size = 7)")
    return a.verify()


@case(0, "checkpoint_file", says="pinned key", file="other-log")
def outside_checkpoint_of_another_log(a: Attack) -> VerificationResult:
    """The real key's signature, over the same tree, for another origin: no pinned key (they
    are named for this log's origin) signed it, so the file is refused, by name."""
    root = MemoryTree(a.hashes()).root()
    note = a.outside_note("other-log", f"clearance.audit/{uuid.uuid4()}", LEAVES, root, a.pristine.key)
    return a.verify(outside=[note])


@case(0, "checkpoint_file", says="pinned key", file="forged")
def outside_checkpoint_forged(a: Attack) -> VerificationResult:
    """A checkpoint beyond the head, signed by a key nobody trusts: refused, by name, and never
    taken as evidence of a cut tail."""
    note = a.outside_note("forged", a.pristine.origin, LEAVES + 5, bytes(32), SigningKey.generate())
    return a.verify(outside=[note])


# -- the v1 chain before the log --------------------------------------------------------------


@case(2, "column", says="app_id")
def v1_entry_column_edited(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_entries SET app_id = 'forged' WHERE seq = 2")
    return a.verify()


@case(1, "v1_head")
def v1_head_moved_back(a: Attack) -> VerificationResult:
    a.conn.execute("UPDATE audit_chain_head SET seq = 2, head_hash = (SELECT entry_hash FROM audit_entries "
                   "WHERE seq = 2)")
    return a.verify()


# -- swapped public keys ----------------------------------------------------------------------


@case(1, "checkpoint_key")
def public_key_swapped_in_keys_table(a: Attack) -> VerificationResult:
    """The real key's row now holds the attacker's public key (its id kept)."""
    a.conn.execute("UPDATE audit_signing_keys SET public_key = %s WHERE key_id = %s",
                   (SigningKey.generate().public.raw, a.pristine.key.key_id))
    return a.verify()


@case(1, "unknown_key")
def trail_resigned_under_a_swapped_key(a: Attack) -> VerificationResult:
    """The attacker re-signs the v1 chain, every leaf's key id and every checkpoint of the log
    with a key of its own and swaps the keys table: the database alone then vouches for it; the
    pinned key does not (leaf 1 names a key nobody pinned), and the exported checkpoint, signed
    by the real key, is refused by a verifier that trusts the swapped table."""
    intruder = SigningKey.generate()
    previous: dict[str, Any] = {"entry_hash": GENESIS_PREV_HASH}
    for seq in range(1, V1_ENTRIES + 1):
        original = _row(a.conn, seq)
        forged = {**_forge(previous, json.loads(original["body"]), key=intruder, claim_key_id=intruder.key_id),
                  "recorded_at": original["recorded_at"]}
        a.conn.execute("DELETE FROM audit_entries WHERE seq = %s", (seq,))
        _insert(a.conn, forged)
        previous = forged
    a.conn.execute("UPDATE audit_chain_head SET head_hash = %s", (previous["entry_hash"],))
    # leaf 1 names the v1 head's hash: rewrite it too, then every checkpoint.
    from audit.canonical import canonical_bytes

    for seq in range(1, LEAVES + 1):  # each leaf names the key of the writer that appended it
        doc = json.loads(bytes(a.leaf(seq)["body"]))
        if seq == 1:
            doc["v1_head"]["entry_hash"] = bytes(previous["entry_hash"]).hex()
        doc["key_id"] = intruder.key_id
        a.rewrite_leaf(seq, canonical_bytes(doc))
    a.conn.execute("DELETE FROM audit_checkpoints")
    sizes = [int(r[0]) for r in a.conn.execute("SELECT size FROM audit_tlog_checkpoints")]
    a.resign(intruder, sizes)
    a.conn.execute("DELETE FROM audit_signing_keys")
    a.conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) VALUES (%s, %s)",
                   (intruder.key_id, intruder.public.raw))
    inside = a.verify()
    assert inside.valid, inside  # internally perfect
    with pytest.raises(CheckpointFileError) as refused:  # signed by a key the database dropped
        a.verify_outside()
    assert refused.value.path == str(a.pristine.outside), refused.value
    return a.verify(pinned=True)


# -- forks ------------------------------------------------------------------------------------


def _restored_service_refuses(a: Attack) -> None:
    """The service, restarted on the restored database with its own checkpoint file (of size
    LEAVES, ahead of the database), appends and signs nothing; verification with that
    checkpoint names the first missing seq."""
    _assert_service_refuses(a)
    behind = a.verify_outside()
    assert (behind.valid, behind.first_bad_seq, behind.check) == (False, SNAPSHOT_LEAVES + 1, "truncated"), behind
    assert f"{LEAVES}" in (behind.reason or ""), behind


def _append_through_blind_service(a: Attack, count: int) -> None:
    """A service on the restored database that never saw the checkpoint file (restored on
    another host, or the file deleted: docs/audit.md "What remains trusted") goes on appending
    with the same signing key: the fork only the exported checkpoint exposes."""
    settings = make_settings(a.pristine.home, a.url).model_copy(update={"checkpoint_file": a.tmp / "fresh.json"})
    services = Services.start(settings)
    try:
        _decide(services, count, first=1000)
    finally:
        services.close()


@case(LEAVES, "checkpoint", template="snapshot")
def fork_restored_then_appended_past_the_checkpoint(a: Attack) -> VerificationResult:
    _restored_service_refuses(a)
    _append_through_blind_service(a, ENTRIES - SNAPSHOT_AT + 3)
    inside = a.verify()
    assert inside.valid and inside.checked == LEAVES + 3, inside  # a fork is internally perfect
    return a.verify_outside()


@case(SNAPSHOT_LEAVES + 3, "truncated", says=f"{LEAVES}", template="snapshot")
def fork_restored_then_appended_short_of_the_checkpoint(a: Attack) -> VerificationResult:
    _restored_service_refuses(a)
    _append_through_blind_service(a, 2)
    assert a.verify().valid
    return a.verify_outside()


# -- functions shadowed -----------------------------------------------------------------------
# Whoever may create functions and set the database's search_path (its owner) can put a schema
# of its own before pg_catalog: an unqualified call in verification's SQL would then run that
# schema's function, which can make an edited column read as the signed value. Verification
# names pg_catalog's functions (docs/audit.md "Trust model").


def _shadow(a: Attack, function: str, *, made: bool = False) -> None:
    """``function`` (a CREATE FUNCTION in schema ``shadow``, ``made`` already or not) found
    before pg_catalog's own by every new connection to the copy."""
    if not made:
        a.conn.execute("CREATE SCHEMA shadow")
    a.conn.execute(function)
    schema = a.conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    a.conn.execute(f'ALTER DATABASE "{a.conn.info.dbname}" SET search_path = shadow, pg_catalog, "{schema}"')


@case(7, "column", says="recorded_at")
def column_edited_behind_a_shadowed_to_char(a: Attack) -> VerificationResult:
    """recorded_at moved by 1 µs; a to_char of the attacker's prints the signed time for it."""
    edited = a.conn.execute("UPDATE audit_leaves SET recorded_at = recorded_at + interval '1 microsecond' "
                            "WHERE seq = 7 RETURNING recorded_at AT TIME ZONE 'UTC'").fetchone()[0]  # type: ignore[index]
    _shadow(a, "CREATE FUNCTION shadow.to_char(timestamp, text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
               f"SELECT pg_catalog.to_char(CASE WHEN $1 = '{edited.isoformat()}'::timestamp "
               "THEN $1 - interval '1 microsecond' ELSE $1 END, $2) $$")
    return a.verify()


@case(7, "column", says="app_id")
def column_edited_behind_a_shadowed_array_agg(a: Attack) -> VerificationResult:
    """app_id edited; an array_agg(text) of the attacker's (more specific than pg_catalog's
    polymorphic one, so chosen wherever it is on the path) collects it as it was signed."""
    original = a.leaf(7)["app_id"]
    a.conn.execute("UPDATE audit_leaves SET app_id = 'someone-else' WHERE seq = 7")
    a.conn.execute("CREATE SCHEMA shadow")
    a.conn.execute("CREATE FUNCTION shadow.collect(text[], text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$ "
                   f"SELECT pg_catalog.array_append($1, CASE WHEN $2 = 'someone-else' THEN '{original}' ELSE $2 END) $$")
    _shadow(a, "CREATE AGGREGATE shadow.array_agg(text) (sfunc = shadow.collect, stype = text[])", made=True)
    return a.verify()


# -- the run ----------------------------------------------------------------------------------


@pytest.fixture
def attack(pristine: Pristine, tmp_path: Path) -> Iterator[Callable[[str], Attack]]:
    made: list[str] = []

    def make(template: str) -> Attack:
        name = f"clearance_tamper_case_{uuid.uuid4().hex[:10]}"
        made.append(name)
        url = _create_from(pristine.server_url, name, pristine.snapshot if template == "snapshot" else pristine.name)
        return Attack(url=url, conn=None, pristine=pristine, tmp=tmp_path)  # type: ignore[arg-type]

    yield make
    for name in made:
        drop_database(pristine.server_url, name)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_tampering_is_caught(attack: Callable[[str], Attack], c: Case, figures: Figures) -> None:
    a = attack(c.template)
    result: VerificationResult | CheckpointFileError
    with superuser(a.url) as conn, triggers_disabled(conn):
        a.conn = conn
        try:
            result = c.attack(a)
        except CheckpointFileError as exc:  # an outside checkpoint no pinned key signed
            result = exc
    if isinstance(result, CheckpointFileError):
        caught = (c.check == "checkpoint_file" and result.path == str(a.tmp / c.file)
                  and result.path in str(result) and c.says in str(result))
    else:
        caught = (not c.file and not result.valid and result.first_bad_seq == c.seq and result.check == c.check
                  and str(c.seq) in (result.reason or "") and c.says in (result.reason or ""))
    figures.tamper_cases[c.name] = caught
    assert caught, f"expected seq {c.seq} / {c.check} ({c.says!r}), got {result}"


def test_an_untouched_copy_verifies(attack: Callable[[str], Attack], pristine: Pristine) -> None:
    """The control: the copy itself is not what verification objects to, pinned or not."""
    a = attack("whole")
    for pinned in (False, True):
        result = a.verify(pinned=pinned, outside=[pristine.outside])
        assert result.valid and result.log == "v2" and result.checked == LEAVES, result
        assert result.checkpoints_checked == ENTRIES + 1, result  # each batch's, and the one outside


# -- the writer refuses to sign over a tampered head ------------------------------------------


def _cut_tail_keep_checkpoints(a: Attack) -> None:
    a.conn.execute(f"DELETE FROM audit_leaves WHERE seq > {SNAPSHOT_LEAVES}")
    a.move_head(MemoryTree(a.hashes()))


HEAD_TAMPERING: dict[str, Callable[[Attack], None]] = {
    "head_root_edited": lambda a: a.conn.execute(
        "UPDATE audit_tlog_head SET root = (SELECT root FROM audit_tlog_checkpoints WHERE size = 7)"),
    "tail_cut_and_head_moved_back": _cut_tail_keep_checkpoints,
    "tail_deleted_head_kept": lambda a: a.conn.execute("DELETE FROM audit_leaves WHERE seq > 10"),
    "leaf_stored_beyond_the_head": lambda a: a.conn.execute(
        f"INSERT INTO audit_leaves SELECT {LEAVES + 1}, recorded_at, kind, decision_id, app_id, outcome, "
        f"input_sha256, result_sha256, leaf_hash, body FROM audit_leaves WHERE seq = 5"),
    "head_checkpoint_deleted": lambda a: a.conn.execute(
        f"DELETE FROM audit_tlog_checkpoints WHERE size = {LEAVES}"),
    "tail_resigned_with_an_unknown_key": lambda a: _resign_tail(a, SigningKey.generate()),
}


def _assert_service_refuses(a: Attack) -> None:
    """The service (its signing key, its checkpoint file) answers ``POST /v1/decisions`` with
    503 ``audit_unavailable`` and appends and signs nothing."""
    before = _log_state(a.url)
    services = Services.start(make_settings(a.pristine.home, a.url))
    try:
        key, _ = create_key(services.db, role=Role.app, app_id="claims-summariser")
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            answers = [client.post("/v1/decisions", json=decision_body(2000 + i), headers=bearer(key))
                       for i in range(2)]
    finally:
        services.close()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "audit_unavailable", answer.text
        assert "decision_id" not in answer.json(), answer.text
    assert _log_state(a.url) == before  # nothing appended, nothing signed


def _log_state(url: str) -> tuple[Any, ...]:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM audit_leaves), (SELECT max(seq) FROM audit_leaves), "
                            "(SELECT count(*) FROM audit_tlog_checkpoints), (SELECT size FROM audit_tlog_head), "
                            "(SELECT root FROM audit_tlog_head)").fetchone()  # type: ignore[return-value]


@pytest.mark.parametrize("tampering", list(HEAD_TAMPERING))
def test_the_writer_refuses_to_append_over_a_tampered_head(attack: Callable[[str], Attack], tmp_path: Path,
                                                            tampering: str, figures: Figures) -> None:
    """``POST /v1/decisions`` answers 503 ``audit_unavailable`` (no decision without its entry)
    and the writer appends and signs nothing over a head that is not the newest trusted
    checkpoint; verification still names what was done."""
    figures.tamper_cases[f"writer_refuses_{tampering}"] = False
    a = attack("whole")
    with superuser(a.url) as conn, triggers_disabled(conn):
        a.conn = conn
        HEAD_TAMPERING[tampering](a)
    _assert_service_refuses(a)
    assert not a.verify().valid
    figures.tamper_cases[f"writer_refuses_{tampering}"] = True


def test_a_swapped_public_key_is_reported_over_http(attack: Callable[[str], Attack], pristine: Pristine,
                                                    tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The real key's row in ``audit_signing_keys`` now holds the attacker's public key.
    ``GET /v1/audit/verify`` of a service that pinned the attacker's key (the one the table now
    shows) names seq 1, whose leaf no key it pinned appended (no 500); a service holding the real
    key is not fooled: it logs the refused row at start-up and verifies the log as it was;
    ``GET /v1/audit/keys`` never serves the swapped key under the real key's id."""
    a = attack("whole")
    intruder = SigningKey.generate()
    with superuser(a.url) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_signing_keys SET public_key = %s WHERE key_id = %s",
                     (intruder.public.raw, pristine.key.key_id))
    # A service of its own key that pinned what the swapped table shows (the attacker's key
    # can sign nothing through the service: its public key is already in the table).
    fooled = tmp_path / "fooled"
    fooled.mkdir()
    own = init_key(fooled / "signing.key")
    pinned = write_trusted_keys(fooled / "trusted",
                                [log_verifier(k, pristine.origin) for k in (own.public, intruder.public)])
    answers = {}
    for name, settings in (("fooled", make_settings(fooled, a.url, trusted_keys=pinned)),
                           ("real", make_settings(pristine.home, a.url))):
        caplog.clear()
        services = Services.start(settings)
        try:
            auditor, _ = create_key(services.db, role=Role.auditor, app_id=None)
            with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
                answers[name] = (client.get("/v1/audit/verify", headers=bearer(auditor)), client.get("/v1/audit/keys"))
        finally:
            services.close()
        assert f"signing key row {pristine.key.key_id} is refused" in caplog.text, (name, caplog.text)
    for verified, keys in answers.values():
        assert verified.status_code == 200, verified.text
        assert keys.status_code == 200, keys.text
        served = {k["key_id"]: k["public_key"] for k in keys.json()["keys"]}
        assert served.get(pristine.key.key_id) != base64.b64encode(intruder.public.raw).decode()
    body = answers["fooled"][0].json()
    assert (body["valid"], body["first_bad_seq"], body["check"], body["checked"]) == (False, 1, "unknown_key", 0), body
    assert pristine.key.key_id in body["reason"], body
    body = answers["real"][0].json()
    assert (body["valid"], body["checked"]) == (True, LEAVES), body
