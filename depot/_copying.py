"""Writing downloaded bytes: the one copy-while-hashing loop, and the fresh file it writes to."""

from __future__ import annotations

from pathlib import Path
from typing import IO, BinaryIO

from depot.core.hashing import Hasher

__all__ = ["CHUNK", "copy_hashing", "open_fresh"]

CHUNK = 1 << 20


def copy_hashing(src: IO[bytes], out: IO[bytes], hashers: list[Hasher]) -> int:
    """Copies ``src`` to ``out`` in ``CHUNK`` pieces, feeding each hasher; the bytes copied."""
    n = 0
    while chunk := src.read(CHUNK):
        out.write(chunk)
        for h in hashers:
            h.update(chunk)
        n += len(chunk)
    return n


def open_fresh(path: Path) -> BinaryIO:
    """``path`` opened for writing as a new file, never through the file it named.

    The reference cache adopts downloads by hard link, so the file at
    ``path`` may share its bytes with a cached object: truncating it would
    rewrite the cache. Unlinking first and creating exclusively (no symlink
    followed) writes a new inode.
    """
    path.unlink(missing_ok=True)
    return open(path, "xb")
