"""Export: streamed JSONL/CSV; evidence packs that verify offline and expose tampering."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.services import Services
from audit import SigningKey
from audit.canonical import format_time
from audit.errors import ExportError
from audit.export import stream_csv, stream_jsonl
from audit.pack import (
    load_trusted_keys,
    load_verifier_keys,
    prove_decision,
    verify_decision_proof,
    verify_pack,
    write_pack,
)
from audit.tlog import Checkpoint, MemoryTree, leaf_hash, sign_checkpoint
from audit.tlog.note import Verifier
from audit.trust import log_signer, trusted_verifiers
from audit.queries import EntryFilter
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import COUNT, T0, Dataset


def test_jsonl_export_streams_every_entry_and_verifies_offline(
    client: TestClient, keys: Keys, services: Services
) -> None:
    with client.stream("GET", "/v1/audit/export", params={"format": "jsonl"}, headers=bearer(keys.auditor)) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    assert [e["seq"] for e in lines] == list(range(1, COUNT + 1))
    hashes = []
    for line in lines:  # each leaf hashes to its leaf_hash and names its blobs by their digests
        assert leaf_hash(line["entry"].encode()) == bytes.fromhex(line["leaf_hash"])
        entry = json.loads(line["entry"])
        assert entry["result_sha256"] == hashlib.sha256(line["result"].encode()).hexdigest()
        assert entry["input_sha256"] == hashlib.sha256(line["input"].encode()).hexdigest()
        hashes.append(bytes.fromhex(line["leaf_hash"]))
    # The whole export rebuilds the root of the newest checkpoint, signed by the log's key.
    head = services.store.log_head()
    assert (head.size, head.root) == (COUNT, MemoryTree(hashes).root())


def test_csv_export_with_a_filter(client: TestClient, keys: Keys, dataset: Dataset) -> None:
    answer = client.get("/v1/audit/export", params={"format": "csv", "app_id": "citizen-services"},
                        headers=bearer(keys.auditor))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["seq"]) for r in rows] == dataset.seqs(lambda f, t: f["app_id"] == "citizen-services")
    assert {r["app_id"] for r in rows} == {"citizen-services"}
    first = dataset.fields[int(rows[0]["seq"]) - 1]
    assert rows[0]["decision_id"] == first["decision_id"] and rows[0]["outcome"] == first["outcome"]


def test_streams_page_through_in_small_pages(services: Services, dataset: Dataset) -> None:
    """Pages of 5 (as the real export does with 1000): same rows, in order, bounded at the start."""
    chunks = list(stream_jsonl(services.store, EntryFilter(outcome="allow"), page_size=5))
    seqs = [json.loads(line)["seq"] for chunk in chunks for line in chunk.splitlines()]
    assert seqs == dataset.seqs(lambda f, t: f["outcome"] == "allow")
    assert len(chunks) == -(-len(seqs) // 5)
    csv_chunks = list(stream_csv(services.store, EntryFilter(outcome="deny"), page_size=3))
    rows = list(csv.reader(io.StringIO(b"".join(csv_chunks).decode())))
    assert [int(r[0]) for r in rows[1:]] == dataset.seqs(lambda f, t: f["outcome"] == "deny")


def test_invalid_export_format_is_422(client: TestClient, keys: Keys) -> None:
    answer = client.get("/v1/audit/export", params={"format": "xml"}, headers=bearer(keys.auditor))
    assert answer.status_code == 422 and answer.json()["error"]["fields"][0]["field"] == "format"


# -- evidence packs ---------------------------------------------------------------------------


@pytest.fixture
def pack(services: Services, tmp_path: Path) -> Path:
    out = tmp_path / "pack"
    write_pack(services.store, out, start=T0 + timedelta(hours=12), end=T0 + timedelta(hours=25))
    return out


@pytest.fixture
def pinned(services: Services) -> list[Verifier]:
    store = services.store
    return list(trusted_verifiers(store.list_keys(), store.log_origin()))


def _lines(pack: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (pack / "entries.jsonl").read_text().splitlines()]


def _rewrite(pack: Path, entries: list[dict[str, Any]]) -> None:
    (pack / "entries.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def _verdict(pack: Path, pinned: list[Verifier]) -> tuple[bool, int | None, str | None]:
    verdict = verify_pack(pack, trusted=pinned)
    return verdict.valid, verdict.result.first_bad_seq, verdict.result.check


def test_pack_round_trip_verifies_offline(pack: Path, pinned: list[Verifier]) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    # Entries recorded 12:00..24:00 are seqs 13..25; the boundary leaves are 12 and 26.
    assert (manifest["first_seq"], manifest["last_seq"], manifest["checkpoint_size"]) == (13, 25, COUNT)
    assert set(manifest["files"]) == {"entries.jsonl", "blobs.jsonl", "boundary.jsonl", "checkpoint"}
    # Each blob once, every one the leaves name (and no other).
    blobs = [json.loads(line) for line in (pack / "blobs.jsonl").read_text().splitlines()]
    named = {json.loads(e["entry"])[m] for e in _lines(pack) for m in ("input_sha256", "result_sha256")} - {None}
    assert sorted(b["sha256"] for b in blobs) == sorted(named) and manifest["blobs"] == len(blobs)
    assert all("input" not in e and "result" not in e for e in _lines(pack))
    assert [e["seq"] for e in _lines(pack)] == list(range(13, 26))
    assert [json.loads(b)["seq"] for b in (pack / "boundary.jsonl").read_text().splitlines()] == [12, 26]
    verdict = verify_pack(pack, trusted=pinned)
    assert verdict.valid, verdict.to_dict()
    assert verdict.result.checked == 13 and verdict.result.checkpoints_checked == 1
    assert all(state == "ok" for state in verdict.files.values())


def test_a_tampered_entry_is_caught_with_its_seq(pack: Path, pinned: list[Verifier]) -> None:
    entries = _lines(pack)
    entries[4]["entry"] = entries[4]["entry"].replace('"outcome":"allow"', '"outcome":"deny"', 1) \
        if '"outcome":"allow"' in entries[4]["entry"] else entries[4]["entry"].replace('"outcome":"deny"', '"outcome":"allow"', 1)
    _rewrite(pack, entries)
    assert _verdict(pack, pinned) == (False, 17, "leaf_hash")
    assert verify_pack(pack, trusted=pinned).files["entries.jsonl"] == "sha256 mismatch"


def test_a_tampered_blob_is_caught_with_the_first_seq_naming_it(pack: Path, pinned: list[Verifier]) -> None:
    entries = _lines(pack)
    digest = json.loads(entries[2]["entry"])["result_sha256"]
    first = next(e["seq"] for e in entries if json.loads(e["entry"])["result_sha256"] == digest)
    path = pack / "blobs.jsonl"
    blobs = [json.loads(line) for line in path.read_text().splitlines()]
    for blob in blobs:
        if blob["sha256"] == digest:
            blob["data"] = blob["data"].replace('"allowed":[', '"allowed":[{"model":"x"},', 1)
    path.write_text("".join(json.dumps(b) + "\n" for b in blobs))
    assert _verdict(pack, pinned) == (False, first, "blob")


def test_a_missing_blob_is_caught(pack: Path, pinned: list[Verifier]) -> None:
    (pack / "blobs.jsonl").write_text("")
    assert _verdict(pack, pinned) == (False, 13, "blob")
    (pack / "blobs.jsonl").unlink()
    assert _verdict(pack, pinned) == (False, 13, "blob")
    assert verify_pack(pack, trusted=pinned).files["blobs.jsonl"] == "missing"


def test_a_v2_pack_with_blobs_on_each_line_still_verifies(pack: Path, pinned: list[Verifier]) -> None:
    """Packs written before v3 carried each leaf's blobs on its line."""
    blobs = {b["sha256"]: b["data"] for b in map(json.loads, (pack / "blobs.jsonl").read_text().splitlines())}
    entries = _lines(pack)
    for line in entries:
        leaf = json.loads(line["entry"])
        line["input"], line["result"] = blobs.get(leaf["input_sha256"]), blobs.get(leaf["result_sha256"])
    _rewrite(pack, entries)
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["format"] = "clearance.evidence-pack.v2"
    del manifest["files"]["blobs.jsonl"]
    manifest["files"]["entries.jsonl"]["sha256"] = hashlib.sha256((pack / "entries.jsonl").read_bytes()).hexdigest()
    (pack / "manifest.json").write_text(json.dumps(manifest))
    (pack / "blobs.jsonl").unlink()
    assert _verdict(pack, pinned) == (True, None, None)
    entries[1]["input"] = entries[1]["input"].replace('"workload":{', '"workload":{"x":1,', 1)
    _rewrite(pack, entries)
    assert _verdict(pack, pinned)[:3] == (False, 14, "blob")


def test_a_deleted_entry_is_caught_with_its_seq(pack: Path, pinned: list[Verifier]) -> None:
    entries = _lines(pack)
    del entries[6]
    _rewrite(pack, entries)
    assert _verdict(pack, pinned) == (False, 19, "missing")


def test_an_inserted_entry_is_caught(pack: Path, pinned: list[Verifier]) -> None:
    entries = _lines(pack)
    entries.insert(3, dict(entries[3]))
    _rewrite(pack, entries)
    assert _verdict(pack, pinned)[:2] == (False, 16)


def test_a_pack_cut_at_its_tail_or_head_is_caught(pack: Path, pinned: list[Verifier]) -> None:
    entries = _lines(pack)
    _rewrite(pack, entries[:-3])
    assert _verdict(pack, pinned) == (False, 23, "truncated")
    # Cut at the head, with the manifest rewritten to match: the boundary leaf 12 does not
    # adjoin entry 16, and entries 13..15 were recorded inside the requested range.
    _rewrite(pack, entries[3:])
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["first_seq"] = 16
    (pack / "manifest.json").write_text(json.dumps(manifest))
    assert _verdict(pack, pinned) == (False, 15, "truncated")


def test_a_resigned_pack_fails_against_the_pinned_keys(pack: Path, pinned: list[Verifier]) -> None:
    """An attacker edits an entry, rebuilds the tree from the pack and re-signs the checkpoint
    with their own key under the log's name: only pinned keys count."""
    entries = _lines(pack)
    origin = (pack / "checkpoint").read_text().split("\n", 1)[0]
    intruder = log_signer(SigningKey.generate(), origin)
    tree = MemoryTree([bytes.fromhex(e["leaf_hash"]) for e in entries])
    (pack / "checkpoint").write_text(sign_checkpoint(Checkpoint(origin, tree.size, tree.root()), [intruder]))
    assert _verdict(pack, pinned) == (False, 13, "checkpoint_key")
    assert not verify_pack(pack, trusted=[intruder.verifier()]).valid  # and the proofs no longer fold


def test_a_manifest_mismatch_alone_fails(pack: Path, pinned: list[Verifier]) -> None:
    with open(pack / "boundary.jsonl", "a") as handle:
        handle.write(" ")
    verdict = verify_pack(pack, trusted=pinned)
    assert (verdict.valid, verdict.result.check) == (False, "manifest")


def test_pinned_public_keys_work_as_verifier_keys(pack: Path, services: Services, tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text("".join(k.pem() for k in services.store.list_keys()))
    origin = services.store.log_origin()
    assert verify_pack(pack, trusted=list(trusted_verifiers(load_trusted_keys(pem).values(), origin))).valid
    keys = tmp_path / "verifier-keys"
    keys.write_text("# pinned\n" + "\n".join(v.verifier_key for v in trusted_verifiers(
        services.store.list_keys(), origin)) + "\n")
    assert verify_pack(pack, trusted=load_verifier_keys(keys)).valid


def test_pack_refuses_a_used_directory_and_an_empty_range(services: Services, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ExportError, match="not an empty directory"):
        write_pack(services.store, tmp_path / "used")
    with pytest.raises(ExportError, match="no entries"):
        write_pack(services.store, tmp_path / "empty", end=T0 - timedelta(days=1))


def test_whole_log_pack(services: Services, tmp_path: Path, pinned: list[Verifier]) -> None:
    manifest = write_pack(services.store, tmp_path / "all", start=T0)
    assert manifest["first_seq"] == 1 and manifest["last_seq"] == COUNT
    assert verify_pack(tmp_path / "all", trusted=pinned).valid
    shutil.rmtree(tmp_path / "all")
    assert format_time(T0).startswith("2026-03-02")


def test_one_decisions_proof_reveals_no_other(services: Services, dataset: Dataset,
                                            pinned: list[Verifier]) -> None:
    decision_id = dataset.fields[6]["decision_id"]
    document = prove_decision(services.store, decision_id)
    assert document["seq"] == 7 and json.loads(document["entry"])["decision_id"] == decision_id
    assert set(document) == {"format", "seq", "recorded_at", "leaf_hash", "entry", "input", "result", "tlog_proof"}
    assert verify_decision_proof(document, trusted=pinned).valid
    forged = {**document, "result": document["result"].replace("allow", "deny")}
    assert verify_decision_proof(forged, trusted=pinned).check == "blob"
    assert verify_decision_proof(document, trusted=[log_signer(SigningKey.generate(), "x").verifier()]).check \
        == "checkpoint_key"
