"""A bounded, concurrent load of decisions against servers on 127.0.0.1, keeping every answer.

``threads`` workers each send one request at a time (so at most ``threads`` are in flight)
until stopped or ``limit`` requests have been sent. Every answer is kept — status, error code,
decision id and receipt seq, or the transport error when there was no answer at all — with the
monotonic times it was sent and answered, so a test can tell what happened in each phase.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from api.schemas import DECISION_REQUEST_EXAMPLE

# A few realistic workloads of claims-summariser, within its profile (apps.yaml: financial
# services and insurance, the EU and the US, four tasks), so the trail holds allow and deny
# decisions of several shapes; None removes the field (the profile's value is then judged).
_VARIANTS: list[dict[str, Any]] = [
    {},
    {"task": "qa", "regulatory_tier": "standard", "sector": "insurance", "quality_tier": "advanced"},
    {"task": "extraction", "regulatory_tier": "minimal", "data_classification": "internal",
     "quality_tier": "frontier", "max_price_per_mtok": 50.0, "sector": None, "jurisdictions": ["DE"]},
    {"regulatory_tier": "critical", "data_classification": "restricted", "jurisdictions": ["EU"]},
    {"monthly_active_users": 800_000_000, "quality_tier": "advanced", "task": "classification"},
]


def decision_body(n: int, app_id: str = "claims-summariser") -> dict[str, Any]:
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    body["app_id"] = app_id
    body["workload"].update(_VARIANTS[n % len(_VARIANTS)])
    body["workload"] = {k: v for k, v in body["workload"].items() if v is not None}
    body["context"] = {"request_id": f"load-{n}"}
    return body


@dataclass(frozen=True)
class Answer:
    n: int
    target: str
    sent: float
    answered: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    code: str | None = None  # the error code of an error answer
    message: str | None = None
    decision_id: str | None = None
    seq: int | None = None
    transport_error: str | None = None
    body_mentions_decision: bool = False  # an error answer that still carries a decision


def _answer(n: int, target: str, sent: float, response: httpx.Response) -> Answer:
    try:
        data = response.json()
    except ValueError:
        data = None
    now = time.monotonic()
    if response.status_code == 200 and isinstance(data, dict):
        return Answer(n, target, sent, now, 200, decision_id=data.get("decision_id"),
                      seq=(data.get("audit") or {}).get("seq"))
    error = data.get("error", {}) if isinstance(data, dict) else {}
    leaked = isinstance(data, dict) and any(k in data for k in ("decision_id", "allowed", "audit"))
    return Answer(n, target, sent, now, response.status_code, code=error.get("code"),
                  message=error.get("message"), body_mentions_decision=leaked)


class Load:
    def __init__(self, targets: Iterable[str], key: str, *, threads: int, limit: int,
                 body: Callable[[int], dict[str, Any]] = decision_body) -> None:
        self.targets = list(targets)
        for target in self.targets:  # the load never leaves this machine
            if urlsplit(target).hostname != "127.0.0.1":
                raise ValueError(f"load goes to 127.0.0.1 only, not {target}")
        self._headers = {"Authorization": f"Bearer {key}"}
        self._threads = threads
        self._limit = limit
        self._body = body
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Load:
        for i in range(self._threads):
            worker = threading.Thread(target=self._run, args=(self.targets[i % len(self.targets)],),
                                      daemon=True, name=f"load-{i}")
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, target: str) -> None:
        with httpx.Client(base_url=target, timeout=httpx.Timeout(30.0, connect=2.0)) as client:
            while not self._stop.is_set():
                with self._lock:
                    n = next(self._numbers)
                if n >= self._limit:
                    return
                sent = time.monotonic()
                try:
                    response = client.post("/v1/decisions", json=self._body(n), headers=self._headers)
                    answer = _answer(n, target, sent, response)
                except httpx.TransportError as exc:
                    answer = Answer(n, target, sent, time.monotonic(), None, transport_error=type(exc).__name__)
                with self._lock:
                    self._answers.append(answer)
                if answer.status is None:
                    time.sleep(0.1)  # no busy loop against a dead server
                elif answer.status != 200:
                    time.sleep(0.02)

    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def wait_until(self, predicate: Callable[[list[Answer]], bool], *, timeout: float, what: str) -> list[Answer]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = self.answers()
            if predicate(answers):
                return answers
            if not any(w.is_alive() for w in self._workers):
                break
            time.sleep(0.02)
        raise AssertionError(f"load: {what} not reached within {timeout}s; "
                             f"{summarise(self.answers())}")

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)
        return self.answers()


def ok_after(t: float, count: int) -> Callable[[list[Answer]], bool]:
    """At least ``count`` decisions answered 200 that were sent after ``t``."""
    return lambda answers: sum(1 for a in answers if a.status == 200 and a.sent > t) >= count


def summarise(answers: list[Answer]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        label = str(a.status) if a.status is not None else f"no answer ({a.transport_error})"
        if a.code:
            label += f" {a.code}"
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no answers"
