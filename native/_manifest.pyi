from collections.abc import Iterable, Iterator
from typing import BinaryIO, TypeVar, overload

from ._manifest_py import ALGORITHMS as ALGORITHMS
from ._manifest_py import DEFAULT_BLOCK_ENTRIES as DEFAULT_BLOCK_ENTRIES
from ._manifest_py import ENTRY_FIELDS as ENTRY_FIELDS
from ._manifest_py import MAGIC as MAGIC
from ._manifest_py import MAX_BLOCK_PAYLOAD as MAX_BLOCK_PAYLOAD
from ._manifest_py import Block as Block
from ._manifest_py import ByteSink, ListPageLike
from ._manifest_py import EntryMaker as EntryMaker
from ._manifest_py import ManifestEntry as ManifestEntry
from ._manifest_py import ManifestError as ManifestError
from ._manifest_py import ManifestSummary as ManifestSummary

class ArtifactDigester:
    @property
    def algorithm(self) -> str: ...
    def __init__(self, algorithm: str) -> None: ...
    def update(self, path: str, digest: str) -> None: ...
    def hexdigest(self) -> str: ...

def artifact_digest(algorithm: str, pairs: Iterable[tuple[str, str]]) -> str: ...

class ManifestWriter:
    def __init__(
        self, out: ByteSink, digest_algorithm: str, block_entries: int = ..., check_paths: bool = False
    ) -> None: ...
    def add(
        self,
        path: str,
        algorithm: str,
        digest: str,
        size: int,
        ref: str = "",
        version_id: str = "",
        extra: str = "",
    ) -> None: ...
    def add_many(self, entries: Iterable[ManifestEntry]) -> None: ...
    def add_page(
        self,
        page: ListPageLike,
        strip: int,
        path_prefix: str,
        ref_prefix: str,
        bucket_versioned: bool = False,
        algorithm: str = "etag",
    ) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def total_size(self) -> int: ...
    def close(self) -> ManifestSummary: ...

class ManifestReader:
    digest_algorithm: str
    summary: ManifestSummary | None
    def __init__(self, inp: BinaryIO) -> None: ...
    def batches(self) -> Iterator[list[ManifestEntry]]: ...
    def __iter__(self) -> Iterator[ManifestEntry]: ...

# Block index (reader side): seek a stored manifest instead of decoding it all.
def scan_blocks(inp: BinaryIO) -> list[Block]: ...
def read_block(inp: BinaryIO, offset: int) -> bytes: ...

_T = TypeVar("_T")

@overload
def decode_block(raw: bytes, make: None = None) -> list[ManifestEntry]: ...
@overload
def decode_block(raw: bytes, make: EntryMaker[_T]) -> list[_T]: ...
def inflate_block(raw: bytes) -> tuple[bytes, int]: ...
@overload
def decode_payload(payload: bytes, count: int, make: None = None) -> list[ManifestEntry]: ...
@overload
def decode_payload(payload: bytes, count: int, make: EntryMaker[_T]) -> list[_T]: ...
