"""What another service may import of the manifest service: the GC's needs, nothing else.

The GC's blob collector reads the store the manifest service writes: it
lists and deletes keys, and reads stored manifests to mark the blobs they
name. It crosses into the manifest service through this module alone (the
import contract, pyproject ``[tool.importlinter]`` ``service-layers``), so
the key layout and store operations it depends on are listed here.
"""

from __future__ import annotations

from .blobs import BlobId, blob_key
from .reading import manifest_key
from .store import BlobStore, LocalBlobStore, check_key, open_store
from .sweeping import TRASH, Deleted, StoredObject

__all__ = [
    "TRASH",
    "BlobId",
    "BlobStore",
    "Deleted",
    "LocalBlobStore",
    "StoredObject",
    "blob_key",
    "check_key",
    "manifest_key",
    "open_store",
]
