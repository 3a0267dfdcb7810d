"""The generated stubs of every service behind one key, and small builders over them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import grpc
import xxhash

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc


def b64_xxh(data: bytes) -> str:
    return base64.b64encode(xxhash.xxh3_128(data).digest()).decode()


class Stubs:
    def __init__(self, channel: grpc.Channel, key: str):
        self.artifacts = metadata_pb2_grpc.ArtifactServiceStub(channel)
        self.registries = metadata_pb2_grpc.RegistryServiceStub(channel)
        self.access = metadata_pb2_grpc.AccessServiceStub(channel)
        self.lineage = metadata_pb2_grpc.LineageServiceStub(channel)
        self.man = manifest_pb2_grpc.ManifestServiceStub(channel)
        self.md = (("authorization", f"Bearer {key}"),)

    def upload(self, entity: str, data: bytes, digest: str | None = None) -> mpb.Blob:
        def reqs() -> Iterator[mpb.UploadBlobRequest]:
            yield mpb.UploadBlobRequest(
                header=mpb.UploadBlobHeader(
                    entity=entity,
                    digest=mpb.BlobDigest(algorithm="xxh3_128", digest=digest or b64_xxh(data)),
                    size=len(data),
                )
            )
            yield mpb.UploadBlobRequest(chunk=data)

        return self.man.UploadBlob(reqs(), metadata=self.md)

    def manifest(
        self, entity: str, entries: list[mpb.ManifestEntry], algorithm: str = "xxh3_128"
    ) -> common_pb2.ManifestRef:
        def reqs() -> Iterator[mpb.CreateManifestRequest]:
            yield mpb.CreateManifestRequest(header=mpb.ManifestHeader(entity=entity, digest_algorithm=algorithm))
            yield mpb.CreateManifestRequest(batch=mpb.EntryBatch(entries=entries))

        return self.man.CreateManifest(reqs(), metadata=self.md)

    def log(
        self,
        entity: str,
        project: str,
        name: str,
        files: dict[str, bytes],
        *,
        type_: str = "dataset",
        aliases: list[str] | None = None,
    ) -> pb.ArtifactVersion:
        """Pending version → uploads → manifest → commit, as the SDK does."""
        pending = self.artifacts.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(parent=f"entities/{entity}/projects/{project}", artifact=name, type=type_),
            metadata=self.md,
        )
        entries = []
        for path in sorted(files, key=str.encode):
            self.upload(entity, files[path])
            entries.append(
                mpb.ManifestEntry(
                    path=path,
                    algorithm="xxh3_128",
                    digest=b64_xxh(files[path]),
                    size=len(files[path]),
                )
            )
        ref = self.manifest(entity, entries)
        return self.commit(pending.uid, ref, aliases or [])

    def put_manifest(self, entity: str, entries: list[mpb.ManifestEntry]) -> common_pb2.ManifestRef:
        return self.man.PutManifest(
            mpb.PutManifestRequest(
                header=mpb.ManifestHeader(entity=entity, digest_algorithm="xxh3_128"), entries=entries
            ),
            metadata=self.md,
        )

    def log_small(
        self,
        entity: str,
        project: str,
        name: str,
        files: dict[str, bytes],
        *,
        aliases: list[str] | None = None,
        request_id: str = "",
    ) -> pb.ArtifactVersion:
        """The SDK's path for small files: bytes inline in the manifest, then
        one call that creates the version committed."""
        entries = [
            mpb.ManifestEntry(path=p, algorithm="xxh3_128", digest=b64_xxh(d), size=len(d), content=d)
            for p, d in sorted(files.items(), key=lambda item: item[0].encode())
        ]
        ref = self.put_manifest(entity, entries)
        return self.artifacts.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent=f"entities/{entity}/projects/{project}",
                artifact=name,
                type="dataset",
                manifest=ref,
                aliases=aliases or [],
                request_id=request_id or uuid.uuid4().hex,
            ),
            metadata=self.md,
        )

    def commit(self, uid: str, ref: common_pb2.ManifestRef, aliases: list[str]) -> pb.ArtifactVersion:
        return self.artifacts.CommitArtifactVersion(
            pb.CommitArtifactVersionRequest(
                uid=uid,
                manifest=ref,
                aliases=aliases,
                request_id=uuid.uuid4().hex,
            ),
            metadata=self.md,
        )

    def get(self, name: str) -> pb.ArtifactVersion:
        return self.artifacts.GetArtifactVersion(pb.GetArtifactVersionRequest(name=name), metadata=self.md)
