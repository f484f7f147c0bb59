"""The witness state machine (C2SP tlog-witness add-checkpoint), without HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.tlog.cosignature import CosignatureSigner, verified_cosignatures
from audit.tlog.merkle import EMPTY_ROOT, MemoryTree, consistency_proof, leaf_hash
from audit.tlog.note import Ed25519Signer, parse_note
from audit.tlog.witness import (
    BadRequest,
    OldSizeConflict,
    ProofRejected,
    UnknownLog,
    UntrustedCheckpoint,
    Witness,
    WitnessRefusal,
    WitnessState,
    WitnessStateError,
    format_request,
    logs_from_keys,
    origin_hash,
    parse_request,
)

from . import c2sp_vectors as c2sp

ORIGIN = "log.example/clearance"


class Log:
    def __init__(self, signer: Ed25519Signer | None = None) -> None:
        self.signer = signer or Ed25519Signer.generate(ORIGIN)
        self.tree = MemoryTree()

    def grow(self, count: int) -> None:
        start = self.tree.size
        self.tree.extend(leaf_hash(f"entry {i}".encode()) for i in range(start, start + count))

    def checkpoint(self, size: int | None = None, *, signer: Ed25519Signer | None = None) -> str:
        size = self.tree.size if size is None else size
        return sign_checkpoint(Checkpoint(ORIGIN, size, self.tree.root(size)), [signer or self.signer])

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(self.tree, old_size=old, new_size=self.tree.size if new is None else new)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def signer() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.example/w1")


@pytest.fixture
def witness(tmp_path: Path, log: Log, signer: CosignatureSigner) -> Iterator[Witness]:
    instance = Witness(signer=signer, logs=logs_from_keys([log.signer.verifier_key]), state=WitnessState(tmp_path))
    yield instance
    instance.close()


def _cosign(witness: Witness, log: Log, old: int) -> str:
    return witness.add_checkpoint(old_size=old, proof=log.proof(old) if old else [], checkpoint=log.checkpoint())


def test_cosigns_a_first_checkpoint_then_only_extensions(witness: Witness, log: Log, signer: CosignatureSigner) -> None:
    log.grow(5)
    line = _cosign(witness, log, 0)
    assert line.startswith("— witness.example/w1 ") and line.endswith("\n")
    assert verified_cosignatures(log.checkpoint() + line, [signer.verifier()])
    log.grow(8)
    _cosign(witness, log, 5)
    assert witness.cosigned_size(ORIGIN) == 13
    # The same checkpoint again is fine (old size = size, equal roots, empty proof).
    witness.add_checkpoint(old_size=13, proof=[], checkpoint=log.checkpoint())


def test_an_old_size_that_is_not_the_cosigned_size_is_a_conflict_with_that_size(witness: Witness, log: Log) -> None:
    log.grow(5)
    _cosign(witness, log, 0)
    log.grow(3)
    with pytest.raises(OldSizeConflict) as caught:
        _cosign(witness, log, 4)
    assert caught.value.size == 5
    with pytest.raises(OldSizeConflict):
        _cosign(witness, log, 0)


def test_a_rewritten_history_is_refused(witness: Witness, log: Log) -> None:
    log.grow(6)
    _cosign(witness, log, 0)
    forked = Log(log.signer)  # the log's own key, another history
    forked.tree.extend(leaf_hash(f"forged {i}".encode()) for i in range(10))
    with pytest.raises(ProofRejected, match="not consistent"):
        witness.add_checkpoint(old_size=6, proof=forked.proof(6), checkpoint=forked.checkpoint())
    # Same size, other root.
    forked_same = Log(log.signer)
    forked_same.tree.extend(leaf_hash(f"forged {i}".encode()) for i in range(6))
    with pytest.raises(ProofRejected):
        witness.add_checkpoint(old_size=6, proof=[], checkpoint=forked_same.checkpoint())
    assert witness.cosigned_size(ORIGIN) == 6  # nothing changed


def test_a_smaller_tree_is_refused(witness: Witness, log: Log) -> None:
    log.grow(9)
    _cosign(witness, log, 0)
    with pytest.raises(BadRequest, match="larger than the checkpoint size"):
        witness.add_checkpoint(old_size=9, proof=[], checkpoint=log.checkpoint(7))
    with pytest.raises(OldSizeConflict):
        witness.add_checkpoint(old_size=7, proof=[], checkpoint=log.checkpoint(7))


def test_proof_rules_of_the_empty_tree(witness: Witness, log: Log) -> None:
    log.grow(4)
    with pytest.raises(ProofRejected, match="must be empty"):
        witness.add_checkpoint(old_size=0, proof=log.proof(2), checkpoint=log.checkpoint())
    bogus_empty = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), [log.signer])
    with pytest.raises(ProofRejected, match="empty tree's root"):
        witness.add_checkpoint(old_size=0, proof=[], checkpoint=bogus_empty)
    witness.add_checkpoint(old_size=0, proof=[], checkpoint=sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT),
                                                                            [log.signer]))


def test_unknown_logs_and_untrusted_signatures(witness: Witness, log: Log) -> None:
    log.grow(3)
    other = Ed25519Signer.generate("other.example/log")
    with pytest.raises(UnknownLog):
        witness.add_checkpoint(old_size=0, proof=[], checkpoint=sign_checkpoint(
            Checkpoint("other.example/log", 3, log.tree.root()), [other]))
    insider = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(UntrustedCheckpoint, match="trusted key"):
        witness.add_checkpoint(old_size=0, proof=[], checkpoint=log.checkpoint(signer=insider))
    tampered = log.checkpoint().replace("\n3\n", "\n2\n", 1)
    with pytest.raises(UntrustedCheckpoint, match="invalid"):
        witness.add_checkpoint(old_size=0, proof=[], checkpoint=tampered)
    assert witness.cosigned_size(ORIGIN) == 0


def test_state_survives_a_restart_and_is_exclusive(tmp_path: Path, log: Log, signer: CosignatureSigner) -> None:
    logs = logs_from_keys([log.signer.verifier_key])
    first = Witness(signer=signer, logs=logs, state=WitnessState(tmp_path))
    log.grow(7)
    _cosign(first, log, 0)
    with pytest.raises(WitnessStateError, match="in use"):
        WitnessState(tmp_path)
    first.close()
    second = Witness(signer=signer, logs=logs, state=WitnessState(tmp_path))
    assert second.cosigned_size(ORIGIN) == 7
    stored = second.latest(origin_hash(ORIGIN))
    assert stored is not None and stored.startswith(parse_note(log.checkpoint()).text)
    assert verified_cosignatures(stored, [signer.verifier()])
    with pytest.raises(OldSizeConflict):
        _cosign(second, log, 0)
    second.close()


def test_a_state_file_the_witness_did_not_write_stops_the_start(tmp_path: Path, log: Log,
                                                                 signer: CosignatureSigner) -> None:
    logs = logs_from_keys([log.signer.verifier_key])
    state = WitnessState(tmp_path)
    log.grow(3)
    state.store(ORIGIN, log.checkpoint())  # a rolled-back or planted file without our cosignature
    with pytest.raises(WitnessStateError, match="not a checkpoint this witness cosigned"):
        Witness(signer=signer, logs=logs, state=state)
    state.close()


def test_racing_requests_from_the_same_size_cosign_once(witness: Witness, log: Log) -> None:
    log.grow(2)
    _cosign(witness, log, 0)
    log.grow(5)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            _cosign(witness, log, 2)
            results.append("ok")
        except OldSizeConflict:
            results.append("conflict")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"]


def test_the_spec_example_request_parses() -> None:
    request = parse_request(c2sp.ADD_CHECKPOINT_BODY.encode())
    assert request.old_size == 20852014 and len(request.proof) == 4
    assert request.checkpoint == c2sp.ADD_CHECKPOINT_BODY.split("\n\n", 1)[1]
    assert format_request(old_size=request.old_size, proof=request.proof, checkpoint=request.checkpoint) == \
        c2sp.ADD_CHECKPOINT_BODY.encode()


@pytest.mark.parametrize(("body", "reason"), [
    (b"old 5\n", "no empty line"),
    (b"old 05\n\nx", "not 'old <size>'"),
    (b"old -1\n\nx", "not 'old <size>'"),
    (b"new 5\n\nx", "not 'old <size>'"),
    (b"old 5\nnot-base64\n\nx", "line 2"),
    (b"old 5\nAAAA\n\nx", "line 2"),
    (b"old 5\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\nx", "at most 63"),
    (b"\xff\xfe\n\n", "UTF-8"),
])
def test_malformed_requests_are_bad_requests(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_request(body)


def test_a_malformed_checkpoint_is_a_bad_request(witness: Witness) -> None:
    with pytest.raises(BadRequest, match="checkpoint"):
        witness.handle(b"old 0\n\nnot a note\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_body_is_answered_with_a_refusal_or_a_cosignature(witness: Witness, log: Log, data: st.DataObject) -> None:
    # Never another exception (the HTTP layer would answer 500): random bytes, and valid bodies
    # with one byte changed, dropped or inserted.
    if log.tree.size == 0:
        log.grow(6)
    valid = format_request(old_size=witness.cosigned_size(ORIGIN), proof=[], checkpoint=log.checkpoint())
    body = data.draw(st.one_of(
        st.binary(max_size=300),
        st.builds(lambda i, b: valid[:i] + bytes([b]) + valid[i + 1:], st.integers(0, len(valid) - 1),
                  st.integers(0, 255)),
        st.builds(lambda i: valid[:i] + valid[i + 1:], st.integers(0, len(valid) - 1)),
        st.builds(lambda i, b: valid[:i] + b + valid[i:], st.integers(0, len(valid)), st.binary(max_size=8)),
    ))
    try:
        witness.handle(body)
    except WitnessRefusal:
        pass
