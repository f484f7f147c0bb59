"""Rego engines: evaluate ``data.clearance.decision`` for one input, free of HTTP and storage.

The embedded engine is regorus (Rust, via the ``gordon-to-regorus`` wheel). A bundle is
compiled once into an RVM ``Program``; per decision only the input changes. regorus objects
are bound to the thread that created them, so the compiled program is kept as bytes and each
thread deserialises its own VM once, on first use.

The RVM stops a decision after 25,000 instructions (fixed in regorus 0.13, not settable from
Python); the reference pack uses about half of that on its largest decisions with 17 models.
A decision that hits the limit is evaluated again by regorus' tree-walking interpreter, which
has no such limit and gives the same answers for the pack (tests/policy/test_rego.py compares
the paths), only slower. One known difference (pinned in tests/engines/test_pinning.py): a
failing built-in (``to_number("abc")``) raises in the interpreter but is undefined in the RVM,
so the pack is written so that validated input can never make a built-in fail.

The other engine is ``policy.opa.OpaEngine`` (an OPA server over HTTP); ``policy.loading``
chooses between them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal, Protocol

import orjson
import regorus

from policy.bundle import Bundle
from policy.errors import BundleError, ClearanceError, EvaluationError, from_engine_message

ENTRY_POINT = "data.clearance.decision"
_UNDEFINED = "<undefined>"
_INSTRUCTION_LIMIT = "maximum instruction limit"
log = logging.getLogger("clearance.policy")
EngineName = Literal["regorus", "opa"]
OPA_TIMEOUT = 2.0  # seconds, per decision through OPA (connect and read each)


class EngineConfigError(ClearanceError):
    """The engine settings cannot work (an unknown engine, ``opa`` without a URL)."""


class Engine(Protocol):
    """What decision assembly needs from an engine."""

    name: str
    # True when an evaluation waits on I/O (a server): async callers then run it in a thread.
    blocking: bool

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        """The raw ``data.clearance.decision`` for this input; raises ``EvaluationError``."""
        ...


class RegorusEngine:
    """In-process evaluation of one bundle; safe to share between threads."""

    name = "regorus"
    blocking = False  # in-process, well under a millisecond: no thread hop

    def __init__(self, bundle: Bundle) -> None:
        self._data_json = orjson.dumps(bundle.data_document()).decode()
        modules = sorted(bundle.modules.items())
        self._modules = modules
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

    def _interpreter(self) -> Any:
        engine = getattr(self._local, "interpreter", None)
        if engine is None:
            engine = regorus.Engine()
            for name, text in self._modules:
                engine.add_policy(name, text)
            engine.add_data_json(self._data_json)
            self._local.interpreter = engine
        return engine

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        input_json = orjson.dumps(policy_input).decode()
        try:
            vm = self._vm()
            vm.set_input_json(input_json)
            raw = vm.execute_entry_point(ENTRY_POINT)
        except Exception as exc:  # regorus raises RuntimeError/PanicException alike
            if _INSTRUCTION_LIMIT not in str(exc):
                raise EvaluationError(f"policy evaluation failed: {_first_line(exc)}") from None
            log.info("decision over the RVM instruction limit; evaluated by the interpreter")
            try:
                engine = self._interpreter()
                engine.set_input_json(input_json)
                raw = engine.eval_rule_as_json(ENTRY_POINT)
            except Exception as exc2:
                raise EvaluationError(f"policy evaluation failed: {_first_line(exc2)}") from None
        result = orjson.loads(raw)
        if result == _UNDEFINED or not isinstance(result, dict):
            raise EvaluationError(f"{ENTRY_POINT} is undefined for this input")
        return result


def _first_line(exc: BaseException) -> str:
    return str(exc).split("Stack backtrace")[0].strip()


def _located(bundle: Bundle, message: str, default_file: str) -> Any:
    err = from_engine_message(message, default_file=default_file, code="rego_compile_error")
    # regorus reports the module name it was given (relative); show it under the bundle root.
    if err.file in bundle.modules:
        return type(err)((bundle.root / err.file).as_posix(), err.line, err.code, err.message)
    return err
