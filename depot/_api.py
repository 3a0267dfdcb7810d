"""Reading without a run, like ``wandb.Api``."""

from __future__ import annotations

import os

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import Artifact, artifact_from_version
from ._client import Client
from ._exceptions import InvalidArgumentError
from ._paths import parse_artifact_path


class Api:
    """Queries Depot: ``Api().artifact("entity/project/name:alias")``."""

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        tls: bool | None = None,
        tls_ca: str | None = None,
        insecure: bool | None = None,
    ):
        """``address``, ``api_key`` and the TLS settings are those of :class:`depot.Client`."""
        self.client = Client(address, api_key, tls=tls, tls_ca=tls_ca, insecure=insecure)

    def artifact(self, path: str, type: str | None = None) -> Artifact:
        """The version named by a path (``:latest`` when no ref is given).

        Paths: ``entity/project/name:ref``, or a registry link
        ``{org}/wandb-registry-{registry}/{collection}:ref`` (also
        ``{org}/registry/{registry}/{collection}:ref``), which gives a
        :class:`LinkedArtifact`.
        """
        p = parse_artifact_path(path, entity=os.environ.get("DEPOT_ENTITY"), project=os.environ.get("DEPOT_PROJECT"))
        v = self.client.call(
            self.client.metadata.GetArtifactVersion, pb.GetArtifactVersionRequest(name=p.version_resource)
        )
        if type is not None and v.type != type:
            raise InvalidArgumentError(f"{path} has type {v.type!r}, not {type!r}", field="type")
        return artifact_from_version(self.client, v)

    def artifact_versions(self, path: str) -> list[Artifact]:
        """Every committed version of a collection ``entity/project/name``, newest first."""
        p = parse_artifact_path(path)
        out: list[Artifact] = []
        token = ""
        while True:
            resp = self.client.call(
                self.client.metadata.ListArtifactVersions,
                pb.ListArtifactVersionsRequest(parent=p.collection_resource, page_size=100, page_token=token),
            )
            out += [artifact_from_version(self.client, v) for v in resp.versions]
            token = resp.next_page_token
            if not token:
                return out

    def lineage(self, path: str) -> pb.Lineage:
        """The producing run and consuming runs of a version."""
        p = parse_artifact_path(path)
        return self.client.call(self.client.metadata.GetLineage, pb.GetLineageRequest(version=p.version_resource))
