"""How a burst of keep-alive connections splits over `clearance serve --workers 2`: a shared
listening socket (CLEARANCE_REUSEPORT=false) against a socket per worker (the default).

    python bench/connection_split.py [--rounds 30] [--connections 32]

Each round opens the connections at once, asks on each which worker holds it (``GET
/v1/policy`` answers the worker's pid), and closes them. Prints, per mode, the larger worker's
share in each round. A scratch database of the machine's PostgreSQL, dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.apikeys import Role, create_key  # noqa: E402
from audit import AuditStore, upgrade  # noqa: E402
from tests.api.servers import serve_env, serving, wait_until  # noqa: E402
from tests.api.test_reuseport_workers import Server  # noqa: E402
from tests.conftest import MACHINE_PG, create_database, drop_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", default=MACHINE_PG, help="a PostgreSQL server (its URL) for the scratch database")
    args = parser.parse_args()
    name = f"clearance_split_{uuid.uuid4().hex[:12]}"
    url = create_database(args.database, name)
    try:
        upgrade(url)
        store = AuditStore.from_url(url, pooled=False)
        admin, _ = create_key(store.engine, role=Role.admin, app_id=None)
        store.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("false", "true"):
                env = serve_env(url, Path(tmp) / f"home-{mode}", reuseport=mode)
                with serving(env, "--workers", "2") as (process, base):
                    server = Server(process, int(base.rsplit(":", 1)[1]), admin, env)
                    wait_until(server.answers, 120, "the server did not answer")
                    seen: set[int] = set()
                    wait_until(lambda: seen.update(server.round(4)) or len(seen) == 2, 60, "both workers answering")
                    larger = []
                    for _ in range(args.rounds):
                        split = server.round(args.connections)
                        larger.append(max(split.values()) if len(split) == 2 else args.connections)
                        time.sleep(0.2)
                    print(f"CLEARANCE_REUSEPORT={mode}: the larger worker's share of {args.connections} "
                          f"connections over {args.rounds} rounds: min {min(larger)}, median "
                          f"{statistics.median(larger)}, max {max(larger)}; all {sorted(larger)}", flush=True)
    finally:
        drop_database(args.database, name)


if __name__ == "__main__":
    main()
