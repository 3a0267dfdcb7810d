"""Short artifact paths as users type them: ``entity/project/name:alias``."""

from __future__ import annotations

from dataclasses import dataclass

from ._exceptions import InvalidArgumentError


@dataclass(frozen=True)
class ArtifactPath:
    entity: str
    project: str
    name: str
    ref: str  # "vN" or an alias

    @property
    def project_resource(self) -> str:
        return f"entities/{self.entity}/projects/{self.project}"

    @property
    def collection_resource(self) -> str:
        return f"{self.project_resource}/artifacts/{self.name}"

    @property
    def version_resource(self) -> str:
        return f"{self.collection_resource}/versions/{self.ref}"


def parse_artifact_path(
    path: str, *, entity: str | None = None, project: str | None = None
) -> ArtifactPath:
    """Parses ``[[entity/]project/]name[:alias]``; missing parts come from the defaults."""
    body, _, ref = path.partition(":")
    parts = body.split("/")
    if len(parts) == 3:
        entity, project, name = parts
    elif len(parts) == 2:
        project, name = parts
    elif len(parts) == 1:
        (name,) = parts
    else:
        raise InvalidArgumentError(
            f"invalid artifact path {path!r}: expected [[entity/]project/]name[:alias]"
        )
    if not entity or not project:
        raise InvalidArgumentError(
            f"artifact path {path!r} needs an entity and project (give them, or use a run)"
        )
    if not name:
        raise InvalidArgumentError(f"artifact path {path!r} has no name")
    return ArtifactPath(entity, project, name, ref or "latest")
