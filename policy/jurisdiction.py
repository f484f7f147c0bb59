"""Jurisdictions: ISO 3166-1 alpha-2 country codes and the groups ``EU`` and ``EEA``.

Codes are checked against ``pycountry`` (the ISO 3166 database, maintained upstream), never a
hand-kept list. ``UK``, which ISO 3166 reserves for the United Kingdom, is read as ``GB``.
Which countries belong to a group is governance data in the bundle (``data/jurisdictions.yaml``,
validated here): a member state expands to its groups before the policy sees it, so a workload
in ``["DE"]`` gets every rule written for ``EU``.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, PrivateAttr, model_validator

GROUPS = ("EU", "EEA")  # the groups the contract names; their members come from the bundle
GroupName = Literal["EU", "EEA"]
ALIASES = {"UK": "GB"}  # ISO 3166 "exceptionally reserved" code, in common use


@cache
def iso_countries() -> frozenset[str]:
    """Every officially assigned ISO 3166-1 alpha-2 code known to pycountry."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def check_code(code: str) -> str:
    """``code`` if it names a country (ISO 3166-1 alpha-2, ``UK`` allowed) or a group; else
    ``ValueError`` saying why. Returned as given: :func:`canonical` normalises."""
    if code in GROUPS or code in ALIASES or code in iso_countries():
        return code
    if code.upper() != code and (code.upper() in GROUPS or code.upper() in iso_countries()):
        raise ValueError(f"{code!r}: jurisdiction codes are upper case ({code.upper()!r})")
    raise ValueError(f"{code!r} is neither an ISO 3166-1 alpha-2 country code nor one of the groups {', '.join(GROUPS)}")


def check_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 country code proper (group members: no groups, no aliases)."""
    if code not in iso_countries():
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def canonical(code: str) -> str:
    return ALIASES.get(code, code)


# A code as a request or a profile may spell it (validated; ``UK`` kept as sent).
JurisdictionCode = Annotated[str, AfterValidator(check_code)]
CountryCode = Annotated[str, AfterValidator(check_country)]


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    source: HttpUrl  # where the membership was read, for the reviewer
    # Another group whose members all belong to this one too (the EEA includes the EU).
    includes: list[GroupName] = []
    members: list[CountryCode] = Field(min_length=1)


class Jurisdictions(BaseModel):
    """``data/jurisdictions.yaml``: the members of each group."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    groups: dict[GroupName, Group]
    _closure_cache: dict[str, frozenset[str]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _complete(self) -> Jurisdictions:
        missing = [g for g in GROUPS if g not in self.groups]
        if missing:
            raise ValueError(f"groups {', '.join(missing)} are missing: the contract names {', '.join(GROUPS)}")
        for name, group in self.groups.items():
            if name in group.includes:
                raise ValueError(f"group {name} includes itself")
        return self

    def members(self, group: str) -> frozenset[str]:
        """Every country of ``group``, through the groups it includes."""
        return self._closure()[group]

    def expand(self, codes: list[str]) -> list[str]:
        """The codes (``UK`` as ``GB``) with every group each one belongs to, sorted.

        ``DE`` → ``DE, EEA, EU``; ``NO`` → ``EEA, NO``; ``EU`` → ``EEA, EU`` (every EU member
        is in the EEA).
        """
        out: set[str] = set()
        for code in codes:
            code = canonical(code)
            out.add(code)
            out |= self._groups_of(code)
        return sorted(out)

    def covers(self, registered: list[str], code: str) -> bool:
        """Whether a profile registered for ``registered`` covers ``code``: the code itself, a
        member of a registered group, or a group every member of which is registered."""
        code = canonical(code)
        allowed = {canonical(c) for c in registered}
        if code in allowed:
            return True
        if code in self.groups:
            return self.members(code) <= allowed or any(
                g in allowed and self.members(code) <= self.members(g) for g in self.groups)
        return any(g in allowed and code in self.members(g) for g in self.groups)

    def _groups_of(self, code: str) -> set[str]:
        closure = self._closure()
        if code in closure:  # a group: every group that includes it
            return {g for g, members in closure.items() if g != code and closure[code] <= members
                    and code in self._included(g)}
        return {g for g, members in closure.items() if code in members}

    def _included(self, group: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[group].includes)
        while todo:
            g = todo.pop()
            if g not in seen:
                seen.add(g)
                todo += self.groups[g].includes
        return seen

    def _closure(self) -> dict[str, frozenset[str]]:
        if self._closure_cache is None:
            self._closure_cache = {
                name: frozenset(group.members).union(*(self.groups[g].members for g in self._included(name)))
                for name, group in self.groups.items()}
        return self._closure_cache
