"""An artifact's entries: what each file is, and the artifact digest over them.

A logged artifact's entries carry a shared :class:`EntrySource` (the
artifact they belong to, one object for all of them) so that an entry can
download itself; entries of an artifact being built have none.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import artifact_digest

from ._exceptions import DepotError


def b64(raw: bytes) -> str:
    """A raw digest as manifests carry it (base64)."""
    return base64.b64encode(raw).decode()


class EntrySource(Protocol):
    """Where a logged entry came from: what ``ManifestEntry.download`` needs."""

    def download_entry(self, entry: ManifestEntry, root: str | os.PathLike[str] | None, skip_cache: bool) -> Path:
        """Fetches ``entry`` under ``root`` (default: the artifact's directory); returns the file's path."""
        ...


# slots: a 10M-entry listing builds 10M of these, so each costs what its
# fields cost and nothing more (no per-instance dict); weakref_slot lets
# tests check that a stream does not retain them. Entries read from the
# server are built by the native decoder (an EntryMaker filling the slots,
# __init__ not run): keep the fields plain slots, with no logic in __init__.
@dataclass(slots=True, weakref_slot=True)
class ManifestEntry:
    """One file of an artifact: where it lives in the artifact and what it is."""

    path: str
    digest: str
    algorithm: str
    size: int
    ref: str = ""
    version_id: str = ""
    extra: str = ""
    local_path: str | None = None
    # The logged artifact the entry was read from (shared, not copied).
    _source: EntrySource | None = field(default=None, repr=False, compare=False)

    def download(self, root: str | os.PathLike[str] | None = None, skip_cache: bool | None = None) -> str:
        """Downloads this entry of a logged artifact, verified, like W&B's ``ArtifactManifestEntry.download``.

        Args:
            root: The artifact's download directory (default: the artifact's
                own, as ``Artifact.download`` picks it); the file lands at
                ``root/path``.
            skip_cache: Neither use nor fill the local reference cache.

        Returns:
            The downloaded file's path.

        Raises:
            DepotError: The entry is not from a logged artifact.
        """
        if self._source is None:
            raise DepotError(f"entry {self.path!r} is not from a logged artifact; nothing to download")
        return str(self._source.download_entry(self, root, bool(skip_cache)))

    def _pb(self, content: bytes = b"") -> mpb.ManifestEntry:
        return mpb.ManifestEntry(
            path=self.path,
            algorithm=self.algorithm,
            digest=self.digest,
            size=self.size,
            ref=self.ref,
            version_id=self.version_id,
            extra_json=self.extra,
            content=content,
        )


class Manifest:
    """The artifact's entries by path, and its digest.

    A logged artifact's manifest is lazy: ``entries`` reads every entry from
    the server on first use and keeps them (for a 10M-entry version, use
    ``Artifact.files()``, which streams, or ``Artifact.get_entry``).
    """

    def __init__(
        self,
        entries: dict[str, ManifestEntry] | None = None,
        *,
        load: Callable[[], dict[str, ManifestEntry]] | None = None,
        digest_algorithm: str | None = None,
    ):
        self._entries = entries if entries is not None else ({} if load is None else None)
        self._load = load
        self._digest_algorithm = digest_algorithm

    @property
    def entries(self) -> dict[str, ManifestEntry]:
        if self._entries is None:
            assert self._load is not None
            self._entries = self._load()
        return self._entries

    @entries.setter
    def entries(self, value: dict[str, ManifestEntry]) -> None:
        self._entries = value

    @property
    def loaded(self) -> bool:
        """Whether the entries are in memory (always, for an artifact being built)."""
        return self._entries is not None

    @property
    def digest_algorithm(self) -> str:
        if self._digest_algorithm is not None:
            return self._digest_algorithm
        # xxh128 when any uploaded file uses it (Depot's default), else md5 —
        # which keeps reference-only artifacts' digests equal to W&B's.
        if any(e.algorithm == "xxh3_128" for e in self.entries.values()):
            return "xxh3_128"
        return "md5"

    @property
    def digest(self) -> str:
        pairs = ((p, self.entries[p].digest) for p in sorted(self.entries, key=str.encode))
        return artifact_digest(self.digest_algorithm, pairs)

    def sorted_entries(self) -> list[ManifestEntry]:
        return [self.entries[p] for p in sorted(self.entries, key=str.encode)]


class ArtifactFiles:
    """The entries of an artifact, in path order: what ``Artifact.files()`` returns.

    Like W&B's paginated ``files()``: iterate it (a logged artifact's entries
    stream from the server in batches, so a 10M-entry version never sits in
    memory; each iteration reads again) and take ``len()`` of it; it has no
    indexing — ``list(artifact.files())`` when a list is what you need.
    """

    def __init__(self, batches: Callable[[], Iterator[list[ManifestEntry]]], count: Callable[[], int]):
        self._batches = batches
        self._count = count

    def __iter__(self) -> Iterator[ManifestEntry]:
        # chain steps through each batch in C: no generator frame resumed per entry.
        return itertools.chain.from_iterable(self._batches())

    def batches(self) -> Iterator[list[ManifestEntry]]:
        """The entries a batch at a time (as they arrive from the server)."""
        return self._batches()

    def __len__(self) -> int:
        return self._count()

    def __repr__(self) -> str:
        return f"<ArtifactFiles of {len(self)} entries>"
