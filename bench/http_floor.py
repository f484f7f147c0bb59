"""The HTTP floor of this machine: what a response costs the server with nothing behind it.

    python bench/http_floor.py [--rounds 2] [--seconds 10] [--connections 32]

A tiny JSON answer, served by two workers on 127.0.0.1 and driven with ``wrk`` (the load of
``bench/http_bench.py``), four ways, alternated round by round:

- ``uvicorn-asgi``: a bare ASGI callable under uvicorn as ``clearance serve`` runs it (httptools,
  uvloop): the least any endpoint served by uvicorn costs;
- ``uvicorn-fastapi``: the same answer from a FastAPI route (routing, the exception middlewares,
  the request handler, a ``Response``): what ``GET /healthz`` pays, and what the fast path of
  ``POST /v1/decisions`` (``api/fast_path.py``) skips;
- ``granian-asgi`` and ``granian-fastapi``: the same two under granian (a server written in
  Rust), when it is installed (``pip install granian``; not a dependency of the project).

Reports requests/s and the CPU of the server's processes per request (/proc, all threads,
user + system). CPU per request is the figure to compare on a shared machine. An audited
decision costs at least the ``uvicorn-asgi`` figure plus its own work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APPS = '''
import orjson
from fastapi import FastAPI
from fastapi.responses import Response

BODY = orjson.dumps({"status": "ok"})
fast = FastAPI()


@fast.get("/healthz")
async def healthz() -> Response:
    return Response(BODY, media_type="application/json")


async def bare(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
'''


def commands(port: int) -> dict[str, list[str]]:
    python = os.path.abspath(sys.executable)  # the servers run in a scratch directory
    uvicorn = [python, "-m", "uvicorn", "--port", str(port), "--workers", "2", "--http", "httptools",
               "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    found = {"uvicorn-asgi": [*uvicorn, "apps:bare"], "uvicorn-fastapi": [*uvicorn, "apps:fast"]}
    if importlib.util.find_spec("granian") is not None:
        granian = [python, "-m", "granian", "--interface", "asgi", "--port", str(port), "--workers", "2",
                   "--log-level", "warning"]
        found |= {"granian-asgi": [*granian, "apps:bare"], "granian-fastapi": [*granian, "apps:fast"]}
    return found


def group_cpu_seconds(pgid: int) -> float:
    """CPU (user + system) of every process in the group, threads included."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def measure(command: list[str], port: int, cwd: Path, *, seconds: int, connections: int) -> dict[str, float]:
    server = subprocess.Popen(command, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, server)
        url = f"http://127.0.0.1:{port}/healthz"
        threads = str(min(2, connections))
        subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", "-d2s", url], capture_output=True, check=True)
        cpu0 = group_cpu_seconds(server.pid)
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url],
                             capture_output=True, text=True, check=True).stdout
        cpu1 = group_cpu_seconds(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rate_per_s": round(rate), "cpu_us_per_request": round((cpu1 - cpu0) / (rate * seconds) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "apps.py").write_text(APPS)
        for _ in range(args.rounds):
            port = free_port()
            for name, command in commands(port).items():
                result = measure(command, port, Path(tmp), seconds=args.seconds, connections=args.connections)
                runs.setdefault(name, []).append(result)
                print(f"{name:<17} {result['rate_per_s']:>7,}/s  {result['cpu_us_per_request']:>7.1f} µs CPU per request",
                      flush=True)
    summary = {name: {"rate_per_s": [r["rate_per_s"] for r in results],
                      "cpu_us_per_request": [r["cpu_us_per_request"] for r in results],
                      "median_cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in results)}
               for name, results in runs.items()}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
