"""Socket waits per audit batch: psycopg's ``wait`` calls (one per blocking poll of the socket)
counted with cProfile, for batches of 8 through the writer's own batch step (``_commit``), on the
writer's own head and after a second writer's batch (two workers). A count, not a time: it does
not depend on the machine's load.

    python bench/writer_round_trips.py
"""

import cProfile
import pstats
import sys
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audit import AuditStore, AuditWriter, SigningKey, upgrade  # noqa: E402
from audit.writer import _Pending  # noqa: E402
from audit.chain import encode_members  # noqa: E402
from audit.entry import draft_leaf, prepare_fields  # noqa: E402
from bench.append_cost import DEFAULT_URL, decision_entries, scratch_database  # noqa: E402


def waits(profile: cProfile.Profile) -> int:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(v[1] for k, v in stats.items() if k[0].endswith("psycopg/connection.py") and k[2] == "wait")


def main() -> None:
    samples = decision_entries(6)
    drafts = [draft_leaf(encode_members(prepare_fields(s))) for s in samples]
    with scratch_database(DEFAULT_URL) as url:
        upgrade(url)
        store, other = AuditStore.from_url(url), AuditStore.from_url(url)
        key = SigningKey.generate()
        a, b = AuditWriter(store, key=key).start(), AuditWriter(other, key=key).start()
        a.append(samples[0])
        a.append(samples[1])  # the second batch finds its own head: the next ones take one round trip
        for label, n, interleave in (("own head", 100, False), ("after another writer", 100, True)):
            total = 0
            for i in range(n):
                if interleave:
                    b.append(samples[i % 6])
                pr = cProfile.Profile()
                pr.enable()
                a._commit([_Pending(drafts[(i + j) % 6], Future()) for j in range(8)])
                pr.disable()
                total += waits(pr)
            print(f"{label}: {total / n:.1f} socket waits per batch of 8")
        print({k: v for k, v in vars(a.stats).items() if k in ("batches", "one_trip", "full_checks", "head_moved")})
        a.close()
        b.close()
        store.dispose()
        other.dispose()


if __name__ == "__main__":
    main()
