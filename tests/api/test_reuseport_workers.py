"""A real `clearance serve --workers 2`: each worker listens on a socket of its own (SO_REUSEPORT)
and the kernel spreads new connections over them; a killed worker is replaced and listens again,
as does one SIGTTIN adds; a second server on the port is refused; ``CLEARANCE_REUSEPORT=false`` shares one socket as before.

Which worker holds a connection: ``GET /v1/policy`` answers with the worker's pid, asked on each
kept-alive connection. Which process listens: /proc/net/tcp and /proc/<pid>/fd."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.apikeys import Role, create_key
from api.supervisor import listener_beside
from audit import AuditStore
from tests.api.servers import serve_env, serving, wait_until
from tests.conftest import REPO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux")]

CONNECTIONS = 32  # opened at once, as a load generator opens them
ROUNDS = 4


def listening_inodes(port: int) -> set[int]:
    """The inodes of the TCP sockets listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.add(int(fields[9]))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    admin: str
    env: dict[str, str]

    def pid_on(self, connection: http.client.HTTPConnection) -> int:
        """The pid of the worker that holds ``connection`` (kept alive)."""
        connection.request("GET", "/v1/policy", headers={"Authorization": f"Bearer {self.admin}"})
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 200, body
        return int(json.loads(body)["pid"])

    def round(self, connections: int = CONNECTIONS) -> Counter[int]:
        """Open ``connections`` at once, then ask each which worker holds it: connections per pid."""
        opened = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=30) for _ in range(connections)]
        try:
            for connection in opened:
                connection.connect()
            return Counter(self.pid_on(connection) for connection in opened)
        finally:
            for connection in opened:
                connection.close()

    def answers(self) -> bool:
        try:
            return bool(self.round(1))
        except (OSError, http.client.HTTPException):
            return False

    def listeners(self) -> dict[int, set[int]]:
        """pid -> the listening sockets on the port it holds, for the supervisor and its workers."""
        listening = listening_inodes(self.port)
        pids = [self.process.pid, *self.children()]
        return {pid: inodes for pid in pids if (inodes := socket_inodes(pid) & listening)}

    def children(self) -> list[int]:
        children = []
        for task in os.listdir(f"/proc/{self.process.pid}/task"):
            with open(f"/proc/{self.process.pid}/task/{task}/children") as listed:
                children += [int(pid) for pid in listed.read().split()]
        return children


Start = Callable[..., Server]


@pytest.fixture
def start(migrated_database: str, tmp_path: Path) -> Iterator[Start]:
    """``start(**settings)``: a `clearance serve --workers 2` on this test's database, stopped at the end."""
    store = AuditStore.from_url(migrated_database, pooled=False)
    admin, _ = create_key(store.engine, role=Role.admin, app_id=None)
    store.dispose()
    with ExitStack() as stack:

        def started(**settings: str) -> Server:
            env = serve_env(migrated_database, tmp_path, **settings)
            process, base = stack.enter_context(serving(env, "--workers", "2"))
            return Server(process, int(base.rsplit(":", 1)[1]), admin, env)

        yield started


def test_each_worker_listens_on_its_own_socket_and_gets_connections(start: Start) -> None:
    server = start()
    wait_until(lambda: len(listening_inodes(server.port)) == 2, 120, "two workers did not listen")
    held = server.listeners()
    assert server.process.pid not in held  # the supervisor's socket is bound, never listening
    assert len(held) == 2 and all(len(inodes) == 1 for inodes in held.values())
    assert set().union(*held.values()) == listening_inodes(server.port)  # one socket each
    workers = set(held)

    # Spread by a hash of each connection's ports: binomial, so each round gives both workers
    # some (all 32 on one: p = 2^-31) and the aggregate is near even (96 of 128 or more on one
    # worker: p < 10^-7). A shared socket often gave one worker 24 of 32.
    total: Counter[int] = Counter()
    for _ in range(ROUNDS):
        split = server.round()
        assert set(split) == workers, split
        total += split
    assert max(total.values()) < 0.75 * ROUNDS * CONNECTIONS, total

    # A second server on the port is refused (exit 3), as against uvicorn's shared socket,
    # instead of joining the workers' group; the first keeps its two sockets.
    second = subprocess.run([sys.executable, "-m", "api", "serve", "--port", str(server.port), "--workers", "2"],
                            env=server.env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 3, second.stderr[-2000:]
    assert "address already in use" in second.stderr.lower()
    assert server.listeners() == held


def test_a_killed_worker_is_replaced_and_an_added_one_listens_too(start: Start) -> None:
    server = start()
    wait_until(lambda: len(listening_inodes(server.port)) == 2, 120, "two workers did not listen")
    held = server.listeners()
    killed, kept = sorted(held)

    os.kill(killed, signal.SIGKILL)
    # Once its socket is closed, every new connection goes to the worker left.
    wait_until(lambda: not held[killed] & listening_inodes(server.port), 30, "the killed worker's socket stayed")
    assert server.round(8) == {kept: 8}

    wait_until(lambda: len(listening_inodes(server.port)) == 2, 120, "no replacement worker listened")
    replaced = server.listeners()
    assert len(replaced) == 2 and kept in replaced and killed not in replaced
    assert replaced[kept] == held[kept]
    (new,) = set(replaced) - {kept}
    assert set(server.round()) == {kept, new}

    # SIGTTIN adds a worker with a socket of its own; SIGTTOU retires one, and its socket.
    server.process.send_signal(signal.SIGTTIN)
    wait_until(lambda: len(listening_inodes(server.port)) == 3, 120, "the added worker did not listen")
    added = server.listeners()
    assert len(added) == 3 and len(set().union(*added.values())) == 3
    server.process.send_signal(signal.SIGTTOU)
    wait_until(lambda: len(listening_inodes(server.port)) == 2, 60, "the retired worker's socket stayed")
    assert server.answers()


def test_reuseport_off_shares_the_supervisors_socket(start: Start) -> None:
    server = start(reuseport="false")
    wait_until(server.answers, 120, "the server did not answer")
    wait_until(lambda: len(server.listeners()) == 3, 60, "the supervisor and two workers did not hold the socket")
    (shared,) = listening_inodes(server.port)  # the supervisor's, listened on by its workers
    assert all(inodes == {shared} for inodes in server.listeners().values())


def test_a_worker_that_cannot_bind_its_socket_exits_3() -> None:
    """What the supervisor reads as a start-up failure: another listener on the address that did
    not set SO_REUSEPORT (here, bound beside the supervisor's socket, which does not listen)."""
    with socket.socket() as supervisors, socket.socket() as other:
        for sock in (supervisors, other):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        supervisors.bind(("127.0.0.1", 0))
        other.bind(supervisors.getsockname())
        other.listen()
        with pytest.raises(SystemExit) as stopped:
            listener_beside(supervisors)
        assert stopped.value.code == 3


def test_a_workers_socket_matches_the_supervisors_family_and_v6only() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6) as supervisors:
        supervisors.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        supervisors.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            supervisors.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        with listener_beside(supervisors) as own, listener_beside(supervisors) as sibling:
            assert own.family == socket.AF_INET6 and own.getsockname() == supervisors.getsockname()
            assert own.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
            own.listen()
            sibling.listen()  # both in the port's group
            with socket.create_connection(supervisors.getsockname()[:2], timeout=5):
                pass
