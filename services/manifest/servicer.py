"""gRPC handlers of the manifest service: authorize, call the domain, convert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import grpc

from depot.common.v1 import common_pb2
from depot.core import blobwire
from depot.core.names import check_name
from depot.manifest.v1 import manifest_pb2 as pb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.native import ManifestEntry
from depot.services.common.credentials import bearer_from_metadata
from depot.services.common.errors import IdleTimeout, InvalidArgument, PermissionDenied
from depot.services.common.interceptor import Context
from depot.services.common.validate import as_invalid_argument

from .access import READ, WRITE, MetadataAccess
from .blobs import MAX_BATCH_BLOBS, BlobId, Blobs, check_blob_id
from .manifests import EntryIn, Manifests, StoredManifest
from .operations import Operations
from .reading import read_filter
from .references import DEFAULT_MAX_OBJECTS, ListingProgress, ReferenceSpec

BATCH = 1000
MAX_FIND = 10_000
# A client stream that sends nothing for this long is closed with ABORTED
# (IDLE_TIMEOUT): a stalled uploader otherwise held its staged file and a
# server task until its own deadline (the SDK's is 3,600 s). ABORTED, not
# DEADLINE_EXCEEDED, so it is not mistaken for the caller's own deadline;
# nothing was stored, so sending again is safe. Five minutes, because the
# timer runs per message: the SDK sends 1 MiB chunks, up to four uploads
# share a connection, and a slow uplink (~100 KiB/s) must still get each
# chunk through before the timer ends.
DEFAULT_IDLE_TIMEOUT_S = 300.0

T = TypeVar("T")


async def _until_idle(messages: AsyncIterator[T], idle_s: float, what: str) -> AsyncIterator[T]:
    """``messages``, ended with IdleTimeout when the next one takes over ``idle_s``."""
    it = aiter(messages)
    while True:
        try:
            msg = await asyncio.wait_for(anext(it), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise IdleTimeout(
                f"{what}: no message for {idle_s:g} s (the server's idle timeout); the stream was closed "
                "and nothing of it was stored"
            ) from None
        yield msg


_SERVICE = "depot.manifest.v1.ManifestService"
_CHUNK_KEY = blobwire.key(pb.UploadBlobRequest.CHUNK_FIELD_NUMBER)
_DATA_KEY = blobwire.key(pb.BlobChunk.DATA_FIELD_NUMBER)
_BATCH_BLOBS_KEY = blobwire.key(pb.BatchReadBlobsResponse.BLOBS_FIELD_NUMBER)
_BLOB_DIGEST_KEY = blobwire.key(pb.BlobData.DIGEST_FIELD_NUMBER)
_BLOB_DATA_KEY = blobwire.key(pb.BlobData.DATA_FIELD_NUMBER)
# An UploadBlob message as the servicer sees it: a chunk's bytes, or the
# parsed message when it is not a lone chunk (the header).
UploadPart = pb.UploadBlobRequest | memoryview


def _upload_part(message: bytes) -> UploadPart:
    data = blobwire.unframe(_CHUNK_KEY, message)
    return pb.UploadBlobRequest.FromString(message) if data is None else data


def _blob_chunk(data: bytes) -> bytes:
    return blobwire.frame(_DATA_KEY, data)


def _serialized(message: bytes) -> bytes:
    return message


class _Registrations:
    """Stands in for the server while the generated code registers the handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same handlers come again through the method below

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers.update(handlers)


def add_to_server(servicer: ManifestServicer, server: grpc.aio.Server) -> None:
    """The generated registration, with blob chunks framed by hand (see
    depot.core.blobwire): ReadBlob yields bytes, UploadBlob receives
    UploadPart, BatchReadBlobs returns its response serialized."""
    reg = _Registrations()
    manifest_pb2_grpc.add_ManifestServiceServicer_to_server(servicer, reg)  # type: ignore[arg-type]
    handlers = dict(reg.handlers)
    handlers["ReadBlob"] = handlers["ReadBlob"]._replace(response_serializer=_blob_chunk)  # type: ignore[attr-defined]
    handlers["UploadBlob"] = handlers["UploadBlob"]._replace(request_deserializer=_upload_part)  # type: ignore[attr-defined]
    handlers["BatchReadBlobs"] = handlers["BatchReadBlobs"]._replace(response_serializer=_serialized)  # type: ignore[attr-defined]
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)


def _entry(e: pb.ManifestEntry) -> ManifestEntry:
    return ManifestEntry(e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id, e.extra_json)


def _entry_pb(e: ManifestEntry) -> pb.ManifestEntry:
    return pb.ManifestEntry(
        path=e.path,
        algorithm=e.algorithm,
        digest=e.digest,
        size=e.size,
        ref=e.ref,
        version_id=e.version_id,
        extra_json=e.extra,
    )


def _references(h: pb.ManifestHeader) -> list[ReferenceSpec]:
    return [ReferenceSpec(r.uri, r.name, r.max_objects or DEFAULT_MAX_OBJECTS, r.allow_empty) for r in h.references]


def _manifest_ref(m: StoredManifest) -> common_pb2.ManifestRef:
    return common_pb2.ManifestRef(
        entity=m.entity,
        manifest_id=m.manifest_id,
        digest=m.digest,
        digest_algorithm=m.digest_algorithm,
        size=m.size,
        file_count=m.file_count,
        token=m.token,
        create_time_unix_ms=m.create_time_unix_ms,
    )


class ManifestServicer(manifest_pb2_grpc.ManifestServiceServicer):
    def __init__(
        self,
        access: MetadataAccess,
        blobs: Blobs,
        manifests: Manifests,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        operations: Operations | None = None,
    ):
        self._access = access
        self._blobs = blobs
        self._manifests = manifests
        self._idle_s = idle_timeout_s
        self._operations = operations or Operations()

    async def _authorize(self, context: Context, entity: str, perm: int, manifest_id: str = "") -> bool:
        """Raises unless allowed; True when allowed only through a registry link to the manifest."""
        if not entity:
            raise InvalidArgument("entity is required", field="entity")
        as_invalid_argument(check_name)(entity, "entity", "entity")
        key = bearer_from_metadata(context.invocation_metadata())
        return await self._access.check(key, entity, perm, manifest_id)

    async def FindMissingBlobs(
        self, request: pb.FindMissingBlobsRequest, context: Context
    ) -> pb.FindMissingBlobsResponse:
        await self._authorize(context, request.entity, WRITE)
        if len(request.blobs) > MAX_FIND:
            raise InvalidArgument(f"at most {MAX_FIND} blobs per call", field="blobs")
        ids = [check_blob_id(b.algorithm, b.digest, f"blobs[{i}]") for i, b in enumerate(request.blobs)]
        missing = await self._blobs.missing(request.entity, ids)
        return pb.FindMissingBlobsResponse(
            missing=[pb.BlobDigest(algorithm=b.algorithm, digest=b.digest) for b in missing]
        )

    async def UploadBlob(self, request_iterator: AsyncIterator[UploadPart], context: Context) -> pb.Blob:
        request_iterator = _until_idle(request_iterator, self._idle_s, "UploadBlob")
        first = await anext(request_iterator, None)
        if not isinstance(first, pb.UploadBlobRequest) or not first.HasField("header"):
            raise InvalidArgument("the first message must be the upload header", field="header")
        h = first.header
        await self._authorize(context, h.entity, WRITE)
        blob = check_blob_id(h.digest.algorithm, h.digest.digest, "header.digest")

        async def chunks() -> AsyncIterator[bytes | memoryview]:
            async for msg in request_iterator:
                if isinstance(msg, memoryview):
                    yield msg
                elif msg.HasField("header"):
                    raise InvalidArgument("only one header per upload", field="header")
                else:
                    yield msg.chunk

        created = await self._blobs.upload(h.entity, blob, h.size, chunks())
        return pb.Blob(digest=h.digest, size=h.size, created=created)

    async def ReadBlob(  # type: ignore[override] # bytes, framed by add_to_server's serializer
        self, request: pb.ReadBlobRequest, context: Context
    ) -> AsyncIterator[bytes]:
        via_registry = await self._authorize(context, request.entity, READ, request.manifest_id)
        blob: BlobId = check_blob_id(request.digest.algorithm, request.digest.digest)
        if via_registry and not await self._manifests.contains_blob(request.entity, request.manifest_id, blob):
            # A registry grants the linked manifest's blobs, not the team's others.
            raise PermissionDenied("the blob is not part of the manifest this caller may read", field="digest")
        async for chunk in self._blobs.read(request.entity, blob):
            yield chunk

    async def CreateManifest(
        self,
        request_iterator: AsyncIterator[pb.CreateManifestRequest],
        context: Context,
    ) -> common_pb2.ManifestRef:
        request_iterator = _until_idle(request_iterator, self._idle_s, "CreateManifest")
        first = await anext(request_iterator, None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument("the first message must be the manifest header", field="header")

        async def batches() -> AsyncIterator[list[EntryIn]]:
            async for msg in request_iterator:
                if msg.HasField("header"):
                    raise InvalidArgument("only one header per manifest", field="header")
                yield [(_entry(e), e.content) for e in msg.batch.entries]

        return await self._create_manifest(context, first.header, batches())

    async def PutManifest(self, request: pb.PutManifestRequest, context: Context) -> common_pb2.ManifestRef:
        if len(request.entries) > BATCH:
            raise InvalidArgument(
                f"at most {BATCH} entries; stream larger manifests with CreateManifest", field="entries"
            )

        async def one_batch() -> AsyncIterator[list[EntryIn]]:
            yield [(_entry(e), e.content) for e in request.entries]

        return await self._create_manifest(context, request.header, one_batch())

    async def _create_manifest(
        self, context: Context, h: pb.ManifestHeader, batches: AsyncIterator[list[EntryIn]]
    ) -> common_pb2.ManifestRef:
        await self._authorize(context, h.entity, WRITE)
        m = await self._manifests.create(
            h.entity, h.digest_algorithm or "xxh3_128", batches, _references(h), list(h.include_manifests)
        )
        return _manifest_ref(m)

    async def ReadManifest(self, request: pb.ReadManifestRequest, context: Context) -> AsyncIterator[pb.EntryBatch]:
        await self._authorize(context, request.entity, READ, request.manifest_id)
        flt = read_filter(list(request.names), request.prefix, request.start_after)
        reading = self._manifests.reading
        if request.raw_blocks:
            async for blocks, entries in reading.read_raw(request.entity, request.manifest_id, flt):
                if blocks:
                    yield pb.EntryBatch(blocks=blocks)
                for i in range(0, len(entries), BATCH):
                    yield pb.EntryBatch(entries=[_entry_pb(e) for e in entries[i : i + BATCH]])
            return
        async for batch in reading.read(request.entity, request.manifest_id, flt):
            for i in range(0, len(batch), BATCH):
                yield pb.EntryBatch(entries=[_entry_pb(e) for e in batch[i : i + BATCH]])

    async def BatchUpdateBlobs(
        self, request: pb.BatchUpdateBlobsRequest, context: Context
    ) -> pb.BatchUpdateBlobsResponse:
        await self._authorize(context, request.entity, WRITE)
        blobs = [
            (check_blob_id(b.digest.algorithm, b.digest.digest, f"blobs[{i}].digest"), b.data)
            for i, b in enumerate(request.blobs)
        ]
        created = await self._blobs.put_batch(request.entity, blobs)
        return pb.BatchUpdateBlobsResponse(
            blobs=[pb.Blob(digest=b.digest, size=len(b.data), created=c) for b, c in zip(request.blobs, created)]
        )

    async def BatchReadBlobs(  # type: ignore[override] # bytes, passed on by add_to_server's serializer
        self, request: pb.BatchReadBlobsRequest, context: Context
    ) -> bytes:
        via_registry = await self._authorize(context, request.entity, READ, request.manifest_id)
        # Before the per-digest manifest checks below, not only in read_batch after them.
        if len(request.digests) > MAX_BATCH_BLOBS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_BLOBS} blobs per BatchReadBlobs call, not {len(request.digests)}",
                field="digests",
            )
        ids = [check_blob_id(d.algorithm, d.digest, f"digests[{i}]") for i, d in enumerate(request.digests)]
        if via_registry:
            for i, blob in enumerate(ids):
                if not await self._manifests.contains_blob(request.entity, request.manifest_id, blob):
                    raise PermissionDenied(
                        f"digests[{i}]: the blob is not part of the manifest this caller may read",
                        field=f"digests[{i}]",
                    )
        datas = await self._blobs.read_batch(request.entity, ids)
        # The response serialized by hand (add_to_server passes it on as is).
        return blobwire.blob_list(
            _BATCH_BLOBS_KEY,
            _BLOB_DIGEST_KEY,
            _BLOB_DATA_KEY,
            ((d.SerializeToString(), data) for d, data in zip(request.digests, datas)),
        )

    async def ResolveReferences(
        self, request: pb.ResolveReferencesRequest, context: Context
    ) -> AsyncIterator[pb.ResolveProgress]:
        h = request.header
        await self._authorize(context, h.entity, WRITE)
        if h.include_manifests:
            raise InvalidArgument("ResolveReferences lists references only", field="header.include_manifests")
        algorithm = h.digest_algorithm or "xxh3_128"
        refs = _references(h)
        # The header as sent names the work: the same id with another header is refused.
        fingerprint = h.SerializeToString(deterministic=True)

        def start(progress: ListingProgress) -> Coroutine[Any, Any, StoredManifest]:
            return self._manifests.resolve(h.entity, algorithm, refs, progress)

        async with self._operations.attach(h.entity, request.request_id, fingerprint, start) as messages:
            async for p in messages:
                msg = pb.ResolveProgress(objects_listed=p.objects, bytes_listed=p.bytes)
                if p.manifest is not None:
                    msg.manifest.CopyFrom(_manifest_ref(p.manifest))
                yield msg
