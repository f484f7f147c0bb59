"""Registering a signing key is idempotent, also when several processes do it at once (each
worker of ``clearance serve`` registers the key at start)."""

from __future__ import annotations

import threading

from audit import AuditStore, SigningKey


def test_workers_registering_the_same_key_at_once_all_succeed(store: AuditStore) -> None:
    # Without the retry in AuditStore.register_key about one round in two failed here with a
    # unique violation on the public key (ON CONFLICT (key_id) does not arbitrate that index).
    failures: list[BaseException] = []
    keys = [SigningKey.generate().public for _ in range(40)]
    for key in keys:
        barrier = threading.Barrier(4)

        def register(key=key, barrier=barrier) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            try:
                store.register_key(key)
            except BaseException as exc:  # noqa: BLE001 - collected, asserted below
                failures.append(exc)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    registered = {k.key_id: k.raw for k in store.list_keys()}
    assert all(registered[k.key_id] == k.raw for k in keys)
