"""Policy errors are data: a location, a code and a message (like OPA's ``ast.Error``).

The same objects are printed by the CLI as ``file:line: code: message`` and returned as JSON
by the API. The exceptions derive from ``clearance.errors.ClearanceError``, the root shared
with ``audit``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from clearance.errors import ClearanceError  # re-exported: the root of every error below


@dataclass(frozen=True, order=True)
class PolicyError:
    file: str
    line: int | None
    code: str  # rego_compile_error | data_invalid | data_unreadable | reason_undocumented | …
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.code}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class BundleError(ClearanceError):
    """The bundle on disk does not compile or its data does not validate."""

    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line or 0, e.code, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))

    def diagnostics(self) -> str:
        n = len(self.errors)
        return f"policy bundle refused ({n} error{'s' if n != 1 else ''}):\n" + str(self)


class UnknownApp(ClearanceError):
    """The request names an app that ``apps.yaml`` does not hold."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        super().__init__(f"app {app_id!r} is not in apps.yaml; entitlements come only from there")


class EvaluationError(ClearanceError):
    """The engine failed on an input: fail closed, no route is cleared."""


_RUST_LOCATION = re.compile(r"-->\s*(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+)")
_RUST_MESSAGE = re.compile(r"^error:\s*(?P<msg>.+)$", re.MULTILINE)


def from_engine_message(text: str, *, default_file: str, code: str) -> PolicyError:
    """Turn a regorus error (``--> file:line:col … error: msg`` plus a backtrace) into data."""
    loc = _RUST_LOCATION.search(text)
    msg = _RUST_MESSAGE.search(text)
    message = msg.group("msg").strip() if msg else text.split("Stack backtrace")[0].strip()
    if loc:
        return PolicyError(loc.group("file"), int(loc.group("line")), code, message)
    return PolicyError(default_file, None, code, message)

