"""``clearance serve --workers N`` (N > 1): uvicorn's supervisor, with SIGHUP meaning "reload".

uvicorn's supervisor answers SIGHUP by restarting its workers one by one; they load the bundle
from disk as at start-up, so nothing checks it and no ``policy_reload`` entry records it. This
one passes SIGHUP to one live worker instead: that worker reloads as the endpoint does (checked,
recorded once, swapped), and the others follow its announcement (``api/reload_broadcast.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("clearance.reload")


class ReloadingSupervisor(Multiprocess):
    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                log.info("SIGHUP: worker %d reloads the policy; the others follow", process.pid)
                os.kill(process.pid, signal.SIGHUP)
                return
        log.error("SIGHUP: no live worker to reload the policy")


def run_workers(app: str, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=N, **options)`` with :class:`ReloadingSupervisor`."""
    config = Config(app, factory=True, **options)
    assert config.workers > 1, "one worker runs without a supervisor"
    supervisor = ReloadingSupervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    # uvicorn's supervisor stops when a worker fails to start but returns normally: exit as one
    # worker would (3), so a service manager and the operator see the start failed.
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(STARTUP_FAILURE)
