"""A worker's CPU per `GET /healthz` response with and without a setting, alternated.

    python bench/response_cpu.py [--pairs 7] [--seconds 5] [--setting CLEARANCE_HTTP_COALESCE]

Each run starts `clearance serve --workers 1` on a scratch database of the machine's
PostgreSQL (one signing key for all runs), warms it with `wrk` for 2 s, then drives
`/healthz` for ``--seconds`` at 8 connections and divides the server process's user + system
CPU (/proc) by the requests answered. The setting is ``true`` then ``false`` in each pair.
Needs wrk.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.api.test_serve_embedded import free_port  # noqa: E402
from tests.conftest import MACHINE_PG, create_database, drop_database  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def one_run(env: dict[str, str], seconds: int) -> tuple[float, float]:
    """(CPU µs per response, responses/s) of one server."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "1"],
                              env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        subprocess.run(["wrk", "-t1", "-c8", "-d2s", url], capture_output=True, check=True)
        before = cpu_seconds(server.pid)
        out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", url], capture_output=True, text=True,
                             check=True).stdout
        used = cpu_seconds(server.pid) - before
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        return used / requests * 1e6, requests / seconds
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--setting", default="CLEARANCE_HTTP_COALESCE")
    parser.add_argument("--database", default=MACHINE_PG, help="a PostgreSQL server (its URL) for the scratch database")
    args = parser.parse_args()
    name = f"clearance_resp_{uuid.uuid4().hex[:12]}"
    url = create_database(args.database, name)
    results: dict[str, list[float]] = {"true": [], "false": []}
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
            env |= {"CLEARANCE_DATABASE_URL": url, "CLEARANCE_HOME": home}
            for pair in range(1, args.pairs + 1):
                for value in ("true", "false"):
                    cpu, rate = one_run(env | {args.setting: value}, args.seconds)
                    results[value].append(cpu)
                    print(f"pair {pair} {args.setting}={value}: {cpu:.0f} µs of CPU per response, {rate:.0f}/s",
                          flush=True)
    finally:
        drop_database(args.database, name)
    for value, cpus in results.items():
        print(f"{args.setting}={value}: median {statistics.median(cpus):.0f} µs "
              f"({', '.join(f'{c:.0f}' for c in cpus)})")


if __name__ == "__main__":
    main()
