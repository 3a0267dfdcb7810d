"""An artifact's entries: what each file is, and the artifact digest over them."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import artifact_digest


def b64(raw: bytes) -> str:
    """A raw digest as manifests carry it (base64)."""
    return base64.b64encode(raw).decode()


@dataclass
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
    """The artifact's entries by path, and its digest."""

    def __init__(self, entries: dict[str, ManifestEntry] | None = None):
        self.entries: dict[str, ManifestEntry] = entries or {}

    @property
    def digest_algorithm(self) -> str:
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
