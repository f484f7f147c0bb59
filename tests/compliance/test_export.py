"""Export: streamed JSONL/CSV; evidence packs that verify offline and expose tampering."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.services import Services
from audit import Keyring, SigningKey, StoredEntry, verify_entries
from audit.canonical import format_time
from audit.errors import ExportError
from audit.export import stream_csv, stream_jsonl
from audit.pack import load_trusted_keys, verify_pack, write_pack
from audit.queries import EntryFilter
from tests.api.conftest import Keys, bearer
from tests.compliance.conftest import COUNT, T0, Dataset


def test_jsonl_export_streams_every_entry_and_verifies_offline(
    client: TestClient, keys: Keys, services: Services
) -> None:
    with client.stream("GET", "/v1/audit/export", params={"format": "jsonl"}, headers=bearer(keys.auditor)) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        lines = [line for line in answer.iter_lines() if line]
    entries = [StoredEntry.from_export_dict(json.loads(line)) for line in lines]
    assert [e.seq for e in entries] == list(range(1, COUNT + 1))
    keyring = Keyring.from_dict(client.get("/v1/audit/keys").json())
    assert verify_entries(entries, keyring=keyring).valid


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
def pinned(client: TestClient, tmp_path: Path) -> Keyring:
    path = tmp_path / "published-keys.json"
    path.write_text(json.dumps(client.get("/v1/audit/keys").json()))
    return load_trusted_keys(path)


def _lines(pack: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (pack / "entries.jsonl").read_text().splitlines()]


def _rewrite(pack: Path, entries: list[dict[str, Any]]) -> None:
    (pack / "entries.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_pack_round_trip_verifies_offline(pack: Path, pinned: Keyring) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    # Entries recorded 12:00..24:00 are seqs 13..25; checkpoints are signed at 1, 11, 21, 31, …
    # so the pack is extended to the covering checkpoint 31.
    assert (manifest["first_seq"], manifest["requested_last_seq"], manifest["last_seq"]) == (13, 25, 31)
    assert manifest["tail_checkpoint_seq"] == 31 and manifest["checkpoints"] == 2  # 21 and 31
    assert set(manifest["files"]) == {"entries.jsonl", "keys.json", "checkpoints.jsonl"}
    assert [e["seq"] for e in _lines(pack)] == list(range(13, 32))
    verdict = verify_pack(pack, keyring=pinned)
    assert verdict.valid, verdict.to_dict()
    assert verdict.result.checked == 19 and verdict.result.checkpoints_checked == 2
    assert all(state == "ok" for state in verdict.files.values())
    assert verify_pack(pack).keys_source == "pack"


def test_a_tampered_body_is_caught_with_its_seq(pack: Path, pinned: Keyring) -> None:
    entries = _lines(pack)
    entries[4]["body"] = entries[4]["body"].replace('"outcome":"allow"', '"outcome":"deny"', 1) \
        if '"outcome":"allow"' in entries[4]["body"] else entries[4]["body"].replace('"outcome":"deny"', '"outcome":"allow"', 1)
    _rewrite(pack, entries)
    verdict = verify_pack(pack, keyring=pinned)
    assert not verdict.valid
    assert (verdict.result.first_bad_seq, verdict.result.check) == (17, "entry_hash")
    assert verdict.files["entries.jsonl"] == "sha256 mismatch"


def test_a_deleted_entry_is_caught_with_its_seq(pack: Path, pinned: Keyring) -> None:
    entries = _lines(pack)
    del entries[6]
    _rewrite(pack, entries)
    verdict = verify_pack(pack, keyring=pinned)
    assert (verdict.valid, verdict.result.first_bad_seq, verdict.result.check) == (False, 19, "missing")


def test_a_cut_tail_is_caught_by_the_packs_checkpoint(pack: Path, pinned: Keyring) -> None:
    _rewrite(pack, _lines(pack)[:-3])
    verdict = verify_pack(pack, keyring=pinned)
    assert (verdict.valid, verdict.result.first_bad_seq, verdict.result.check) == (False, 29, "truncated")


def test_a_resigned_pack_fails_against_the_published_keys(pack: Path, pinned: Keyring) -> None:
    """An attacker re-signs an edited entry with their own key and puts that key in keys.json."""
    from audit.canonical import entry_hash, entry_signing_input

    intruder = SigningKey.generate()
    entries = _lines(pack)
    last = entries[-1]
    body = last["body"].replace(last["key_id"], intruder.key_id)
    digest = entry_hash(bytes.fromhex(last["prev_hash"]), body.encode())
    import base64

    last.update(body=body, key_id=intruder.key_id, entry_hash=digest.hex(),
                signature=base64.b64encode(intruder.sign(entry_signing_input(digest))).decode())
    _rewrite(pack, entries)
    keys_file = json.loads((pack / "keys.json").read_text())
    keys_file["keys"].append(intruder.public.to_dict())
    (pack / "keys.json").write_text(json.dumps(keys_file))
    verdict = verify_pack(pack, keyring=pinned)
    assert (verdict.valid, verdict.result.first_bad_seq) == (False, 31)
    assert verdict.result.check in ("unknown_key", "checkpoint")


def test_a_manifest_mismatch_alone_fails(pack: Path, pinned: Keyring) -> None:
    with open(pack / "keys.json", "a") as handle:
        handle.write(" ")
    verdict = verify_pack(pack, keyring=pinned)
    assert (verdict.valid, verdict.result.check) == (False, "manifest")


def test_a_pem_public_key_is_a_trusted_key(pack: Path, services: Services, tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text("".join(k.pem() for k in services.store.list_keys()))
    assert verify_pack(pack, keyring=load_trusted_keys(pem)).valid


def test_pack_refuses_a_used_directory_and_an_empty_range(services: Services, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ExportError, match="not an empty directory"):
        write_pack(services.store, tmp_path / "used")
    with pytest.raises(ExportError, match="no entries"):
        write_pack(services.store, tmp_path / "empty", end=T0 - timedelta(days=1))


def test_whole_log_pack_without_covering_checkpoint(services: Services, tmp_path: Path, pinned: Keyring) -> None:
    manifest = write_pack(services.store, tmp_path / "all", start=T0)
    assert manifest["first_seq"] == 1 and manifest["last_seq"] >= COUNT
    assert verify_pack(tmp_path / "all", keyring=pinned).valid
    shutil.rmtree(tmp_path / "all")
    assert format_time(T0).startswith("2026-03-02")
