"""gRPC handlers of the metadata service: authenticate, call the domain, convert.

Each handler is thin; errors are translated in one place (common/status.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common import validate
from depot.services.common.credentials import bearer_from_metadata, verify_manifest
from depot.services.common.errors import InvalidArgument, PermissionDenied
from depot.services.common.status import translate_errors

from . import accounts as acc
from .access import ROLE_NAMES, Access, Principal, Role
from .accounts import Accounts
from .aliases import Aliases
from .idempotency import Grant, Idempotency, fingerprint
from .lineage import Lineage
from .listings import Listings, VersionFilter
from .pages import PageTokens
from .records import ManifestInfo, Run, Version
from .registries import Link, Registries, Registry
from .registry_access import RegistryAccess
from .runs import Runs
from .versions import Versions

M = TypeVar("M", bound=Message)

_PERMISSION = {
    pb.PERMISSION_READ: Role.VIEWER,
    pb.PERMISSION_WRITE: Role.MEMBER,
    pb.PERMISSION_ADMIN: Role.ADMIN,
}


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    # Clamped to the Timestamp range: a stored date never fails a read.
    return validate.timestamp_pb(value)


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
        ttl_mode=_TTL_MODE[v.ttl_mode],
        tags=v.tags,
        expire_time=_ts(v.expire_time),
        linked=v.linked,
    )
    if v.effective_ttl is not None:
        msg.ttl.CopyFrom(validate.duration_pb(v.effective_ttl))
    if v.link is not None:
        msg.link.CopyFrom(
            pb.LinkInfo(
                name=v.link.name,
                collection=v.link.collection,
                index=v.link.index,
                aliases=v.link.aliases,
                create_time=_ts(v.link.create_time),
            )
        )
    return msg


_TTL_MODE = {
    "": pb.TTL_MODE_UNSPECIFIED,
    "forever": pb.TTL_MODE_FOREVER,
    "duration": pb.TTL_MODE_DURATION,
    "inherit": pb.TTL_MODE_INHERIT,
}
_TTL_MODE_NAME = {v: k for k, v in _TTL_MODE.items()}


def _ttl_mode(value: int) -> str:
    if value not in _TTL_MODE_NAME:
        raise InvalidArgument(f"unknown ttl_mode {value}", field="ttl_mode")
    return _TTL_MODE_NAME[value]


def run_pb(r: Run) -> pb.Run:
    return pb.Run(
        name=r.name,
        job_type=r.job_type,
        state=r.state,
        create_time=_ts(r.create_time),
        finish_time=_ts(r.finish_time),
        config_json=json.dumps(r.config, sort_keys=True) if r.config else "",
    )


def _ttl(msg: Message, field: str, name: str | None = None) -> timedelta | None:
    """A request Duration, bounded (validate.py): never an OverflowError."""
    return validate.optional_duration(msg, field, name)


def _time(msg: Message, field: str) -> datetime | None:
    """A request Timestamp within 0001..9999 with sane nanos (validate.py)."""
    return validate.optional_timestamp(msg, field)


def _is_self(who: Principal, user: str) -> bool:
    """Whether a membership request names the caller (short or full name)."""
    return user in (who.user, f"entities/{who.user}")


def _role(role: Role | None) -> str:
    return ROLE_NAMES[role] if role else ""


def entity_pb(e: acc.Entity) -> pb.Entity:
    msg = pb.Entity(
        name=f"entities/{e.name}",
        kind=e.kind,
        org=f"entities/{e.org}" if e.org else "",
        create_time=_ts(e.create_time),
        settings=pb.EntitySettings(ttl_policy=_TTL_POLICY[e.ttl_policy]),
        caller_role=_role(e.caller_role),
    )
    if e.default_ttl is not None:
        msg.settings.default_ttl.CopyFrom(validate.duration_pb(e.default_ttl))
    return msg


_TTL_POLICY = {"members": pb.TTL_POLICY_MEMBERS, "admins": pb.TTL_POLICY_ADMINS}
_TTL_POLICY_NAME = {v: k for k, v in _TTL_POLICY.items()}


def member_pb(m: acc.Member) -> pb.Member:
    return pb.Member(parent=m.parent, user=m.user, role=ROLE_NAMES[m.role])


def key_pb(k: acc.KeyInfo) -> pb.ApiKey:
    return pb.ApiKey(
        id=k.id,
        user=k.user,
        description=k.description,
        create_time=_ts(k.create_time),
        revoke_time=_ts(k.revoke_time),
        key=k.key,
    )


def registry_pb(r: Registry) -> pb.Registry:
    return pb.Registry(
        name=r.name,
        accepted_types=r.accepted_types,
        description=r.description,
        core=r.core,
        visibility=r.visibility,
        create_time=_ts(r.create_time),
        caller_role=_role(r.caller_role),
    )


def link_pb(link: Link) -> pb.Link:
    return pb.Link(
        name=link.name,
        collection=link.collection,
        index=link.index,
        aliases=link.aliases,
        create_time=_ts(link.create_time),
        version=version_pb(link.version),
    )


class MetadataServicer(metadata_pb2_grpc.MetadataServiceServicer):
    def __init__(
        self,
        access: Access,
        runs: Runs,
        versions: Versions,
        aliases: Aliases,
        listings: Listings,
        idempotency: Idempotency,
        manifest_secret: bytes,
        *,
        accounts: Accounts,
        pages: PageTokens,
        registries: Registries,
        registry_access: RegistryAccess,
        lineage: Lineage,
    ):
        self._access = access
        self._runs = runs
        self._versions = versions
        self._aliases = aliases
        self._listings = listings
        self._registry_access = registry_access
        self._idem = idempotency
        self._manifest_secret = manifest_secret
        self._accounts = accounts
        self._pages = pages
        self._registries = registries
        self._lineage = lineage

    async def _who(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self._access.authenticate(bearer_from_metadata(context.invocation_metadata()))

    def _verified_manifest(self, m: pb.ManifestRef) -> ManifestInfo:
        """The manifest service's summary, if its signature holds."""
        fields = (m.entity, m.manifest_id, m.digest, m.digest_algorithm, m.size, m.file_count)
        verify_manifest(self._manifest_secret, m.token, *fields)
        return ManifestInfo(*fields)

    async def _once(
        self,
        who: Principal,
        method: str,
        request: Message,
        cls: type[M],
        work: Callable[[], Awaitable[M]],
        *,
        changes_own_access: bool = False,
    ) -> M:
        """Runs ``work`` once per ``request.request_id`` (see idempotency.py).

        The id is bound to the whole request (a fingerprint of it without the
        id), and a replay re-checks the access the first call was given —
        except for a call that changed the caller's own membership
        (``changes_own_access``): an admin who demoted or removed themselves
        lost that access by the very call being retried, and its answer holds
        nothing but their own membership.
        """
        # Every mutation's request has a request_id (AIP-155); Message does not say so.
        request_id: str = request.request_id  # type: ignore[attr-defined]
        bare = type(request)()
        bare.CopyFrom(request)
        bare.ClearField("request_id")
        fresh: list[M] = []

        async def run() -> bytes:
            fresh.append(await work())
            return fresh[0].SerializeToString()

        async def still_holds(grant: Grant) -> bool:
            if changes_own_access:
                return True
            if grant.kind == "registry":
                role = await self._registry_access.role(who, grant.id)
            else:
                role = await self._access.role(who, grant.id)
            return role is not None and role >= grant.role

        stored = await self._idem.once(
            who.user_id, method, request_id, fingerprint(bare.SerializeToString(deterministic=True)), run, still_holds
        )
        # The stored bytes are parsed only for a retry; a first call answers
        # with the message it built.
        return fresh[0] if fresh else cls.FromString(stored)

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
        try:
            await self._access.require(user, request.entity, need)
        except PermissionDenied:
            if need == Role.VIEWER and await self._registry_access.may_read_manifest(
                user, request.entity, request.manifest_id
            ):
                return pb.CheckAccessResponse(user=user.user, via_registry=True)
            raise
        return pb.CheckAccessResponse(user=user.user)

    @translate_errors
    async def CreateRun(self, request: pb.CreateRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)

        async def work() -> pb.Run:
            run = await self._runs.create_run(
                who, request.parent, request.run_id, request.run.job_type, request.run.config_json
            )
            return run_pb(run)

        return await self._once(who, "CreateRun", request, pb.Run, work)

    @translate_errors
    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)
        return run_pb(await self._runs.get_run(who, request.name))

    @translate_errors
    async def FinishRun(self, request: pb.FinishRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        who = await self._who(context)

        async def work() -> pb.Run:
            return run_pb(await self._runs.finish_run(who, request.name, request.state))

        return await self._once(who, "FinishRun", request, pb.Run, work)

    @translate_errors
    async def CreateArtifactVersion(
        self, request: pb.CreateArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        manifest = self._verified_manifest(request.manifest) if request.HasField("manifest") else None

        async def work() -> pb.ArtifactVersion:
            v = await self._versions.create_version(
                who,
                request.parent,
                request.artifact,
                request.type,
                request.description,
                request.metadata_json,
                request.run,
                _ttl(request, "ttl"),
                _ttl_mode(request.ttl_mode),
                list(request.tags),
                manifest,
                list(request.aliases),
            )
            return version_pb(v)

        return await self._once(who, "CreateArtifactVersion", request, pb.ArtifactVersion, work)

    @translate_errors
    async def CommitArtifactVersion(
        self, request: pb.CommitArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        info = self._verified_manifest(request.manifest)

        async def work() -> pb.ArtifactVersion:
            v = await self._versions.commit_version(who, request.uid, info, list(request.aliases))
            return version_pb(v)

        return await self._once(who, "CommitArtifactVersion", request, pb.ArtifactVersion, work)

    @translate_errors
    async def GetArtifactVersion(
        self, request: pb.GetArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        return version_pb(await self._versions.get_version(who, request.name))

    @translate_errors
    async def ListArtifactVersions(
        self, request: pb.ListArtifactVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListArtifactVersionsResponse:
        who = await self._who(context)
        f = VersionFilter(
            alias=request.alias,
            tag=request.tag,
            created_after=_time(request, "created_after"),
            created_before=_time(request, "created_before"),
            metadata_key=request.metadata_key,
            metadata_value_json=request.metadata_value_json,
        )
        versions, token = await self._listings.list_versions(
            who, request.parent, request.page_size, request.page_token, f
        )
        return pb.ListArtifactVersionsResponse(versions=[version_pb(v) for v in versions], next_page_token=token)

    @translate_errors
    async def UseArtifactVersion(
        self, request: pb.UseArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)

        async def work() -> pb.ArtifactVersion:
            return version_pb(await self._lineage.use_version(who, request.run, request.version))

        return await self._once(who, "UseArtifactVersion", request, pb.ArtifactVersion, work)

    @translate_errors
    async def GetLineage(self, request: pb.GetLineageRequest, context: grpc.aio.ServicerContext) -> pb.Lineage:
        who = await self._who(context)
        lin = await self._lineage.lineage(who, request.version)
        return pb.Lineage(
            version=version_pb(lin.version),
            producer=run_pb(lin.producer) if lin.producer else None,
            consumers=[run_pb(r) for r in lin.consumers],
            hidden_run_count=lin.hidden_runs,
        )

    # -- access ----------------------------------------------------------------

    @translate_errors
    async def CreateEntity(self, request: pb.CreateEntityRequest, context: grpc.aio.ServicerContext) -> pb.Entity:
        who = await self._who(context)

        async def work() -> pb.Entity:
            e = await self._accounts.create_entity(who, request.entity_id, request.entity.kind, request.entity.org)
            return entity_pb(e)

        return await self._once(who, "CreateEntity", request, pb.Entity, work)

    @translate_errors
    async def GetEntity(self, request: pb.GetEntityRequest, context: grpc.aio.ServicerContext) -> pb.Entity:
        who = await self._who(context)
        return entity_pb(await self._accounts.get_entity(who, request.name))

    @translate_errors
    async def ListEntities(
        self, request: pb.ListEntitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEntitiesResponse:
        who = await self._who(context)
        items, token = await self._accounts.list_entities(who, request.kind, request.page_size, request.page_token)
        return pb.ListEntitiesResponse(entities=[entity_pb(e) for e in items], next_page_token=token)

    @translate_errors
    async def UpdateEntitySettings(
        self, request: pb.UpdateEntitySettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Entity:
        who = await self._who(context)
        paths = [p.removeprefix("settings.") for p in request.update_mask.paths]
        policy = _TTL_POLICY_NAME.get(request.settings.ttl_policy, "")

        async def work() -> pb.Entity:
            e = await self._accounts.update_settings(
                who, request.name, paths, _ttl(request.settings, "default_ttl", "settings.default_ttl"), policy
            )
            return entity_pb(e)

        return await self._once(who, "UpdateEntitySettings", request, pb.Entity, work)

    @translate_errors
    async def SetMember(self, request: pb.SetMemberRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        who = await self._who(context)

        async def work() -> pb.Member:
            m = await self._accounts.set_member(who, request.entity, request.user, request.role)
            return member_pb(m)

        return await self._once(
            who, "SetMember", request, pb.Member, work, changes_own_access=_is_self(who, request.user)
        )

    @translate_errors
    async def RemoveMember(self, request: pb.RemoveMemberRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        who = await self._who(context)

        async def work() -> pb.Member:
            return member_pb(await self._accounts.remove_member(who, request.entity, request.user))

        return await self._once(
            who, "RemoveMember", request, pb.Member, work, changes_own_access=_is_self(who, request.user)
        )

    @translate_errors
    async def ListMembers(
        self, request: pb.ListMembersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMembersResponse:
        who = await self._who(context)
        items, token = await self._accounts.list_members(who, request.entity, request.page_size, request.page_token)
        return pb.ListMembersResponse(members=[member_pb(m) for m in items], next_page_token=token)

    @translate_errors
    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext) -> pb.ApiKey:
        who = await self._who(context)
        # The secret is random and shown once: the idempotency record stores
        # the answer without it, so a retry with the same request_id returns
        # the key's id and an empty `key` (documented on CreateApiKey).
        secret: list[str] = []

        async def work() -> pb.ApiKey:
            msg = key_pb(await self._accounts.create_key(who, request.user, request.description))
            secret.append(msg.key)
            msg.key = ""
            return msg

        out = await self._once(who, "CreateApiKey", request, pb.ApiKey, work)
        if secret:
            out.key = secret[0]
        return out

    @translate_errors
    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext) -> pb.ApiKey:
        who = await self._who(context)

        async def work() -> pb.ApiKey:
            return key_pb(await self._accounts.revoke_key(who, request.id))

        return await self._once(who, "RevokeApiKey", request, pb.ApiKey, work)

    @translate_errors
    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApiKeysResponse:
        who = await self._who(context)
        items, token = await self._accounts.list_keys(who, request.user, request.page_size, request.page_token)
        return pb.ListApiKeysResponse(keys=[key_pb(k) for k in items], next_page_token=token)

    # -- listing ---------------------------------------------------------------

    @translate_errors
    async def ListProjects(
        self, request: pb.ListProjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListProjectsResponse:
        who = await self._who(context)
        items, token = await self._listings.list_projects(who, request.parent, request.page_size, request.page_token)
        return pb.ListProjectsResponse(
            projects=[pb.Project(name=p.name, create_time=_ts(p.create_time)) for p in items],
            next_page_token=token,
        )

    @translate_errors
    async def ListCollections(
        self, request: pb.ListCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCollectionsResponse:
        who = await self._who(context)
        items, token = await self._listings.list_collections(
            who, request.parent, request.type, request.page_size, request.page_token
        )
        return pb.ListCollectionsResponse(
            collections=[
                pb.Collection(
                    name=c.name,
                    type=c.type,
                    create_time=_ts(c.create_time),
                    version_count=c.version_count,
                )
                for c in items
            ],
            next_page_token=token,
        )

    @translate_errors
    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        who = await self._who(context)
        items, token = await self._listings.list_runs(who, request.parent, request.page_size, request.page_token)
        return pb.ListRunsResponse(runs=[run_pb(r) for r in items], next_page_token=token)

    @translate_errors
    async def ListAliases(
        self, request: pb.ListAliasesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAliasesResponse:
        who = await self._who(context)
        items, token = await self._aliases.list_aliases(who, request.parent, request.page_size, request.page_token)
        return pb.ListAliasesResponse(
            aliases=[pb.Alias(alias=a.alias, version=a.version, index=a.index) for a in items],
            next_page_token=token,
        )

    # -- aliases, tags, updates ------------------------------------------------

    @translate_errors
    async def AddAliases(self, request: pb.AddAliasesRequest, context: grpc.aio.ServicerContext) -> pb.ArtifactVersion:
        who = await self._who(context)

        async def work() -> pb.ArtifactVersion:
            v = await self._aliases.add_aliases(who, request.version, list(request.aliases))
            return version_pb(v)

        return await self._once(who, "AddAliases", request, pb.ArtifactVersion, work)

    @translate_errors
    async def RemoveAliases(
        self, request: pb.RemoveAliasesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)

        async def work() -> pb.ArtifactVersion:
            v = await self._aliases.remove_aliases(who, request.version, list(request.aliases))
            return version_pb(v)

        return await self._once(who, "RemoveAliases", request, pb.ArtifactVersion, work)

    @translate_errors
    async def UpdateArtifactVersion(
        self, request: pb.UpdateArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ArtifactVersion:
        who = await self._who(context)
        v = request.version
        paths = list(request.update_mask.paths)

        async def work() -> pb.ArtifactVersion:
            out = await self._versions.update_version(
                who,
                v.name,
                paths,
                description=v.description,
                metadata_json=v.metadata_json,
                tags=list(v.tags),
                ttl_mode=_ttl_mode(v.ttl_mode),
                ttl=_ttl(v, "ttl", "version.ttl"),
            )
            return version_pb(out)

        return await self._once(who, "UpdateArtifactVersion", request, pb.ArtifactVersion, work)

    # -- registries --------------------------------------------------------------

    @translate_errors
    async def CreateRegistry(self, request: pb.CreateRegistryRequest, context: grpc.aio.ServicerContext) -> pb.Registry:
        who = await self._who(context)
        r = request.registry

        async def work() -> pb.Registry:
            reg = await self._registries.create_registry(
                who,
                request.parent,
                request.registry_id,
                list(r.accepted_types),
                r.description,
                r.visibility,
            )
            return registry_pb(reg)

        return await self._once(who, "CreateRegistry", request, pb.Registry, work)

    @translate_errors
    async def GetRegistry(self, request: pb.GetRegistryRequest, context: grpc.aio.ServicerContext) -> pb.Registry:
        who = await self._who(context)
        return registry_pb(await self._registries.get_registry(who, request.name))

    @translate_errors
    async def ListRegistries(
        self, request: pb.ListRegistriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRegistriesResponse:
        who = await self._who(context)
        items, token = await self._registries.list_registries(
            who, request.parent, request.page_size, request.page_token
        )
        return pb.ListRegistriesResponse(registries=[registry_pb(r) for r in items], next_page_token=token)

    @translate_errors
    async def SetRegistryMember(
        self, request: pb.SetRegistryMemberRequest, context: grpc.aio.ServicerContext
    ) -> pb.Member:
        who = await self._who(context)

        async def work() -> pb.Member:
            m = await self._registries.set_member(who, request.registry, request.user, request.role)
            return member_pb(m)

        return await self._once(
            who, "SetRegistryMember", request, pb.Member, work, changes_own_access=_is_self(who, request.user)
        )

    @translate_errors
    async def RemoveRegistryMember(
        self, request: pb.RemoveRegistryMemberRequest, context: grpc.aio.ServicerContext
    ) -> pb.Member:
        who = await self._who(context)

        async def work() -> pb.Member:
            m = await self._registries.remove_member(who, request.registry, request.user)
            return member_pb(m)

        return await self._once(
            who, "RemoveRegistryMember", request, pb.Member, work, changes_own_access=_is_self(who, request.user)
        )

    @translate_errors
    async def ListRegistryCollections(
        self, request: pb.ListRegistryCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRegistryCollectionsResponse:
        who = await self._who(context)
        items, token = await self._registries.list_collections(
            who, request.parent, request.page_size, request.page_token
        )
        return pb.ListRegistryCollectionsResponse(
            collections=[
                pb.RegistryCollection(
                    name=c.name,
                    type=c.type,
                    create_time=_ts(c.create_time),
                    link_count=c.link_count,
                )
                for c in items
            ],
            next_page_token=token,
        )

    @translate_errors
    async def LinkArtifactVersion(
        self, request: pb.LinkArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Link:
        who = await self._who(context)

        async def work() -> pb.Link:
            link = await self._registries.link(who, request.version, request.target, list(request.aliases))
            return link_pb(link)

        return await self._once(who, "LinkArtifactVersion", request, pb.Link, work)

    @translate_errors
    async def UnlinkArtifactVersion(
        self, request: pb.UnlinkArtifactVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Link:
        who = await self._who(context)

        async def work() -> pb.Link:
            return link_pb(await self._registries.unlink(who, request.name))

        return await self._once(who, "UnlinkArtifactVersion", request, pb.Link, work)

    @translate_errors
    async def ListLinks(self, request: pb.ListLinksRequest, context: grpc.aio.ServicerContext) -> pb.ListLinksResponse:
        who = await self._who(context)
        items, token = await self._registries.list_links(who, request.parent, request.page_size, request.page_token)
        return pb.ListLinksResponse(links=[link_pb(x) for x in items], next_page_token=token)

    # -- lineage graph -----------------------------------------------------------

    @translate_errors
    async def WalkLineage(
        self, request: pb.WalkLineageRequest, context: grpc.aio.ServicerContext
    ) -> pb.WalkLineageResponse:
        who = await self._who(context)
        direction = {pb.DIRECTION_UPSTREAM: "up", pb.DIRECTION_DOWNSTREAM: "down"}.get(request.direction, "")
        page = await self._lineage.walk(
            who, request.start, direction, request.depth, request.page_size, request.page_token
        )
        return pb.WalkLineageResponse(
            nodes=[
                pb.LineageNode(
                    name=n.name,
                    depth=n.depth,
                    version=version_pb(n.version) if n.version else None,
                    run=run_pb(n.run) if n.run else None,
                )
                for n in page.nodes
            ],
            edges=[pb.LineageEdge(source=e.source, target=e.target, kind=e.kind) for e in page.edges],
            next_page_token=page.next_page_token,
            hidden_count=page.hidden_count,
        )
