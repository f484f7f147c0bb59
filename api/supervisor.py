"""``clearance serve --workers N`` (N > 1): uvicorn's supervisor, with SIGHUP meaning "reload",
and on Linux a listening socket per worker (SO_REUSEPORT).

uvicorn's supervisor answers SIGHUP by restarting its workers one by one; they load the bundle
from disk as at start-up, so nothing checks it and no ``policy_reload`` entry records it. This
one passes SIGHUP to one live worker instead: that worker reloads as the endpoint does (checked,
recorded once, swapped), and the others follow its announcement (``api/reload_broadcast.py``).

uvicorn's workers all listen on the one socket the supervisor binds; a worker's event loop
accepts every connection queued when it wakes, so connections opened at once (a load generator,
a client's pool) can land mostly on one worker and stay there. With ``CLEARANCE_REUSEPORT`` (the
default) each worker binds a socket of its own to the same address with SO_REUSEPORT, and the
kernel hands each new connection to one of the listening ones by a hash of its addresses and
ports. The supervisor still binds its socket as uvicorn does (so a port in use is reported, and
exits 3, as before) but never listens on it: a bound socket that does not listen is given no
connections. It is bound without SO_REUSEPORT so that a second server started on the port, whose
supervisor binds the same way, fails to bind (exit 3) while a worker listens, as it does against
uvicorn's shared socket, instead of joining the workers' group and taking part of their traffic.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("clearance.reload")
uvicorn_log = logging.getLogger("uvicorn.error")


def listener_beside(shared: socket.socket) -> socket.socket:
    """A TCP socket bound to ``shared``'s address (same family, same IPV6_V6ONLY) with
    SO_REUSEADDR and SO_REUSEPORT, not listening yet: uvicorn listens on it once the app has
    started, so the kernel sends a starting worker no connections. A failed bind exits 3, as a
    failed bind of uvicorn's socket does, and the supervisor stops."""
    sock = socket.socket(shared.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if shared.family == socket.AF_INET6:
        v6only = shared.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    try:
        sock.bind(shared.getsockname())
    except OSError as exc:
        uvicorn_log.error("worker %d cannot bind its listening socket to %s: %s", os.getpid(), shared.getsockname(), exc)
        sock.close()
        sys.exit(STARTUP_FAILURE)
    return sock


class ReusePortProcess(Process):
    """A uvicorn worker that serves on a socket of its own (:func:`listener_beside`) instead of
    the supervisor's, which it closes."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # in the worker process
        own = []
        for shared in sockets or []:
            own.append(listener_beside(shared))
            shared.close()
        super().target(sockets=own)


def reuseport_applies(config: Config) -> bool:
    """Per-worker sockets need a TCP address (not ``uds``/``fd``) and Linux: SO_REUSEPORT exists
    elsewhere too, but on macOS and the BSDs it does not spread connections over the sockets."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT") \
        and config.uds is None and config.fd is None


class ReloadingSupervisor(Multiprocess):
    # The class of its workers: uvicorn's (sharing the supervisor's socket) or ReusePortProcess.
    process_class: type[Process] = Process

    def run(self) -> None:
        # uvicorn's Multiprocess creates workers as ``Process(self.config, self.sockets)`` by
        # that module-level name, in four places (start, a dead worker replaced, restart_all,
        # SIGTTIN). Rebinding the name while the supervisor runs makes all four create
        # ``process_class``; overriding the four would copy uvicorn's supervision (readiness
        # waits, the stop on a worker's start-up failure), which changes between its releases.
        multiprocess.Process = self.process_class  # type: ignore[misc]
        try:
            super().run()
        finally:
            multiprocess.Process = Process  # type: ignore[misc]

    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                log.info("SIGHUP: worker %d reloads the policy; the others follow", process.pid)
                os.kill(process.pid, signal.SIGHUP)
                return
        log.error("SIGHUP: no live worker to reload the policy")


def run_workers(app: str, *, reuseport: bool = True, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=N, **options)`` with :class:`ReloadingSupervisor`;
    ``reuseport``: a listening socket per worker where :func:`reuseport_applies`."""
    config = Config(app, factory=True, **options)
    assert config.workers > 1, "one worker runs without a supervisor"
    supervisor = ReloadingSupervisor(config, sockets=[config.bind_socket()])
    if reuseport and reuseport_applies(config):
        supervisor.process_class = ReusePortProcess
    supervisor.run()
    # uvicorn's supervisor stops when a worker fails to start but returns normally: exit as one
    # worker would (3), so a service manager and the operator see the start failed.
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(STARTUP_FAILURE)
