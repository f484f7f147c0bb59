"""The decisions an impact analysis replays, from the audit trail or from a JSONL file.

A :class:`Replay` is what a decision was asked: the app's id, the workload and the caller. The
app's *entitlements* are deliberately not part of it: each side of the comparison looks them up
in its own ``apps.yaml`` (they are governance data under review, like the rules).

A JSONL file holds one JSON object per line, any of:

* a ``POST /v1/decisions`` body: ``{"app_id", "workload", "context"?}`` (a ``decision_id`` key
  beside it names the line in the report);
* a recorded policy input: ``{"app": {"id", …}, "workload", "caller"?}``;
* an audit entry body or an export line that carries one: ``{"decision_id"?, "input": {…}}``.

A replay holds what was *asked*: the recorded ``input.requested`` (the workload as sent, or the
name of a workload profile), validated with the request schema (unknown fields refused). Each
side then applies its own app profile to it, as the service would (``policy.profile``). An
input recorded before profiles existed has no ``requested``: its ``workload`` stands for what
was asked (an empty ``jurisdictions``, then the default, for none). A line that does not fit
is skipped and reported with its number and the reason; blank lines and ``#`` comments are
ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from policy.profile import sent
from policy.workload import DecisionRequest

_NO_CALLER = {"key_id": None, "role": None}


@dataclass(frozen=True, slots=True)
class Replay:
    decision_id: str | None  # the recorded decision's id; None for a synthetic input
    source: str  # "audit" or "<file>:<line>"
    app_id: str
    workload: dict[str, Any] | None  # validated, as sent (None when a workload profile is named)
    caller: dict[str, Any]
    # What was answered when the decision was recorded, and with which app record: when that
    # was under the base's revision, it *is* the base's answer (a decision is a pure function
    # of revision and input), and replay need not compute it again. Kept only when the
    # recorded workload re-validates to itself (same schema, nothing filled in).
    recorded_result: dict[str, Any] | None = None
    recorded_app: dict[str, Any] | None = None
    workload_profile: str | None = None  # the named workload asked for, if any

    @property
    def requested(self) -> dict[str, Any]:
        """What was asked, as ``input.requested`` records it."""
        return {"workload_profile": self.workload_profile, "workload": self.workload}

    def key(self) -> bytes:
        """Canonical bytes of everything the evaluation depends on besides the bundle."""
        return orjson.dumps({"app_id": self.app_id, "requested": self.requested, "caller": self.caller},
                            option=orjson.OPT_SORT_KEYS)

    @property
    def label(self) -> str:
        return self.decision_id or self.source


@dataclass(frozen=True, slots=True)
class Skipped:
    source: str
    reason: str


def replay_of_input(policy_input: Any, *, decision_id: str | None, source: str,
                    result: Any = None) -> Replay | Skipped:
    """A recorded policy input (``{"app", "workload", "caller"}``), and the result recorded
    with it if known, as a replay."""
    if not isinstance(policy_input, dict):
        return Skipped(source, "the input is not a JSON object")
    app = policy_input.get("app")
    app_id = app.get("id") if isinstance(app, dict) else None
    if not isinstance(app_id, str):
        return Skipped(source, "the input has no app.id")
    recorded = policy_input.get("requested")
    if not isinstance(recorded, dict):  # recorded before profiles: the workload is what was asked
        legacy = policy_input.get("workload")
        if isinstance(legacy, dict) and legacy.get("jurisdictions") == []:
            legacy = {k: v for k, v in legacy.items() if k != "jurisdictions"}
        recorded = {"workload_profile": None, "workload": legacy}
    try:
        request = DecisionRequest.model_validate_json(orjson.dumps({"app_id": app_id, **recorded}))
    except (ValidationError, TypeError) as exc:
        return Skipped(source, _problems(exc) if isinstance(exc, ValidationError) else str(exc))
    caller = policy_input.get("caller")
    replay = _replay_of_request(request, decision_id=decision_id, source=source,
                                caller=caller if isinstance(caller, dict) else dict(_NO_CALLER))
    # The recorded answer may stand for the base's only for an input recorded with profiles
    # that re-validates to itself.
    exact = isinstance(result, dict) and isinstance(policy_input.get("requested"), dict) and replay.requested == recorded
    if not exact:
        return replay
    return Replay(decision_id=replay.decision_id, source=source, app_id=app_id, workload=replay.workload,
                  caller=replay.caller, recorded_result=result, recorded_app=app,
                  workload_profile=replay.workload_profile)


def _replay_of_request(request: DecisionRequest, *, decision_id: str | None, source: str,
                       caller: dict[str, Any]) -> Replay:
    return Replay(decision_id=decision_id, source=source, app_id=request.app_id,
                  workload=sent(request.workload) if request.workload is not None else None,
                  caller=caller, workload_profile=request.workload_profile)


def replays_from_records(records: Iterable[tuple[str | None, Any, Any]]) -> Iterator[Replay | Skipped]:
    """``(decision_id, input, result)`` rows read from the audit trail, as replays."""
    for decision_id, policy_input, result in records:
        yield replay_of_input(policy_input, decision_id=decision_id, source="audit", result=result)


def read_jsonl(path: Path | str) -> Iterator[Replay | Skipped]:
    """The replays of a JSONL file (streamed: one line at a time)."""
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            source = f"{path.name}:{number}"
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Skipped(source, f"not JSON: {exc}")
                continue
            yield _replay_of_line(item, source)


def _replay_of_line(item: Any, source: str) -> Replay | Skipped:
    if not isinstance(item, dict):
        return Skipped(source, "not a JSON object")
    decision_id = item.get("decision_id") if isinstance(item.get("decision_id"), str) else None
    if isinstance(item.get("input"), dict):  # an audit entry body or export line
        return replay_of_input(item["input"], decision_id=decision_id, source=source, result=item.get("result"))
    if "app" in item:  # a recorded policy input
        return replay_of_input(item, decision_id=decision_id, source=source)
    if "app_id" in item:  # a request body
        try:
            request = DecisionRequest.model_validate({k: v for k, v in item.items() if k != "decision_id"})
        except ValidationError as exc:
            return Skipped(source, _problems(exc))
        return _replay_of_request(request, decision_id=decision_id, source=source, caller=dict(_NO_CALLER))
    return Skipped(source, "expected a request ({app_id, workload}), a policy input ({app, workload}) "
                           "or an audit entry ({input})")


def _problems(exc: ValidationError, *, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"])) or "(body)"
        parts.append(f"{where}: {'unknown field' if err['type'] == 'extra_forbidden' else err['msg']}")
    return "; ".join(parts)
