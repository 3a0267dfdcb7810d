"""A downloaded tree against its artifact: ``verify``, and ``checkout``'s clean-up.

Both list the tree's files once, sort them in the manifest's order (UTF-8
bytes) and merge that list with the entry stream, so the artifact's entries
never sit in memory (the tree's own file list does). Digests are recomputed
with the native hasher, many files at a time on all cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from depot.native import hash_files

from ._exceptions import DigestMismatchError
from ._manifest import ManifestEntry, b64
from ._references import local_copy_matches

__all__ = ["remove_extra", "verify"]

# How many paths of each kind an error message names.
SHOWN = 10
_CONTENT = ("md5", "xxh3_128")


def _local_files(root: Path) -> list[bytes]:
    """Every file under ``root`` (not directories), as relative paths in byte order."""
    out: list[bytes] = []
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        for name in filenames:
            out.append(name if rel == b"." else rel + b"/" + name)
        # A symlink to a directory is listed as a file, never followed out of root.
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                out.append(name if rel == b"." else rel + b"/" + name)
    out.sort()
    return out


class _Tally:
    """A count of paths, and the first few of them."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, path: str) -> None:
        self.count += 1
        if len(self.first) < SHOWN:
            self.first.append(path)

    def text(self, what: str) -> str:
        more = f", +{self.count - len(self.first)} more" if self.count > len(self.first) else ""
        return f"{self.count} {what} ({', '.join(map(repr, self.first))}{more})"


def _merge(
    batches: Iterable[list[ManifestEntry]],
    local: list[bytes],
    missing: Callable[[str], None],
    extra: Callable[[bytes], None],
) -> Iterator[list[ManifestEntry]]:
    """The entries present under root, a batch at a time; the missing and extra paths go to their callbacks."""
    i = 0
    for batch in batches:
        present = []
        for e in batch:
            key = e.path.encode()
            while i < len(local) and local[i] < key:
                extra(local[i])
                i += 1
            if i < len(local) and local[i] == key:
                present.append(e)
                i += 1
            else:
                missing(e.path)
        yield present
    for rest in local[i:]:
        extra(rest)


def _differ(entries: list[ManifestEntry], root: Path) -> Iterator[ManifestEntry]:
    """The entries whose file under ``root`` does not hold the recorded bytes."""
    by_alg: dict[str, list[ManifestEntry]] = {}
    for e in entries:
        path = root / e.path
        if e.algorithm == "none":
            # checksum=False: neither size nor digest was recorded (size 0
            # stands for "unknown"), so being there is all that is checked.
            continue
        if os.lstat(path).st_size != e.size:
            yield e
        elif e.algorithm in _CONTENT:
            by_alg.setdefault(e.algorithm, []).append(e)
        elif not local_copy_matches(e, path) and _decidable(e):
            yield e
        # Anything else (a multipart ETag, an unchecksummed reference) has
        # no digest the bytes can be checked against: its size matched.
    for alg, group in by_alg.items():
        try:
            digests = hash_files([str(root / e.path) for e in group], (alg,))
        except OSError:
            # One unreadable file: check them one by one to find it.
            yield from (e for e in group if not local_copy_matches(e, root / e.path))
            continue
        yield from (e for e, (raw,) in zip(group, digests) if b64(raw) != e.digest)


def _decidable(e: ManifestEntry) -> bool:
    # A single-part S3 ETag is the md5 of the bytes.
    return e.algorithm == "etag" and len(e.digest) == 32 and all(c in "0123456789abcdefABCDEF" for c in e.digest)


def verify(batches: Iterable[list[ManifestEntry]], root: Path) -> None:
    """Raises DigestMismatchError unless ``root`` holds exactly the entries' files, byte for byte."""
    missing, extra, differ = _Tally(), _Tally(), _Tally()
    local = _local_files(root)
    for present in _merge(batches, local, missing.add, lambda rel: extra.add(os.fsdecode(rel))):
        for e in _differ(present, root):
            differ.add(e.path)
    problems = [t.text(what) for t, what in ((differ, "differ"), (missing, "missing"), (extra, "extra")) if t.count]
    if problems:
        raise DigestMismatchError(f"{root} does not match the artifact: {'; '.join(problems)}", field="root")


def remove_extra(batches: Iterable[list[ManifestEntry]], root: Path) -> int:
    """Deletes the files under ``root`` that are not entries, and directories left empty; returns how many files."""
    base = os.fsencode(root)
    removed = 0

    def remove(rel: bytes) -> None:
        nonlocal removed
        os.unlink(os.path.join(base, rel))
        removed += 1

    for _ in _merge(batches, _local_files(root), lambda path: None, remove):
        pass
    for dirpath, _, _ in os.walk(base, topdown=False):
        if dirpath != base and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return removed
