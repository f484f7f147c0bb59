"""Worker processes that end when the process that started them is gone.

A pool's child waits on its task queue for the next job. If its parent is killed (SIGKILL, the
out-of-memory killer), nobody closes that queue and the child waits forever, holding its memory
and, for the server's verification processes, a database URL: seen after a test suite that
killed servers. Each pool of the project starts its children with :func:`exit_with_parent`, and so
does the report's verification process (audit/report/verification.py), each passing its own pid:
a child whose parent died before the child's first instruction is then re-parented already.
"""

from __future__ import annotations

import os
import threading
import time

CHECK_SECONDS = 1.0


def exit_with_parent(parent: int) -> None:
    """In a child process: end it within ``CHECK_SECONDS`` of its parent's end (re-parented).

    :param parent: the parent's pid as the parent saw it (``os.getpid()`` passed to the child),
        not ``os.getppid()`` read here: a parent killed before the child got here is then
        noticed too.
    """
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(CHECK_SECONDS)
            if os.getppid() != parent:
                os._exit(1)  # nobody is left to take a result, and no cleanup can reach the parent

    threading.Thread(target=watch, name="clearance-parent-watch", daemon=True).start()
