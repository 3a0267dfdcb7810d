import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Permission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_UNSPECIFIED: _ClassVar[Permission]
    PERMISSION_READ: _ClassVar[Permission]
    PERMISSION_WRITE: _ClassVar[Permission]
    PERMISSION_ADMIN: _ClassVar[Permission]

class TtlMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TTL_MODE_UNSPECIFIED: _ClassVar[TtlMode]
    TTL_MODE_FOREVER: _ClassVar[TtlMode]
    TTL_MODE_DURATION: _ClassVar[TtlMode]
    TTL_MODE_INHERIT: _ClassVar[TtlMode]

class TtlPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TTL_POLICY_UNSPECIFIED: _ClassVar[TtlPolicy]
    TTL_POLICY_MEMBERS: _ClassVar[TtlPolicy]
    TTL_POLICY_ADMINS: _ClassVar[TtlPolicy]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_UPSTREAM: _ClassVar[Direction]
    DIRECTION_DOWNSTREAM: _ClassVar[Direction]
PERMISSION_UNSPECIFIED: Permission
PERMISSION_READ: Permission
PERMISSION_WRITE: Permission
PERMISSION_ADMIN: Permission
TTL_MODE_UNSPECIFIED: TtlMode
TTL_MODE_FOREVER: TtlMode
TTL_MODE_DURATION: TtlMode
TTL_MODE_INHERIT: TtlMode
TTL_POLICY_UNSPECIFIED: TtlPolicy
TTL_POLICY_MEMBERS: TtlPolicy
TTL_POLICY_ADMINS: TtlPolicy
DIRECTION_UNSPECIFIED: Direction
DIRECTION_UPSTREAM: Direction
DIRECTION_DOWNSTREAM: Direction

class GetCallerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Caller(_message.Message):
    __slots__ = ("user", "superuser")
    USER_FIELD_NUMBER: _ClassVar[int]
    SUPERUSER_FIELD_NUMBER: _ClassVar[int]
    user: str
    superuser: bool
    def __init__(self, user: _Optional[str] = ..., superuser: _Optional[bool] = ...) -> None: ...

class CheckAccessRequest(_message.Message):
    __slots__ = ("api_key", "entity", "permission", "manifest_id")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    entity: str
    permission: Permission
    manifest_id: str
    def __init__(self, api_key: _Optional[str] = ..., entity: _Optional[str] = ..., permission: _Optional[_Union[Permission, str]] = ..., manifest_id: _Optional[str] = ...) -> None: ...

class CheckAccessResponse(_message.Message):
    __slots__ = ("user", "via_registry")
    USER_FIELD_NUMBER: _ClassVar[int]
    VIA_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    user: str
    via_registry: bool
    def __init__(self, user: _Optional[str] = ..., via_registry: _Optional[bool] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("name", "job_type", "state", "create_time", "finish_time", "config_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    job_type: str
    state: str
    create_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    config_json: str
    def __init__(self, name: _Optional[str] = ..., job_type: _Optional[str] = ..., state: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., config_json: _Optional[str] = ...) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("parent", "run_id", "run", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    run_id: str
    run: Run
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., run_id: _Optional[str] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class FinishRunRequest(_message.Message):
    __slots__ = ("name", "state", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ManifestRef(_message.Message):
    __slots__ = ("entity", "manifest_id", "digest", "digest_algorithm", "size", "file_count", "token")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    entity: str
    manifest_id: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int
    token: str
    def __init__(self, entity: _Optional[str] = ..., manifest_id: _Optional[str] = ..., digest: _Optional[str] = ..., digest_algorithm: _Optional[str] = ..., size: _Optional[int] = ..., file_count: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class ArtifactVersion(_message.Message):
    __slots__ = ("name", "uid", "type", "index", "state", "digest", "digest_algorithm", "size", "file_count", "manifest_id", "aliases", "description", "metadata_json", "create_time", "commit_time", "producer_run", "ttl", "collection", "ttl_mode", "tags", "expire_time", "linked", "link")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_RUN_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TTL_MODE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    type: str
    index: int
    state: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int
    manifest_id: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    description: str
    metadata_json: str
    create_time: _timestamp_pb2.Timestamp
    commit_time: _timestamp_pb2.Timestamp
    producer_run: str
    ttl: _duration_pb2.Duration
    collection: str
    ttl_mode: TtlMode
    tags: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    linked: bool
    link: LinkInfo
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., type: _Optional[str] = ..., index: _Optional[int] = ..., state: _Optional[str] = ..., digest: _Optional[str] = ..., digest_algorithm: _Optional[str] = ..., size: _Optional[int] = ..., file_count: _Optional[int] = ..., manifest_id: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., metadata_json: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., producer_run: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., collection: _Optional[str] = ..., ttl_mode: _Optional[_Union[TtlMode, str]] = ..., tags: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., linked: _Optional[bool] = ..., link: _Optional[_Union[LinkInfo, _Mapping]] = ...) -> None: ...

class LinkInfo(_message.Message):
    __slots__ = ("name", "collection", "index", "aliases", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    collection: str
    index: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., collection: _Optional[str] = ..., index: _Optional[int] = ..., aliases: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateArtifactVersionRequest(_message.Message):
    __slots__ = ("parent", "artifact", "type", "description", "metadata_json", "run", "ttl", "request_id", "ttl_mode", "tags", "manifest", "aliases")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MODE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    artifact: str
    type: str
    description: str
    metadata_json: str
    run: str
    ttl: _duration_pb2.Duration
    request_id: str
    ttl_mode: TtlMode
    tags: _containers.RepeatedScalarFieldContainer[str]
    manifest: ManifestRef
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, parent: _Optional[str] = ..., artifact: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ..., metadata_json: _Optional[str] = ..., run: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ..., ttl_mode: _Optional[_Union[TtlMode, str]] = ..., tags: _Optional[_Iterable[str]] = ..., manifest: _Optional[_Union[ManifestRef, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class CommitArtifactVersionRequest(_message.Message):
    __slots__ = ("uid", "manifest", "aliases", "request_id")
    UID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    uid: str
    manifest: ManifestRef
    aliases: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, uid: _Optional[str] = ..., manifest: _Optional[_Union[ManifestRef, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetArtifactVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListArtifactVersionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "alias", "tag", "created_after", "created_before", "metadata_key", "metadata_value_json")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    alias: str
    tag: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    metadata_key: str
    metadata_value_json: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., alias: _Optional[str] = ..., tag: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata_key: _Optional[str] = ..., metadata_value_json: _Optional[str] = ...) -> None: ...

class ListArtifactVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ArtifactVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[ArtifactVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UseArtifactVersionRequest(_message.Message):
    __slots__ = ("run", "version", "request_id")
    RUN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    run: str
    version: str
    request_id: str
    def __init__(self, run: _Optional[str] = ..., version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("version", "producer", "consumers", "hidden_run_count")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    version: ArtifactVersion
    producer: Run
    consumers: _containers.RepeatedCompositeFieldContainer[Run]
    hidden_run_count: int
    def __init__(self, version: _Optional[_Union[ArtifactVersion, _Mapping]] = ..., producer: _Optional[_Union[Run, _Mapping]] = ..., consumers: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., hidden_run_count: _Optional[int] = ...) -> None: ...

class EntitySettings(_message.Message):
    __slots__ = ("default_ttl", "ttl_policy")
    DEFAULT_TTL_FIELD_NUMBER: _ClassVar[int]
    TTL_POLICY_FIELD_NUMBER: _ClassVar[int]
    default_ttl: _duration_pb2.Duration
    ttl_policy: TtlPolicy
    def __init__(self, default_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., ttl_policy: _Optional[_Union[TtlPolicy, str]] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("name", "kind", "org", "create_time", "settings", "caller_role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CALLER_ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    org: str
    create_time: _timestamp_pb2.Timestamp
    settings: EntitySettings
    caller_role: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., org: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., settings: _Optional[_Union[EntitySettings, _Mapping]] = ..., caller_role: _Optional[str] = ...) -> None: ...

class CreateEntityRequest(_message.Message):
    __slots__ = ("entity_id", "entity", "request_id")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    entity: Entity
    request_id: str
    def __init__(self, entity_id: _Optional[str] = ..., entity: _Optional[_Union[Entity, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetEntityRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEntitiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ListEntitiesResponse(_message.Message):
    __slots__ = ("entities", "next_page_token")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    next_page_token: str
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateEntitySettingsRequest(_message.Message):
    __slots__ = ("name", "settings", "update_mask", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: EntitySettings
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[EntitySettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("parent", "user", "role")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    user: str
    role: str
    def __init__(self, parent: _Optional[str] = ..., user: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class SetMemberRequest(_message.Message):
    __slots__ = ("entity", "user", "role", "request_id")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity: str
    user: str
    role: str
    request_id: str
    def __init__(self, entity: _Optional[str] = ..., user: _Optional[str] = ..., role: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("entity", "user", "request_id")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity: str
    user: str
    request_id: str
    def __init__(self, entity: _Optional[str] = ..., user: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("entity", "page_size", "page_token")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entity: str
    page_size: int
    page_token: str
    def __init__(self, entity: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("members", "next_page_token")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    next_page_token: str
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "user", "description", "create_time", "revoke_time", "key")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    key: str
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("user", "description", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    description: str
    request_id: str
    def __init__(self, user: _Optional[str] = ..., description: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    request_id: str
    def __init__(self, id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("name", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects", "next_page_token")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    next_page_token: str
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "type", "create_time", "version_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    create_time: _timestamp_pb2.Timestamp
    version_count: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version_count: _Optional[int] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "type")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    type: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections", "next_page_token")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    next_page_token: str
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Alias(_message.Message):
    __slots__ = ("alias", "version", "index")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    alias: str
    version: str
    index: int
    def __init__(self, alias: _Optional[str] = ..., version: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases", "next_page_token")
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    next_page_token: str
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddAliasesRequest(_message.Message):
    __slots__ = ("version", "aliases", "request_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, version: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveAliasesRequest(_message.Message):
    __slots__ = ("version", "aliases", "request_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, version: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateArtifactVersionRequest(_message.Message):
    __slots__ = ("version", "update_mask", "request_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    version: ArtifactVersion
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, version: _Optional[_Union[ArtifactVersion, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Registry(_message.Message):
    __slots__ = ("name", "accepted_types", "description", "core", "visibility", "create_time", "caller_role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_TYPES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CORE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CALLER_ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    accepted_types: _containers.RepeatedScalarFieldContainer[str]
    description: str
    core: bool
    visibility: str
    create_time: _timestamp_pb2.Timestamp
    caller_role: str
    def __init__(self, name: _Optional[str] = ..., accepted_types: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., core: _Optional[bool] = ..., visibility: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., caller_role: _Optional[str] = ...) -> None: ...

class CreateRegistryRequest(_message.Message):
    __slots__ = ("parent", "registry_id", "registry", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    registry_id: str
    registry: Registry
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., registry_id: _Optional[str] = ..., registry: _Optional[_Union[Registry, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetRegistryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListRegistriesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRegistriesResponse(_message.Message):
    __slots__ = ("registries", "next_page_token")
    REGISTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    registries: _containers.RepeatedCompositeFieldContainer[Registry]
    next_page_token: str
    def __init__(self, registries: _Optional[_Iterable[_Union[Registry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetRegistryMemberRequest(_message.Message):
    __slots__ = ("registry", "user", "role", "request_id")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    registry: str
    user: str
    role: str
    request_id: str
    def __init__(self, registry: _Optional[str] = ..., user: _Optional[str] = ..., role: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveRegistryMemberRequest(_message.Message):
    __slots__ = ("registry", "user", "request_id")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    registry: str
    user: str
    request_id: str
    def __init__(self, registry: _Optional[str] = ..., user: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RegistryCollection(_message.Message):
    __slots__ = ("name", "type", "create_time", "link_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LINK_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    create_time: _timestamp_pb2.Timestamp
    link_count: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., link_count: _Optional[int] = ...) -> None: ...

class ListRegistryCollectionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRegistryCollectionsResponse(_message.Message):
    __slots__ = ("collections", "next_page_token")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[RegistryCollection]
    next_page_token: str
    def __init__(self, collections: _Optional[_Iterable[_Union[RegistryCollection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("name", "collection", "index", "aliases", "create_time", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    collection: str
    index: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    version: ArtifactVersion
    def __init__(self, name: _Optional[str] = ..., collection: _Optional[str] = ..., index: _Optional[int] = ..., aliases: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[_Union[ArtifactVersion, _Mapping]] = ...) -> None: ...

class LinkArtifactVersionRequest(_message.Message):
    __slots__ = ("version", "target", "aliases", "request_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    target: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, version: _Optional[str] = ..., target: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UnlinkArtifactVersionRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListLinksRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLinksResponse(_message.Message):
    __slots__ = ("links", "next_page_token")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    next_page_token: str
    def __init__(self, links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WalkLineageRequest(_message.Message):
    __slots__ = ("start", "direction", "depth", "page_size", "page_token")
    START_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    start: str
    direction: Direction
    depth: int
    page_size: int
    page_token: str
    def __init__(self, start: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., depth: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class LineageNode(_message.Message):
    __slots__ = ("name", "depth", "version", "run")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    name: str
    depth: int
    version: ArtifactVersion
    run: Run
    def __init__(self, name: _Optional[str] = ..., depth: _Optional[int] = ..., version: _Optional[_Union[ArtifactVersion, _Mapping]] = ..., run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class LineageEdge(_message.Message):
    __slots__ = ("source", "target", "kind")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    kind: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class WalkLineageResponse(_message.Message):
    __slots__ = ("nodes", "edges", "next_page_token", "hidden_count")
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[LineageNode]
    edges: _containers.RepeatedCompositeFieldContainer[LineageEdge]
    next_page_token: str
    hidden_count: int
    def __init__(self, nodes: _Optional[_Iterable[_Union[LineageNode, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[LineageEdge, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., hidden_count: _Optional[int] = ...) -> None: ...
