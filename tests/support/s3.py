"""S3 reference builders and the digests they must come to, computed independently of Depot."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import s3sim  # bench/s3sim.py (bench/ is on pythonpath)

from depot.native import ManifestReader, ManifestWriter
from depot.services.manifest.s3_listing import S3Config, write_s3_reference


def wandb_digest(pairs: list[tuple[str, str]]) -> str:
    """W&B's manifest-v1 artifact digest, written independently of Depot's code."""
    h = hashlib.md5()
    h.update(b"wandb-artifact-manifest-v1\n")
    for path, digest in sorted(pairs):
        h.update(f"{path}:{digest}\n".encode())
    return h.hexdigest()


async def list_reference(uri: str, config: S3Config, **kw: Any) -> tuple[Any, list[Any], Any]:
    """Runs ``write_s3_reference`` into an in-memory manifest: (summary, entries, stats)."""
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5")
    stats = await write_s3_reference(uri, writer, session_config=config, **kw)
    summary = writer.close()
    buf.seek(0)
    entries = list(ManifestReader(buf))
    return summary, entries, stats


def expected_digest(space: s3sim.KeySpace, root: str, name: str = "") -> tuple[str, int]:
    """The artifact digest computed from the key formula alone (not from any listing)."""
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    strip = len(root)
    pre = name + "/" if name else ""
    n = 0
    for key, etag, _size, _vid in space.expected_entries():
        h.update(f"{pre}{key[strip:]}:{etag}\n".encode())
        n += 1
    return h.hexdigest(), n
