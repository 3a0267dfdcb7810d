"""Depot SDK: version datasets, models and references, shaped like the W&B SDK.

import depot
with depot.init(project="demo", job_type="prep") as run:
    art = depot.Artifact("dataset", type="dataset")
    art.add_dir("data/")
    run.log_artifact(art, aliases=["candidate"]).wait()
depot.Api().artifact("me/demo/dataset:latest").download()
"""

from ._api import Api
from ._artifact import Artifact, LinkedArtifact, RunInfo
from ._bulk_delete import DeleteOperation
from ._client import Client
from ._collections import ArtifactCollection, ArtifactType
from ._config import ConnectionConfig
from ._exceptions import (
    AbortedError,
    AlreadyExistsError,
    CommError,
    DepotError,
    DigestMismatchError,
    EntryNotFoundError,
    FailedPreconditionError,
    InvalidArgumentError,
    LastAdminError,
    ManifestExpiredError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    TooManyObjectsError,
    TTLAdminsOnlyError,
    TypeMismatchError,
    UnauthenticatedError,
    UnsupportedError,
)
from ._manifest import Manifest, ManifestEntry
from ._references import ReferenceCache, S3Fetcher
from ._run import Run, init
from ._ttl import ArtifactTTL
from ._wandb import (
    artifact_from_wandb_manifest,
    export_wandb_manifest,
    from_wandb_manifest,
    to_wandb_manifest,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "Api",
    "ArtifactTTL",
    "Artifact",
    "ArtifactCollection",
    "ArtifactType",
    "Client",
    "CommError",
    "ConnectionConfig",
    "DeleteOperation",
    "DepotError",
    "DigestMismatchError",
    "EntryNotFoundError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "LastAdminError",
    "ManifestExpiredError",
    "LinkedArtifact",
    "Manifest",
    "ManifestEntry",
    "NotFoundError",
    "PermissionDeniedError",
    "ReferenceCache",
    "S3Fetcher",
    "ResourceExhaustedError",
    "Run",
    "RunInfo",
    "TTLAdminsOnlyError",
    "TooManyObjectsError",
    "TypeMismatchError",
    "UnauthenticatedError",
    "UnsupportedError",
    "artifact_from_wandb_manifest",
    "export_wandb_manifest",
    "from_wandb_manifest",
    "to_wandb_manifest",
    "init",
]
