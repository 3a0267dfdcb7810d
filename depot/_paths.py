"""Paths as the SDK meets them: artifact paths users type, entry paths of what it writes.

Artifact paths::

    [[entity/]project/]name[:ref]                    a version in a project
    [org/]wandb-registry-{registry}/{collection}[:ref]   a registry link (W&B spelling)
    [org/]registry/{registry}/{collection}[:ref]         the same, Depot spelling

``ref`` is ``vN`` or an alias (``latest`` when omitted). A registry path
without an org takes it from ``org=`` or ``DEPOT_ORG``.

Entry paths: the rules shared with the server are ``depot.core.entry_paths``
(through ``_rules``); what only the SDK needs is here: ``safe_join`` for a
download, an artifact's tree of files and directories, sizes and strings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from depot.core.entry_paths import control_char
from depot.core.limits import INT64_MAX

from ._exceptions import DepotError, InvalidArgumentError
from ._rules import check_download_path, check_name

REGISTRY_PREFIX = "wandb-registry-"


def safe_join(root: Path, path: str) -> Path:
    """Where a downloaded entry goes: ``root / path``, refused when it would land outside ``root``.

    Only the rules that keep a write inside ``root`` apply here (relative,
    no ``..``, no NUL, normalized, no symlink out of ``root``). The other
    write rules (control characters, 255-byte components) are checked when
    an entry is added: a version committed before a rule existed must stay
    downloadable, and a name the filesystem refuses fails at the write,
    as a DepotError naming the entry.
    """
    check_download_path(path)
    try:
        base = root.resolve()
        target = (base / path).resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python 3.11)
        raise DepotError(f"entry path {path!r}: cannot resolve it under {root}: {e}", field=path) from None
    if not target.is_relative_to(base):
        raise InvalidArgumentError(f"entry path {path!r} escapes {base}", field="path")
    return target


def check_entry_size(size: object, path: str) -> int:
    """An entry's size in bytes: an integer in 0 .. 2**63-1 (the manifest's int64)."""
    if type(size) is not int or not 0 <= size <= INT64_MAX:
        raise InvalidArgumentError(
            f"entry {path!r}: size must be an integer from 0 to {INT64_MAX}, not {size!r}", field=f"{path}.size"
        )
    return size


def check_entry_string(value: object, field: str, what: str) -> str:
    """A digest, reference URI or version id of an entry: UTF-8, no control characters.

    Digests and refs feed the artifact digest's ``path:digest`` lines, and a
    manifest (protobuf) cannot carry a lone surrogate.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a string, not {type(value).__name__}", field=field)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{what} {value!r} is not valid UTF-8", field=field) from None
    ch = control_char(value)
    if ch is not None:
        raise InvalidArgumentError(f"{what} {value!r} contains the control character U+{ord(ch):04X}", field=field)
    return value


class EntryTree:
    """The file paths of an artifact being built and the directories they imply.

    One path may not be both: ``a`` and ``a/b`` in one artifact cannot both
    be downloaded (``a`` would have to be a file and a directory). Each check
    and add costs O(components of the path).
    """

    def __init__(self) -> None:
        self._files: set[str] = set()
        # Each directory prefix -> one file under it, to name in the error.
        self._dirs: dict[str, str] = {}

    def conflict(self, path: str) -> str | None:
        """An entry that ``path`` cannot live beside, or None."""
        if path in self._dirs:
            return self._dirs[path]
        end = path.find("/")
        while end != -1:
            if path[:end] in self._files:
                return path[:end]
            end = path.find("/", end + 1)
        return None

    def check(self, path: str, field: str = "name") -> None:
        other = self.conflict(path)
        if other is not None:
            raise InvalidArgumentError(
                f"entry {path!r} conflicts with entry {other!r}: one path cannot be both a file and a directory",
                reason="ENTRY_PATH_CONFLICT",
                field=field,
            )

    def add(self, path: str) -> None:
        self.check(path)
        self._files.add(path)
        end = path.find("/")
        while end != -1:
            self._dirs.setdefault(path[:end], path)
            end = path.find("/", end + 1)


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
        check_name(ref, "path", f"version or alias in {path!r}")
    reg = _registry_parts(parts)
    if reg is not None:
        org_name = reg[0] or org or os.environ.get("DEPOT_ORG")
        if not org_name:
            raise InvalidArgumentError(
                f"registry path {path!r} needs an org: write {{org}}/{parts[-2]}/... or set DEPOT_ORG"
            )
        if not reg[1] or not reg[2]:
            raise InvalidArgumentError(f"invalid registry path {path!r}", field="path")
        check_name(org_name, "path", f"org in {path!r}")
        check_name(reg[1], "path", f"registry in {path!r}")
        check_name(reg[2], "path", f"collection in {path!r}")
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
    check_name(entity, "path", f"entity in {path!r}")
    check_name(project, "path", f"project in {path!r}")
    check_name(name, "path", f"artifact name in {path!r}")
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
