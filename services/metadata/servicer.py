"""gRPC handlers of the metadata service, one servicer per resource family: authenticate, call the domain, convert.

Each handler is thin; errors are translated in one place (common/status.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from depot.common.v1 import common_pb2
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common.credentials import bearer_from_metadata, verify_manifest
from depot.services.common.errors import InvalidArgument, PermissionDenied
from depot.services.common.status import translate_errors

from .access import Access, Principal, Role
from .accounts import Accounts
from .aliases import Aliases
from .convert import (
    DIRECTION,
    PERMISSION,
    TTL_POLICY_NAME,
    alias_pb,
    collection_pb,
    edge_pb,
    entity_pb,
    key_pb,
    link_pb,
    member_pb,
    node_pb,
    project_pb,
    registry_collection_pb,
    registry_pb,
    request_time,
    request_ttl,
    run_pb,
    ttl_mode,
    version_pb,
)
from .idempotency import Grant, Idempotency, fingerprint
from .lineage import Lineage
from .listings import Listings, VersionFilter
from .records import ManifestInfo
from .registries import Registries
from .registry_access import RegistryAccess
from .runs import Runs
from .versions import Versions

M = TypeVar("M", bound=Message)


def _is_self(who: Principal, user: str) -> bool:
    """Whether a membership request names the caller (short or full name)."""
    return user in (who.user, f"entities/{who.user}")


class _Family:
    """What the handlers of every resource family share: the caller, and
    running a mutation once per request_id."""

    def __init__(self, access: Access, idempotency: Idempotency, registry_access: RegistryAccess):
        self._access = access
        self._idem = idempotency
        self._registry_access = registry_access

    async def _who(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self._access.authenticate(bearer_from_metadata(context.invocation_metadata()))

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


class ArtifactServicer(_Family, metadata_pb2_grpc.ArtifactServiceServicer):
    def __init__(
        self,
        access: Access,
        idempotency: Idempotency,
        registry_access: RegistryAccess,
        *,
        runs: Runs,
        versions: Versions,
        aliases: Aliases,
        listings: Listings,
        lineage: Lineage,
        manifest_secret: bytes,
    ):
        super().__init__(access, idempotency, registry_access)
        self._runs = runs
        self._versions = versions
        self._aliases = aliases
        self._listings = listings
        self._lineage = lineage
        self._manifest_secret = manifest_secret

    def _verified_manifest(self, m: common_pb2.ManifestRef) -> ManifestInfo:
        """The manifest service's summary, if its signature holds."""
        fields = (m.entity, m.manifest_id, m.digest, m.digest_algorithm, m.size, m.file_count)
        verify_manifest(self._manifest_secret, m.token, *fields)
        return ManifestInfo(*fields)

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
                request_ttl(request, "ttl"),
                ttl_mode(request.ttl_mode),
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
            created_after=request_time(request, "created_after"),
            created_before=request_time(request, "created_before"),
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
    async def ListProjects(
        self, request: pb.ListProjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListProjectsResponse:
        who = await self._who(context)
        items, token = await self._listings.list_projects(who, request.parent, request.page_size, request.page_token)
        return pb.ListProjectsResponse(
            projects=[project_pb(p) for p in items],
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
            collections=[collection_pb(c) for c in items],
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
            aliases=[alias_pb(a) for a in items],
            next_page_token=token,
        )

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
                ttl_mode=ttl_mode(v.ttl_mode),
                ttl=request_ttl(v, "ttl", "version.ttl"),
            )
            return version_pb(out)

        return await self._once(who, "UpdateArtifactVersion", request, pb.ArtifactVersion, work)


class RegistryServicer(_Family, metadata_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self, access: Access, idempotency: Idempotency, registry_access: RegistryAccess, registries: Registries
    ):
        super().__init__(access, idempotency, registry_access)
        self._registries = registries

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
            collections=[registry_collection_pb(c) for c in items],
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


class AccessServicer(_Family, metadata_pb2_grpc.AccessServiceServicer):
    def __init__(self, access: Access, idempotency: Idempotency, registry_access: RegistryAccess, accounts: Accounts):
        super().__init__(access, idempotency, registry_access)
        self._accounts = accounts

    @translate_errors
    async def GetCaller(self, request: pb.GetCallerRequest, context: grpc.aio.ServicerContext) -> pb.Caller:
        who = await self._who(context)
        return pb.Caller(user=who.user, superuser=who.superuser)

    @translate_errors
    async def CheckAccess(
        self, request: pb.CheckAccessRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckAccessResponse:
        await self._who(context)  # the calling service authenticates too
        need = PERMISSION.get(request.permission)
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
        policy = TTL_POLICY_NAME.get(request.settings.ttl_policy, "")

        async def work() -> pb.Entity:
            e = await self._accounts.update_settings(
                who, request.name, paths, request_ttl(request.settings, "default_ttl", "settings.default_ttl"), policy
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


class LineageServicer(_Family, metadata_pb2_grpc.LineageServiceServicer):
    def __init__(self, access: Access, idempotency: Idempotency, registry_access: RegistryAccess, lineage: Lineage):
        super().__init__(access, idempotency, registry_access)
        self._lineage = lineage

    @translate_errors
    async def WalkLineage(
        self, request: pb.WalkLineageRequest, context: grpc.aio.ServicerContext
    ) -> pb.WalkLineageResponse:
        who = await self._who(context)
        direction = DIRECTION.get(request.direction, "")
        page = await self._lineage.walk(
            who, request.start, direction, request.depth, request.page_size, request.page_token
        )
        return pb.WalkLineageResponse(
            start=node_pb(page.start),
            nodes=[node_pb(n) for n in page.nodes],
            edges=[edge_pb(e) for e in page.edges],
            next_page_token=page.next_page_token,
            hidden_count=page.hidden_count,
        )
