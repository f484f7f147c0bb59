"""A policy bundle: the Rego modules and the governance data of one directory, validated.

``load_bundle(dir)`` reads ``*.rego`` and ``data/*.yaml``, validates the data against the
schemas of ``policy.catalog`` (errors name the file, line, entry and field) and computes the
bundle's revision: ``sha256:`` + SHA-256 of a ``sha256sum``-style manifest of every file, so the
same files give the same revision on every machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.catalog import App, Catalog, Model, Org
from policy.errors import BundleError, PolicyError
from policy.gateways import Gateways, gateway_errors
from policy.jurisdiction import Jurisdictions
from policy.profile import profile_errors

DATA_FILES = ("models", "apps", "org", "reasons", "jurisdictions")
# Optional: a bundle without it has no gateways (no gateway key can decide).
OPTIONAL_DATA_FILES = ("gateways",)
# libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ReasonCode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category: str = Field(pattern="^(governance|fitness)$")
    summary: str = Field(min_length=1)


class ObligationDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    summary: str = Field(min_length=1)


class Reasons(BaseModel):
    """The documented reason codes and obligations (``rego/data/reasons.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    codes: dict[str, ReasonCode]
    obligations: dict[str, ObligationDoc]


class _ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[Model]


class _AppsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apps: list[App]


class _OrgFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: Org


class _ReasonsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: dict[str, ReasonCode]
    obligations: dict[str, ObligationDoc]


_SCHEMAS: dict[str, type[BaseModel]] = {
    "models": _ModelsFile,
    "apps": _AppsFile,
    "org": _OrgFile,
    "reasons": _ReasonsFile,
    "jurisdictions": Jurisdictions,
    "gateways": Gateways,
}


@dataclass(frozen=True)
class GitInfo:
    """Where a bundle came from in git; not part of its ``revision`` (the content hash), but
    what a reviewer needs to map a decision back to a pull request."""

    commit: str  # HEAD of the work tree holding the policy directory (40 hex digits)
    dirty: bool  # files under the policy directory differ from HEAD (untracked ones too)
    path: str  # the policy directory relative to the repository root ("." at the root)

    def to_dict(self) -> dict[str, object]:
        # Spelled out: dataclasses.asdict deep-copies, and this runs for every decision.
        return {"commit": self.commit, "dirty": self.dirty, "path": self.path}


@dataclass(frozen=True)
class Bundle:
    root: Path
    modules: dict[str, str]  # relative path -> source, tests excluded: what decisions run on
    test_modules: dict[str, str]  # relative path -> source of *_test.rego
    catalog: Catalog
    reasons: Reasons
    revision: str
    files: tuple[str, ...]
    # Where the files came from in git, as the loader was told (None: not known, or not in git).
    git: GitInfo | None = None
    # The gateways and how their identities map to apps (data/gateways.yaml); not Rego data.
    gateways: Gateways = Gateways()

    def data_document(self) -> dict[str, Any]:
        """``data`` as the Rego rules see it (validated and normalised, defaults filled)."""
        dumped = self.catalog.model_dump(mode="json", by_alias=True)
        dumped["reasons"] = self.reasons.model_dump(mode="json")
        return dumped


def revision_of(files: dict[str, bytes]) -> str:
    """``sha256:`` + SHA-256 of lines ``<sha256(content)>  <path>``, sorted by path."""
    manifest = "".join(
        f"{hashlib.sha256(content).hexdigest()}  {path}\n" for path, content in sorted(files.items())
    )
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


def bundle_files(root: Path) -> dict[str, bytes]:
    """Every file that belongs to the bundle, by path relative to ``root`` (POSIX style)."""
    paths = [p for p in root.rglob("*.rego")] + [
        p for p in (root / "data").glob("*.yaml") if p.stem in DATA_FILES + OPTIONAL_DATA_FILES
    ]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(paths) if p.is_file()}


def load_bundle(root: Path | str, *, git: GitInfo | None = None) -> Bundle:
    """Read and validate the bundle in ``root``; raises ``BundleError`` listing every problem.

    ``git`` is recorded as the bundle's provenance; loading itself never asks git.
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError([PolicyError(str(root), None, "bundle_missing", "not a directory")])
    files = bundle_files(root)
    errors: list[PolicyError] = []
    parsed: dict[str, BaseModel] = {}
    for name in DATA_FILES:
        rel = f"data/{name}.yaml"
        if rel not in files:
            errors.append(PolicyError(_shown(root, rel), None, "data_missing", "file not found"))
            continue
        model, errs = _validate_file(_shown(root, rel), files[rel], _SCHEMAS[name])
        errors += errs
        if model is not None:
            parsed[name] = model
    for name in OPTIONAL_DATA_FILES:
        rel = f"data/{name}.yaml"
        if rel in files:
            model, errs = _validate_file(_shown(root, rel), files[rel], _SCHEMAS[name])
            errors += errs
            if model is not None:
                parsed[name] = model
    modules = {p: c.decode() for p, c in files.items() if p.endswith(".rego")}
    if not any(not p.endswith("_test.rego") for p in modules):
        errors.append(PolicyError(str(root), None, "bundle_empty", "no Rego modules"))
    catalog = None
    if not errors:
        try:
            catalog = Catalog(
                models=parsed["models"].models,  # type: ignore[attr-defined]
                apps=parsed["apps"].apps,  # type: ignore[attr-defined]
                org=parsed["org"].org,  # type: ignore[attr-defined]
                jurisdictions=parsed["jurisdictions"],
            )
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(PolicyError(_shown(root, "data/apps.yaml"), None, "data_invalid", err["msg"]))
    if catalog is not None:  # the apps' named workloads, against the request schema and their profile
        apps_text = files["data/apps.yaml"].decode()
        for loc, message in profile_errors(catalog):
            node = yaml.compose(apps_text, Loader=_LOADER)
            errors.append(PolicyError(_shown(root, "data/apps.yaml"), _line_at(node, loc), "data_invalid",
                                      f"{_describe(yaml.load(apps_text, Loader=_LOADER), loc)}: {message}"))
    gateways = parsed.get("gateways", Gateways())
    if catalog is not None and "data/gateways.yaml" in files:
        text = files["data/gateways.yaml"].decode()
        for loc, message in gateway_errors(gateways, catalog):  # type: ignore[arg-type]
            node = yaml.compose(text, Loader=_LOADER)
            errors.append(PolicyError(_shown(root, "data/gateways.yaml"), _line_at(node, loc), "data_invalid",
                                      f"{_describe(yaml.load(text, Loader=_LOADER), loc)}: {message}"))
    if errors or catalog is None:
        raise BundleError(errors)
    reasons_file = parsed["reasons"]
    return Bundle(
        root=root,
        modules={p: s for p, s in modules.items() if not p.endswith("_test.rego")},
        test_modules={p: s for p, s in modules.items() if p.endswith("_test.rego")},
        catalog=catalog,
        reasons=Reasons(codes=reasons_file.codes, obligations=reasons_file.obligations),  # type: ignore[attr-defined]
        revision=revision_of(files),
        files=tuple(sorted(files)),
        git=git,
        gateways=gateways,  # type: ignore[arg-type]
    )


def _shown(root: Path, rel: str) -> str:
    return (root / rel).as_posix()


def _validate_file(
    shown: str, content: bytes, schema: type[BaseModel]
) -> tuple[BaseModel | None, list[PolicyError]]:
    try:
        text = content.decode()
        doc = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when present)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        return None, [PolicyError(shown, line + 1 if line is not None else None, "data_unreadable", str(exc))]
    try:
        return schema.model_validate(doc), []
    except ValidationError as exc:
        node = yaml.compose(text, Loader=_LOADER)  # the node tree, for line numbers: errors only
        return None, [
            PolicyError(shown, _line_at(node, err["loc"]), "data_invalid", f"{_describe(doc, err['loc'])}: {err['msg']}")
            for err in exc.errors()
        ]


def _describe(doc: Any, loc: tuple[Any, ...]) -> str:
    """``models[3] (id=glm-5).licence.mau_cap`` — the entry named by its id where it has one."""
    out, cur = "", doc
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            cur = cur[part] if isinstance(cur, list) and part < len(cur) else None
            if isinstance(cur, dict) and "id" in cur:
                out += f" (id={cur['id']})"
        else:
            out += f".{part}" if out else str(part)
            cur = cur.get(part) if isinstance(cur, dict) else None
    return out or "(document)"


def _line_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` that exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line
