"""``clearance witness init|serve`` as a real process: the C2SP tlog-witness HTTP protocol,
its status codes, and its state across restarts (including SIGKILL right after a cosignature)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.tlog.cosignature import load_verifier, verified_cosignatures
from audit.tlog.merkle import MemoryTree, consistency_proof, leaf_hash
from audit.tlog.note import Ed25519Signer
from audit.tlog.witness import format_request, origin_hash
from tests.conftest import REPO

pytestmark = pytest.mark.slow

ORIGIN = "log.example/clearance"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clearance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


@dataclass
class WitnessProcess:
    key: Path
    state: Path
    log_keys: list[str]
    output: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> WitnessProcess:
        """Start on ``port`` (default: a free one)."""
        self.port = port or free_port()
        command = [sys.executable, "-m", "api", "witness", "serve", "--key", str(self.key), "--state",
                   str(self.state), "--port", str(self.port)]
        for vkey in self.log_keys:
            command += ["--log", vkey]
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"witness exited with {self.process.returncode}:\n{self.output.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/{'0' * 64}/checkpoint", timeout=2)
                return self
            time.sleep(0.1)
        raise RuntimeError(f"witness not listening within 60 s:\n{self.output.read_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def add(self, *, old_size: int, proof: list[bytes], checkpoint: str) -> httpx.Response:
        body = format_request(old_size=old_size, proof=proof, checkpoint=checkpoint)
        return httpx.post(f"{self.url}/add-checkpoint", content=body, timeout=10)


class Log:
    def __init__(self) -> None:
        self.signer = Ed25519Signer.generate(ORIGIN)
        self.tree = MemoryTree()

    def grow(self, count: int, tag: str = "entry") -> None:
        start = self.tree.size
        self.tree.extend(leaf_hash(f"{tag} {i}".encode()) for i in range(start, start + count))

    def checkpoint(self) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, self.tree.size, self.tree.root()), [self.signer])

    def proof(self, old: int) -> list[bytes]:
        return consistency_proof(self.tree, old_size=old, new_size=self.tree.size)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def witness(tmp_path: Path, log: Log) -> Iterator[tuple[WitnessProcess, str]]:
    key = tmp_path / "witness.key"
    made = clearance("witness", "init", "--key", str(key), "--name", "witness.example/w1")
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.strip()
    assert vkey.startswith("witness.example/w1+")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = clearance("witness", "init", "--key", str(key), "--name", "witness.example/w1")
    assert again.returncode == 1 and "exists" in again.stderr

    process = WitnessProcess(key, tmp_path / "state", [log.signer.verifier_key], tmp_path / "witness.out").start()
    yield process, vkey
    process.stop(signal.SIGKILL)


def test_cosigns_consistent_checkpoints_and_refuses_the_rest(witness: tuple[WitnessProcess, str], log: Log) -> None:
    server, vkey = witness
    log.grow(5)
    answer = server.add(old_size=0, proof=[], checkpoint=log.checkpoint())
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith("— witness.example/w1 ") and answer.text.endswith("\n")
    assert len(verified_cosignatures(log.checkpoint() + answer.text, [load_verifier(vkey)])) == 1

    log.grow(6)
    assert server.add(old_size=5, proof=log.proof(5), checkpoint=log.checkpoint()).status_code == 200

    # 409: the old size is not the last cosigned one; the body says which it is.
    conflict = server.add(old_size=5, proof=log.proof(5), checkpoint=log.checkpoint())
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "text/x.tlog.size"
    assert conflict.text == "11\n"

    # 422: a tree that is not an extension of the one cosigned (the log's own key, another history).
    forked = Log()
    forked.signer = log.signer
    forked.grow(20, tag="forged")
    refused = server.add(old_size=11, proof=forked.proof(11), checkpoint=forked.checkpoint())
    assert refused.status_code == 422 and "not consistent" in refused.text

    # 403: not signed by the pinned log key; 404: a log the witness does not know; 400: malformed.
    insider = Ed25519Signer.generate(ORIGIN)
    unsigned = sign_checkpoint(Checkpoint(ORIGIN, 11, log.tree.root()), [insider])
    assert server.add(old_size=11, proof=[], checkpoint=unsigned).status_code == 403
    stranger = Ed25519Signer.generate("stranger.example/log")
    unknown = sign_checkpoint(Checkpoint("stranger.example/log", 1, log.tree.root(1)), [stranger])
    assert server.add(old_size=0, proof=[], checkpoint=unknown).status_code == 404
    assert httpx.post(f"{server.url}/add-checkpoint", content=b"old x\n\n", timeout=10).status_code == 400
    # A smaller tree than the one cosigned.
    smaller = sign_checkpoint(Checkpoint(ORIGIN, 4, log.tree.root(4)), [log.signer])
    assert server.add(old_size=11, proof=[], checkpoint=smaller).status_code == 400

    # The monitoring endpoint serves the last cosigned checkpoint with both signatures.
    latest = httpx.get(f"{server.url}/{origin_hash(ORIGIN)}/checkpoint", timeout=10)
    assert latest.status_code == 200 and latest.text.startswith(f"{ORIGIN}\n11\n")
    assert verified_cosignatures(latest.text, [load_verifier(vkey)])


def test_state_survives_restart_and_sigkill(witness: tuple[WitnessProcess, str], log: Log) -> None:
    server, _ = witness
    log.grow(3)
    assert server.add(old_size=0, proof=[], checkpoint=log.checkpoint()).status_code == 200
    server.stop(signal.SIGTERM)
    server.start()
    stale = server.add(old_size=0, proof=[], checkpoint=log.checkpoint())
    assert (stale.status_code, stale.text) == (409, "3\n")

    log.grow(4)
    assert server.add(old_size=3, proof=log.proof(3), checkpoint=log.checkpoint()).status_code == 200
    server.stop(signal.SIGKILL)  # no shutdown: the answer above was only sent after an fsync
    server.start()
    assert server.add(old_size=3, proof=log.proof(3), checkpoint=log.checkpoint()).text == "7\n"
    log.grow(1)
    assert server.add(old_size=7, proof=log.proof(7), checkpoint=log.checkpoint()).status_code == 200


def test_serve_refuses_a_readable_key_and_a_log_key_as_witness_key(tmp_path: Path, log: Log) -> None:
    key = tmp_path / "w.key"
    assert clearance("witness", "init", "--key", str(key), "--name", "w.example").returncode == 0
    key.chmod(0o644)
    loose = clearance("witness", "serve", "--key", str(key), "--state", str(tmp_path / "s"),
                      "--log", log.signer.verifier_key)
    assert loose.returncode == 1 and "chmod 600" in loose.stderr
    log_key = tmp_path / "log.key"
    log_key.write_text(log.signer.signer_key)
    log_key.chmod(0o600)
    wrong = clearance("witness", "serve", "--key", str(log_key), "--state", str(tmp_path / "s"),
                      "--log", log.signer.verifier_key)
    assert wrong.returncode == 1 and "not a witness key" in wrong.stderr
