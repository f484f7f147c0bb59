"""The log over HTTP (auditor role): checkpoint, inclusion and consistency proofs, tlog-tiles.

Proofs served from the database are checked with the RFC 9162 verifiers and against a tree
rebuilt independently (``tests/audit/tlog/reference.py``) from the leaves the tiles serve."""

from __future__ import annotations

import copy

from fastapi.testclient import TestClient

from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit.tlog import open_checkpoint, verify_consistency, verify_inclusion
from audit.tlog.merkle import leaf_hash
from audit.tlog.tiles import TileHashReader, Tile, decode_entry_bundle, parse_tile_path
from tests.api.conftest import Keys, bearer
from tests.audit.tlog import reference


def _decide(client: TestClient, keys: Keys, n: int) -> None:
    for _ in range(n):
        assert client.post("/v1/decisions", json=copy.deepcopy(DECISION_REQUEST_EXAMPLE),
                           headers=bearer(keys.own_app)).status_code == 200


def test_checkpoint_and_proofs_verify_against_an_independent_tree(client: TestClient, keys: Keys,
                                                                   services: Services) -> None:
    _decide(client, keys, 5)
    auditor = bearer(keys.auditor)
    note = client.get("/v1/audit/checkpoint", headers=auditor)
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    signed = open_checkpoint(note.text, services.trusted_verifiers())
    size = signed.size
    assert client.get("/v1/audit/tlog/checkpoint", headers=auditor).text == note.text
    # Every leaf, through the entry bundles of tlog-tiles.
    leaves: list[bytes] = []
    for index in range(0, -(-size // 256)):
        width = min(256, size - index * 256)
        path = Tile(None, index, width).path()
        bundle = client.get(f"/v1/audit/tlog/{path}", headers=auditor)
        assert bundle.status_code == 200, bundle.text
        leaves += decode_entry_bundle(bundle.content)
    assert len(leaves) == size
    assert reference.mth(leaves) == signed.root_hash  # independent recursive RFC 6962 definition
    for seq in (1, size // 2 or 1, size):
        for tree_size in {seq, size}:
            answer = client.get("/v1/audit/proof/inclusion", params={"seq": seq, "size": tree_size}, headers=auditor)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            proof = [bytes.fromhex(h) for h in body["inclusion_proof"]]
            assert proof == reference.path(seq - 1, leaves[:tree_size])
            verify_inclusion(leaf_hash=leaf_hash(leaves[seq - 1]), index=seq - 1, size=tree_size, proof=proof,
                             root=reference.mth(leaves[:tree_size]))
    for old in range(0, size + 1):
        answer = client.get("/v1/audit/proof/consistency", params={"from": old, "to": size}, headers=auditor)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        proof = [bytes.fromhex(h) for h in body["consistency_proof"]]
        if 0 < old < size:
            assert proof == reference.proof(old, leaves)
        verify_consistency(old_size=old, new_size=size, old_root=reference.mth(leaves[:old]),
                           new_root=signed.root_hash, proof=proof)
    # Hash tiles: a generic tlog-tiles client rebuilds the root from them.
    def fetch(tile: Tile) -> bytes:
        answer = client.get(f"/v1/audit/tlog/{tile.path()}", headers=auditor)
        assert answer.status_code == 200, (tile.path(), answer.text)
        return answer.content

    from audit.tlog.merkle import root_hash
    assert root_hash(TileHashReader(fetch, size=size), size) == signed.root_hash


def test_bad_proof_requests_are_4xx_naming_the_field(client: TestClient, keys: Keys) -> None:
    _decide(client, keys, 1)
    auditor = bearer(keys.auditor)
    beyond = client.get("/v1/audit/proof/inclusion", params={"seq": 1, "size": 10**9}, headers=auditor)
    assert beyond.status_code == 422 and beyond.json()["error"]["fields"][0]["field"] == "size"
    upside = client.get("/v1/audit/proof/inclusion", params={"seq": 5, "size": 2}, headers=auditor)
    assert upside.status_code == 422 and upside.json()["error"]["fields"][0]["field"] == "seq"
    backwards = client.get("/v1/audit/proof/consistency", params={"from": 3, "to": 2}, headers=auditor)
    assert backwards.status_code == 422 and backwards.json()["error"]["fields"][0]["field"] == "from"
    missing = client.get("/v1/audit/proof/inclusion", params={"seq": "x", "size": 1}, headers=auditor)
    assert missing.status_code == 422
    assert client.get("/v1/audit/tlog/tile/0/x999/999", headers=auditor).status_code == 404
    assert client.get("/v1/audit/tlog/tile/9/000", headers=auditor).status_code == 404
    assert client.get("/v1/audit/tlog/nonsense", headers=auditor).status_code == 404


def test_the_log_endpoints_need_the_auditor_role(client: TestClient, keys: Keys) -> None:
    for path in ("/v1/audit/checkpoint", "/v1/audit/proof/inclusion?seq=1&size=1",
                 "/v1/audit/proof/consistency?from=0&to=1", "/v1/audit/tlog/checkpoint"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer(keys.own_app)).status_code == 403
