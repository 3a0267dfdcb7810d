"""What another service may import of the manifest service: the GC's needs, nothing else.

The GC deletes what no version references from the blob store the manifest
service writes, so it opens that store with the same settings
(DEPOT_STORAGE_URL, the S3 options, ...), and its blob collector lists and
deletes keys there and reads stored manifests to mark the blobs they name.
The import contract (pyproject ``[tool.importlinter]``, ``service-layers``)
lets the GC cross into the manifest service through this module alone, as
it does into metadata through ``metadata.public``.
"""

from __future__ import annotations

from .config import ManifestSettings, data_dir_from_env
from .reading import manifest_key
from .store import BlobStore, open_store
from .sweeping import TRASH, StoredObject

__all__ = ["TRASH", "BlobStore", "ManifestSettings", "StoredObject", "data_dir_from_env", "manifest_key", "open_store"]
