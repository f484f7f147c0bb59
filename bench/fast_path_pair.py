"""The event loop's CPU per audited decision with and without the fast path of ``POST
/v1/decisions`` (api/fast_path.py), in one process, rounds alternated: no server, no socket.

    python bench/fast_path_pair.py [--rounds 6] [--decisions 2000] [--concurrency 32]

One ``Services`` on a scratch database, two apps over it (``create_app(fast_decisions=True)``
and ``False``), driven through ASGI directly by ``--concurrency`` tasks on one event loop, the
reference policy's workloads with fresh request ids (each decision is recorded). Each round
sends ``--decisions`` through one app, then the same through the other; the figure is the main
thread's CPU (the event loop; the audit writer runs on its own thread) per decision. uvicorn's
share (parsing, sending) is not in it: it is the same either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.apikeys import Role, create_key  # noqa: E402
from api.app import create_app  # noqa: E402
from api.services import Services  # noqa: E402
from api.settings import Settings  # noqa: E402
from audit import init_key, upgrade  # noqa: E402
from bench.append_cost import DEFAULT_URL, scratch_database  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402


async def drive(app: Any, keys: dict[str, bytes], decisions: int, concurrency: int, tag: str) -> float:
    """Send ``decisions`` through ``app``; the main thread's CPU seconds it took."""
    bodies = [(keys[w["app_id"]], w) for w in WORKLOADS if w["app_id"] in keys]
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        key, workload = bodies[i % len(bodies)]
        body = json.dumps({**workload, "context": {"request_id": f"{tag}-{i}"}}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/decisions", "raw_path": b"/v1/decisions", "root_path": "",
                 "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                 "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + key),
                             (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the server's http.disconnect comes only when the client goes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    queue = iter(range(decisions))

    async def caller() -> None:
        for i in queue:
            await one(i)

    started = time.thread_time()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    spent = time.thread_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"not every decision answered 200: {statuses}")
    return spent


def measure(server_url: str, *, rounds: int, decisions: int, concurrency: int) -> dict[str, Any]:
    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        key_file = Path(tmp) / "signing.key"
        init_key(key_file)
        settings = Settings(database_url=url, signing_key=str(key_file), policy_dir=REPO / "rego", home=Path(tmp))
        services = Services.start(settings)
        try:
            keys = {w["app_id"]: create_key(services.db, role=Role.app, app_id=w["app_id"])[0].encode()
                    for w in WORKLOADS}
            apps = {"fast": create_app(services=services, fast_decisions=True),
                    "route": create_app(services=services, fast_decisions=False)}
            for app in apps.values():
                app.state.services = services  # what the lifespan would set; nothing else of it is needed

            async def run() -> dict[str, list[float]]:
                for name, app in apps.items():  # warm: key caches, decision cache, plans
                    await drive(app, keys, 300, concurrency, f"warm-{name}")
                spent: dict[str, list[float]] = {name: [] for name in apps}
                for r in range(rounds):
                    for name, app in apps.items():
                        spent[name].append((await drive(app, keys, decisions, concurrency, f"{name}-{r}"))
                                           / decisions * 1e6)
                return spent

            spent = asyncio.run(run())
        finally:
            services.close()
    return {"rounds": rounds, "decisions_per_round": decisions, "concurrency": concurrency,
            "event_loop_cpu_us_per_decision": {name: [round(v, 1) for v in values] for name, values in spent.items()},
            "median": {name: round(statistics.median(values), 1) for name, values in spent.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    text = json.dumps(measure(args.database, rounds=args.rounds, decisions=args.decisions,
                              concurrency=args.concurrency))
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
