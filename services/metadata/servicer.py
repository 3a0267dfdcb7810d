"""gRPC handlers of the metadata service, one servicer per resource family.

Each handler only routes: request fields to the domain, its answer back
through convert.py. The edge interceptor (services/common/interceptor.py)
authenticated the caller and translates any error (common/status.py); a
mutation is declared with ``@mutation(ResponseType)`` (mutations.py).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Protocol

from depot.common.v1 import common_pb2
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common.credentials import check_manifest_age, verify_manifest
from depot.services.common.errors import InvalidArgument, PermissionDenied
from depot.services.common.interceptor import Callers, Context

from .access import Access, Principal, Role
from .accounts import Accounts
from .aliases import Aliases
from .bulk_delete import BulkDeletes, BulkFilter
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
    operation_pb,
    project_pb,
    registry_collection_pb,
    registry_pb,
    request_time,
    request_ttl,
    run_pb,
    ttl_mode,
    version_pb,
)
from .deletion import Deletion
from .idempotency import Idempotency, fingerprint
from .lineage import Lineage
from .listings import Listings, VersionFilter
from .mutations import Family, mutation
from .records import ManifestInfo
from .registries import Registries
from .registry_access import RegistryAccess
from .runs import Runs
from .versions import Versions


class _Membership(Protocol):
    @property
    def user(self) -> str: ...


def _changes_own_access(who: Principal, request: _Membership) -> bool:
    """Whether a membership request names the caller (short or full name)."""
    return request.user in (who.user, f"entities/{who.user}")


class ArtifactServicer(Family, metadata_pb2_grpc.ArtifactServiceServicer):
    def __init__(
        self,
        callers: Callers[Principal],
        access: Access,
        idempotency: Idempotency,
        registry_access: RegistryAccess,
        *,
        runs: Runs,
        versions: Versions,
        aliases: Aliases,
        listings: Listings,
        lineage: Lineage,
        bulk_deletes: BulkDeletes,
        deletion: Deletion,
        manifest_secret: bytes,
        grace: timedelta,
    ):
        super().__init__(callers, access, idempotency, registry_access)
        self._runs = runs
        self._versions = versions
        self._aliases = aliases
        self._listings = listings
        self._lineage = lineage
        self._bulk_deletes = bulk_deletes
        self._deletion = deletion
        self._manifest_secret = manifest_secret
        # The manifest service refreshes a build's blobs by half the GC's
        # grace period; a later commit could name blobs the GC freed.
        self._manifest_max_age_s = grace.total_seconds() / 2

    def _verified_manifest(self, m: common_pb2.ManifestRef) -> ManifestInfo:
        """The manifest service's summary, if its signature holds and it is recent enough."""
        fields = (m.entity, m.manifest_id, m.digest, m.digest_algorithm, m.size, m.file_count)
        verify_manifest(self._manifest_secret, m.token, *fields, m.create_time_unix_ms)
        check_manifest_age(m.create_time_unix_ms, self._manifest_max_age_s, time.time())
        return ManifestInfo(*fields)

    @mutation(pb.Run)
    async def CreateRun(self, request: pb.CreateRunRequest, context: Context) -> pb.Run:
        who = self._who()
        run = await self._runs.create_run(
            who, request.parent, request.run_id, request.run.job_type, request.run.config_json
        )
        return run_pb(run)

    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.Run:
        who = self._who()
        return run_pb(await self._runs.get_run(who, request.name))

    @mutation(pb.Run)
    async def FinishRun(self, request: pb.FinishRunRequest, context: Context) -> pb.Run:
        who = self._who()
        return run_pb(await self._runs.finish_run(who, request.name, request.state))

    @mutation(pb.ArtifactVersion)
    async def CreateArtifactVersion(
        self, request: pb.CreateArtifactVersionRequest, context: Context
    ) -> pb.ArtifactVersion:
        who = self._who()
        manifest = self._verified_manifest(request.manifest) if request.HasField("manifest") else None
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

    @mutation(pb.ArtifactVersion)
    async def CommitArtifactVersion(
        self, request: pb.CommitArtifactVersionRequest, context: Context
    ) -> pb.ArtifactVersion:
        who = self._who()
        info = self._verified_manifest(request.manifest)
        v = await self._versions.commit_version(who, request.uid, info, list(request.aliases))
        return version_pb(v)

    async def GetArtifactVersion(self, request: pb.GetArtifactVersionRequest, context: Context) -> pb.ArtifactVersion:
        who = self._who()
        return version_pb(await self._versions.get_version(who, request.name))

    async def ListArtifactVersions(
        self, request: pb.ListArtifactVersionsRequest, context: Context
    ) -> pb.ListArtifactVersionsResponse:
        who = self._who()
        f = VersionFilter(
            alias=request.alias,
            tag=request.tag,
            created_after=request_time(request, "created_after"),
            created_before=request_time(request, "created_before"),
            metadata_key=request.metadata_key,
            metadata_value_json=request.metadata_value_json,
            show_deleted=request.show_deleted,
        )
        versions, token = await self._listings.list_versions(
            who, request.parent, request.page_size, request.page_token, f
        )
        return pb.ListArtifactVersionsResponse(versions=[version_pb(v) for v in versions], next_page_token=token)

    @mutation(pb.ArtifactVersion)
    async def UseArtifactVersion(self, request: pb.UseArtifactVersionRequest, context: Context) -> pb.ArtifactVersion:
        who = self._who()
        return version_pb(await self._lineage.use_version(who, request.run, request.version))

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Context) -> pb.ListProjectsResponse:
        who = self._who()
        items, token = await self._listings.list_projects(who, request.parent, request.page_size, request.page_token)
        return pb.ListProjectsResponse(
            projects=[project_pb(p) for p in items],
            next_page_token=token,
        )

    async def ListCollections(self, request: pb.ListCollectionsRequest, context: Context) -> pb.ListCollectionsResponse:
        who = self._who()
        items, token = await self._listings.list_collections(
            who, request.parent, request.type, request.page_size, request.page_token
        )
        return pb.ListCollectionsResponse(
            collections=[collection_pb(c) for c in items],
            next_page_token=token,
        )

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        who = self._who()
        items, token = await self._listings.list_runs(who, request.parent, request.page_size, request.page_token)
        return pb.ListRunsResponse(runs=[run_pb(r) for r in items], next_page_token=token)

    async def ListAliases(self, request: pb.ListAliasesRequest, context: Context) -> pb.ListAliasesResponse:
        who = self._who()
        items, token = await self._aliases.list_aliases(who, request.parent, request.page_size, request.page_token)
        return pb.ListAliasesResponse(
            aliases=[alias_pb(a) for a in items],
            next_page_token=token,
        )

    @mutation(pb.ArtifactVersion)
    async def AddAliases(self, request: pb.AddAliasesRequest, context: Context) -> pb.ArtifactVersion:
        who = self._who()
        v = await self._aliases.add_aliases(who, request.version, list(request.aliases))
        return version_pb(v)

    @mutation(pb.ArtifactVersion)
    async def RemoveAliases(self, request: pb.RemoveAliasesRequest, context: Context) -> pb.ArtifactVersion:
        who = self._who()
        v = await self._aliases.remove_aliases(who, request.version, list(request.aliases))
        return version_pb(v)

    @mutation(pb.ArtifactVersion)
    async def DeleteArtifactVersion(
        self, request: pb.DeleteArtifactVersionRequest, context: Context
    ) -> pb.ArtifactVersion:
        who = self._who()
        return version_pb(await self._deletion.delete(who, request.name, request.delete_aliases))

    @mutation(pb.UndeleteArtifactVersionResponse)
    async def UndeleteArtifactVersion(
        self, request: pb.UndeleteArtifactVersionRequest, context: Context
    ) -> pb.UndeleteArtifactVersionResponse:
        who = self._who()
        out = await self._deletion.undelete(who, request.name)
        return pb.UndeleteArtifactVersionResponse(
            version=version_pb(out.version),
            restored_aliases=out.restored_aliases,
            lost_aliases=out.lost_aliases,
        )

    # Not a @mutation: the request_id names the operation itself
    # (bulk_delete.py), and a retry answers its progress now, not a stored reply.
    async def DeleteArtifactVersions(
        self, request: pb.DeleteArtifactVersionsRequest, context: Context
    ) -> pb.DeleteOperation:
        who = self._who()
        f = BulkFilter.parse(
            request.parent,
            type=request.type,
            created_before=request_time(request, "created_before"),
            without_aliases=request.without_aliases,
            tag=request.tag,
            metadata_key=request.metadata_key,
            metadata_value_json=request.metadata_value_json,
        )
        if request.dry_run:
            return operation_pb(await self._bulk_deletes.dry_run(who, f))
        bare = pb.DeleteArtifactVersionsRequest()
        bare.CopyFrom(request)
        bare.ClearField("request_id")
        op = await self._bulk_deletes.start(
            who,
            f,
            delete_aliases=request.delete_aliases,
            request_id=request.request_id,
            fingerprint=fingerprint(bare.SerializeToString(deterministic=True)),
        )
        return operation_pb(op)

    async def GetDeleteOperation(self, request: pb.GetDeleteOperationRequest, context: Context) -> pb.DeleteOperation:
        who = self._who()
        return operation_pb(await self._bulk_deletes.get(who, request.name))

    async def UpdateArtifactVersion(
        self, request: pb.UpdateArtifactVersionRequest, context: Context
    ) -> pb.ArtifactVersion:
        who = self._who()
        v = request.version
        paths = list(request.update_mask.paths)
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


class RegistryServicer(Family, metadata_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self,
        callers: Callers[Principal],
        access: Access,
        idempotency: Idempotency,
        registry_access: RegistryAccess,
        registries: Registries,
    ):
        super().__init__(callers, access, idempotency, registry_access)
        self._registries = registries

    @mutation(pb.Registry)
    async def CreateRegistry(self, request: pb.CreateRegistryRequest, context: Context) -> pb.Registry:
        who = self._who()
        r = request.registry
        reg = await self._registries.create_registry(
            who,
            request.parent,
            request.registry_id,
            list(r.accepted_types),
            r.description,
            r.visibility,
        )
        return registry_pb(reg)

    async def GetRegistry(self, request: pb.GetRegistryRequest, context: Context) -> pb.Registry:
        who = self._who()
        return registry_pb(await self._registries.get_registry(who, request.name))

    async def ListRegistries(self, request: pb.ListRegistriesRequest, context: Context) -> pb.ListRegistriesResponse:
        who = self._who()
        items, token = await self._registries.list_registries(
            who, request.parent, request.page_size, request.page_token
        )
        return pb.ListRegistriesResponse(registries=[registry_pb(r) for r in items], next_page_token=token)

    @mutation(pb.Member, changes_own_access=_changes_own_access)
    async def SetRegistryMember(self, request: pb.SetRegistryMemberRequest, context: Context) -> pb.Member:
        who = self._who()
        m = await self._registries.set_member(who, request.registry, request.user, request.role)
        return member_pb(m)

    @mutation(pb.Member, changes_own_access=_changes_own_access)
    async def RemoveRegistryMember(self, request: pb.RemoveRegistryMemberRequest, context: Context) -> pb.Member:
        who = self._who()
        m = await self._registries.remove_member(who, request.registry, request.user)
        return member_pb(m)

    async def ListRegistryCollections(
        self, request: pb.ListRegistryCollectionsRequest, context: Context
    ) -> pb.ListRegistryCollectionsResponse:
        who = self._who()
        items, token = await self._registries.list_collections(
            who, request.parent, request.page_size, request.page_token
        )
        return pb.ListRegistryCollectionsResponse(
            collections=[registry_collection_pb(c) for c in items],
            next_page_token=token,
        )

    @mutation(pb.Link)
    async def LinkArtifactVersion(self, request: pb.LinkArtifactVersionRequest, context: Context) -> pb.Link:
        who = self._who()
        link = await self._registries.link(who, request.version, request.target, list(request.aliases))
        return link_pb(link)

    @mutation(pb.Link)
    async def UnlinkArtifactVersion(self, request: pb.UnlinkArtifactVersionRequest, context: Context) -> pb.Link:
        who = self._who()
        return link_pb(await self._registries.unlink(who, request.name))

    async def ListLinks(self, request: pb.ListLinksRequest, context: Context) -> pb.ListLinksResponse:
        who = self._who()
        items, token = await self._registries.list_links(who, request.parent, request.page_size, request.page_token)
        return pb.ListLinksResponse(links=[link_pb(x) for x in items], next_page_token=token)


class AccessServicer(Family, metadata_pb2_grpc.AccessServiceServicer):
    def __init__(
        self,
        callers: Callers[Principal],
        access: Access,
        idempotency: Idempotency,
        registry_access: RegistryAccess,
        accounts: Accounts,
    ):
        super().__init__(callers, access, idempotency, registry_access)
        self._accounts = accounts

    async def GetCaller(self, request: pb.GetCallerRequest, context: Context) -> pb.Caller:
        who = self._who()
        return pb.Caller(user=who.user, superuser=who.superuser)

    async def CheckAccess(self, request: pb.CheckAccessRequest, context: Context) -> pb.CheckAccessResponse:
        # The calling service authenticated (the edge interceptor); the key it
        # asks about is the end user's.
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

    @mutation(pb.Entity)
    async def CreateEntity(self, request: pb.CreateEntityRequest, context: Context) -> pb.Entity:
        who = self._who()
        e = await self._accounts.create_entity(who, request.entity_id, request.entity.kind, request.entity.org)
        return entity_pb(e)

    async def GetEntity(self, request: pb.GetEntityRequest, context: Context) -> pb.Entity:
        who = self._who()
        return entity_pb(await self._accounts.get_entity(who, request.name))

    async def ListEntities(self, request: pb.ListEntitiesRequest, context: Context) -> pb.ListEntitiesResponse:
        who = self._who()
        items, token = await self._accounts.list_entities(who, request.kind, request.page_size, request.page_token)
        return pb.ListEntitiesResponse(entities=[entity_pb(e) for e in items], next_page_token=token)

    @mutation(pb.Entity)
    async def UpdateEntitySettings(self, request: pb.UpdateEntitySettingsRequest, context: Context) -> pb.Entity:
        who = self._who()
        paths = [p.removeprefix("settings.") for p in request.update_mask.paths]
        policy = TTL_POLICY_NAME.get(request.settings.ttl_policy, "")
        e = await self._accounts.update_settings(
            who, request.name, paths, request_ttl(request.settings, "default_ttl", "settings.default_ttl"), policy
        )
        return entity_pb(e)

    @mutation(pb.Member, changes_own_access=_changes_own_access)
    async def SetMember(self, request: pb.SetMemberRequest, context: Context) -> pb.Member:
        who = self._who()
        m = await self._accounts.set_member(who, request.entity, request.user, request.role)
        return member_pb(m)

    @mutation(pb.Member, changes_own_access=_changes_own_access)
    async def RemoveMember(self, request: pb.RemoveMemberRequest, context: Context) -> pb.Member:
        who = self._who()
        return member_pb(await self._accounts.remove_member(who, request.entity, request.user))

    async def ListMembers(self, request: pb.ListMembersRequest, context: Context) -> pb.ListMembersResponse:
        who = self._who()
        items, token = await self._accounts.list_members(who, request.entity, request.page_size, request.page_token)
        return pb.ListMembersResponse(members=[member_pb(m) for m in items], next_page_token=token)

    # The secret is random and shown once: the idempotency record stores the
    # answer without it, so a retry with the same request_id returns the
    # key's id and an empty `key` (documented on CreateApiKey).
    @mutation(pb.ApiKey, shown_once="key")
    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Context) -> pb.ApiKey:
        return key_pb(await self._accounts.create_key(self._who(), request.user, request.description))

    @mutation(pb.ApiKey)
    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: Context) -> pb.ApiKey:
        who = self._who()
        return key_pb(await self._accounts.revoke_key(who, request.id))

    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context: Context) -> pb.ListApiKeysResponse:
        who = self._who()
        items, token = await self._accounts.list_keys(who, request.user, request.page_size, request.page_token)
        return pb.ListApiKeysResponse(keys=[key_pb(k) for k in items], next_page_token=token)


class LineageServicer(Family, metadata_pb2_grpc.LineageServiceServicer):
    def __init__(
        self,
        callers: Callers[Principal],
        access: Access,
        idempotency: Idempotency,
        registry_access: RegistryAccess,
        lineage: Lineage,
    ):
        super().__init__(callers, access, idempotency, registry_access)
        self._lineage = lineage

    async def WalkLineage(self, request: pb.WalkLineageRequest, context: Context) -> pb.WalkLineageResponse:
        who = self._who()
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
