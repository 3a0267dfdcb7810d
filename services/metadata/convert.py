"""Converters between the metadata domain's records and protobuf messages.

Domain objects (records.py, accounts.py, registries.py, lineage.py) become
response messages here, and request fields become domain values (enums to
names, bounded durations and timestamps), so the servicers only route.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.common import validate
from depot.services.common.errors import InvalidArgument

from . import accounts as acc
from .access import ROLE_NAMES, Role
from .bulk_delete import Operation
from .lineage import Edge, Node
from .records import Alias, Collection, Project, RegistryCollection, Run, Version
from .registries import Link, Registry

PERMISSION = {
    pb.PERMISSION_READ: Role.VIEWER,
    pb.PERMISSION_WRITE: Role.MEMBER,
    pb.PERMISSION_ADMIN: Role.ADMIN,
}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
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
        create_time=timestamp(v.create_time),
        commit_time=timestamp(v.commit_time),
        producer_run=v.producer_run,
        collection=v.collection,
        ttl_mode=TTL_MODE[v.ttl_mode],
        tags=v.tags,
        expire_time=timestamp(v.expire_time),
        linked=v.linked,
        delete_time=timestamp(v.delete_time),
        purge_time=timestamp(v.purge_time),
        delete_reason=v.delete_reason,
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
                create_time=timestamp(v.link.create_time),
            )
        )
    return msg


TTL_MODE = {
    "": pb.TTL_MODE_UNSPECIFIED,
    "forever": pb.TTL_MODE_FOREVER,
    "duration": pb.TTL_MODE_DURATION,
    "inherit": pb.TTL_MODE_INHERIT,
}
_TTL_MODE_NAME = {v: k for k, v in TTL_MODE.items()}


def ttl_mode(value: pb.TtlMode.ValueType) -> str:
    if value not in _TTL_MODE_NAME:
        raise InvalidArgument(f"unknown ttl_mode {value}", field="ttl_mode")
    return _TTL_MODE_NAME[value]


def run_pb(r: Run) -> pb.Run:
    return pb.Run(
        name=r.name,
        job_type=r.job_type,
        state=r.state,
        create_time=timestamp(r.create_time),
        finish_time=timestamp(r.finish_time),
        config_json=json.dumps(r.config, sort_keys=True) if r.config else "",
    )


def request_ttl(msg: Message, field: str, name: str | None = None) -> timedelta | None:
    """A request Duration, bounded (validate.py): never an OverflowError."""
    return validate.optional_duration(msg, field, name)


def request_time(msg: Message, field: str) -> datetime | None:
    """A request Timestamp within 0001..9999 with sane nanos (validate.py)."""
    return validate.optional_timestamp(msg, field)


def _role(role: Role | None) -> str:
    return ROLE_NAMES[role] if role else ""


def entity_pb(e: acc.Entity) -> pb.Entity:
    msg = pb.Entity(
        name=f"entities/{e.name}",
        kind=e.kind,
        org=f"entities/{e.org}" if e.org else "",
        create_time=timestamp(e.create_time),
        settings=pb.EntitySettings(ttl_policy=_TTL_POLICY[e.ttl_policy]),
        caller_role=_role(e.caller_role),
    )
    if e.default_ttl is not None:
        msg.settings.default_ttl.CopyFrom(validate.duration_pb(e.default_ttl))
    return msg


_TTL_POLICY = {"members": pb.TTL_POLICY_MEMBERS, "admins": pb.TTL_POLICY_ADMINS}
TTL_POLICY_NAME = {v: k for k, v in _TTL_POLICY.items()}


def member_pb(m: acc.Member) -> pb.Member:
    return pb.Member(parent=m.parent, user=m.user, role=ROLE_NAMES[m.role])


def key_pb(k: acc.KeyInfo) -> pb.ApiKey:
    return pb.ApiKey(
        id=k.id,
        user=k.user,
        description=k.description,
        create_time=timestamp(k.create_time),
        revoke_time=timestamp(k.revoke_time),
        key=k.key,
    )


def registry_pb(r: Registry) -> pb.Registry:
    return pb.Registry(
        name=r.name,
        accepted_types=r.accepted_types,
        description=r.description,
        core=r.core,
        visibility=r.visibility,
        create_time=timestamp(r.create_time),
        caller_role=_role(r.caller_role),
    )


def link_pb(link: Link) -> pb.Link:
    return pb.Link(
        name=link.name,
        collection=link.collection,
        index=link.index,
        aliases=link.aliases,
        create_time=timestamp(link.create_time),
        version=version_pb(link.version),
    )


DIRECTION = {pb.DIRECTION_UPSTREAM: "up", pb.DIRECTION_DOWNSTREAM: "down", pb.DIRECTION_BOTH: "both"}


def node_pb(n: Node) -> pb.LineageNode:
    return pb.LineageNode(
        name=n.name,
        depth=n.depth,
        version=version_pb(n.version) if n.version else None,
        run=run_pb(n.run) if n.run else None,
    )


def project_pb(p: Project) -> pb.Project:
    return pb.Project(name=p.name, create_time=timestamp(p.create_time))


def collection_pb(c: Collection) -> pb.Collection:
    return pb.Collection(name=c.name, type=c.type, create_time=timestamp(c.create_time), version_count=c.version_count)


def alias_pb(a: Alias) -> pb.Alias:
    return pb.Alias(alias=a.alias, version=a.version, index=a.index)


def registry_collection_pb(c: RegistryCollection) -> pb.RegistryCollection:
    return pb.RegistryCollection(
        name=c.name, type=c.type, create_time=timestamp(c.create_time), link_count=c.link_count
    )


def edge_pb(e: Edge) -> pb.LineageEdge:
    return pb.LineageEdge(source=e.source, target=e.target, kind=e.kind)


def operation_pb(op: Operation) -> pb.DeleteOperation:
    return pb.DeleteOperation(
        name=op.name,
        state=op.state,
        matched=op.matched,
        deleted=op.deleted,
        skipped_aliased=op.skipped_aliased,
        skipped_linked=op.skipped_linked,
        sample=op.sample,
        error=op.error,
        create_time=timestamp(op.create_time),
        update_time=timestamp(op.update_time),
    )
