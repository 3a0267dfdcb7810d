from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RunCollectionRequest(_message.Message):
    __slots__ = ("entity", "force", "request_id")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity: str
    force: bool
    request_id: str
    def __init__(self, entity: _Optional[str] = ..., force: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CollectionReport(_message.Message):
    __slots__ = ("versions_expired", "versions_purged", "blobs_deleted", "bytes_freed", "sample", "dry_run", "ran")
    VERSIONS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_PURGED_FIELD_NUMBER: _ClassVar[int]
    BLOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    RAN_FIELD_NUMBER: _ClassVar[int]
    versions_expired: int
    versions_purged: int
    blobs_deleted: int
    bytes_freed: int
    sample: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    ran: bool
    def __init__(self, versions_expired: _Optional[int] = ..., versions_purged: _Optional[int] = ..., blobs_deleted: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., sample: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., ran: _Optional[bool] = ...) -> None: ...
