"""Rego engines: evaluate ``data.clearance.decision`` for one input, free of HTTP and storage.

The embedded engine is regorus (Rust, via the ``gordon-to-regorus`` wheel). A bundle is
compiled once into an RVM ``Program``; per decision only the input changes. regorus objects
are bound to the thread that created them, so the compiled program is kept as bytes and each
thread deserialises its own VM once, on first use.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import orjson
import regorus

from policy.bundle import Bundle
from policy.errors import BundleError, EvaluationError, from_engine_message

ENTRY_POINT = "data.clearance.decision"
_UNDEFINED = "<undefined>"


class Engine(Protocol):
    """What decision assembly needs from an engine."""

    name: str

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        """The raw ``data.clearance.decision`` for this input; raises ``EvaluationError``."""
        ...


class RegorusEngine:
    """In-process evaluation of one bundle; safe to share between threads."""

    name = "regorus"

    def __init__(self, bundle: Bundle) -> None:
        self._data_json = orjson.dumps(bundle.data_document()).decode()
        modules = sorted(bundle.modules.items())
        try:
            program = regorus.Program.compile_from_modules(self._data_json, modules, [ENTRY_POINT])
        except RuntimeError as exc:
            default = (bundle.root / modules[0][0]).as_posix() if modules else str(bundle.root)
            raise BundleError([_located(bundle, str(exc), default)]) from None
        self._program_bytes: bytes = program.serialize_binary()
        self._local = threading.local()

    def _vm(self) -> Any:
        vm = getattr(self._local, "vm", None)
        if vm is None:
            program = regorus.Program.deserialize_binary(self._program_bytes)
            if isinstance(program, tuple):  # (program, is_partial) in this binding
                program = program[0]
            vm = regorus.Rvm()
            vm.load_program(program)
            vm.set_data_json(self._data_json)
            self._local.vm = vm
        return vm

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm()
        try:
            vm.set_input_json(orjson.dumps(policy_input).decode())
            raw = vm.execute_entry_point(ENTRY_POINT)
        except Exception as exc:  # regorus raises RuntimeError/PanicException alike
            raise EvaluationError(f"policy evaluation failed: {str(exc).split('Stack backtrace')[0].strip()}") from None
        result = orjson.loads(raw)
        if result == _UNDEFINED or not isinstance(result, dict):
            raise EvaluationError(f"{ENTRY_POINT} is undefined for this input")
        return result


def _located(bundle: Bundle, message: str, default_file: str) -> Any:
    err = from_engine_message(message, default_file=default_file, code="rego_compile_error")
    # regorus reports the module name it was given (relative); show it under the bundle root.
    if err.file in bundle.modules:
        return type(err)((bundle.root / err.file).as_posix(), err.line, err.code, err.message)
    return err
