"""``clearance policy check``: everything that makes a bundle unfit to serve, as located errors.

``check_bundle(dir)`` runs, in order, and collects (never stops at the first problem):

1. the data files validate against the schemas (``load_bundle``: models, apps, org, reasons);
2. every module parses on its own (``*_test.rego`` included), so each broken file is named;
3. the decision modules compile to the program the service runs (regorus RVM, entry point
   ``data.clearance.decision``), and all modules together pass the interpreter's analysis
   (unsafe variables, unknown functions …) — that is where test modules are checked;
4. reason codes and obligations agree with ``data/reasons.yaml`` both ways: every code a rule
   can emit is documented, every documented one is emitted by some rule, categories match the
   pack's ``governance``/``fitness`` sets, and codes are spelled once (in the codes module);
5. no two ``test_*`` rules of one package share a name (Rego would OR them into one test).

Every problem is a :class:`~policy.errors.PolicyError` (``file:line: code: message``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import regorus
import yaml

from policy.bundle import Bundle, bundle_files, load_bundle
from policy.engine import ENTRY_POINT, RegorusEngine
from policy.errors import BundleError, PolicyError, from_engine_message
from policy.review.testing import discover_tests

CODES_PACKAGE = "clearance.codes"

# A string literal, a raw string or a comment: comments are blanked (line numbers kept) so
# that a code mentioned in a comment is neither "emitted" nor "spelled outside codes.rego".
_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*')
_CODE_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
_CONSTANT = re.compile(r'^([A-Z][A-Z0-9_]*)\s*:=\s*"([^"]+)"\s*$', re.M)
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)
_IMPORT_CODES = re.compile(r"^import\s+data\.clearance\.codes(?:\s+as\s+(\w+))?\s*$", re.M)


def check_bundle(root: Path | str) -> list[PolicyError]:
    """Every error of the bundle in ``root``, sorted by file and line; empty when it is fit."""
    root = Path(root)
    errors: list[PolicyError] = []
    bundle: Bundle | None = None
    try:
        bundle = load_bundle(root)
    except BundleError as exc:
        errors += exc.errors
    if not root.is_dir():
        return sorted(set(errors))
    sources = _rego_sources(root, errors)
    data = bundle.data_document() if bundle is not None else {}
    parsed_ok = _parse_each(root, sources, errors)
    if parsed_ok:
        engine = _analyse_all(root, sources, data, errors)
        _compile_decision(root, bundle, sources, errors)
        if bundle is not None:
            errors += reason_errors(root, sources, bundle, engine)
        errors += duplicate_test_errors(root, sources)
    return sorted(set(errors), key=lambda e: (e.file, e.line or 0, e.code, e.message))


# -- compilation -------------------------------------------------------------------------------


def _rego_sources(root: Path, errors: list[PolicyError]) -> dict[str, str]:
    """Relative path -> text of every ``.rego`` file (undecodable ones reported)."""
    out: dict[str, str] = {}
    for rel, content in bundle_files(root).items():
        if not rel.endswith(".rego"):
            continue
        try:
            out[rel] = content.decode()
        except UnicodeDecodeError as exc:
            errors.append(PolicyError(_shown(root, rel), None, "rego_unreadable", f"not UTF-8: {exc}"))
    return out


def _parse_each(root: Path, sources: dict[str, str], errors: list[PolicyError]) -> bool:
    """Parse every module alone so that each broken file gets its own error."""
    ok = True
    for rel, text in sorted(sources.items()):
        try:
            regorus.Engine().add_policy(rel, text)
        except Exception as exc:  # regorus raises RuntimeError (or a panic) with a located text
            ok = False
            errors.append(_relocated(root, _engine_error(exc, rel, "rego_parse_error")))
    return ok


def _analyse_all(root: Path, sources: dict[str, str], data: dict[str, Any], errors: list[PolicyError]) -> Any:
    """All modules (tests too) in one interpreter; a trivial query runs the whole analysis.

    Returns the engine when the modules are sound (used for the category check), else None.
    """
    engine = regorus.Engine()
    try:
        for rel, text in sorted(sources.items()):
            engine.add_policy(rel, text)
        engine.add_data_json(orjson.dumps(data).decode())
        engine.eval_query_as_json("true")
    except Exception as exc:
        errors.append(_relocated(root, _engine_error(exc, next(iter(sorted(sources)), "."), "rego_compile_error")))
        return None
    return engine


def _compile_decision(root: Path, bundle: Bundle | None, sources: dict[str, str], errors: list[PolicyError]) -> None:
    """Compile what the service runs; with broken data, compile against empty data instead."""
    try:
        if bundle is not None:
            RegorusEngine(bundle)
        else:
            modules = sorted((p, s) for p, s in sources.items() if not p.endswith("_test.rego"))
            if modules:
                regorus.Program.compile_from_modules("{}", modules, [ENTRY_POINT])
    except BundleError as exc:
        errors += exc.errors
    except Exception as exc:
        default = next((p for p in sorted(sources) if not p.endswith("_test.rego")), ".")
        errors.append(_relocated(root, _engine_error(exc, default, "rego_compile_error")))


def _engine_error(exc: BaseException, default_rel: str, code: str) -> PolicyError:
    return from_engine_message(str(exc), default_file=default_rel, code=code)


def _relocated(root: Path, err: PolicyError) -> PolicyError:
    """regorus names files as we gave them (relative); show them under the bundle root."""
    return PolicyError(_shown(root, err.file), err.line, err.code, err.message)


def _shown(root: Path, rel: str) -> str:
    return (root / rel).as_posix()


# -- reason codes and obligations --------------------------------------------------------------


@dataclass(frozen=True)
class _Spot:
    file: str
    line: int


def blank_comments(text: str) -> str:
    """The module with comments replaced by spaces (strings and line numbers untouched)."""
    return _TOKENS.sub(lambda m: " " * len(m.group()) if m.group().startswith("#") else m.group(), text)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def reason_errors(root: Path, sources: dict[str, str], bundle: Bundle, engine: Any = None) -> list[PolicyError]:
    """Reason codes and obligations of the rules against ``data/reasons.yaml``, both ways."""
    reasons_file = _shown(root, "data/reasons.yaml")
    yaml_lines = _yaml_key_lines(root / "data" / "reasons.yaml")
    documented_codes, documented_obligations = set(bundle.reasons.codes), set(bundle.reasons.obligations)
    modules = {rel: blank_comments(text) for rel, text in sources.items() if not rel.endswith("_test.rego")}
    codes_rel = next((rel for rel, text in sorted(modules.items()) if _package(text) == CODES_PACKAGE), None)

    constants: dict[str, tuple[str, _Spot]] = {}  # NAME -> (value, where defined)
    if codes_rel is not None:
        text = modules[codes_rel]
        for m in _CONSTANT.finditer(text):
            constants[m.group(1)] = (m.group(2), _Spot(_shown(root, codes_rel), _line_of(text, m.start())))

    errors: list[PolicyError] = []
    emitted_codes: dict[str, _Spot] = {}
    used_obligations: set[str] = set()
    for rel, text in sorted(modules.items()):
        if rel == codes_rel:
            continue
        for m in _CODE_LITERAL.finditer(text):
            spot = _Spot(_shown(root, rel), _line_of(text, m.start()))
            emitted_codes.setdefault(m.group(1), spot)
            if codes_rel is not None:
                errors.append(PolicyError(spot.file, spot.line, "reason_literal",
                                          f"code {m.group(1)} is spelled here; refer to data.clearance.codes.{m.group(1)} "
                                          f"(codes are spelled once, in {codes_rel})"))
        for name, offset in _constant_refs(text):
            if name not in constants:
                continue  # an unknown constant is a compile error, reported there
            value, _ = constants[name]
            spot = _Spot(_shown(root, rel), _line_of(text, offset))
            if _is_code(value):
                emitted_codes.setdefault(value, spot)
            else:
                used_obligations.add(value)

    for name, (value, spot) in sorted(constants.items()):
        if _is_code(value) and value not in documented_codes:
            errors.append(PolicyError(spot.file, spot.line, "reason_undocumented",
                                      f"code {value} ({name}) is not documented in data/reasons.yaml codes"))
        elif not _is_code(value) and value not in documented_obligations:
            errors.append(PolicyError(spot.file, spot.line, "obligation_undocumented",
                                      f"obligation {value} ({name}) is not documented in data/reasons.yaml obligations"))
    for code, spot in sorted(emitted_codes.items()):
        if code not in documented_codes and not any(v == code for v, _ in constants.values()):
            errors.append(PolicyError(spot.file, spot.line, "reason_undocumented",
                                      f"code {code} is emitted here but not documented in data/reasons.yaml codes"))
    for code in sorted(documented_codes - set(emitted_codes)):
        errors.append(PolicyError(reasons_file, yaml_lines.get(("codes", code)), "reason_unused",
                                  f"code {code} is documented but no rule emits it"))
    for name in sorted(documented_obligations - used_obligations):
        errors.append(PolicyError(reasons_file, yaml_lines.get(("obligations", name)), "obligation_unused",
                                  f"obligation {name} is documented but no rule attaches it"))
    errors += _category_errors(bundle, engine, reasons_file, yaml_lines)
    return errors


def _category_errors(bundle: Bundle, engine: Any, reasons_file: str,
                     yaml_lines: dict[tuple[str, str], int]) -> list[PolicyError]:
    """The pack's own ``governance``/``fitness`` sets (when it defines them) vs. the categories."""
    if engine is None:
        return []
    errors = []
    for category in ("governance", "fitness"):
        try:
            members = orjson.loads(engine.eval_rule_as_json(f"data.{CODES_PACKAGE}.{category}"))
        except Exception:
            continue  # the pack defines no such set: nothing to compare
        if not isinstance(members, list):
            continue
        for code in sorted(str(c) for c in members):
            doc = bundle.reasons.codes.get(code)
            if doc is not None and doc.category != category:
                errors.append(PolicyError(reasons_file, yaml_lines.get(("codes", code)), "reason_category",
                                          f"code {code} is in codes.{category} but documented as {doc.category}"))
    return errors


def _constant_refs(text: str) -> Iterable[tuple[str, int]]:
    """(constant name, offset) of every ``data.clearance.codes.X`` or ``<alias>.X`` reference."""
    aliases = {m.group(1) or "codes" for m in _IMPORT_CODES.finditer(text)}
    prefixes = [r"data\.clearance\.codes"] + [re.escape(a) for a in sorted(aliases)]
    pattern = re.compile(rf"(?<![\w.])(?:{'|'.join(prefixes)})\.([A-Z][A-Z0-9_]*)\b")
    return ((m.group(1), m.start()) for m in pattern.finditer(text))


def _is_code(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value))


def _package(text: str) -> str | None:
    m = _PACKAGE.search(text)
    return m.group(1) if m else None


def _yaml_key_lines(path: Path) -> dict[tuple[str, str], int]:
    """(section, key) -> 1-based line of the key in a two-level YAML mapping."""
    try:
        node = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    out: dict[tuple[str, str], int] = {}
    if isinstance(node, yaml.MappingNode):
        for section, value in node.value:
            if isinstance(value, yaml.MappingNode):
                for key, _ in value.value:
                    out[(str(section.value), str(key.value))] = key.start_mark.line + 1
    return out


# -- tests -------------------------------------------------------------------------------------


def duplicate_test_errors(root: Path, sources: dict[str, str]) -> list[PolicyError]:
    """Two ``test_x`` rules in one package are one rule (their bodies OR'ed), not two tests."""
    errors = []
    seen: dict[tuple[str, str], str] = {}
    for test in discover_tests({rel: text for rel, text in sources.items() if rel.endswith("_test.rego")}):
        key = (test.package, test.rule)
        if key in seen:
            errors.append(PolicyError(_shown(root, test.file), test.line, "test_duplicate",
                                      f"{test.rule} is also defined at {seen[key]}: Rego ORs the two bodies into "
                                      "one test; rename one"))
        else:
            seen[key] = f"{test.file}:{test.line}"
    return errors
