"""Shared helpers of the audit tests: entry fields, raw SQL access, a killable TCP proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import uuid_utils
from sqlalchemy.engine import make_url

from audit.tlog.merkle import Frontier

ENTRY_TABLES = ("audit_entries", "audit_checkpoints", "audit_signing_keys", "audit_leaves", "audit_blobs",
                 "audit_tlog_nodes", "audit_tlog_checkpoints")


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def decision_fields(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """Fields of a realistic decision entry (what the service submits)."""
    decision_id = str(uuid_utils.uuid7())
    revision = "sha256:" + "ab" * 32
    outcome = "allow" if i % 4 else "deny"
    allowed = (
        [
            {"model": "gemma-4-31b", "deployment": "self-hosted", "rank": 1,
             "price_per_mtok": 0.1, "provenance": "open_western",
             "obligations": ["attribution:Gemma is provided under the Gemma Terms of Use"]},
            {"model": "qwen-3-32b", "deployment": "self-hosted", "rank": 2,
             "price_per_mtok": 0.12, "provenance": "open_chinese", "obligations": []},
        ]
        if outcome == "allow"
        else []
    )
    fields: dict[str, Any] = {
        "kind": "decision",
        "decision_id": decision_id,
        "app_id": f"app-{i % 3}",
        "caller_key_id": f"ak_{i % 5}",
        "input": {
            "app": {"id": f"app-{i % 3}", "owner": "team", "programs": [],
                    "capability_approvals": [], "attestations": []},
            "workload": {
                "task": "summarization", "quality_tier": "commodity",
                "regulatory_tier": "regulated" if i % 2 else "standard",
                "sector": "financial_services", "jurisdictions": ["EU", "US"],
                "data_classification": "confidential", "dangerous_capability": "none",
                "commercial": True, "monthly_active_users": 1_200_000 + i,
                "min_context_tokens": 32000, "max_price_per_mtok": 5.0,
                "deployment_modes": ["self_hosted", "vendor_api", "cloud"],
            },
            "caller": {"key_id": f"ak_{i % 5}", "role": "app"},
            "context": {"request_id": f"req-{i}"},
        },
        "result": {
            "decision_id": decision_id,
            "outcome": outcome,
            "allowed": allowed,
            "denied": [
                {"model": "llama-4-maverick", "deployment": "together-api",
                 "reasons": [{"code": "LICENCE_MAU_CAP", "message": "800000000 MAU exceeds the cap"},
                             {"code": "UNSUITABLE_PRICE", "message": "price above limit"}]},
                {"model": "deepseek-v4", "deployment": "vendor-api",
                 "reasons": [{"code": "FOREIGN_HOSTED_API", "message": "restricted origin"}]},
            ],
            "policy_revision": revision,
        },
        "outcome": outcome,
        "policy_revision": revision,
        "engine": "regorus",
    }
    fields.update(overrides)
    return fields


@contextlib.contextmanager
def superuser(url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as the (superuser) test role."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        yield conn


@contextlib.contextmanager
def triggers_disabled(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """What an attacker with owner/superuser rights does first: switch the guards off."""
    for table in (*ENTRY_TABLES, "audit_chain_head", "audit_tlog_head"):
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        for table in ENTRY_TABLES:
            conn.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_append_only")
            conn.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_no_truncate")
        conn.execute("ALTER TABLE audit_chain_head ENABLE ALWAYS TRIGGER audit_chain_head_guard")
        conn.execute("ALTER TABLE audit_chain_head ENABLE ALWAYS TRIGGER audit_no_truncate")
        conn.execute("ALTER TABLE audit_tlog_head ENABLE ALWAYS TRIGGER audit_tlog_head_guard")
        conn.execute("ALTER TABLE audit_tlog_head ENABLE ALWAYS TRIGGER audit_no_truncate")


def count_entries(url: str) -> int:
    with superuser(url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_leaves").fetchone()
        assert row is not None
        return int(row[0])


def head_seq(url: str) -> int:
    with superuser(url) as conn:
        row = conn.execute("SELECT size FROM audit_tlog_head").fetchone()
        assert row is not None
        return int(row[0])


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; :meth:`stop` cuts every connection at once
    (the database "goes down" for the writer without touching the shared server)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [*sockets, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def proxy_to(url: str) -> tuple[TcpProxy, str]:
    """A started :class:`TcpProxy` to the server of ``url``, and ``url`` through it. Skips the
    test when that server listens on a socket only (a laptop's embedded PostgreSQL): there is
    no TCP connection to cut."""
    direct = make_url(url)
    if not direct.port:
        pytest.skip("needs a PostgreSQL reachable over TCP to cut the connection with a proxy")
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port).start()
    return proxy, direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def writer_process(url: str, count: int, threads: int, key_pem: bytes, out: Any,
                   trusted_keys: list[str] | None = None) -> None:
    """Run in a child process: append ``count`` entries from ``threads`` threads, trusting
    ``trusted_keys`` (verifier key strings: the pinned keys of every writer; default its own)."""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography.hazmat.primitives import serialization

    from audit import AuditStore, AuditWriter, SigningKey
    from audit.tlog.note import Ed25519Verifier

    trusted = [Ed25519Verifier.from_key(k) for k in trusted_keys] if trusted_keys else None
    private = serialization.load_pem_private_key(key_pem, password=None)
    key = SigningKey.from_private(private, source="test")  # type: ignore[arg-type]
    store = AuditStore.from_url(url)
    try:
        with AuditWriter(store, key=key, max_wait=0.002, trusted=trusted) as writer, ThreadPoolExecutor(
            threads
        ) as pool:
            receipts = list(pool.map(lambda i: writer.append(decision_fields(i)), range(count)))
        out.put(sorted(r.seq for r in receipts))
    finally:
        store.dispose()


def verify_whole(store: Any, **options: Any) -> Any:
    """The whole trail (v2 log, and any v1 chain before it) with the keys the database holds,
    for tests in which no insider touched the database (the service trusts pinned keys only)."""
    from audit.logverify import verify_trail
    from audit.trust import trusted_verifiers

    return verify_trail(store, trusted=trusted_verifiers(store.list_keys(), store.log_origin()), **options)


def cut_tail(conn: psycopg.Connection[Any], size: int) -> None:
    """Remove every leaf and checkpoint after ``size`` and move the head back to a head that is
    self-consistent and signed by the pinned key (the checkpoint of ``size``): a rolled-back
    tail. ``conn`` must be an owner's with the guards off."""
    conn.execute("DELETE FROM audit_leaves WHERE seq > %s", (size,))
    conn.execute("DELETE FROM audit_tlog_checkpoints WHERE size > %s", (size,))
    hashes = [bytes(r[0]) for r in conn.execute("SELECT leaf_hash FROM audit_leaves ORDER BY seq")]
    frontier = Frontier().grow(hashes, nodes=None)
    conn.execute("UPDATE audit_tlog_head SET size = %s, root = %s, frontier = %s",
                 (size, frontier.root(), frontier.to_bytes()))
