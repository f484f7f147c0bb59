"""A damaged checkpoint file (the v2 checkpoint note) kept outside the database: ``GET /v1/audit/verify`` answers 503
``checkpoint_unusable`` naming the file and the reason, ``clearance audit verify --checkpoint``
exits 1 with one line naming it — truncated, garbage, wrong signature, unreadable.

Both run as real processes that may not override file permissions (as root: without
CAP_DAC_OVERRIDE), so that a file of mode 000 is unreadable to them as to a service account —
where they reach the database over TCP. An embedded server's socket lies in a directory only its
own system user may enter, which root reaches only with those capabilities: there, as root, the
processes keep them and the unreadable file is a directory instead (no one reads a directory).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
import pytest

from api.apikeys import Role, create_key
from audit import AuditStore
from audit.log import newest_checkpoint
from tests.api.servers import serve_env, serving, wait_until
from tests.compliance.conftest import Dataset
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# As root, drop the capabilities that read any file whatever its mode (module docstring).
_UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _unprivileged(database_url: str) -> list[str]:
    """The command prefix of the processes: capabilities dropped when root reaches the database
    over TCP; none otherwise (not root, or a socket in a directory only with them reachable)."""
    if os.geteuid() != 0:
        return []
    url = make_url(database_url)
    host = url.query.get("host") or url.host
    return _UNPRIVILEGED if isinstance(host, str) and host and not host.startswith("/") else []


def _truncated(path: Path) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "is not a checkpoint signed with a pinned key"


def _garbage(path: Path) -> str:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)))
    return "is not UTF-8 text"


def _wrong_signature(path: Path) -> str:
    text, _, signature_line = path.read_text().rstrip("\n").rpartition("\n")
    dash, name, value = signature_line.split(" ")
    signature = bytearray(base64.b64decode(value))
    signature[-1] ^= 0xFF  # the Ed25519 signature after the 4-byte key hash
    path.write_text(f"{text}\n{dash} {name} {base64.b64encode(bytes(signature)).decode()}\n")
    return "is not a checkpoint signed with a pinned key"


def _unreadable(path: Path, *, overrides_modes: bool) -> str:
    if overrides_modes:  # root keeping its capabilities reads a file of mode 000
        path.unlink()
        path.mkdir()
        return "cannot be read (Is a directory)"
    path.chmod(0)
    return "cannot be read (Permission denied)"


DAMAGES: dict[str, Callable[[Path], str]] = {"truncated": _truncated, "garbage": _garbage,
                                             "wrong_signature": _wrong_signature}


def _damage(name: str, path: Path, prefix: list[str]) -> str:
    """Damage ``path`` as ``name`` says; the reason expected for it."""
    if name == "unreadable":
        return _unreadable(path, overrides_modes=os.geteuid() == 0 and not prefix)
    return DAMAGES[name](path)


def _repair(path: Path, good: bytes) -> None:
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.chmod(0o644)
    path.write_bytes(good)


DAMAGE_NAMES = sorted([*DAMAGES, "unreadable"])


@pytest.fixture(scope="module")
def setting(dataset: Dataset,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str, Path, list[str]]]:
    """(environment of the processes, an auditor key, the checkpoint file, the processes' command
    prefix), a good checkpoint of the dataset in the file."""
    home = tmp_path_factory.mktemp("home")
    checkpoint = home / "checkpoint.json"
    shutil.copy2(dataset.home / "signing.key", home / "signing.key")  # the key that signed the dataset
    # No decision is made: the service does not grow the damaged file meanwhile.
    env = serve_env(dataset.url, home, checkpoint_file=str(checkpoint))
    store = AuditStore.from_url(dataset.url, pooled=False)
    auditor, _ = create_key(store.engine, role=Role.auditor, app_id=None)
    with store.log_snapshot() as conn:
        good = newest_checkpoint(conn)
    store.dispose()
    assert good is not None
    checkpoint.write_text(good[1], encoding="utf-8")
    yield env, auditor, checkpoint, _unprivileged(dataset.url)


def _damaged(checkpoint: Path, damage: str, prefix: list[str]) -> tuple[Path, str]:
    """A damaged copy of the good checkpoint, and the reason expected for it."""
    copy = checkpoint.with_name(f"{damage}.json")
    copy.write_bytes(checkpoint.read_bytes())
    return copy, _damage(damage, copy, prefix)


@pytest.mark.parametrize("damage", DAMAGE_NAMES)
def test_cli_names_the_damaged_file_in_one_line(setting: tuple[dict[str, str], str, Path, list[str]],
                                                damage: str) -> None:
    env, _, checkpoint, prefix = setting
    good = subprocess.run([*prefix, sys.executable, "-m", "api", "audit", "verify", "--no-progress",
                           "--checkpoint", str(checkpoint)], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert good.returncode == 0, good.stderr
    path, reason = _damaged(checkpoint, damage, prefix)

    done = subprocess.run([*prefix, sys.executable, "-m", "api", "audit", "verify", "--no-progress",
                           "--checkpoint", str(path)], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)

    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"clearance: checkpoint file {path}: ") and reason in line, line


def test_verify_endpoint_answers_503_naming_the_damaged_file(setting: tuple[dict[str, str], str, Path, list[str]]
                                                             ) -> None:
    env, auditor, checkpoint, prefix = setting
    good = checkpoint.read_bytes()
    with serving(env, prefix=prefix) as (_, base):

        def verify() -> httpx.Response:
            return httpx.get(f"{base}/v1/audit/verify", headers={"Authorization": f"Bearer {auditor}"}, timeout=60)

        def answers() -> bool:
            try:
                return verify().status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 90, "the server did not verify the good checkpoint")
        assert verify().json()["valid"] is True
        for damage in DAMAGE_NAMES:
            _repair(checkpoint, good)
            reason = _damage(damage, checkpoint, prefix)
            answer = verify()
            assert answer.status_code == 503, (damage, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "checkpoint_unusable" and str(checkpoint) in error["message"]
            (field,) = error["fields"]
            assert field["field"] == str(checkpoint) and reason in field["reason"], (damage, field)
        _repair(checkpoint, good)
        assert verify().json()["valid"] is True  # repaired: verifies again
