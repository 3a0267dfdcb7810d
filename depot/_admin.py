"""Administration: orgs, teams, users, members, API keys, registries, version bookkeeping and GC.

    admin = Admin()                                   # the connection of depot.Client()
    admin.create_entity("ml", "team", org="acme")
    admin.set_member("ml", "alice", "member")
    key = admin.create_key(description="ci")          # key.key is the secret, shown once
    admin.versions("ml/proj/ds", alias="prod")        # every page, newest first
    admin.set_ttl("ml/proj/ds:v0", timedelta(days=30))
    admin.run_gc("ml", dry_run=True)                  # what a GC pass would do

Names are given as users type them (``acme``, ``acme/model``,
``ml/proj/ds:v0``); each method builds the resource name. Listings read
every page; TTL values are those of :class:`depot.ArtifactTTL`. Every
mutation carries one ``request_id``, kept across the client's retries.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from google.protobuf import field_mask_pb2

from depot.gc.v1 import gc_pb2
from depot.metadata.v1 import metadata_pb2 as pb

from . import _ttl
from ._client import Client, request_id
from ._exceptions import DepotError, InvalidArgumentError
from ._paging import all_items
from ._paths import REGISTRY_PREFIX, parse_artifact_path, parse_registry_target

EntityKind = Literal["user", "team", "org"]
Role = Literal["admin", "member", "viewer"]
TtlPolicy = Literal["members", "admins"]

# Listings read whole: big pages keep the round trips few, and 200 small
# resources are still a small message.
_PAGE_SIZE = 200

_TTL_POLICIES: dict[TtlPolicy, pb.TtlPolicy.ValueType] = {
    "members": pb.TTL_POLICY_MEMBERS,
    "admins": pb.TTL_POLICY_ADMINS,
}


class Keep(enum.Enum):
    """Leave a setting as it is (``update_entity_settings``'s default)."""

    KEEP = "keep"


def entity_resource(name: str) -> str:
    """``entities/{name}`` for ``name`` or an already full resource name."""
    return name if name.startswith("entities/") else f"entities/{name}"


def registry_resource(path: str) -> str:
    """``entities/{org}/registries/{r}`` for ``ORG/REGISTRY`` (``wandb-registry-R`` too)."""
    parts = path.split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidArgumentError(f"expected ORG/REGISTRY, got {path!r}", field="registry")
    return f"entities/{parts[0]}/registries/{parts[1].removeprefix(REGISTRY_PREFIX)}"


class Admin:
    """Typed calls for the metadata service's administrative resources.

    Args:
        client: The connection to use; a new :class:`depot.Client` (from the
            environment) when omitted.
    """

    def __init__(self, client: Client | None = None) -> None:
        self.client = client if client is not None else Client()

    # -- entities: users, teams, orgs -------------------------------------------------

    def create_entity(self, name: str, kind: EntityKind, *, org: str | None = None) -> pb.Entity:
        """Creates a user, team or org (superusers; org admins for users and teams of their org)."""
        c = self.client
        return c.call(
            c.access.CreateEntity,
            pb.CreateEntityRequest(
                entity_id=name,
                request_id=request_id(),
                entity=pb.Entity(kind=kind, org=entity_resource(org) if org else ""),
            ),
        )

    def entity(self, name: str) -> pb.Entity:
        """An entity, its settings and the caller's role in it."""
        c = self.client
        return c.call(c.access.GetEntity, pb.GetEntityRequest(name=entity_resource(name)))

    def entities(self) -> list[pb.Entity]:
        """The entities the caller has a role in."""
        c = self.client
        return all_items(
            lambda t: c.call(c.access.ListEntities, pb.ListEntitiesRequest(page_size=_PAGE_SIZE, page_token=t)),
            lambda page: page.entities,
        )

    def update_entity_settings(
        self,
        name: str,
        *,
        default_ttl: timedelta | None | Keep = Keep.KEEP,
        ttl_policy: TtlPolicy | Keep = Keep.KEEP,
    ) -> pb.Entity:
        """Sets a team's default TTL (None: versions inherit no TTL) and who may set TTLs (admins).

        Only the settings given change, in one request; with none given this
        is :meth:`entity`.
        """
        settings = pb.EntitySettings()
        paths = []
        if default_ttl is not Keep.KEEP:
            paths.append("default_ttl")
            if default_ttl is not None:
                settings.default_ttl.FromTimedelta(default_ttl)
        if ttl_policy is not Keep.KEEP:
            paths.append("ttl_policy")
            settings.ttl_policy = _TTL_POLICIES[ttl_policy]
        if not paths:
            return self.entity(name)
        c = self.client
        return c.call(
            c.access.UpdateEntitySettings,
            pb.UpdateEntitySettingsRequest(
                name=entity_resource(name),
                settings=settings,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
                request_id=request_id(),
            ),
        )

        # -- members of teams and orgs -----------------------------------------------------

    def members(self, entity: str) -> list[pb.Member]:
        """Members of a team or org with their roles."""
        c = self.client
        return all_items(
            lambda t: c.call(
                c.access.ListMembers,
                pb.ListMembersRequest(entity=entity_resource(entity), page_size=_PAGE_SIZE, page_token=t),
            ),
            lambda page: page.members,
        )

    def set_member(self, entity: str, user: str, role: Role) -> pb.Member:
        """Adds ``user`` to a team or org, or changes their role."""
        c = self.client
        return c.call(
            c.access.SetMember,
            pb.SetMemberRequest(
                entity=entity_resource(entity), user=entity_resource(user), role=role, request_id=request_id()
            ),
        )

    def remove_member(self, entity: str, user: str) -> pb.Member:
        """Removes ``user`` from a team or org (never its last admin)."""
        c = self.client
        return c.call(
            c.access.RemoveMember,
            pb.RemoveMemberRequest(entity=entity_resource(entity), user=entity_resource(user), request_id=request_id()),
        )

        # -- API keys ---------------------------------------------------------------------

    def create_key(self, *, user: str | None = None, description: str = "") -> pb.ApiKey:
        """A new API key with its secret in ``key`` (for ``user``: superusers only).

        The secret is shown once: a CreateApiKey the client retried (its
        first answer lost in transit) comes back with the key's id and no
        secret. That key is unusable to anyone, so it is revoked and another
        one made.
        """
        c = self.client
        owner = entity_resource(user) if user else ""
        for _ in range(2):
            k = c.call(
                c.access.CreateApiKey,
                pb.CreateApiKeyRequest(user=owner, description=description, request_id=request_id()),
            )
            if k.key:
                return k
            self.revoke_key(k.id)
        raise DepotError(
            "the server answered CreateApiKey twice without the secret (a retried call); revoked both, try again"
        )

    def revoke_key(self, key_id: str) -> pb.ApiKey:
        """Revokes a key by id; it stops working within a second everywhere."""
        c = self.client
        return c.call(c.access.RevokeApiKey, pb.RevokeApiKeyRequest(id=key_id, request_id=request_id()))

    def keys(self, *, user: str | None = None) -> list[pb.ApiKey]:
        """The caller's keys (or ``user``'s: superusers only), never their secrets."""
        c = self.client
        owner = entity_resource(user) if user else ""
        return all_items(
            lambda t: c.call(
                c.access.ListApiKeys, pb.ListApiKeysRequest(user=owner, page_size=_PAGE_SIZE, page_token=t)
            ),
            lambda page: page.keys,
        )

    # -- registries -------------------------------------------------------------------

    def create_registry(
        self,
        org: str,
        name: str,
        *,
        accepted_types: Sequence[str] = (),
        description: str = "",
        restricted: bool = False,
    ) -> pb.Registry:
        """Creates a custom registry in ``org`` (org admins); no types accepts any type.

        A restricted registry is visible to its own members only, an
        unrestricted one to every member of the org.
        """
        c = self.client
        return c.call(
            c.registries.CreateRegistry,
            pb.CreateRegistryRequest(
                parent=entity_resource(org),
                registry_id=name,
                request_id=request_id(),
                registry=pb.Registry(
                    accepted_types=list(accepted_types),
                    description=description,
                    visibility="restricted" if restricted else "org",
                ),
            ),
        )

    def registries(self, org: str) -> list[pb.Registry]:
        """The registries of ``org`` the caller may see."""
        c = self.client
        return all_items(
            lambda t: c.call(
                c.registries.ListRegistries,
                pb.ListRegistriesRequest(parent=entity_resource(org), page_size=_PAGE_SIZE, page_token=t),
            ),
            lambda page: page.registries,
        )

    def registry_collections(self, registry: str) -> list[pb.RegistryCollection]:
        """The collections of ``ORG/REGISTRY``."""
        c = self.client
        parent = registry_resource(registry)
        return all_items(
            lambda t: c.call(
                c.registries.ListRegistryCollections,
                pb.ListRegistryCollectionsRequest(parent=parent, page_size=_PAGE_SIZE, page_token=t),
            ),
            lambda page: page.collections,
        )

    def links(self, collection: str) -> list[pb.Link]:
        """The links of ``{org}/wandb-registry-{r}/{collection}``, each with its linked version."""
        c = self.client
        parent = parse_registry_target(collection).collection_resource
        return all_items(
            lambda t: c.call(
                c.registries.ListLinks, pb.ListLinksRequest(parent=parent, page_size=_PAGE_SIZE, page_token=t)
            ),
            lambda page: page.links,
        )

    def set_registry_member(self, registry: str, user: str, role: Role) -> pb.Member:
        """Gives ``user`` a role in ``ORG/REGISTRY``."""
        c = self.client
        return c.call(
            c.registries.SetRegistryMember,
            pb.SetRegistryMemberRequest(
                registry=registry_resource(registry), user=entity_resource(user), role=role, request_id=request_id()
            ),
        )

    def remove_registry_member(self, registry: str, user: str) -> pb.Member:
        """Removes ``user`` from ``ORG/REGISTRY``."""
        c = self.client
        return c.call(
            c.registries.RemoveRegistryMember,
            pb.RemoveRegistryMemberRequest(
                registry=registry_resource(registry), user=entity_resource(user), request_id=request_id()
            ),
        )

        # -- versions: listing, aliases, TTL ----------------------------------------------

    def versions(
        self, collection: str, *, alias: str | None = None, tag: str | None = None
    ) -> list[pb.ArtifactVersion]:
        """Committed versions of ``entity/project/name``, newest first; only those with ``alias``/``tag`` if given."""
        c = self.client
        parent = parse_artifact_path(collection).collection_resource
        return all_items(
            lambda t: c.call(
                c.artifacts.ListArtifactVersions,
                pb.ListArtifactVersionsRequest(
                    parent=parent, page_size=_PAGE_SIZE, page_token=t, alias=alias or "", tag=tag or ""
                ),
            ),
            lambda page: page.versions,
        )

    def version(self, path: str) -> pb.ArtifactVersion:
        """The version a path names (a registry path gives it with its ``link``)."""
        c = self.client
        return c.call(
            c.artifacts.GetArtifactVersion,
            pb.GetArtifactVersionRequest(name=parse_artifact_path(path).version_resource),
        )

    def add_aliases(self, path: str, aliases: Sequence[str]) -> pb.ArtifactVersion:
        """Moves ``aliases`` onto the version (or registry link) ``path`` names."""
        c = self.client
        return c.call(
            c.artifacts.AddAliases,
            pb.AddAliasesRequest(
                version=parse_artifact_path(path).version_resource, aliases=list(aliases), request_id=request_id()
            ),
        )

    def remove_aliases(self, path: str, aliases: Sequence[str]) -> pb.ArtifactVersion:
        """Takes ``aliases`` off the version (or registry link) ``path`` names."""
        c = self.client
        return c.call(
            c.artifacts.RemoveAliases,
            pb.RemoveAliasesRequest(
                version=parse_artifact_path(path).version_resource, aliases=list(aliases), request_id=request_id()
            ),
        )

    def set_ttl(self, path: str, ttl: _ttl.TTL) -> pb.ArtifactVersion:
        """Sets a version's TTL: a timedelta, None (forever) or ``ArtifactTTL.INHERIT``."""
        upd = pb.ArtifactVersion(name=parse_artifact_path(path).version_resource)
        _ttl.to_request(upd, _ttl.check(ttl))
        c = self.client
        return c.call(
            c.artifacts.UpdateArtifactVersion,
            pb.UpdateArtifactVersionRequest(
                version=upd, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]), request_id=request_id()
            ),
        )

    # -- garbage collection (the gc service) ------------------------------------------

    def run_gc(self, entity: str | None = None, *, dry_run: bool = False) -> gc_pb2.CollectionReport:
        """Runs one GC pass now and returns its report (``ran`` is False when
        another replica's pass holds the collector lock).

        ``entity`` limits the pass to one entity (its admins may); all
        entities is a superuser's. With ``dry_run`` nothing changes: the
        report says what the pass would do. A pass may take long: the call
        waits up to the client's ``stream_timeout``, and a retry after a
        lost answer returns the same pass's report.
        """
        c = self.client
        return c.call(
            c.gc.RunNow,
            gc_pb2.RunNowRequest(
                entity=entity_resource(entity) if entity else "", dry_run=dry_run, request_id=request_id()
            ),
            timeout=c.config.stream_timeout,
        )

    def gc_status(self, entity: str | None = None) -> gc_pb2.GcStatus:
        """The GC schedule and the last passes (of ``entity``, or of all for a superuser)."""
        c = self.client
        return c.call(c.gc.GetStatus, gc_pb2.GetStatusRequest(entity=entity_resource(entity) if entity else ""))
