"""The embedded PostgreSQL where it cannot start: one paragraph saying what is missing and what
to do, exit 1, never a traceback.

As root, pgserver runs the server as the system user ``pgserver`` and creates it with
``useradd``, which lives in /usr/sbin: a root shell whose PATH lacks /usr/sbin (``su`` without
``-``, some containers) cannot create it. The tests make the user look missing (``getpwnam``)
and, where needed, the process look like root (``geteuid``); PATH is really without /usr/sbin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.embedded import EmbeddedUnavailable, start_embedded
from tests.conftest import REPO

# A PATH without /usr/sbin (and /sbin): the directories of this Python and of the usual tools.
PATH_WITHOUT_SBIN = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]))

_AS_ROOT_WITHOUT_THE_USER = """
import os, pwd, sys
real = pwd.getpwnam
def getpwnam(name):
    if name == "pgserver":
        raise KeyError(name)
    return real(name)
pwd.getpwnam = getpwnam
os.geteuid = lambda: 0
from api.cli import app
app(sys.argv[1:], prog_name="clearance")
"""


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
    env.update(PATH=PATH_WITHOUT_SBIN, CLEARANCE_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    return env


def test_path_lacks_useradd() -> None:
    assert shutil.which("useradd", path=PATH_WITHOUT_SBIN) is None, "the test PATH must not reach useradd"


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "1"], ["keys", "list"]])
def test_root_without_useradd_is_one_paragraph_and_exit_1(command: list[str], bare_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", _AS_ROOT_WITHOUT_THE_USER, *command], env=bare_env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # (serve first creates the signing key, and says so on a line of its own)
    errors = [line for line in done.stderr.splitlines() if line.startswith("clearance:")]
    assert len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
    message = errors[0]
    assert message.startswith("clearance: the embedded PostgreSQL cannot start"), message
    for needed in ("'pgserver'", "useradd", "/usr/sbin", "PATH", "CLEARANCE_DATABASE_URL"):
        assert needed in message, (needed, message)
    assert not (Path(bare_env["CLEARANCE_HOME"]) / "pg").exists()  # refused before touching anything


@pytest.mark.skipif(os.geteuid() != 0, reason="pgserver creates its user only when run as root")
def test_the_failure_inside_pgserver_is_mapped_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the up-front check (here: skipped), pgserver's own ``useradd`` call fails for want of
    the program; that FileNotFoundError is mapped to the same paragraph."""
    import pwd

    import api.embedded

    real = pwd.getpwnam
    monkeypatch.setattr(pwd, "getpwnam", lambda name: (_ for _ in ()).throw(KeyError(name)) if name == "pgserver"
                        else real(name))
    monkeypatch.setattr(api.embedded, "_check_system_user", lambda: None)
    monkeypatch.setenv("PATH", PATH_WITHOUT_SBIN)
    with pytest.raises(EmbeddedUnavailable) as refused:
        start_embedded(tmp_path / "home")
    assert "useradd" in str(refused.value) and "/usr/sbin" in str(refused.value)
