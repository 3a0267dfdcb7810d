"""The content digest algorithms, and incremental hashers for them.

``ALGORITHMS`` is the one list of algorithms Depot hashes file content with
(uploaded blobs, ``file://`` and http references, artifact digests): those
the native engine computes, so the list cannot name one it lacks.
``new_hasher`` gives the streaming twin of ``depot.native.hash_bytes`` (the
same raw digests, fed chunk by chunk) for bytes that arrive over a network.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import xxhash

from depot.native import HASH_ALGORITHMS

from .errors import InvalidValue

ALGORITHMS: tuple[str, ...] = tuple(HASH_ALGORITHMS)


class Hasher(Protocol):
    """What hashlib's and xxhash's objects share."""

    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str, field: str = "hash_algorithm") -> Hasher:
    """An empty hasher of ``algorithm`` (one of ``ALGORITHMS``)."""
    if algorithm == "md5":
        return hashlib.md5()
    if algorithm == "xxh3_128":
        h: Hasher = xxhash.xxh3_128()
        return h
    raise InvalidValue(f"hash algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}", field=field)
