"""Rego engines: evaluate ``data.clearance.decision`` for one input, free of HTTP and storage.

The embedded engine is regorus (Rust, via the ``gordon-to-regorus`` wheel). A bundle is
compiled once into an RVM ``Program``; per decision only the input changes. regorus objects
are bound to the thread that created them, so the compiled program is kept as bytes and each
thread deserialises its own VM once, on first use, and keeps it: an engine that is let go on
another thread (a reload) leaves its VMs to be dropped by the threads that made them.

The RVM stops a decision after 25,000 instructions (fixed in regorus 0.13, not settable from
Python); the reference pack reaches it at about 35 models (about 160 when the decision is
assembled in Python, below). A catalog of more than ``PART_MODELS`` models
(``ASSEMBLED_PART_MODELS`` when assembled) is judged in parts of at most that many models, each on a VM
whose ``data.models`` is that slice, and the parts' answers (``data.clearance.part``) are
merged: allowed routes by the ranking key the policy gives each, denied routes by (model,
deployment), outcome ``allow`` when any route is allowed (the contract of
docs/policy-contract.md). A part (or a whole decision) that still hits the limit is evaluated
again by regorus' tree-walking interpreter, which has no such limit and gives the same answers
for the pack (tests/policy/test_rego.py compares the paths), only slower. One known difference (pinned in tests/engines/test_pinning.py): a
failing built-in (``to_number("abc")``) raises in the interpreter but is undefined in the RVM,
so the pack is written so that validated input can never make a built-in fail.

A decision (or a part's) of a pack whose main.rego is the one ``policy.assembly`` pins
evaluates only ``data.clearance.assembly`` (the tables ``decision`` and ``part`` are made from)
and builds them in Python, as main.rego would: the same answer for about half the VM's work.

Per evaluation the VM is handed only the parts of the input the pack's rules can read
(``policy.input_paths``), and its answer reaches the decoders as ASCII bytes where it can
(``policy.answer_text``): the same decisions for less parsing and no re-encoding.

The other engine is ``policy.opa.OpaEngine`` (an OPA server over HTTP); ``policy.loading``
chooses between them.
"""

from __future__ import annotations

import heapq
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
import regorus

from policy import assembly
from policy.answer_text import decodable, escapes_for
from policy.bundle import Bundle
from policy.errors import BundleError, ClearanceError, EvaluationError, from_engine_message
from policy.input_paths import pruned, read_paths

ENTRY_POINT = "data.clearance.decision"
# The decision on a slice of the catalog, with the allowed routes' ranking keys (main.rego).
PART_ENTRY_POINT = "data.clearance.part"
# Models per part: a part stays well under the RVM's instruction limit whatever the input
# (measured: bench/catalog_bench.py), and the per-part cost (input parsing, workload-wide
# rules) stays small beside the per-route cost. A decision assembled in Python
# (policy/assembly.py) leaves the VM about half the work per route: the first of 300 random
# inputs to hit the limit did so at ~160 synthetic models against ~35 for the whole decision,
# so its parts are four times larger.
PART_MODELS = 24
ASSEMBLED_PART_MODELS = 96
# The catalog-only tables of the pack (rego/catalog.rego), computed once per data document and
# passed to the evaluations as data.derived.
DERIVED_RULE = "data.clearance.catalog.derived"
DERIVED_ROOT = "derived"
_UNDEFINED = "<undefined>"
_INSTRUCTION_LIMIT = "maximum instruction limit"
log = logging.getLogger("clearance.policy")
EngineName = Literal["regorus", "opa"]
OPA_TIMEOUT = 2.0  # seconds, per decision through OPA (connect and read each)


class EngineConfigError(ClearanceError):
    """The engine settings cannot work (an unknown engine, ``opa`` without a URL)."""


class Engine(Protocol):
    """What decision assembly needs from an engine. An engine may also offer
    ``evaluate_raw`` (as ``RegorusEngine`` does): the same answer, possibly as its JSON text,
    which ``ActivePolicy.evaluate`` then decodes and checks in one pass."""

    name: str
    # True when an evaluation waits on I/O (a server): async callers then run it in a thread.
    blocking: bool

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        """The raw ``data.clearance.decision`` for this input; raises ``EvaluationError``."""
        ...


def with_derived(documents: list[dict[str, Any]], modules: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each data document with the pack's catalog-only tables added as ``data.derived``
    (evaluated by regorus' interpreter: no instruction limit); unchanged for a pack that does
    not define ``data.clearance.catalog.derived``."""
    engine = regorus.Engine()
    for name, text in modules:
        engine.add_policy(name, text)
    out = []
    for document in documents:
        engine.clear_data()
        engine.add_data_json(orjson.dumps(document).decode())
        try:
            derived = orjson.loads(engine.eval_rule_as_json(DERIVED_RULE))
        except RuntimeError as exc:
            if "not a valid rule path" in str(exc) or "undefined" in str(exc).lower():
                return documents
            raise EvaluationError(f"{DERIVED_RULE} failed on the bundle's data: {_first_line(exc)}") from None
        if not isinstance(derived, dict):  # undefined: the pack computes per evaluation
            return documents
        out.append({**document, DERIVED_ROOT: derived})
    return out


def decision_document(bundle: Bundle) -> dict[str, Any]:
    """``data`` as decisions see it: the bundle's data document and its derived tables."""
    return with_derived([bundle.data_document()], sorted(bundle.modules.items()))[0]


@dataclass
class _Held:
    """One engine's regorus objects on one thread."""

    engine: weakref.ref[RegorusEngine]
    vm: Any = None
    part_vms: list[Any] | None = None
    interpreters: dict[int | None, Any] = field(default_factory=dict)


class _ThreadHeld(threading.local):
    """The regorus objects each thread made, by engine (``id``). regorus' VM and interpreter are
    PyO3 "unsendable": dropped on another thread than their own they are leaked, with a
    RuntimeError printed. An engine that kept them itself (a ``threading.local`` of its own)
    would drop every thread's on the thread that let it go last, as a policy reload does while
    the event loop and the pools' threads live on. So each thread keeps its own, and drops those
    of engines that are gone when it takes up a new engine, or when it ends."""

    def __init__(self) -> None:
        self.by_engine: dict[int, _Held] = {}


_THREAD_HELD = _ThreadHeld()


def thread_held_engines() -> int:
    """How many engines' regorus objects this thread holds (live ones and ones gone since it
    last took up a new engine)."""
    return len(_THREAD_HELD.by_engine)


class RegorusEngine:
    """In-process evaluation of one bundle; safe to share between threads."""

    name = "regorus"
    blocking = False  # in-process, well under a millisecond: no thread hop

    def __init__(self, bundle: Bundle, *, part_models: int | None = None) -> None:
        document = bundle.data_document()
        self._data_json = orjson.dumps(document).decode()
        modules = sorted(bundle.modules.items())
        self._modules = modules
        # The characters past ASCII the pack can put into an answer (policy/answer_text.py).
        self._escapes = escapes_for([self._data_json, *(text for _, text in modules)])
        # What of the input the rules can read: the VM parses only that (policy/input_paths.py).
        self._input_paths = read_paths(modules)
        models = document.get("models", [])
        # The decision assembled in Python from main.rego's tables (policy/assembly.py).
        # Why not, when not (``clearance policy check`` says it); None while assembled.
        self._refusal = assembly.refusal(modules, document)
        self._assembles = self._refusal is None
        if part_models is None:
            part_models = ASSEMBLED_PART_MODELS if self._assembles else PART_MODELS
        split = len(models) > part_models
        entry_points = [ENTRY_POINT, PART_ENTRY_POINT] if split else [ENTRY_POINT]
        try:
            try:
                program = regorus.Program.compile_from_modules(
                    self._data_json, modules, entry_points + [assembly.ASSEMBLY_RULE] * self._assembles)
            except RuntimeError:
                if not split:
                    raise
                # A pack without data.clearance.part is evaluated whole (and past the limit,
                # by the interpreter); a real error shows again here.
                split = False
                self._assembles = False
                self._refusal = self._refusal or "the pack does not compile with data.clearance.part"
                program = regorus.Program.compile_from_modules(self._data_json, modules, [ENTRY_POINT])
        except RuntimeError as exc:
            default = (bundle.root / modules[0][0]).as_posix() if modules else str(bundle.root)
            raise BundleError([_located(bundle, str(exc), default)]) from None
        self._program_bytes: bytes = program.serialize_binary()
        # The data document of each part: the catalog's models in slices of about equal size.
        self._parts: list[str] = []
        # The ids of data.models as each VM sees it (the assembly's model_found), part by part.
        self._model_ids: list[list[str]] = [[m["id"] for m in models]]
        if split:
            count = -(-len(models) // part_models)
            size = -(-len(models) // count)
            parts = [{**document, "models": models[i:i + size]} for i in range(0, len(models), size)]
            self._parts = [orjson.dumps(d).decode() for d in with_derived(parts, modules)]
            self._model_ids = [[m["id"] for m in part["models"]] for part in parts]
        else:
            self._data_json = orjson.dumps(with_derived([document], modules)[0]).decode()

    @property
    def assembles(self) -> bool:
        """Whether decisions are assembled in Python from main.rego's tables (policy/assembly.py)."""
        return self._assembles

    @property
    def assembly_refusal(self) -> str | None:
        """Why decisions are evaluated whole on the VM (:meth:`assembles` false), else None."""
        return self._refusal

    @property
    def parts(self) -> int:
        """How many parts a decision is evaluated in (1: whole)."""
        return max(1, len(self._parts))

    def _program(self) -> Any:
        program = regorus.Program.deserialize_binary(self._program_bytes)
        if isinstance(program, tuple):  # (program, is_partial) in this binding
            program = program[0]
        return program

    def _held(self) -> _Held:
        """This thread's regorus objects of this engine (see :class:`_ThreadHeld`)."""
        by_engine = _THREAD_HELD.by_engine
        held = by_engine.get(id(self))
        if held is None or held.engine() is not self:
            for key in [k for k, h in by_engine.items() if h.engine() is None]:
                del by_engine[key]  # dropped here, by the thread that made them
            held = by_engine[id(self)] = _Held(weakref.ref(self))
        return held

    def _vm(self) -> Any:
        held = self._held()
        vm = held.vm
        if vm is None:
            vm = regorus.Rvm()
            vm.load_program(self._program())
            vm.set_data_json(self._data_json)
            held.vm = vm
        return vm

    def _part_vms(self) -> list[Any]:
        held = self._held()
        vms = held.part_vms
        if vms is None:
            program = self._program()
            vms = []
            for data_json in self._parts:
                vm = regorus.Rvm()
                vm.load_program(program)
                vm.set_data_json(data_json)
                vms.append(vm)
            held.part_vms = vms
        return vms

    def _interpreter(self, index: int | None = None) -> Any:
        engines = self._held().interpreters
        engine = engines.get(index)
        if engine is None:
            engine = regorus.Engine()
            for name, text in self._modules:
                engine.add_policy(name, text)
            engine.add_data_json(self._data_json if index is None else self._parts[index])
            engines[index] = engine
        return engine

    def _run(self, vm: Any, entry_point: str, input_json: str, part: int | None) -> str | bytes:
        """One evaluation on ``vm``, past the instruction limit on the interpreter; the raw JSON,
        as ``answer_text.decodable`` hands it to a decoder."""
        try:
            vm.set_input_json(input_json)
            return decodable(vm.execute_entry_point(entry_point), self._escapes)
        except Exception as exc:  # regorus raises RuntimeError/PanicException alike
            if _INSTRUCTION_LIMIT not in str(exc):
                raise EvaluationError(f"policy evaluation failed: {_first_line(exc)}") from None
            log.info("decision over the RVM instruction limit; evaluated by the interpreter")
            try:
                engine = self._interpreter(part)
                engine.set_input_json(input_json)
                return decodable(engine.eval_rule_as_json(entry_point), self._escapes)
            except Exception as exc2:
                raise EvaluationError(f"policy evaluation failed: {_first_line(exc2)}") from None

    def evaluate(self, policy_input: dict[str, Any]) -> dict[str, Any]:
        raw = self.evaluate_raw(policy_input)
        return decoded(raw) if isinstance(raw, (str, bytes)) else raw

    def evaluate_raw(self, policy_input: dict[str, Any]) -> str | bytes | dict[str, Any]:
        """What :meth:`evaluate` answers, left as the VM's JSON text when one VM judged the
        whole catalog (``decoded`` turns it into :meth:`evaluate`'s answer): a caller that
        checks the answer anyway can decode and check it in one pass."""
        input_json = orjson.dumps(pruned(policy_input, self._input_paths)).decode()
        try:
            vms = self._part_vms() if self._parts else [self._vm()]
        except Exception as exc:  # a program that cannot load: fail closed
            raise EvaluationError(f"policy evaluation failed: {_first_line(exc)}") from None
        if self._parts:
            parts = [self._part(vm, input_json, i) for i, vm in enumerate(vms)]
            merged = _defined(self._merged(parts))
            return Assembled(merged) if all(type(p) is Assembled for p in parts) else merged
        if self._assembles:
            body = assembly.assembled(self._run(vms[0], assembly.ASSEMBLY_RULE, input_json, None), self._model_ids[0])
            if body is not None:
                return Assembled(body)
            # Tables main.rego's rules do not expect: the VM decides whole, as it would anyway.
        return self._run(vms[0], ENTRY_POINT, input_json, None)

    def _part(self, vm: Any, input_json: str, index: int) -> Any:
        """``data.clearance.part`` on one part: assembled from its tables when the pack allows."""
        if self._assembles:
            body = assembly.assembled_part(self._run(vm, assembly.ASSEMBLY_RULE, input_json, index),
                                           self._model_ids[index])
            if body is not None:
                return Assembled(body)
        return orjson.loads(self._run(vm, PART_ENTRY_POINT, input_json, index))

    @staticmethod
    def _merged(parts: list[Any]) -> Any:
        """The decision on the whole catalog from the decisions on its parts (see above)."""
        if any(p == _UNDEFINED or not isinstance(p, dict) for p in parts):
            return _UNDEFINED
        try:
            ranked = heapq.merge(*(zip(p["rank_keys"], p["allowed"], strict=True) for p in parts),
                                 key=lambda pair: pair[0])
            allowed = [{**item, "rank": rank} for rank, (_, item) in enumerate(ranked, start=1)]
            denied = list(heapq.merge(*(p["denied"] for p in parts),
                                      key=lambda item: (item["model"], item["deployment"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(f"{PART_ENTRY_POINT} answered an invalid part: {exc}") from None
        return {"outcome": "allow" if allowed else "deny", "allowed": allowed, "denied": denied}


class Assembled(dict[str, Any]):
    """A decision built by ``policy.assembly`` from tables of checked types: already in the
    shape ``ActivePolicy.evaluate`` checks answers into, so it is not checked again."""


def decoded(raw: str | bytes) -> dict[str, Any]:
    """The decision from an evaluation's JSON text (``RegorusEngine.evaluate_raw``)."""
    return _defined(orjson.loads(raw))


def _defined(result: Any) -> dict[str, Any]:
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
