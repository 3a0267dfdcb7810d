from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlobDigest(_message.Message):
    __slots__ = ("algorithm", "digest")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    digest: str
    def __init__(self, algorithm: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class FindMissingBlobsRequest(_message.Message):
    __slots__ = ("entity", "blobs")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    entity: str
    blobs: _containers.RepeatedCompositeFieldContainer[BlobDigest]
    def __init__(self, entity: _Optional[str] = ..., blobs: _Optional[_Iterable[_Union[BlobDigest, _Mapping]]] = ...) -> None: ...

class FindMissingBlobsResponse(_message.Message):
    __slots__ = ("missing",)
    MISSING_FIELD_NUMBER: _ClassVar[int]
    missing: _containers.RepeatedCompositeFieldContainer[BlobDigest]
    def __init__(self, missing: _Optional[_Iterable[_Union[BlobDigest, _Mapping]]] = ...) -> None: ...

class UploadBlobHeader(_message.Message):
    __slots__ = ("entity", "digest", "size")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    entity: str
    digest: BlobDigest
    size: int
    def __init__(self, entity: _Optional[str] = ..., digest: _Optional[_Union[BlobDigest, _Mapping]] = ..., size: _Optional[int] = ...) -> None: ...

class UploadBlobRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadBlobHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadBlobHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Blob(_message.Message):
    __slots__ = ("digest", "size", "created")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    digest: BlobDigest
    size: int
    created: bool
    def __init__(self, digest: _Optional[_Union[BlobDigest, _Mapping]] = ..., size: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class ReadBlobRequest(_message.Message):
    __slots__ = ("entity", "digest", "manifest_id")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity: str
    digest: BlobDigest
    manifest_id: str
    def __init__(self, entity: _Optional[str] = ..., digest: _Optional[_Union[BlobDigest, _Mapping]] = ..., manifest_id: _Optional[str] = ...) -> None: ...

class BlobChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ManifestEntry(_message.Message):
    __slots__ = ("path", "algorithm", "digest", "size", "ref", "version_id", "extra_json", "content")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    path: str
    algorithm: str
    digest: str
    size: int
    ref: str
    version_id: str
    extra_json: str
    content: bytes
    def __init__(self, path: _Optional[str] = ..., algorithm: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., ref: _Optional[str] = ..., version_id: _Optional[str] = ..., extra_json: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class EntryBatch(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ManifestEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[ManifestEntry, _Mapping]]] = ...) -> None: ...

class Reference(_message.Message):
    __slots__ = ("uri", "name", "max_objects")
    URI_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    uri: str
    name: str
    max_objects: int
    def __init__(self, uri: _Optional[str] = ..., name: _Optional[str] = ..., max_objects: _Optional[int] = ...) -> None: ...

class ManifestHeader(_message.Message):
    __slots__ = ("entity", "digest_algorithm", "references")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    entity: str
    digest_algorithm: str
    references: _containers.RepeatedCompositeFieldContainer[Reference]
    def __init__(self, entity: _Optional[str] = ..., digest_algorithm: _Optional[str] = ..., references: _Optional[_Iterable[_Union[Reference, _Mapping]]] = ...) -> None: ...

class CreateManifestRequest(_message.Message):
    __slots__ = ("header", "batch")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    header: ManifestHeader
    batch: EntryBatch
    def __init__(self, header: _Optional[_Union[ManifestHeader, _Mapping]] = ..., batch: _Optional[_Union[EntryBatch, _Mapping]] = ...) -> None: ...

class PutManifestRequest(_message.Message):
    __slots__ = ("header", "entries")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    header: ManifestHeader
    entries: _containers.RepeatedCompositeFieldContainer[ManifestEntry]
    def __init__(self, header: _Optional[_Union[ManifestHeader, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[ManifestEntry, _Mapping]]] = ...) -> None: ...

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

class ReadManifestRequest(_message.Message):
    __slots__ = ("entity", "manifest_id")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    entity: str
    manifest_id: str
    def __init__(self, entity: _Optional[str] = ..., manifest_id: _Optional[str] = ...) -> None: ...
