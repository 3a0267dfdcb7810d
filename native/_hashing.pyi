from collections.abc import Sequence

from _typeshed import ReadableBuffer, StrOrBytesPath

HASH_ALGORITHMS: tuple[str, ...]

def hash_bytes(data: ReadableBuffer, algorithms: Sequence[str] = ...) -> tuple[bytes, ...]: ...
def hash_file(path: StrOrBytesPath, algorithms: Sequence[str] = ...) -> tuple[bytes, ...]: ...
def hash_files(
    paths: Sequence[StrOrBytesPath], algorithms: Sequence[str] = ..., threads: int = 0
) -> list[tuple[bytes, ...]]: ...
