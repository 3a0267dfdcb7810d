"""Short artifact paths as users type them.

    [[entity/]project/]name[:ref]                    a version in a project
    [org/]wandb-registry-{registry}/{collection}[:ref]   a registry link (W&B spelling)
    [org/]registry/{registry}/{collection}[:ref]         the same, Depot spelling

``ref`` is ``vN`` or an alias (``latest`` when omitted). A registry path
without an org takes it from ``org=`` or ``DEPOT_ORG``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from depot.services.common import entry_paths

from ._exceptions import InvalidArgumentError, service_errors

REGISTRY_PREFIX = "wandb-registry-"
# The server's rule for every name part (W&B's for artifact names), checked
# here too so a bad name fails where it is typed, not in a background log.
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def check_name(value: object, what: str, field: str) -> str:
    """``value`` when it is a valid name part (entity, project, artifact, type, alias...)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value in (".", ".."):
        raise InvalidArgumentError(
            f"invalid {what} {value!r}: use 1-128 characters of letters, digits, '_', '.', '-'",
            field=field,
        )
    return value


def check_entry_path(path: object, field: str = "path") -> str:
    """The server's entry-path rule, raising the SDK's exceptions."""
    if not isinstance(path, str):
        raise InvalidArgumentError(f"entry path must be a string, not {type(path).__name__}", field=field)
    _check_utf8(path, field)
    with service_errors():
        return entry_paths.check_entry_path(path, field)


def safe_join(root: Path, path: str) -> Path:
    """``root / path``, refused (InvalidArgumentError) when it would land outside ``root``."""
    _check_utf8(path, "path")
    with service_errors():
        return entry_paths.safe_join(root, path)


def _check_utf8(path: str, field: str) -> None:
    # File names that are not UTF-8 reach Python as lone surrogates; a
    # manifest (protobuf, JSON) cannot carry them.
    try:
        path.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"entry path {path!r} is not valid UTF-8", field=field) from None


@dataclass(frozen=True)
class ArtifactPath:
    entity: str
    project: str
    name: str
    ref: str  # "vN" or an alias
    # Set for registry paths: then entity is the org and project is empty.
    registry: str = ""

    @property
    def project_resource(self) -> str:
        return f"entities/{self.entity}/projects/{self.project}"

    @property
    def collection_resource(self) -> str:
        if self.registry:
            return f"entities/{self.entity}/registries/{self.registry}/collections/{self.name}"
        return f"{self.project_resource}/artifacts/{self.name}"

    @property
    def version_resource(self) -> str:
        return f"{self.collection_resource}/versions/{self.ref}"


def _registry_parts(parts: list[str]) -> tuple[str | None, str, str] | None:
    """(org or None, registry, collection) when ``parts`` spell a registry path."""
    for lead in ((), (0,)):
        rest = parts[len(lead) :]
        org = parts[0] if lead else None
        if len(rest) == 2 and rest[0].startswith(REGISTRY_PREFIX):
            return org, rest[0][len(REGISTRY_PREFIX) :], rest[1]
        if len(rest) == 3 and rest[0] == "registry":
            return org, rest[1], rest[2]
    return None


def parse_artifact_path(
    path: str,
    *,
    entity: str | None = None,
    project: str | None = None,
    org: str | None = None,
) -> ArtifactPath:
    """Parses a project or registry path; missing parts come from the defaults."""
    if not isinstance(path, str):
        raise InvalidArgumentError(f"an artifact path is a string, not {type(path).__name__}", field="path")
    body, _, ref = path.partition(":")
    parts = body.split("/")
    if ref:
        check_name(ref, f"version or alias in {path!r}", "path")
    reg = _registry_parts(parts)
    if reg is not None:
        org_name = reg[0] or org or os.environ.get("DEPOT_ORG")
        if not org_name:
            raise InvalidArgumentError(
                f"registry path {path!r} needs an org: write {{org}}/{parts[-2]}/... or set DEPOT_ORG"
            )
        if not reg[1] or not reg[2]:
            raise InvalidArgumentError(f"invalid registry path {path!r}", field="path")
        check_name(org_name, f"org in {path!r}", "path")
        check_name(reg[1], f"registry in {path!r}", "path")
        check_name(reg[2], f"collection in {path!r}", "path")
        return ArtifactPath(org_name, "", reg[2], ref or "latest", registry=reg[1])
    if len(parts) == 3:
        entity, project, name = parts
    elif len(parts) == 2:
        project, name = parts
    elif len(parts) == 1:
        (name,) = parts
    else:
        raise InvalidArgumentError(
            f"invalid artifact path {path!r}: expected [[entity/]project/]name[:alias] "
            "or {org}/wandb-registry-{registry}/{collection}[:alias]"
        )
    if not entity or not project:
        raise InvalidArgumentError(f"artifact path {path!r} needs an entity and project (give them, or use a run)")
    if not name:
        raise InvalidArgumentError(f"artifact path {path!r} has no name", field="path")
    check_name(entity, f"entity in {path!r}", "path")
    check_name(project, f"project in {path!r}", "path")
    check_name(name, f"artifact name in {path!r}", "path")
    return ArtifactPath(entity, project, name, ref or "latest")


def parse_registry_target(path: str, *, org: str | None = None) -> ArtifactPath:
    """A link target: a registry collection path, without ``:ref``."""
    if ":" in path:
        raise InvalidArgumentError(f"link target {path!r} names a collection; give aliases with aliases=, not ':'")
    p = parse_artifact_path(path, org=org)
    if not p.registry:
        raise InvalidArgumentError(
            f"link target {path!r} is not a registry path: use "
            "{org}/wandb-registry-{registry}/{collection} or {org}/registry/{registry}/{collection}"
        )
    return p
