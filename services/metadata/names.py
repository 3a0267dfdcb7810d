"""Resource names (``entities/{e}/projects/{p}/...``, ``entities/{org}/registries/...``):
parsing and printing, pure functions.

The rules for each part (``check_part``, ``version_index``,
``check_settable_alias``) are the SDK's too and live in ``depot.core.names``;
here they raise the services' InvalidArgument.
"""

from __future__ import annotations

from dataclasses import dataclass

from depot.core import names as rules
from depot.core.names import version_index
from depot.services.common.errors import InvalidArgument
from depot.services.common.validate import as_invalid_argument, check_name

__all__ = [
    "CollectionName",
    "ProjectName",
    "RunName",
    "VersionName",
    "check_part",
    "check_settable_alias",
    "is_link_name",
    "parse_collection",
    "parse_entity",
    "parse_link",
    "parse_project",
    "parse_registry",
    "parse_registry_collection",
    "parse_run",
    "parse_version",
    "version_index",
]

# The metadata service's name for it, used across its modules.
check_part = check_name
check_settable_alias = as_invalid_argument(rules.check_settable_alias)


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


def parse_entity(name: str, field: str = "name") -> str:
    (e,) = _split(name, field, ("entities",))
    return check_part(e, field, "entity")


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


def is_link_name(name: str) -> bool:
    """Whether a version or collection name is a registry's (entities/O/registries/...)."""
    return name.startswith("entities/") and name.split("/")[2:3] == ["registries"]


def parse_registry(name: str, field: str = "name") -> tuple[str, str]:
    org, reg = _split(name, field, ("entities", "registries"))
    return check_part(org, field, "org"), check_part(reg, field, "registry")


def parse_registry_collection(name: str, field: str = "parent") -> tuple[str, str, str]:
    org, reg, coll = _split(name, field, ("entities", "registries", "collections"))
    return check_part(org, field, "org"), check_part(reg, field, "registry"), check_part(coll, field, "collection")


def parse_link(name: str, field: str = "name") -> tuple[str, str, str, str]:
    org, reg, coll, ref = _split(name, field, ("entities", "registries", "collections", "versions"))
    return (
        check_part(org, field, "org"),
        check_part(reg, field, "registry"),
        check_part(coll, field, "collection"),
        check_part(ref, field, "version or alias"),
    )
