"""gRPC handlers of the metadata service: authenticate, call the domain, convert.

Each handler is thin; errors are translated in one place (common/status.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common.credentials import bearer_from_metadata, verify_manifest
from depot.services.common.errors import InvalidArgument
from depot.services.common.status import translate_errors

from .access import Access, Principal, Role
from .artifacts import Artifacts, ManifestInfo, Run, Version
from .idempotency import Idempotency

M = TypeVar("M", bound=Message)

_PERMISSION = {
    pb.PERMISSION_READ: Role.VIEWER,
    pb.PERMISSION_WRITE: Role.MEMBER,
    pb.PERMISSION_ADMIN: Role.ADMIN,
}


def _ts(value: object) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)  # type: ignore[arg-type]
    return ts


def version_pb(v: Version) -> pb.ArtifactVersion:
    msg = pb.ArtifactVersion(
        name=v.name,
        uid=v.uid,
        type=v.type,
        index=v.index if v.index is not None else -1,
        state=v.state,
        digest=v.digest,
        digest_algorithm=v.digest_algorithm,
        size=v.size,
        file_count=v.file_count,
        manifest_id=v.manifest_id,
        aliases=v.aliases,
        description=v.description,
        metadata_json=json.dumps(v.metadata, sort_keys=True) if v.metadata else "",
        create_time=_ts(v.create_time),
        commit_time=_ts(v.commit_time),
        producer_run=v.producer_run,
        collection=v.collection,
    )
    if v.ttl is not None:
        msg.ttl.FromTimedelta(v.ttl)
    return msg


def run_pb(r: Run) -> pb.Run:
    return pb.Run(
        name=r.name,
        job_type=r.job_type,
        state=r.state,
        create_time=_ts(r.create_time),
        finish_time=_ts(r.finish_time),
        config_json=json.dumps(r.config, sort_keys=True) if r.config else "",
    )


def _ttl(msg: Message, field: str) -> timedelta | None:
    if not msg.HasField(field):
        return None
    d: duration_pb2.Duration = getattr(msg, field)
    return d.ToTimedelta()


def _page_token(token: str) -> int | None:
    """Page tokens are opaque to clients; inside they are the last index seen."""
    if not token:
        return None
    try:
        kind, _, value = bytes.fromhex(token).decode().partition(":")
        if kind != "v":
            raise ValueError
        return int(value)
    except ValueError:
        raise InvalidArgument("invalid page_token", field="page_token") from None


class MetadataServicer(metadata_pb2_grpc.MetadataServiceServicer):
    def __init__(
        self,
        access: Access,
        artifacts: Artifacts,
        idempotency: Idempotency,
        manifest_secret: bytes,
    ):
        self._access = access
        self._artifacts = artifacts
        self._idem = idempotency
        self._manifest_secret = manifest_secret

    async def _who(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self._access.authenticate(bearer_from_metadata(context.invocation_metadata()))

    async def _once(
        self,
        who: Principal,
        method: str,
        request_id: str,
        cls: type[M],
        work: Callable[[], Awaitable[M]],
    ) -> M:
        async def run() -> bytes:
            return (await work()).SerializeToString()

        return cls.FromString(await self._idem.once(who.user_id, method, request_id, run))

    @translate_errors
    async def GetCaller(self, request: pb.GetCallerRequest, context: grpc.aio.ServicerContext) -> pb.Caller:
        who = await self._who(context)
        return pb.Caller(user=who.user, superuser=who.superuser)

    @translate_errors
    async def CheckAccess(
        self, request: pb.CheckAccessRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckAccessResponse:
        await self._who(context)  # the calling service authenticates too
        need = _PERMISSION.get(request.permission)
        if need is None:
            raise InvalidArgument("permission is required", field="permission")
        user = await self._access.authenticate(request.api_key)
        await self._access.require(user, request.entity, need)
        return pb.CheckAccessResponse(user=user.user)

    @translate_errors
    async def CreateRun(self, request: pb.CreateRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)

        async def work() -> pb.Run:
            run = await self._artifacts.create_run(
                who, request.parent, request.run_id, request.run.job_type, request.run.config_json
            )
            return run_pb(run)

        return await self._once(who, "CreateRun", request.request_id, pb.Run, work)

    @translate_errors
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)
        return run_pb(await self._artifacts.get_run(who, request.name))

    @translate_errors
    async def FinishRun(self, request: pb.FinishRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)

        async def work() -> pb.Run:
            return run_pb(await self._artifacts.finish_run(who, request.name, request.state))

        return await self._once(who, "FinishRun", request.request_id, pb.Run, work)

    @translate_errors
    async def CreateArtifactVersion(
        self, request: pb.CreateArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)

        async def work() -> pb.ArtifactVersion:
            v = await self._artifacts.create_version(
                who,
                request.parent,
                request.artifact,
                request.type,
                request.description,
                request.metadata_json,
                request.run,
                _ttl(request, "ttl"),
            )
            return version_pb(v)

        return await self._once(
            who, "CreateArtifactVersion", request.request_id, pb.ArtifactVersion, work
        )

    @translate_errors
    async def CommitArtifactVersion(
        self, request: pb.CommitArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        m = request.manifest
        verify_manifest(
            self._manifest_secret,
            m.token,
            m.entity,
            m.manifest_id,
            m.digest,
            m.digest_algorithm,
            m.size,
            m.file_count,
        )
        info = ManifestInfo(m.entity, m.manifest_id, m.digest, m.digest_algorithm, m.size, m.file_count)

        async def work() -> pb.ArtifactVersion:
            v = await self._artifacts.commit_version(who, request.uid, info, list(request.aliases))
            return version_pb(v)

        return await self._once(
            who, "CommitArtifactVersion", request.request_id, pb.ArtifactVersion, work
        )

    @translate_errors
    async def GetArtifactVersion(
        self, request: pb.GetArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        return version_pb(await self._artifacts.get_version(who, request.name))

    @translate_errors
    async def ListArtifactVersions(
        self, request: pb.ListArtifactVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListArtifactVersionsResponse:
        who = await self._who(context)
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative", field="page_size")
        versions, last = await self._artifacts.list_versions(
            who, request.parent, request.page_size, _page_token(request.page_token)
        )
        token = f"v:{last}".encode().hex() if last is not None else ""
        return pb.ListArtifactVersionsResponse(
            versions=[version_pb(v) for v in versions], next_page_token=token
        )

    @translate_errors
    async def UseArtifactVersion(
        self, request: pb.UseArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)

        async def work() -> pb.ArtifactVersion:
            return version_pb(await self._artifacts.use_version(who, request.run, request.version))

        return await self._once(
            who, "UseArtifactVersion", request.request_id, pb.ArtifactVersion, work
        )

    @translate_errors
    async def GetLineage(self, request: pb.GetLineageRequest, context: grpc.aio.ServicerContext) -> pb.Lineage:
        who = await self._who(context)
        lin = await self._artifacts.lineage(who, request.version)
        return pb.Lineage(
            version=version_pb(lin.version),
            producer=run_pb(lin.producer) if lin.producer else None,
            consumers=[run_pb(r) for r in lin.consumers],
        )
