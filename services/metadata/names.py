"""Resource names and the rules for their parts (pure functions, no I/O).

W&B allows artifact names of ``[A-Za-z0-9_.-]`` up to 128 characters; Depot
uses the same rule for every name part so any name can be pasted into a
resource path without escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from depot.services.common.errors import InvalidArgument

_PART = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_VERSION = re.compile(r"v(0|[1-9][0-9]{0,9})")
MAX_ALIAS = 128
RESERVED_ALIASES = frozenset({"latest"})


def check_part(value: str, field: str, what: str) -> str:
    if not _PART.fullmatch(value) or value in (".", ".."):
        raise InvalidArgument(
            f"invalid {what} {value!r}: use 1-128 characters of letters, digits, '_', '.', '-'",
            field=field,
        )
    return value


def version_index(ref: str) -> int | None:
    """The index N of a ``vN`` reference, or None when it is an alias."""
    m = _VERSION.fullmatch(ref)
    return int(m.group(1)) if m else None


def check_settable_alias(alias: str, field: str = "aliases") -> str:
    """An alias a caller may set by hand: not ``latest`` and not ``vN``."""
    check_part(alias, field, "alias")
    if alias in RESERVED_ALIASES or version_index(alias) is not None:
        raise InvalidArgument(f"alias {alias!r} is reserved: 'latest' and 'vN' are maintained by Depot", field=field)
    return alias


@dataclass(frozen=True)
class ProjectName:
    entity: str
    project: str

    def __str__(self) -> str:
        return f"entities/{self.entity}/projects/{self.project}"


@dataclass(frozen=True)
class CollectionName:
    project: ProjectName
    artifact: str

    def __str__(self) -> str:
        return f"{self.project}/artifacts/{self.artifact}"


@dataclass(frozen=True)
class VersionName:
    collection: CollectionName
    # "vN" or an alias.
    ref: str

    def __str__(self) -> str:
        return f"{self.collection}/versions/{self.ref}"


@dataclass(frozen=True)
class RunName:
    project: ProjectName
    run: str

    def __str__(self) -> str:
        return f"{self.project}/runs/{self.run}"


_SINGULAR = {
    "entities": "entity",
    "projects": "project",
    "artifacts": "artifact",
    "versions": "version",
    "runs": "run",
    "registries": "registry",
    "collections": "collection",
}


def _split(name: str, field: str, shape: tuple[str, ...]) -> list[str]:
    parts = name.split("/")
    expected = "/".join(f"{s}/{{{_SINGULAR.get(s, s)}}}" for s in shape)
    if len(parts) != 2 * len(shape) or any(parts[2 * i] != s for i, s in enumerate(shape)):
        raise InvalidArgument(f"invalid resource name {name!r}: expected {expected}", field=field)
    return parts[1::2]


def parse_project(name: str, field: str = "parent") -> ProjectName:
    e, p = _split(name, field, ("entities", "projects"))
    return ProjectName(check_part(e, field, "entity"), check_part(p, field, "project"))


def parse_collection(name: str, field: str = "parent") -> CollectionName:
    e, p, a = _split(name, field, ("entities", "projects", "artifacts"))
    proj = ProjectName(check_part(e, field, "entity"), check_part(p, field, "project"))
    return CollectionName(proj, check_part(a, field, "artifact name"))


def parse_version(name: str, field: str = "name") -> VersionName:
    e, p, a, v = _split(name, field, ("entities", "projects", "artifacts", "versions"))
    proj = ProjectName(check_part(e, field, "entity"), check_part(p, field, "project"))
    coll = CollectionName(proj, check_part(a, field, "artifact name"))
    return VersionName(coll, check_part(v, field, "version or alias"))


def parse_run(name: str, field: str = "run") -> RunName:
    e, p, r = _split(name, field, ("entities", "projects", "runs"))
    proj = ProjectName(check_part(e, field, "entity"), check_part(p, field, "project"))
    return RunName(proj, check_part(r, field, "run id"))
